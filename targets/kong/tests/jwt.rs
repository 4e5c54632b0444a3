//! `jwt` on Kong: the pre-function's phase-4 chunk (the shared jwt core,
//! signatures by lua-resty-openssl) run under luajit against the Kong PDK
//! stand-in (tests/lua/kong_pdk_standin.lua, not Kong) with lua-resty-openssl
//! stood in by libcrypto through the FFI (tests/lua/resty_openssl_standin.lua,
//! not lua-resty-openssl), with real HS256, RS256 and ES256 tokens (the
//! reference gateway's test keys): valid, expired, wrong signature, issuer
//! and audience, claims copied to headers over the client's copies, the
//! consumer a claim names, and phase 1 before phase 4; and a route with a
//! choice of key-auth, basic-auth and jwt, whose phase 4 is the same Lua
//! (Kong's own plugins would require all of them).

use crate::common;

use common::*;

const SPEC: &str = r#"
gatefold: 1
gateway:
  name: g
  listen: 8080
  policies: [{ ip-filter: { deny: [10.9.9.9] } }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
consumers: { acme: { groups: [gold] } }
apis:
  a:
    upstream: u
    routes:
      hs:
        path: /hs
        policies:
          - jwt:
              algorithms: [HS256]
              secret: { env: JWT_SECRET }
              issuer: https://issuer.example
              audiences: [orders]
              claims-to-headers: { sub: x-user-id, tenant: x-tenant }
              leeway: 30s
          - cors: { origins: [https://app.example] }
      rs:
        path: /rs
        policies: [{ jwt: { algorithms: [RS256], public-key: { env: RS_PEM } } }]
      es:
        path: /es
        policies: [{ jwt: { algorithms: [ES256], public-key: { env: ES_PEM } } }]
"#;

fn key(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../reference/tests/keys")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const OPENSSL: &str = include_str!("lua/resty_openssl_standin.lua");

/// Lua running requests through route `route`'s pre-function (where phase
/// 4 is) and post-function; `go(req)` prints the status, the consumer, the
/// authenticated groups and the request's `x-*` headers as the upstream
/// would get them. `allow` is `untrusted_lua_sandbox_requires`.
fn run(route: &str, allow: bool, calls: &str) -> String {
    let yaml = text(&emit(&compile(SPEC)));
    let allow = if allow {
        r#"S.requires = { ["resty.openssl.hmac"] = true, ["resty.openssl.pkey"] = true }"#
    } else {
        ""
    };
    run_lua(&format!(
        r#"
local O = (function() {OPENSSL} end)()
S.modules = {{ ["resty.openssl.hmac"] = O.hmac, ["resty.openssl.pkey"] = O.pkey }}
{allow}
S.env = {{ JWT_SECRET = "s3cret", RS_PEM = {rs_pub}, ES_PEM = {es_pub} }}
S.consumers = {{ acme = true }}
S.clock = 1000000
local RS_KEY, ES_KEY = {rs_priv}, {es_priv}
local function token(alg, header, claims, key)
  local input = O.b64url(header) .. "." .. O.b64url(claims)
  local sig
  if alg == "HS256" then sig = O.hs256(key, input) else sig = O.sign(alg, key, input) end
  return "Bearer " .. input .. "." .. O.b64url(sig)
end
S.configure({plugins})
local function go(req)
  local st = S.request(req)
  S.run("rewrite")
  local exited = S.run("access", {route})
  local hs = {{}}
  for _, kv in ipairs(st.headers) do
    if kv[1]:sub(1, 2) == "x-" then hs[#hs + 1] = kv[1] .. "=" .. kv[2] end
  end
  local groups = S.kong.ctx.shared.authenticated_groups
  print(tostring(st.status or 200) .. " consumer=" .. tostring(st.consumer)
    .. " groups=" .. (groups and "{{}}" or "nil") .. " " .. table.concat(hs, " ")
    .. (exited and (" " .. st.body) or "") .. " logs=" .. table.concat(st.logs, "|"))
end
{calls}
"#,
        plugins = lua_plugins(&yaml),
        route = gatefold_lua_script::lua::string(route),
        rs_pub = gatefold_lua_script::lua::string(&key("rs256-public.pem")),
        es_pub = gatefold_lua_script::lua::string(&key("es256-public.pem")),
        rs_priv = gatefold_lua_script::lua::string(&key("rs256-private.pem")),
        es_priv = gatefold_lua_script::lua::string(&key("es256-private.pem")),
    ))
}

const HS: &str = r#"'{"alg":"HS256","typ":"JWT"}'"#;

fn hs(claims: &str, secret: &str) -> String {
    format!(
        r#"token("HS256", {HS}, {}, {secret:?})"#,
        gatefold_lua_script::lua::string(claims)
    )
}

fn call(path: &str, ip: &str, auth: Option<&str>, extra: &str) -> String {
    let auth = auth.map_or(String::new(), |a| format!("{{ \"authorization\", {a} }}, "));
    format!(
        "go({{ method = \"GET\", path = {path:?}, ip = {ip:?}, headers = {{ {auth}{extra} }} }})"
    )
}

#[test]
fn hs256_tokens_are_decided_as_the_spec_says() {
    let good = r#"{"iss":"https://issuer.example","aud":["x","orders"],"sub":"acme","tenant":{"id":7},"exp":1000010}"#;
    let calls = [
        // Valid: the consumer `sub` names; claims over the client's copies.
        call(
            "/hs",
            "10.0.0.1",
            Some(&hs(good, "s3cret")),
            r#"{ "x-user-id", "spoofed" }, { "x-tenant", "t" }, { "x-other", "kept" }"#,
        ),
        // Expired beyond the 30 s leeway; within it.
        call("/hs", "10.0.0.1", Some(&hs(r#"{"iss":"https://issuer.example","aud":"orders","exp":999969}"#, "s3cret")), ""),
        call("/hs", "10.0.0.1", Some(&hs(r#"{"iss":"https://issuer.example","aud":"orders","exp":999971}"#, "s3cret")), ""),
        // Another secret's signature.
        call("/hs", "10.0.0.1", Some(&hs(good, "other")), ""),
        // Wrong issuer; no audience of ours.
        call("/hs", "10.0.0.1", Some(&hs(r#"{"iss":"https://evil.example","aud":"orders"}"#, "s3cret")), ""),
        call("/hs", "10.0.0.1", Some(&hs(r#"{"iss":"https://issuer.example","aud":"billing"}"#, "s3cret")), ""),
        // A subject naming no consumer: admitted with no consumer (and no
        // groups, so acl `allow` refuses and `deny` admits); the client's
        // x-tenant is removed though the token has no `tenant` to copy.
        call(
            "/hs",
            "10.0.0.1",
            Some(&hs(r#"{"iss":"https://issuer.example","aud":"orders","sub":"nobody"}"#, "s3cret")),
            r#"{ "x-tenant", "t" }"#,
        ),
        // `alg: none` and no token at all.
        r#"go({ method = "GET", path = "/hs", ip = "10.0.0.1", headers = { { "authorization", "Bearer " .. O.b64url('{"alg":"none"}') .. "." .. O.b64url('{}') .. "." } } })"#.to_string(),
        call("/hs", "10.0.0.1", None, ""),
        // Phase 1 first: a denied address without a token is 403, not 401.
        call("/hs", "10.9.9.9", None, ""),
        // A CORS preflight is cors's to answer (phase 2): phase 4 lets it by.
        r#"go({ method = "OPTIONS", path = "/hs", ip = "10.0.0.1", headers = { { "origin", "https://app.example" }, { "access-control-request-method", "GET" } } })"#.to_string(),
    ];
    let out = run("a.hs", true, &calls.join("\n"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 11, "{out}");
    assert_eq!(
        lines[0],
        r#"200 consumer=acme groups=nil x-other=kept x-user-id=acme x-tenant={"id":7} logs="#,
        "{out}"
    );
    let unauthorized = r#"401 consumer=nil groups=nil  {"error":"unauthorized"} logs="#;
    assert_eq!(lines[1], unauthorized, "expired: {out}");
    assert!(
        lines[2].starts_with("200 consumer=nil groups={}"),
        "within the leeway: {out}"
    );
    for (i, what) in [
        (3, "signature"),
        (4, "issuer"),
        (5, "audience"),
        (7, "alg none"),
        (8, "no token"),
    ] {
        assert_eq!(lines[i], unauthorized, "{what}: {out}");
    }
    assert_eq!(
        lines[6], "200 consumer=nil groups={} x-user-id=nobody logs=",
        "{out}"
    );
    assert!(
        lines[9].starts_with(r#"403 consumer=nil groups=nil  {"error":"forbidden"}"#),
        "{out}"
    );
    assert!(
        lines[10].starts_with("200 consumer=nil groups=nil"),
        "{out}"
    );
}

#[test]
fn rs256_and_es256_signatures_are_checked_with_the_key_from_the_vault() {
    let claims = r#"{"sub":"acme"}"#;
    let tok = |alg: &str, key: &str| {
        format!(
            r#"token("{alg}", '{{"alg":"{alg}"}}', {}, {key})"#,
            gatefold_lua_script::lua::string(claims)
        )
    };
    let tampered = |t: String| format!("({t}):sub(1, -3) .. \"AA\"");
    let rs = [
        call("/rs", "10.0.0.1", Some(&tok("RS256", "RS_KEY")), ""),
        call(
            "/rs",
            "10.0.0.1",
            Some(&tampered(tok("RS256", "RS_KEY"))),
            "",
        ),
        // An ES256 token on the RS256 route: the wrong `alg`.
        call("/rs", "10.0.0.1", Some(&tok("ES256", "ES_KEY")), ""),
    ];
    let out = run("a.rs", true, &rs.join("\n"));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("200 consumer=acme"), "{out}");
    assert!(lines[1].starts_with("401"), "{out}");
    assert!(lines[2].starts_with("401"), "{out}");
    let es = [
        call("/es", "10.0.0.1", Some(&tok("ES256", "ES_KEY")), ""),
        call("/es", "10.0.0.1", Some(&tampered(tok("ES256", "ES_KEY"))), ""),
        // A signature that is not 64 bytes (DER instead of r||s).
        call(
            "/es",
            "10.0.0.1",
            Some(&format!(
                "\"Bearer \" .. O.b64url('{{\"alg\":\"ES256\"}}') .. \".\" .. O.b64url({}) .. \".\" .. O.b64url(string.rep(\"A\", 70))",
                gatefold_lua_script::lua::string(claims)
            )),
            "",
        ),
    ];
    let out = run("a.es", true, &es.join("\n"));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("200 consumer=acme"), "{out}");
    assert!(lines[1].starts_with("401"), "{out}");
    assert!(lines[2].starts_with("401"), "{out}");
}

#[test]
fn without_the_sandbox_allowing_lua_resty_openssl_every_token_is_refused_and_logged() {
    let good = r#"{"iss":"https://issuer.example","aud":"orders","sub":"acme"}"#;
    let out = run(
        "a.hs",
        false,
        &call("/hs", "10.0.0.1", Some(&hs(good, "s3cret")), ""),
    );
    assert!(out.starts_with("401"), "{out}");
    assert!(
        out.contains("needs resty.openssl.hmac in kong.conf's untrusted_lua_sandbox_requires"),
        "{out}"
    );
}

#[test]
fn the_core_is_in_the_config_once_and_without_it_every_token_is_refused() {
    let yaml = text(&emit(&compile(SPEC)));
    // Three jwt routes (each a pre-function of its own), one core: its
    // first line.
    let first = gatefold_lua_script::JWT.lines().next().unwrap();
    assert_eq!(yaml.matches(first).count(), 1, "{yaml}");
    // As if the global pre-function were gone: no rewrite phase.
    let good = r#"{"iss":"https://issuer.example","aud":"orders","sub":"acme"}"#;
    let out = run(
        "a.hs",
        true,
        &format!(
            r#"local st = S.request({{ method = "GET", path = "/hs", ip = "10.0.0.1", headers = {{ {{ "authorization", {} }} }} }})
assert(S.run("access", "a.hs"))
print(st.status .. " " .. table.concat(st.logs, "|"))"#,
            hs(good, "s3cret")
        ),
    );
    assert!(out.starts_with("401 "), "{out}");
    assert!(
        out.contains("err: gatefold: jwt route/a.hs/jwt: no jwt core in kong.ctx.shared"),
        "{out}"
    );
}

#[test]
fn the_config_names_the_sandbox_requirement_and_its_lua_compiles() {
    let yaml = text(&emit(&compile(SPEC)));
    assert!(
        yaml.contains(
            "# and untrusted_lua_sandbox_requires = resty.openssl.hmac,resty.openssl.pkey\n"
        ),
        "{yaml}"
    );
    // The secret is a vault reference, never its value.
    assert!(yaml.contains("{vault://env/JWT_SECRET}"), "{yaml}");
    assert_chunks_compile(&yaml);
}

#[test]
fn a_public_key_file_is_compiled_in_and_verifies_es256() {
    // The spec's folder holds the key, as the spec requires.
    let dir = std::env::temp_dir().join(format!("gatefold-kong-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("es.pub"), key("es256-public.pem")).unwrap();
    std::fs::write(
        dir.join("gatefold.yaml"),
        r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
apis:
  a:
    upstream: u
    routes:
      es: { path: /es, policies: [{ jwt: { algorithms: [ES256], public-key: { file: es.pub } } }] }
"#,
    )
    .unwrap();
    let compiled = gatefold_compiler::compile_path(&dir.join("gatefold.yaml"));
    let _ = std::fs::remove_dir_all(&dir);
    let ir = compiled.ir.expect("the spec compiles");
    let yaml = text(&emit(&ir));
    let out = run_lua(&format!(
        r#"
local O = (function() {OPENSSL} end)()
S.modules = {{ ["resty.openssl.pkey"] = O.pkey }}
S.requires = {{ ["resty.openssl.pkey"] = true }}
S.configure({plugins})
local input = O.b64url('{{"alg":"ES256"}}') .. "." .. O.b64url('{{"sub":"x"}}')
for _, t in ipairs({{ input .. "." .. O.b64url(O.sign("ES256", {es_priv}, input)), input .. ".AAAA" }}) do
  local st = S.request({{ method = "GET", path = "/es", ip = "10.0.0.1", headers = {{ {{ "authorization", "Bearer " .. t }} }} }})
  S.run("rewrite")
  S.run("access", "a.es")
  print(tostring(st.status or 200))
end
"#,
        plugins = lua_plugins(&yaml),
        es_priv = gatefold_lua_script::lua::string(&key("es256-private.pem")),
    ));
    // No vault involved (S.env is empty): the PEM is in the chunk.
    assert_eq!(out, "200\n401\n", "{out}");
    assert!(yaml.contains("BEGIN PUBLIC KEY"), "{yaml}");
}

#[test]
fn the_core_under_the_sandbox_shims_reads_as_the_core_with_luajits_own_bit() {
    // The chunk's shims (metatables, `bit`, `string.rep` in plain Lua) and
    // the core, run in the sandbox's globals, against the core as NGINX
    // runs it, over base64url and JSON inputs that reach every shimmed
    // function (multi-byte UTF-8 escapes, bad final bits, floats).
    let yaml = text(&emit(&compile(SPEC)));
    // The global pre-function's rewrite chunk holding the core.
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let chunk = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "pre-function" && p.get("route").is_none())
        .flat_map(|p| {
            p["config"]["rewrite"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c.as_str().map(str::to_string))
        .find(|c| c.starts_with("-- gatefold: the jwt core"))
        .expect("the jwt core in the global pre-function's rewrite");
    let sandboxed = format!(
        "{}return core\n",
        &chunk[..chunk.find("return function()").unwrap()]
    );
    let out = run_lua(&format!(
        r#"
local shimmed = S.run_sandboxed({sandboxed})
local plain = (function() {core} end)()
local inputs = {{ "", "QQ", "QR", "QUI", "QUJD", "_-8", "4pyTIMOgIGxhIG1vZGU", "8J-YgA", "a", "====", "ab=" }}
local json = {{ '{{"a":"\\u00e9\\u4e2d\\ud83d\\ude00"}}', '[1.5e300,-0,2.5e3,"x"]', '{{"n":18446744073709551616}}', '"\\u0000"' }}
local differ = 0
for _, s in ipairs(inputs) do
  if shimmed.b64url(s) ~= plain.b64url(s) then differ = differ + 1; print("b64url", s) end
end
for _, s in ipairs(json) do
  local a, b = shimmed.decode(s), plain.decode(s)
  local ea, eb = a and shimmed.encode(a), b and plain.encode(b)
  if ea ~= eb then differ = differ + 1; print("json", s, ea, eb) end
  if not ea then differ = differ + 1; print("unread", s) end
end
print("differ=" .. differ)
"#,
        sandboxed = gatefold_lua_script::lua::string(&sandboxed),
        core = gatefold_lua_script::JWT,
    ));
    assert_eq!(out, "differ=0\n", "{out}");
}

const CHOICE: &str = r#"
gatefold: 1
gateway:
  name: g
  listen: 8080
  policies: [{ ip-filter: { deny: [10.9.9.9] } }]
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
consumers:
  acme: { credentials: { key: { env: ACME_KEY } } }
  staff: { groups: [admins], credentials: { basic: { user: carol, password: { env: CAROL_PASSWORD } } } }
apis:
  a:
    upstream: u
    policies:
      - key-auth: { in: header, name: x-api-key }
      - basic-auth: { realm: kitchen staff }
      - jwt: { algorithms: [HS256], secret: { env: JWT_SECRET }, claims-to-headers: { sub: x-sub } }
    routes:
      any: { path: /any }
"#;

#[test]
fn a_choice_of_methods_admits_on_any_one_in_order_and_removes_the_credentials() {
    let yaml = text(&emit(&compile(CHOICE)));
    assert_chunks_compile(&yaml);
    // Kong's own key-auth and basic-auth would each be required: not used.
    let doc: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    for p in doc["plugins"].as_array().unwrap() {
        assert!(
            p["name"] != "key-auth" && p["name"] != "basic-auth",
            "{yaml}"
        );
    }
    let b64 = |s: &str| {
        use std::fmt::Write;
        // Standard base64 with padding, as clients send basic credentials.
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    let _ = write!(out, "=");
                }
            }
        }
        out
    };
    let out = run_lua(&format!(
        r#"
local O = (function() {OPENSSL} end)()
S.modules = {{ ["resty.openssl.hmac"] = O.hmac }}
S.requires = {{ ["resty.openssl.hmac"] = true }}
S.env = {{ ACME_KEY = "k-acme", CAROL_PASSWORD = "pw", JWT_SECRET = "s3cret" }}
S.consumers = {{ acme = true, staff = true }}
S.configure({plugins})
local input = O.b64url('{{"alg":"HS256"}}') .. "." .. O.b64url('{{"sub":"staff"}}')
local TOKEN = "Bearer " .. input .. "." .. O.b64url(O.hs256("s3cret", input))
local function go(ip, headers)
  local st = S.request({{ method = "GET", path = "/any", ip = ip, headers = headers }})
  S.run("rewrite")
  S.run("access", "a.any")
  local hs = {{}}
  for _, kv in ipairs(st.headers) do hs[#hs + 1] = kv[1] .. "=" .. kv[2] end
  local www = ""
  for _, kv in ipairs(st.res_headers) do if kv[1] == "www-authenticate" then www = " " .. kv[2] end end
  print(tostring(st.status or 200) .. " consumer=" .. tostring(st.consumer) .. www .. " [" .. table.concat(hs, " ") .. "]")
end
go("10.0.0.1", {{ {{ "x-api-key", "k-acme" }}, {{ "authorization", TOKEN }} }})
go("10.0.0.1", {{ {{ "x-api-key", "wrong" }}, {{ "authorization", "Basic {carol}" }} }})
go("10.0.0.1", {{ {{ "authorization", "Basic {carol_bad}" }} }})
go("10.0.0.1", {{ {{ "authorization", TOKEN }}, {{ "x-sub", "spoofed" }} }})
go("10.0.0.1", {{}})
go("10.9.9.9", {{}})
"#,
        plugins = lua_plugins(&yaml),
        carol = b64("carol:pw"),
        carol_bad = b64("carol:px"),
    ));
    let lines: Vec<&str> = out.lines().collect();
    // key-auth is tried first: its consumer, its header removed, the token
    // (not checked) forwarded and no claim header set.
    assert!(
        lines[0].starts_with("200 consumer=acme [authorization=Bearer "),
        "{out}"
    );
    assert!(
        !lines[0].contains("x-api-key") && !lines[0].contains("x-sub"),
        "{out}"
    );
    // A wrong key, then basic-auth admits; the authorization header goes.
    assert_eq!(lines[1], "200 consumer=staff []", "{out}");
    // A wrong password and nothing else: 401 announcing the realm.
    assert_eq!(
        lines[2],
        r#"401 consumer=nil Basic realm="kitchen staff" [authorization=Basic Y2Fyb2w6cHg=]"#,
        "{out}"
    );
    // The token admits: its consumer, its claim over the client's copy.
    assert!(
        lines[3].starts_with("200 consumer=staff [authorization=Bearer "),
        "{out}"
    );
    assert!(lines[3].ends_with(" x-sub=staff]"), "{out}");
    assert_eq!(
        lines[4], r#"401 consumer=nil Basic realm="kitchen staff" []"#,
        "{out}"
    );
    // Phase 1 first.
    assert!(lines[5].starts_with("403"), "{out}");
}
