//! What the nginx target writes: runnable files that nginx and LuaJIT
//! accept, deterministic, with every user string kept as data.

use crate::common;

use common::*;
use gatefold_compiler::target::{check, Options};
use gatefold_target_nginx::Nginx as NginxTarget;

/// The examples compile to configurations `nginx -t` and `luajit -bl` accept.
#[test]
fn examples_pass_nginx_t_and_luajit() {
    for spec in ["examples/quickstart", "examples/petstore"] {
        let ir = compile_path(spec);
        let out = emit(&ir, &Options::default());
        check_output(&out);
    }
}

/// Same input, same bytes.
#[test]
fn output_is_deterministic() {
    let ir = compile_path("examples/petstore");
    let a = emit(&ir, &Options::default());
    let b = emit(&ir, &Options::default());
    for (x, y) in a.files.iter().zip(&b.files) {
        assert_eq!(x.bytes, y.bytes, "{}", x.path);
    }
}

/// Every spec loads the Lua module (path normalization, and the 404/405
/// of a request no route takes); a spec without authentication, acl or
/// rate-limit runs no Lua access phase.
#[test]
fn lua_access_phase_only_when_needed() {
    let ir = compile_path("examples/quickstart");
    let out = emit(&ir, &Options::default());
    let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "conf/nginx.conf",
            "lua/gatefold/path.lua",
            "lua/gatefold/miss.lua"
        ]
    );
    let text = conf(&out);
    assert!(text.contains("load_module \"/usr/lib/nginx/modules/ngx_http_lua_module.so\";"));
    assert!(!text.contains("access_by_lua") && !text.contains("lua_shared_dict"));
    let ir = compile_path("examples/petstore");
    let out = emit(&ir, &Options::default());
    let text = conf(&out);
    assert!(text.contains("load_module \"/usr/lib/nginx/modules/ngx_http_lua_module.so\";"));
    assert!(out
        .files
        .iter()
        .any(|f| f.path.as_str() == "lua/gatefold/access.lua"));
}

/// Secrets stay environment references: `env` lines and names, never values.
#[test]
fn secrets_are_env_names() {
    let ir = compile_path("examples/petstore");
    let out = emit(&ir, &Options::default());
    let text = conf(&out);
    for name in [
        "ACME_API_KEY",
        "GLOBEX_API_KEY",
        "GLOBEX_API_KEY_NEXT",
        "STAFF_API_KEY",
    ] {
        assert!(text.contains(&format!("env \"{name}\";")), "{name}");
    }
    assert!(out.manifest.secrets.len() == 4);
}

/// The http-only mode writes only the content of an `http {}` block.
#[test]
fn http_only_mode_is_the_http_block() {
    let ir = compile_path("examples/petstore");
    let out = emit_http_only(&ir);
    let text = conf(&out);
    assert_eq!(out.files[0].path.as_str(), "conf/http.conf");
    assert!(!text.contains("daemon off;"));
    assert!(!text.contains("\nhttp {"));
    // It runs when included into an http block.
    let dir = tempfile::tempdir().unwrap();
    write(&out, dir.path());
    let main = format!(
        "daemon off;\npid logs/nginx.pid;\nerror_log logs/error.log;\n{}\nevents {{}}\nhttp {{\n    include http.conf;\n}}\n",
        gatefold_target_nginx::LUA_MODULES.iter().map(|m| format!("load_module {m};\n")).collect::<String>()
    );
    gatefold_runtime::Nginx::locate()
        .unwrap()
        .check(dir.path(), &main)
        .unwrap();
}

