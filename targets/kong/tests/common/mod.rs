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

/// The config of the `name` plugin (`pre-function`, `post-function`) that
/// Kong runs on `route`: the route's own, else the global one.
pub fn function_config(yaml: &str, name: &str, route: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    let plugins = doc["plugins"].as_array().expect("plugins");
    let of = |p: &&serde_json::Value| p["name"] == name;
    plugins
        .iter()
        .filter(of)
        .find(|p| p["route"] == route)
        .or_else(|| plugins.iter().filter(of).find(|p| p.get("route").is_none()))
        .unwrap_or_else(|| panic!("no {name} for {route}:\n{yaml}"))["config"]
        .clone()
}

/// A Lua expression: the list of functions `S.load` makes of `config`'s
/// chunks for `phase` (empty when it has none).
pub fn lua_phase(config: &serde_json::Value, phase: &str) -> String {
    let chunks: Vec<String> = config[phase]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "S.load({})",
                gatefold_lua_script::lua::string(c.as_str().unwrap())
            )
        })
        .collect();
    format!("{{ {} }}", chunks.join(", "))
}

/// A Lua expression: the pre-function and post-function plugins of
/// `yaml` for `S.configure`, their chunks loaded (`S.load`) per phase.
pub fn lua_plugins(yaml: &str) -> String {
    let doc: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    let opt = |v: &serde_json::Value| {
        v.as_str()
            .map_or("nil".to_string(), gatefold_lua_script::lua::string)
    };
    let plugins: Vec<String> = doc["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "pre-function" || p["name"] == "post-function")
        .map(|p| {
            let phases: Vec<String> = ["rewrite", "access", "header_filter", "body_filter"]
                .iter()
                .map(|ph| format!("{ph} = {}", lua_phase(&p["config"], ph)))
                .collect();
            format!(
                "{{ name = {}, route = {}, service = {}, {} }}",
                opt(&p["name"]),
                opt(&p["route"]),
                opt(&p["service"]),
                phases.join(", ")
            )
        })
        .collect();
    format!("{{ {} }}", plugins.join(",\n"))
}

/// The `luajit` binary, found as the launcher finds it.
pub fn luajit() -> std::path::PathBuf {
    gatefold_runtime::lua::Luajit::locate()
        .unwrap_or_else(|e| panic!("{e}"))
        .binary()
        .to_path_buf()
}

/// The Kong PDK stand-in (tests/lua/kong_pdk_standin.lua).
pub const STANDIN: &str = include_str!("../lua/kong_pdk_standin.lua");

/// Runs `body` under luajit after `local S = <the stand-in>`; its stdout.
pub fn run_lua(body: &str) -> String {
    use std::io::Write;
    let src = format!("local S = (function()\n{STANDIN}\nend)()\n{body}");
    let mut child = std::process::Command::new(luajit())
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("luajit runs (scripts/install-runtimes.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(src.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "luajit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every chunk of every pre-function / post-function in `yaml` passes
/// `luajit -bl` (the bytecode listing: it compiles).
pub fn assert_chunks_compile(yaml: &str) {
    let doc: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    let mut n = 0;
    for p in doc["plugins"].as_array().into_iter().flatten() {
        if p["name"] != "pre-function" && p["name"] != "post-function" {
            continue;
        }
        for (phase, list) in p["config"].as_object().unwrap() {
            for (i, c) in list.as_array().unwrap().iter().enumerate() {
                // Unique in the process: tests run on parallel threads.
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!(
                    "gatefold-kong-{}-{unique}-{phase}-{i}.lua",
                    std::process::id()
                ));
                n += 1;
                std::fs::write(&path, c.as_str().unwrap()).unwrap();
                let out = std::process::Command::new(luajit())
                    .arg("-bl")
                    .arg(&path)
                    .output()
                    .expect("luajit runs");
                let _ = std::fs::remove_file(&path);
                assert!(
                    out.status.success(),
                    "{} {phase}[{i}]: {}",
                    p["name"],
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    assert!(n > 0, "no chunks in:\n{yaml}");
}

/// A folder for a spec with `gateway.tls`: `certs/NAME.pem` (and
/// `certs/NAME.key`) for each `(NAME, SAN names)`, self-signed and made
/// now (no key is committed), and `gatefold.yaml` holding `spec`. Returns
/// the IR and each certificate's PEM chain, in the order given.
pub fn compile_with_certs(
    test: &str,
    certs: &[(&str, &[&str])],
    spec: &str,
) -> (ValidIr, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("gatefold-kong-tls-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let mut chains = Vec::new();
    for (name, sans) in certs {
        let sans: Vec<String> = sans.iter().map(|n| n.to_string()).collect();
        let c = rcgen::generate_simple_self_signed(sans).unwrap();
        let pem = c.cert.pem();
        std::fs::write(dir.join(format!("certs/{name}.pem")), &pem).unwrap();
        std::fs::write(
            dir.join(format!("certs/{name}.key")),
            c.signing_key.serialize_pem(),
        )
        .unwrap();
        chains.push(pem);
    }
    let path = dir.join("gatefold.yaml");
    std::fs::write(&path, spec).unwrap();
    let compiled = gatefold_compiler::compile_path(&path);
    let _ = std::fs::remove_dir_all(&dir);
    match compiled.ir {
        Some(ir) => (ir, chains),
        None => panic!("the test spec does not compile:\n{}", compiled.render()),
    }
}
