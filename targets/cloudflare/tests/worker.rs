//! The emitted Worker: its shape for a small spec (snapshot), user strings
//! kept as data, and a syntax check of the JS by Node.

use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{Options, Target};
use gatefold_target_cloudflare::{Cloudflare, CAPNP, WORKER, WRANGLER};
use std::process::Command;

fn compile(text: &str) -> ValidIr {
    let c = gatefold_compiler::compile_str("spec.yaml", text);
    match c.ir {
        Some(ir) => ir,
        None => panic!("the spec compiles:\n{}", c.render()),
    }
}

fn file(ir: &ValidIr, name: &str) -> String {
    let options = Options {
        listen: Some("127.0.0.1:8787".parse().unwrap()),
        ..Options::default()
    };
    let out = Cloudflare.emit(ir, &options);
    let f = out
        .files
        .iter()
        .find(|f| f.path.as_str() == name)
        .unwrap_or_else(|| panic!("no {name} in the output"));
    String::from_utf8(f.bytes.clone()).unwrap()
}

/// `node --check` on the Worker (as an ES module): the generated JS parses.
fn node_check(js: &str) {
    let dir = std::env::temp_dir().join(format!("gatefold-cf-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("w{}.mjs", js.len()));
    std::fs::write(&path, js).unwrap();
    let out = Command::new("node")
        .arg("--check")
        .arg(&path)
        .output()
        .expect("node runs (Node.js is a test dependency of this target)");
    assert!(
        out.status.success(),
        "node --check {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&path);
}

const SMALL: &str = r#"
gatefold: 1
gateway: { name: petstore }
upstreams:
  pets: { targets: [{ url: "http://127.0.0.1:9001" }] }
consumers:
  acme: { groups: [partners], credentials: { key: { env: ACME_KEY } } }
apis:
  store:
    base-path: /store
    upstream: pets
    policies:
      - key-auth: { in: header, name: x-api-key }
      - acl: { allow: [partners] }
    routes:
      list: { path: /pets, methods: [GET] }
      one: { path: "/pets/{id}", methods: [GET, DELETE] }
      health: { path: /health, policies: [{ mock: { status: 200, body: ok } }], disable: [key-auth, acl] }
"#;

#[test]
fn small_spec_worker_snapshot() {
    let ir = compile(SMALL);
    let js = file(&ir, WORKER);
    // Only the pieces this spec uses: no CORS, ip-filter or redirect code.
    assert!(js.contains("function authenticate("));
    assert!(!js.contains("function corsFilter("));
    assert!(!js.contains("function ipAllowed("));
    assert!(!js.contains("function redirectResponse("));
    // The secret is a binding name, never a value.
    assert!(js.contains(r#""keys":["ACME_KEY"]"#));
    node_check(&js);
    // The spec-dependent head (data and router), not the fixed runtime.
    let head = &js[..js.find("// ---- core:").unwrap()];
    insta::assert_snapshot!("small_worker_head", head);
    insta::assert_snapshot!("small_wrangler", file(&ir, WRANGLER));
    insta::assert_snapshot!("small_capnp", file(&ir, CAPNP));
}

/// Hostile strings in a spec (quotes, backslashes, `${}`, `</script>`,
/// line and paragraph separators, a closing comment) end up as JS string
/// data: the module still parses, and each string is there as its JSON
/// encoding, never as raw code.
#[test]
fn hostile_spec_strings_stay_data() {
    let hostile = "x\\\"; throw 1; //${globalThis}</script>*/\u{2028}\u{2029}'`";
    let spec = format!(
        r#"
gatefold: 1
upstreams:
  a: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }}
consumers:
  c: {{ credentials: {{ basic: {{ user: {user}, password: {{ env: PW }} }} }} }}
apis:
  main:
    upstream: a
    policies:
      - basic-auth: {{ realm: {realm} }}
      - response-headers: {{ set: {{ x-note: {value} }} }}
    routes:
      m: {{ path: "/m", policies: [{{ mock: {{ status: 200, body: {body} }} }}] }}
      all: {{ path: /* }}
"#,
        user = serde_json::to_string("u\"ser").unwrap(),
        realm = serde_json::to_string("re'alm </script>").unwrap(),
        value = serde_json::to_string("v'`${x}").unwrap(),
        body = serde_json::to_string(hostile).unwrap(),
    );
    let ir = compile(&spec);
    let js = file(&ir, WORKER);
    node_check(&js);
    // The mock body is one JSON string literal in the data.
    let encoded = serde_json::to_string(hostile).unwrap();
    assert!(js.contains(&encoded[1..encoded.len() - 1]), "{js}");
    // Nothing hostile outside string literals: the only `throw` is inside the body.
    assert_eq!(js.matches("throw 1").count(), 1);
    // The realm reaches the challenge as data.
    assert!(
        js.contains(r#""challenge":"Basic realm=\"re'alm </script>\"""#),
        "{js}"
    );
}