/// `jwt` compiles (Lua and libcrypto): its secret is an `env` line and a
/// variable name in config.lua, never a value; a public key from a file is
/// compiled in as PEM (public).
#[test]
fn jwt_compiles_with_secrets_as_env_names() {
    let ir = compile(
        r#"
gatefold: 1
gateway: { name: g, listen: 8080 }
upstreams: { u: { targets: [ { url: "http://127.0.0.1:9000" } ] } }
apis:
  a:
    upstream: u
    policies: [ { jwt: { algorithms: [HS256], secret: { env: JWT_SECRET }, claims-to-headers: { sub: x-user } } } ]
    routes: { r: { path: / } }
  b:
    base-path: /b
    upstream: u
    policies: [ { jwt: { algorithms: [ES256], public-key: { env: ES_KEY } } } ]
    routes: { r: { path: / } }
"#,
    );
    let gaps = check(&NginxTarget::default(), &ir, &Options::default());
    assert!(gaps.iter().all(|g| !g.error), "{gaps:?}");
    let out = emit(&ir, &Options::default());
    check_output(&out);
    let text = conf(&out);
    assert!(text.contains("env \"JWT_SECRET\";") && text.contains("env \"ES_KEY\";"));
    let lua = file_text(&out, "lua/gatefold/config.lua");
    assert!(lua.contains("secret = \"JWT_SECRET\""), "{lua}");
    assert!(lua.contains("pem_env = \"ES_KEY\""), "{lua}");
    assert!(out
        .files
        .iter()
        .any(|f| f.path.as_str() == "lua/gatefold/jwt.lua"));
}

fn file_text(out: &gatefold_compiler::target::Output, path: &str) -> String {
    String::from_utf8(
        out.files
            .iter()
            .find(|f| f.path.as_str() == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .bytes
            .clone(),
    )
    .unwrap()
}

const HOSTILE: &str = r#"x"; } location / { return 200 "pwned"; } #$host\"#;

/// Hostile text in every user-controlled field stays one token: the config
/// passes `nginx -t` and still has exactly the blocks gatefold wrote.
#[test]
fn hostile_strings_stay_data() {
    let h = HOSTILE.replace('\\', "\\\\").replace('"', "\\\"");
    let spec = format!(
        r#"
gatefold: 1
gateway: {{ name: g, listen: 8080 }}
upstreams: {{ u: {{ targets: [ {{ url: "http://127.0.0.1:9000" }} ] }} }}
consumers:
  alice: {{ groups: [g1], credentials: {{ key: {{ env: ALICE_KEY }}, basic: {{ user: "{h}", password: {{ env: ALICE_PW }} }} }} }}
apis:
  a:
    upstream: u
    routes:
      m:
        path: /mock
        policies:
          - mock: {{ status: 200, headers: {{ x-evil: "{h}" }}, body: "{h}" }}
          - response-headers: {{ set: {{ x-r: "{h}" }}, add: {{ x-a: "{h}" }} }}
      r:
        path: "/go/{{id}}"
        policies: [ {{ redirect: {{ to: "https://example.com/a$b/{{id}}?q=$host" }} }} ]
  b:
    upstream: u
    hosts: [ "evil.example.com", "*.x.example" ]
    routes:
      p:
        path: "/p/a$b"
        policies:
          - request-headers: {{ set: {{ x-h: "{h}" }}, add: {{ x-add: "{h}" }} }}
          - basic-auth: {{ realm: "pets" }}
          - key-auth: {{ in: query, name: "api-key" }}
  c:
    upstream: u
    routes:
      c:
        path: /c
        policies: [ {{ cors: {{ origins: ["https://a.example"] }} }} ]
      cond:
        path: /c
        match: {{ headers: {{ x-h: "{h}" }}, query: {{ "{h}": "{h}" }} }}
  d:
    base-path: /d
    upstream: u
    policies:
      - jwt: {{ algorithms: [HS256], secret: {{ env: JWT_SECRET }}, issuer: "{h}", audiences: ["{h}"], consumer-claim: "{h}", claims-to-headers: {{ "{h}": x-claim }} }}
    routes: {{ r: {{ path: / }} }}
"#
    );
    let ir = compile(&spec);
    let out = emit(&ir, &Options::default());
    check_output(&out);
    let text = conf(&out);
    // Outside quoted tokens (as nginx reads them) the hostile text is gone:
    // the `location /` are gatefold's two (the routes' entry and the
    // version server's 404) and there is no `pwned`.
    let bare = outside_quotes(&text);
    assert_eq!(bare.matches("location /").count(), 2, "{bare}");
    assert!(!bare.contains("pwned"), "{bare}");
    let lua = String::from_utf8(
        out.files
            .iter()
            .find(|f| f.path.as_str().ends_with("config.lua"))
            .unwrap()
            .bytes
            .clone(),
    )
    .unwrap();
    assert!(lua.contains("\\\"pwned\\\""), "{lua}");
    let conditions = file_text(&out, "lua/gatefold/conditions.lua");
    assert!(conditions.contains("\\\"pwned\\\""), "{conditions}");
}

/// The config with every double-quoted token (nginx's `\\` escapes) and
/// comment removed.
fn outside_quotes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, _) => {}
            (false, '"') => quoted = true,
            (false, '#') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            (false, c) => out.push(c),
        }
    }
    out
}

