//! A compiled IR written as its changes from another: what `gatefold
//! apply` sends a reference gateway that runs the other (`PATCH /config`),
//! so that neither the network nor the gateway carries the routes that did
//! not change. The result is checked as a whole IR is (its content hash
//! recomputed, [`super::ValidIr`]'s promises checked), so a delta either
//! makes exactly the IR it names or is refused.

use super::{
    Consumer, ContentHash, Gateway, Ir, Name, PolicyId, PolicyInstance, Route, RouteMeanings,
    SourceMap, Upstream, ValidIr, IR_FORMAT,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The changes from the IR `base` to the IR `hash`. A part left out is the
/// base's as it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IrDelta {
    pub format: u32,
    /// The IR the changes apply to.
    pub base: ContentHash,
    /// Its source map's digest ([`ContentHash::of_json`]): the source map
    /// is not in the content hash, and two gateways may run one config
    /// compiled from specs laid out differently.
    pub base_sources: ContentHash,
    /// The IR they make.
    pub hash: ContentHash,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstreams: Option<BTreeMap<Name, Upstream>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<BTreeMap<Name, Consumer>>,
    /// Policy instances new or changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set_policies: BTreeMap<PolicyId, PolicyInstance>,
    /// Policy instances gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_policies: Vec<PolicyId>,
    /// Every route of the new IR, in order: runs of the base's routes
    /// kept as they are, and the routes new or changed.
    pub routes: Vec<RoutePart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<SourceMap>,
}

/// A stretch of the new IR's routes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoutePart {
    /// `[from, count]`: the base's routes `from..from + count`.
    Keep([usize; 2]),
    /// A route the base does not have as it is.
    Route(Box<Route>),
}

