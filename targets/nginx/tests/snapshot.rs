//! The generated configuration of a small spec, reviewed as a snapshot.

use crate::common;

use common::*;
use gatefold_compiler::target::Options;

const SPEC: &str = r#"
gatefold: 1
gateway: { name: small, listen: 8080 }
upstreams: { app: { targets: [ { url: "http://127.0.0.1:9000" } ], timeouts: { connect: 2s, read: 15s } } }
consumers:
  ci: { groups: [deployers], credentials: { key: { env: CI_KEY } } }
apis:
  shop:
    base-path: /shop
    strip-base-path: true
    upstream: app
    policies:
      - request-headers: { set: { x-from: gatefold } }
    routes:
      list:   { path: /items, methods: [GET] }
      item:   { path: "/items/{id}", methods: [GET, PUT] }
      deploy:
        path: /deploy
        methods: [POST]
        policies: [ { key-auth: {} }, { acl: { allow: [deployers] } } ]
      ping:   { path: /ping, policies: [ { mock: { json: { ok: true } } } ] }
"#;

#[test]
fn small_spec_config() {
    let out = emit(&compile(SPEC), &Options::default());
    check_output(&out);
    insta::assert_snapshot!("nginx_conf", conf(&out));
    let lua = out
        .files
        .iter()
        .find(|f| f.path.as_str() == "lua/gatefold/config.lua")
        .unwrap();
    insta::assert_snapshot!("config_lua", String::from_utf8(lua.bytes.clone()).unwrap());
}