/// kitchen-sink as written compiles for nginx: nothing is refused (its
/// `native` nginx entry is in the checked subset). It passes `nginx -t`
/// and `luajit -bl` (the scripts' Lua included), and serves, its
/// tenant-routing script too.
#[test]
fn kitchen_sink_compiles_and_serves() {
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kitchen-sink");
    let ir = compile_path("examples/kitchen-sink");
    let gaps = check(&NginxTarget::default(), &ir, &Options::default());
    let refused: Vec<_> = gaps.iter().filter(|g| g.error).collect();
    assert!(refused.is_empty(), "{refused:?}");
    let out = emit(&ir, &Options::default());
    assert_eq!(
        conf(&out).matches("proxy_buffering off;").count(),
        1,
        "the export route's native directive, once"
    );

    let text = std::fs::read_to_string(examples.join("gatefold.yaml")).unwrap();
    // To serve it here: `reports` authenticates by key instead of jwt (the
    // test signs no tokens; its acl needs someone authenticated).
    let without: String = text
        .lines()
        .filter(|l| {
            let t = l.trim();
            !(t == "- service-token" && l.starts_with("    - "))
        })
        .map(|l| {
            // The reports api admits admins, so a key reaches its script.
            l.replace("acl: { allow: [reporting] }", "acl: { allow: [admins] }")
                .replace("- service-token", "- api-key")
                + "\n"
        })
        .collect();
    // Its upstream keeps its name, `reports.internal.example`, which
    // resolves nowhere (RFC 2606): nginx resolves it per request.
    assert!(without.contains("https://reports.internal.example:8443"));
    for gone in ["- service-token", "acl: { allow: [reporting] }"] {
        assert!(
            text.contains(gone) && !without.contains(gone),
            "kitchen-sink changed: {gone}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    std::fs::copy(
        examples.join("keys/jwt-rs256.pub"),
        dir.path().join("keys/jwt-rs256.pub"),
    )
    .unwrap();
    std::fs::write(dir.path().join("gatefold.yaml"), without).unwrap();
    // The language 1.1 file as is: its redirect parts and cors wildcards
    // are carried out (its mirror is left out with a warning).
    std::fs::copy(
        examples.join("language-1-1.yaml"),
        dir.path().join("language-1-1.yaml"),
    )
    .unwrap();
    let compiled = gatefold_compiler::compile_path(dir.path());
    let Some(ir) = compiled.ir.as_ref() else {
        panic!("{}", compiled.render());
    };
    let output = emit(ir, &Options::default());
    assert!(
        output
            .files
            .iter()
            .any(|f| f.path.as_str().ends_with("promised.lua")),
        "the scripted route's Lua is emitted"
    );
    check_output(&output);
    let ng = run(ir, &[("ALICE_API_KEY", "alice-key-for-tests")]);
    // Through the tenant-routing script: no tenant, its own 400.
    let r = get(
        ng.addr,
        "/reports/daily",
        &[
            ("host", "reports.example.com"),
            ("x-api-key", "alice-key-for-tests"),
        ],
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"error":"tenant required"}"#),
        "{r:?}"
    );
    // With a tenant, on to the upstream whose name does not resolve: the
    // spec's 502, through the response script (phase 13).
    let r = get(
        ng.addr,
        "/reports/daily?tenant=Acme",
        &[
            ("host", "reports.example.com"),
            ("x-api-key", "alice-key-for-tests"),
        ],
    );
    assert_eq!(
        (r.status, r.body.as_str(), r.header("x-tenant")),
        (502, r#"{"error":"bad gateway"}"#, Some("acme")),
        "{r:?}"
    );
    let r = get(ng.addr, "/healthz", &[]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, r#"{"status":"ok"}"#),
        "{r:?}"
    );
    let r = get(ng.addr, "/catalog/teapot", &[("host", "api.example.com")]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, r#"{"error":"unauthorized"}"#),
        "{r:?}"
    );
    let r = get(
        ng.addr,
        "/secure/a?b=1",
        &[("host", "old.example.com:8080")],
    );
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("https://old.example.com/secure/a?b=1")),
        "{r:?}"
    );
}
