#![allow(dead_code)]

use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{check, Gap, Options, Output, Target};
use gatefold_target_kong::Kong;

pub fn compile(yaml: &str) -> ValidIr {
    let compiled = gatefold_compiler::compile_str("test.yaml", yaml);
    match compiled.ir {
        Some(ir) => ir,
        None => panic!("the test spec does not compile:\n{}", compiled.render()),
    }
}

/// The gaps `check` finds for Kong.
pub fn gaps(ir: &ValidIr) -> Vec<Gap> {
    check(&Kong, ir, &Options::default())
}

/// The output, after asserting that Kong accepts the spec.
pub fn emit(ir: &ValidIr) -> Output {
    let gaps = gaps(ir);
    assert!(
        gaps.iter().all(|g| !g.error),
        "the target refuses the spec: {gaps:?}"
    );
    Kong.emit(ir, &Options::default())
}

/// `kong.yaml` of an output, as text.
pub fn text(out: &Output) -> String {
    let f = out
        .files
        .iter()
        .find(|f| f.path.as_str() == gatefold_target_kong::CONFIG)
        .expect("kong.yaml");
    String::from_utf8(f.bytes.clone()).unwrap()
}

/// A spec in the shape of examples/petstore without what Kong refuses
/// (rate-limit, request-size-limit, retries).
pub const PETSTORE: &str = r#"
gatefold: 1
gateway: { name: petstore, listen: 8080 }
upstreams:
  pets:
    targets:
      - { url: "http://127.0.0.1:9001", weight: 3 }
      - url: http://127.0.0.1:9002
    balance: round-robin
    health: { path: /healthz, interval: 10s, timeout: 2s, unhealthy-after: 3, healthy-after: 2 }
    timeouts: { connect: 2s, read: 10s }
consumers:
  acme:
    groups: [customers]
    credentials: { key: { env: ACME_API_KEY } }
  shelter-staff:
    groups: [customers, staff]
    credentials:
      key: { env: STAFF_API_KEY }
      basic: { user: staff, password: { env: STAFF_PASSWORD } }
policies:
  require-key:
    key-auth: { in: header, name: x-api-key }
  staff-only:
    acl: { allow: [staff] }
  web-app:
    cors:
      origins: [https://app.petstore.example]
      methods: [GET, POST, DELETE]
      headers: [content-type, x-api-key]
      expose: [x-request-id]
      credentials: true
      max-age: 10m
apis:
  pets:
    base-path: /pets
    upstream: pets
    policies:
      - require-key
      - web-app
      - request-headers:
          set: { x-gateway: petstore }
          remove: [x-debug]
      - response-headers:
          set: { cache-control: no-store }
          remove: [x-powered-by]
    routes:
      list:   { path: /, methods: [GET] }
      get:    { path: "/{id}", methods: [GET] }
      delete: { path: "/{id}", methods: [DELETE], policies: [staff-only] }
      files:  { path: "/files/*", methods: [GET] }
  docs:
    hosts: [docs.example.com, "*.docs.example.com"]
    routes:
      home: { path: /, policies: [{ mock: { body: "docs\n" } }] }
"#;
