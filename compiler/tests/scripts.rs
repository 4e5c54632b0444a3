//! Scripts in the compiled IR: the source map places every run-time failure
//! site at its spec line and column (what the gateways log), and the cost
//! bound follows the documented rule.

use gatefold_compiler::compile_str;
use gatefold_compiler::ir::script::{Stmt, MAX_LIST};
use gatefold_compiler::ir::Policy;

const SPEC: &str = r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      r:
        path: /r
        policies:
          - script:
              request: |
                const t = req.header("x-t");
                for (const p of t.split(",")) {
                  req.setHeader("x-p", p.trim());
                }
              response: |
                res.setHeader("x-t", ctx.t ?? "");
"#;

#[test]
fn the_source_map_places_each_failure_site() {
    let c = compile_str("s.yaml", SPEC);
    let ir = c.ir.unwrap_or_else(|| panic!("compiles"));
    let (id, inst) = ir
        .policies
        .iter()
        .find(|(_, i)| matches!(i.policy, Policy::Script(_)))
        .expect("a script instance");
    let sites = &ir.sources.scripts[id];
    let places: Vec<String> = sites.iter().map(|l| ir.sources.describe(*l)).collect();
    // In lowering order: `t.split(",")` (13:33), `p.trim()` (14:40),
    // `req.setHeader(...)` (14:19), the loop's list (13:33), then the
    // response script's `res.setHeader(...)` (17:17).
    assert_eq!(
        places,
        [
            "s.yaml:13:33",
            "s.yaml:14:40",
            "s.yaml:14:19",
            "s.yaml:13:33",
            "s.yaml:17:17"
        ]
    );
    let Policy::Script(s) = &inst.policy else {
        unreachable!()
    };
    // The response script's sites follow the request script's in the one
    // list: its `res.setHeader(...)` names the fifth place, not the first.
    let response = s.response.as_ref().expect("a response script");
    let Stmt::SetHeader { site, .. } = &response.body[0] else {
        panic!("{:?}", response.body)
    };
    assert_eq!(places[site.0 as usize], "s.yaml:17:17");
    let request = s.request.as_ref().expect("a request script");
    // The loop counts MAX_LIST times its body.
    let Stmt::ForOf { body, .. } = &request.body[1] else {
        panic!("{:?}", request.body)
    };
    let body_cost = gatefold_compiler::ir::script::Program::cost_of(body);
    assert!(
        request.cost >= MAX_LIST * (1 + body_cost),
        "{}",
        request.cost
    );
    assert!(
        request.cost < MAX_LIST * (1 + body_cost) + 20,
        "{}",
        request.cost
    );
}