impl IrDelta {
    /// The changes that make `target` from `base`.
    pub fn between(base: &Ir, target: &Ir) -> IrDelta {
        fn changed<T: PartialEq + Clone>(old: &T, new: &T) -> Option<T> {
            (old != new).then(|| new.clone())
        }
        let at: HashMap<_, _> = base
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (&r.id, i))
            .collect();
        let mut routes: Vec<RoutePart> = Vec::new();
        for r in &target.routes {
            let kept = at.get(&r.id).copied().filter(|&i| base.routes[i] == *r);
            match (kept, routes.last_mut()) {
                (Some(i), Some(RoutePart::Keep([from, count]))) if *from + *count == i => {
                    *count += 1
                }
                (Some(i), _) => routes.push(RoutePart::Keep([i, 1])),
                (None, _) => routes.push(RoutePart::Route(Box::new(Route::clone(r)))),
            }
        }
        IrDelta {
            format: IR_FORMAT,
            base: base.hash.clone(),
            base_sources: ContentHash::of_json(&base.sources),
            hash: target.hash.clone(),
            gateway: changed(&base.gateway, &target.gateway),
            upstreams: changed(&base.upstreams, &target.upstreams),
            consumers: changed(&base.consumers, &target.consumers),
            set_policies: target
                .policies
                .iter()
                .filter(|(id, p)| base.policies.get(*id) != Some(*p))
                .map(|(id, p)| (id.clone(), p.clone()))
                .collect(),
            remove_policies: base
                .policies
                .keys()
                .filter(|id| !target.policies.contains_key(*id))
                .cloned()
                .collect(),
            routes,
            sources: changed(&base.sources, &target.sources),
        }
    }

    /// The IR these changes make from `base`, checked as a loaded IR is;
    /// an error when `base` is not the IR they are for, or when the result
    /// is not the IR they name.
    pub fn apply(self, base: &Ir) -> Result<ValidIr, String> {
        self.apply_keeping(base, None).map(|(ir, _)| ir)
    }

    /// [`IrDelta::apply`], given the base's routes as the hash read them
    /// (`base_meanings`, from [`ValidIr::from_json_keeping`] or an earlier
    /// apply): the routes kept are hashed from there, not written again.
    /// Gives the new IR's routes as the hash read them, for the next.
    /// `base_meanings` must be `base`'s own: the source map's digest they
    /// may carry is taken as `base`'s (meanings of another IR with the
    /// same hash and another source map would let changes made for that
    /// one through).
    pub fn apply_keeping(
        self,
        base: &Ir,
        base_meanings: Option<&RouteMeanings>,
    ) -> Result<(ValidIr, RouteMeanings), String> {
        if self.format != IR_FORMAT {
            return Err(format!(
                "IR format {} is not supported (this gatefold reads format {IR_FORMAT}); send the whole config",
                self.format
            ));
        }
        if self.base != base.hash {
            return Err(format!(
                "the changes are for config {}, not the running {}; send the whole config",
                self.base, base.hash
            ));
        }
        let base_sources = match base_meanings.and_then(|m| m.sources.clone()) {
            Some(known) => known,
            None => ContentHash::of_json(&base.sources),
        };
        if base_sources != self.base_sources {
            return Err(
                "the running config's source map is not the one the changes apply to (the same config compiled from a spec laid out otherwise); send the whole config"
                    .to_string(),
            );
        }
        let mut policies = base.policies.clone();
        for id in &self.remove_policies {
            policies.remove(id);
        }
        policies.extend(self.set_policies);
        let mut routes = Vec::with_capacity(base.routes.len());
        // For each new route, the base route it is (when kept). A base
        // route is kept once at most: a small body never makes a large IR.
        let mut from_base: Vec<Option<usize>> = Vec::with_capacity(base.routes.len());
        let mut taken = vec![false; base.routes.len()];
        for part in self.routes {
            match part {
                RoutePart::Keep([from, count]) => {
                    let end = from
                        .checked_add(count)
                        .filter(|&end| end <= base.routes.len())
                        .ok_or_else(|| {
                            format!(
                                "the changes keep routes {from}..{from}+{count}, but the running config has {}",
                                base.routes.len()
                            )
                        })?;
                    if let Some(twice) = (from..end).find(|&i| taken[i]) {
                        return Err(format!(
                            "the changes keep route {twice} of the running config twice"
                        ));
                    }
                    taken[from..end].fill(true);
                    routes.extend_from_slice(&base.routes[from..end]);
                    from_base.extend((from..end).map(Some));
                }
                RoutePart::Route(r) => {
                    routes.push(Arc::new(*r));
                    from_base.push(None);
                }
            }
        }
        let sources_kept = self.sources.is_none();
        let ir = Ir {
            format: IR_FORMAT,
            hash: self.hash,
            gateway: self.gateway.unwrap_or_else(|| base.gateway.clone()),
            upstreams: self.upstreams.unwrap_or_else(|| base.upstreams.clone()),
            consumers: self.consumers.unwrap_or_else(|| base.consumers.clone()),
            policies,
            routes,
            sources: self.sources.unwrap_or_else(|| base.sources.clone()),
        };
        let (ir, mut meanings) =
            ValidIr::from_parsed_keeping(ir, base_meanings.map(|m| (m, from_base.as_slice())))
                .map_err(|e| format!("the changes do not make the config they name: {e}"))?;
        if sources_kept {
            meanings.sources = Some(base_sources);
        }
        Ok((ir, meanings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"gatefold: 1
gateway: { name: t }
upstreams:
  up: { targets: [{ url: http://127.0.0.1:9 }] }
  other: { targets: [{ url: http://127.0.0.1:10 }] }
apis:
  a:
    base-path: /a
    upstream: up
    policies:
      - response-headers: { set: { x-served-by: one } }
    routes:
      r1: { path: /x }
      r2: { path: "/y/{id}", methods: [GET] }
      r3: { path: /z/* }
"#;

    use crate::compile_valid as compile;

    /// The delta, through its JSON, as the gateway reads it.
    fn sent(base: &Ir, target: &Ir) -> IrDelta {
        let text = serde_json::to_string(&IrDelta::between(base, target)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_changes_make_the_target_from_the_base() {
        let base = compile(SPEC);
        let variants = [
            ("nothing", SPEC.to_string()),
            (
                "a policy's option",
                SPEC.replace("x-served-by: one", "x-served-by: two"),
            ),
            (
                "a route added",
                SPEC.replace("      r3:", "      r0: { path: /w }\n      r3:"),
            ),
            (
                "a route removed",
                SPEC.replace("      r2: { path: \"/y/{id}\", methods: [GET] }\n", ""),
            ),
            (
                "a route's upstream",
                SPEC.replace("r1: { path: /x }", "r1: { path: /x, upstream: other }"),
            ),
            ("the gateway", SPEC.replace("name: t", "name: u")),
            ("an upstream", SPEC.replace("127.0.0.1:10", "127.0.0.1:11")),
            ("the source lines", format!("# a comment\n{SPEC}")),
            (
                "a policy removed",
                SPEC.replace(
                    "    policies:\n      - response-headers: { set: { x-served-by: one } }\n",
                    "",
                ),
            ),
        ];
        for (what, yaml) in variants {
            let target = compile(&yaml);
            let made = sent(&base, &target)
                .apply(&base)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(made.ir() == target.ir(), "{what}: another IR came out");
        }
        // Unchanged routes go as one run, not one by one.
        let policy = compile(&SPEC.replace("x-served-by: one", "x-served-by: two"));
        let d = IrDelta::between(&base, &policy);
        assert_eq!(d.routes, vec![RoutePart::Keep([0, base.routes.len()])]);
        assert_eq!(d.set_policies.len(), 1);
        assert!(d.gateway.is_none() && d.upstreams.is_none() && d.sources.is_none());
        // A kept route is the running config's own, not a copy (a reload
        // then tells it unchanged by identity).
        let made = d.apply(&base).unwrap();
        assert!(made
            .routes
            .iter()
            .zip(&base.routes)
            .all(|(m, b)| Arc::ptr_eq(m, b)));
    }

    /// Hashing the kept routes from the base's JSON gives the hash (and
    /// the JSON) hashing everything gives, generation after generation.
    #[test]
    fn kept_routes_hash_from_the_base_json_as_written_anew() {
        let base = compile(SPEC);
        let (loaded, mut meanings) = ValidIr::from_json_keeping(&base.to_json()).unwrap();
        assert!(loaded.ir() == base.ir());
        let mut running = loaded;
        for (n, yaml) in [
            SPEC.replace("x-served-by: one", "x-served-by: two"),
            SPEC.replace("      r3:", "      r0: { path: /w }\n      r3:"),
            SPEC.replace("      r1: { path: /x }\n", ""),
            format!("# moved\n{}", SPEC.replace("name: t", "name: u")),
        ]
        .iter()
        .enumerate()
        {
            let target = compile(yaml);
            let (made, kept) = sent(&running, &target)
                .apply_keeping(&running, Some(&meanings))
                .unwrap_or_else(|e| panic!("generation {n}: {e}"));
            assert!(made.ir() == target.ir(), "generation {n}");
            let (hash, fresh) = ContentHash::compute_keeping(&made, None);
            assert_eq!(hash, ContentHash::of(&made), "generation {n}");
            // The source map's digest goes on only with the source map.
            let kept_sources = running.sources == made.sources;
            let digest = kept_sources.then(|| ContentHash::of_json(&made.sources));
            assert_eq!(kept.sources, digest, "generation {n}");
            let mut routes_only = kept.clone();
            routes_only.sources = None;
            assert_eq!(
                format!("{routes_only:?}"),
                format!("{fresh:?}"),
                "generation {n}"
            );
            (running, meanings) = (made, kept);
        }
        // Meanings of another IR make the hash differ: refused, not taken.
        let other = compile(&SPEC.replace("/z/*", "/q/*"));
        let (_, wrong) = ValidIr::from_json_keeping(&other.to_json()).unwrap();
        let target = compile(&SPEC.replace("x-served-by: one", "x-served-by: two"));
        let e = sent(&base, &target)
            .apply_keeping(&base, Some(&wrong))
            .unwrap_err();
        assert!(e.contains("does not match its hash"), "{e}");
    }

    /// The source map's digest carried from one generation to the next is
    /// what changes are checked against: changes made for the same config
    /// laid out otherwise (the same hash, another source map) are refused.
    #[test]
    fn the_carried_source_map_digest_refuses_changes_for_another_layout() {
        let (running, meanings) = ValidIr::from_json_keeping(&compile(SPEC).to_json()).unwrap();
        let two = SPEC.replace("x-served-by: one", "x-served-by: two");
        let (made, kept) = sent(&running, &compile(&two))
            .apply_keeping(&running, Some(&meanings))
            .unwrap();
        assert_eq!(kept.sources, Some(ContentHash::of_json(&made.sources)));
        let moved = compile(&format!("# moved\n{two}"));
        assert_eq!(moved.hash, made.hash);
        let three = compile(&format!("# moved\n{}", two.replace("name: t", "name: u")));
        let e = sent(&moved, &three)
            .apply_keeping(&made, Some(&kept))
            .unwrap_err();
        assert!(e.contains("source map"), "{e}");
        // Made for this layout, the same change goes through.
        let three_here = compile(&two.replace("name: t", "name: u"));
        sent(&made, &three_here)
            .apply_keeping(&made, Some(&kept))
            .unwrap();
    }

    /// The routes' JSON hashed after the rest gives every example's hash
    /// (the examples hold every policy kind, TLS, scripts, conditions).
    #[test]
    fn kept_json_hashes_as_the_ir_on_the_examples() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        for name in ["kitchen-sink", "petstore", "quickstart", "fleet/spec"] {
            let c = crate::compile_path(&root.join(name));
            let ir = c.ir.unwrap_or_else(|| panic!("{name}"));
            assert_eq!(ContentHash::compute_keeping(&ir, None).0, ir.hash, "{name}");
        }
    }

    #[test]
    fn changes_for_another_config_or_that_make_another_are_refused() {
        let base = compile(SPEC);
        let target = compile(&SPEC.replace("x-served-by: one", "x-served-by: two"));
        let other = compile(&SPEC.replace("name: t", "name: u"));
        let e = sent(&base, &target).apply(&other).unwrap_err();
        assert!(e.contains("not the running"), "{e}");
        // Changes that make something else than the IR they name.
        let mut forged = sent(&base, &target);
        forged.set_policies = other.policies.clone();
        let e = forged.apply(&base).unwrap_err();
        assert!(e.contains("does not match its hash"), "{e}");
        let mut twice = sent(&base, &target);
        twice.routes = vec![RoutePart::Keep([0, 2]), RoutePart::Keep([1, 2])];
        let e = twice.apply(&base).unwrap_err();
        assert!(e.contains("route 1 of the running config twice"), "{e}");
        // The same config from a spec laid out otherwise: its source map
        // is not the one the changes carry on from.
        let moved = compile(&format!("# moved\n{SPEC}"));
        assert_eq!(moved.hash, base.hash);
        let e = sent(&base, &target).apply(&moved).unwrap_err();
        assert!(e.contains("source map"), "{e}");
        for keep in [
            [0, base.routes.len() + 1],
            [usize::MAX, 2],
            [base.routes.len(), 1],
        ] {
            let mut bad = sent(&base, &target);
            bad.routes = vec![RoutePart::Keep(keep)];
            let e = bad.apply(&base).unwrap_err();
            assert!(e.contains("keep routes"), "{keep:?}: {e}");
        }
        let mut old = sent(&base, &target);
        old.format = IR_FORMAT - 1;
        assert!(old.apply(&base).unwrap_err().contains("format"));
        assert!(serde_json::from_str::<IrDelta>(
            r#"{"format":3,"base":"x","base-sources":"z","hash":"y","routes":[],"extra":1}"#
        )
        .is_err());
    }
}
