//! A part of a compiled spec: the apis one gateway of a fleet serves.

use super::{check, ContentHash, PolicyId, ValidIr};
use std::collections::BTreeSet;

impl ValidIr {
    /// The routes of the named apis only, in the same precedence order;
    /// policy instances no kept route runs are dropped with their source
    /// map entries. Upstreams, consumers and gateway settings stay (they
    /// are gateway-wide). Rehashed, and checked like a loaded IR.
    pub fn select_apis(&self, apis: &BTreeSet<String>) -> Result<ValidIr, String> {
        let mut ir = self.0.clone();
        ir.routes.retain(|r| apis.contains(r.id.api.as_str()));
        let used: BTreeSet<PolicyId> = ir
            .routes
            .iter()
            .flat_map(|r| r.chain.iter().cloned())
            .collect();
        ir.policies.retain(|id, _| used.contains(id));
        ir.sources.policies.retain(|id, _| used.contains(id));
        let kept: BTreeSet<_> = ir.routes.iter().map(|r| r.id.clone()).collect();
        ir.sources.routes.retain(|id, _| kept.contains(id));
        ir.hash = ContentHash::of(&ir);
        check::check(&ir)?;
        Ok(ValidIr(ir))
    }

    /// The api names the routes belong to.
    pub fn api_names(&self) -> BTreeSet<String> {
        self.0
            .routes
            .iter()
            .map(|r| r.id.api.as_str().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    const SPEC: &str = r#"
gatefold: 1
upstreams:
  local: { targets: [{ url: "http://127.0.0.1:9000" }] }
apis:
  pets:
    upstream: local
    routes:
      list: { path: /pets }
  shop:
    upstream: local
    policies:
      - rate-limit: { requests: 5, per: 1s }
    routes:
      buy: { path: /shop }
"#;

    #[test]
    fn keeps_only_the_chosen_apis_and_their_policies() {
        let all = crate::compile_str("s.yaml", SPEC).ir.expect("compiles");
        let pets = all
            .select_apis(&BTreeSet::from(["pets".to_string()]))
            .expect("valid part");
        let ids: Vec<String> = pets.ir().routes.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["pets.list"]);
        // shop's rate limit went with its route (or the IR check would fail).
        assert!(
            pets.ir().policies.is_empty(),
            "{:?}",
            pets.ir().policies.keys()
        );
        assert_ne!(pets.hash, all.hash);
        // Selecting everything is the same config.
        let both = all.select_apis(&all.api_names()).expect("valid");
        assert_eq!(both.hash, all.hash);
    }
}
