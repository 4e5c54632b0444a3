//! The Lua filter for what Envoy has no exact native filter for: CORS,
//! the up-front `content-length` check of `request-size-limit`,
//! `key-auth`, `basic-auth`, `jwt` (verified there: see the script), `acl`
//! and fixed-window `rate-limit`. One fixed script (`gatefold.lua`) after
//! a generated data prelude (consumers, jwt keys, and the environment
//! variables holding their secrets: names only, never values); each
//! route's settings are route metadata the script reads.

use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::policy::{
    Acl, Cors, CorsOrigin, JwtKey, KeyAuth, KeyLocation, PublicKey, RateKey, Redirect,
    RedirectLocation, RedirectParts, RedirectPath, RedirectTo,
};
use gatefold_compiler::ir::{Ir, Method, PathPattern, PolicyKind, Route, Secret};
use serde_json::{json, Map, Value};

/// The filter's name; route metadata for it lives under this key.
pub const FILTER: &str = "gatefold.lua";

const SCRIPT: &str = include_str!("gatefold.lua");

/// The front filter's name (first in every chain).
pub const FRONT_FILTER: &str = "gatefold.front";

const FRONT: &str = include_str!("front.lua");

/// The front filter's script (path normalization, host checks, forwarding
/// headers, `match` conditions; see its header) after `CERT_NAMES`: on a
/// TLS filter chain the names its certificate covers, else `nil`;
/// `SCRIPTS`: whether the spec has a `script` (the front filter then keeps
/// the client's forwarding headers for `req.header()`); and `CONDITIONS`
/// (`conditions`, from [`crate::conditions::EnvoyConditions::lua`]).
pub fn front_script(cert_names: Option<&[String]>, scripts: bool, conditions: &str) -> String {
    let names = match cert_names {
        None => "nil".to_string(),
        Some(names) => {
            let list: Vec<String> = names.iter().map(|n| lua_string(n)).collect();
            format!("{{ {} }}", list.join(", "))
        }
    };
    format!("CERT_NAMES = {names}\nSCRIPTS = {scripts}\n{conditions}\n{FRONT}")
}

/// The host Envoy gives an HTTP/1.0 request without one (the front filter
/// knows it and forwards no `x-forwarded-host` for it). `.invalid` never
/// resolves, so no spec's host can be it.
pub const NO_HOST: &str = "gatefold-no-host.invalid";

/// Kinds the Lua filter carries out.
pub const KINDS: [PolicyKind; 7] = [
    PolicyKind::Cors,
    PolicyKind::KeyAuth,
    PolicyKind::BasicAuth,
    PolicyKind::Jwt,
    PolicyKind::Acl,
    PolicyKind::RateLimit,
    PolicyKind::RequestSizeLimit,
];

/// Whether some route needs the Lua filter: a kind of [`KINDS`] other than
/// `request-size-limit` (the buffer filter alone enforces body limits when
/// nothing runs between it and the router's earlier phases).
pub fn needed(ir: &Ir) -> bool {
    ir.routes.iter().any(|r| {
        r.chain
            .iter()
            .any(|p| KINDS.contains(&p.kind) && p.kind != PolicyKind::RequestSizeLimit)
    }) || ir.policies.values().any(|i| lua_redirect(&i.policy))
}

/// A `redirect` with `to`: the Lua filter answers it, as the reference
/// gateway (Envoy's route redirect makes a path on the request's host
/// absolute, and drops the request's query when `to` has its own).
pub fn to_redirect(p: &Policy) -> Option<(&Redirect, &RedirectTo)> {
    match p {
        Policy::Redirect(r) => r.to().map(|to| (r, to)),
        _ => None,
    }
}

/// A part-wise `redirect` (language 1.1): the Lua filter builds it from
/// the request, as the reference gateway does (Envoy's route redirect
/// would keep the request's port with a new scheme, cannot refuse a path
/// that starts like another host's, and replaces a prefix only by
/// rewriting the whole matched text).
pub fn parts_redirect(p: &Policy) -> Option<(&Redirect, &RedirectParts)> {
    match p {
        Policy::Redirect(r) => match &r.location {
            RedirectLocation::Parts(parts) => Some((r, parts)),
            RedirectLocation::To(_) => None,
        },
        _ => None,
    }
}

/// Whether the Lua filter computes this redirect's `location`.
pub fn lua_redirect(p: &Policy) -> bool {
    to_redirect(p).is_some() || parts_redirect(p).is_some()
}

fn parts_config(r: &Redirect, parts: &RedirectParts, path: &PathPattern) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), r.status.code().to_string().into());
    m.insert(
        "pattern".into(),
        gatefold_lua_script::lua::path_pattern(path).into(),
    );
    m.insert("names".into(), json!(path.params().collect::<Vec<_>>()));
    m.insert("parts".into(), true.into());
    m.insert("segments".into(), path.segments.len().into());
    if let Some(scheme) = parts.scheme {
        m.insert("scheme".into(), scheme.as_str().into());
    }
    if let Some(host) = &parts.host {
        m.insert("host".into(), host.clone().into());
    }
    if let Some(port) = parts.port {
        m.insert("port".into(), port.into());
    }
    match &parts.path {
        None => {}
        Some(RedirectPath::Template(t)) => {
            m.insert("template".into(), t.clone().into());
        }
        Some(RedirectPath::ReplacePrefix(p)) => {
            m.insert(
                "replace_prefix".into(),
                p.trim_end_matches('/').to_string().into(),
            );
        }
    }
    Value::Object(m)
}

fn redirect_config(r: &Redirect, to: &RedirectTo, path: &PathPattern) -> Value {
    let mut template = to.path.clone();
    if let Some(q) = &to.query {
        template.push('?');
        template.push_str(q);
    }
    // `scheme://host[:port]` of a redirect to another host, else empty.
    let origin = RedirectTo {
        path: String::new(),
        query: None,
        fragment: None,
        ..to.clone()
    };
    json!({
        "status": r.status.code().to_string(),
        "pattern": gatefold_lua_script::lua::path_pattern(path),
        "names": path.params().collect::<Vec<_>>(),
        "origin": origin.to_string(),
        "template": template,
        "has_query": to.query.is_some(),
        "fragment": to.fragment.as_ref().map_or(String::new(), |f| format!("#{f}")),
    })
}

/// A Lua string literal holding `s` exactly: every byte but letters,
/// digits, `-`, `_` and `.` is a decimal escape, so no user string can end
/// the literal or hold a line break.
pub fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:03}"));
        }
    }
    out.push('"');
    out
}

/// The whole script: the consumers table, then the fixed code.
pub fn script(ir: &Ir) -> String {
    let env = |s: &Secret| match s {
        Secret::Env(v) => lua_string(v),
    };
    let mut out = String::from("CONSUMERS = {\n");
    for (name, c) in &ir.consumers {
        let groups: Vec<String> = c
            .groups
            .iter()
            .map(|g| format!("[{}] = true", lua_string(g.as_str())))
            .collect();
        let keys: Vec<String> = c.keys.iter().map(env).collect();
        out.push_str(&format!(
            "  [{}] = {{ groups = {{ {} }}, keys = {{ {} }}",
            lua_string(name.as_str()),
            groups.join(", "),
            keys.join(", ")
        ));
        if let Some(b) = &c.basic {
            out.push_str(&format!(
                ", user = {}, password = {}",
                lua_string(&b.user),
                env(&b.password)
            ));
        }
        out.push_str(" },\n");
    }
    out.push_str("}\n\n");
    out.push_str(&jwt_table(ir));
    if ir
        .policies
        .values()
        .any(|p| matches!(p.policy, Policy::Jwt(_)))
    {
        // Token, JSON and claims as the NGINX target reads them.
        out.push_str("local JWT_CORE = (function()\n");
        out.push_str(gatefold_lua_script::JWT);
        out.push_str("end)()\n\n");
    }
    if ir.policies.values().any(|p| lua_redirect(&p.policy)) {
        // A redirect's location, built as every Lua target builds it.
        out.push_str("local LOC = (function()\n");
        out.push_str(gatefold_lua_script::LOCATION);
        out.push_str("end)()\n\n");
    }
    out.push_str(SCRIPT);
    out
}

/// `JWT`: per `jwt` policy (by id) its one algorithm, its key (the PEM
/// text of a key file, or the name of the variable holding the secret or
/// the PEM: never a secret's value), issuer, audiences, leeway, consumer
/// claim and claim headers (the fields `gatefold_lua_script::JWT` reads).
fn jwt_table(ir: &Ir) -> String {
    let mut out = String::from("JWT = {\n");
    for (id, inst) in &ir.policies {
        let Policy::Jwt(j) = &inst.policy else {
            continue;
        };
        let key = match &j.key {
            JwtKey::Hs256 {
                secret: Secret::Env(v),
            } => format!("secret_env = {}", lua_string(v)),
            JwtKey::Rs256(PublicKey::File { pem, .. })
            | JwtKey::Es256(PublicKey::File { pem, .. }) => format!("pem = {}", lua_string(pem)),
            JwtKey::Rs256(PublicKey::Env(v)) | JwtKey::Es256(PublicKey::Env(v)) => {
                format!("pem_env = {}", lua_string(v))
            }
        };
        let mut fields = vec![
            format!("alg = {}", lua_string(&format!("{:?}", j.key.algorithm()))),
            key,
            // Seconds, fractions kept, as the reference gateway compares.
            format!("leeway = {}", j.leeway.millis as f64 / 1000.0),
        ];
        if let Some(iss) = &j.issuer {
            fields.push(format!("issuer = {}", lua_string(iss)));
        }
        if !j.audiences.is_empty() {
            let aud: Vec<String> = j
                .audiences
                .iter()
                .map(|a| format!("[{}] = true", lua_string(a)))
                .collect();
            fields.push(format!("audiences = {{ {} }}", aud.join(", ")));
        }
        fields.push(format!(
            "consumer_claim = {}",
            lua_string(&j.consumer_claim)
        ));
        // Claim -> header, in claim order (the order headers are added).
        let claims: Vec<String> = j
            .claims_to_headers
            .iter()
            .map(|(c, h)| format!("{{ {}, {} }}", lua_string(c), lua_string(h.as_str())))
            .collect();
        fields.push(format!("claims = {{ {} }}", claims.join(", ")));
        out.push_str(&format!(
            "  [{}] = {{ {} }},\n",
            lua_string(&id.to_string()),
            fields.join(", ")
        ));
    }
    out.push_str("}\n\n");
    out
}

fn methods_header(methods: &std::collections::BTreeSet<Method>) -> String {
    methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The methods a preflight is told when `cors` lists none (as the
/// reference gateway).
const DEFAULT_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

fn cors_config(c: &Cors) -> Value {
    let any = c.origins.contains(&CorsOrigin::Any);
    let origins: Map<String, Value> = c
        .origins
        .iter()
        .filter(|o| matches!(o, CorsOrigin::Origin(_)))
        .map(|o| (o.as_str().to_ascii_lowercase(), Value::Bool(true)))
        .collect();
    // `scheme://*suffix`: the wildcard stands for one or more whole labels.
    let patterns: Vec<Value> = c
        .origins
        .iter()
        .filter_map(|o| match o {
            CorsOrigin::Pattern(p) => p.split_once("://*"),
            _ => None,
        })
        .map(|(scheme, suffix)| json!([scheme, suffix]))
        .collect();
    let mut m = Map::new();
    m.insert("any".into(), any.into());
    // With credentials a browser reads `*` literally: what was asked is
    // echoed instead (the origin, with vary).
    m.insert("star".into(), (any && !c.credentials).into());
    m.insert("origins".into(), Value::Object(origins));
    m.insert("patterns".into(), Value::Array(patterns));
    if !c.any_method {
        let methods = methods_header(&c.methods);
        let methods = if methods.is_empty() {
            DEFAULT_METHODS.to_string()
        } else {
            methods
        };
        m.insert("methods".into(), methods.into());
    }
    m.insert("any_header".into(), c.any_header.into());
    let list = |hs: &std::collections::BTreeSet<gatefold_compiler::ir::HeaderName>| {
        hs.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
    };
    if !c.headers.is_empty() {
        m.insert("headers".into(), list(&c.headers).into());
    }
    if !c.expose.is_empty() {
        m.insert("expose".into(), list(&c.expose).into());
    }
    m.insert("credentials".into(), c.credentials.into());
    if let Some(age) = c.max_age {
        m.insert("max_age".into(), (age.millis / 1000).to_string().into());
    }
    Value::Object(m)
}

/// The route's settings for the script, or `None` when it has nothing to do
/// there. `preflight`: the entry that answers the route's CORS preflights.
pub fn route_metadata(
    ir: &Ir,
    route: &Route,
    preflight: bool,
    check_length: bool,
) -> Option<Value> {
    let mut m = Map::new();
    for (id, instance) in ir.chain(route) {
        match &instance.policy {
            Policy::Cors(c) => {
                m.insert("cors".into(), cors_config(c));
            }
            Policy::Redirect(_) if !preflight => {
                if let Some((r, to)) = to_redirect(&instance.policy) {
                    m.insert(
                        "redirect".into(),
                        redirect_config(r, to, &route.matcher.path),
                    );
                }
                if let Some((r, parts)) = parts_redirect(&instance.policy) {
                    m.insert(
                        "redirect".into(),
                        parts_config(r, parts, &route.matcher.path),
                    );
                }
            }
            Policy::Acl(acl) => {
                let (allow, groups) = match acl {
                    Acl::Allow(g) => (true, g),
                    Acl::Deny(g) => (false, g),
                };
                let groups: Map<String, Value> = groups
                    .iter()
                    .map(|g| (g.as_str().to_string(), Value::Bool(true)))
                    .collect();
                m.insert("acl".into(), json!({ "allow": allow, "groups": groups }));
            }
            Policy::RateLimit(r) => {
                let (key, header) = match &r.key {
                    RateKey::Ip => ("ip", None),
                    RateKey::Consumer => ("consumer", None),
                    RateKey::Global => ("global", None),
                    RateKey::Header(h) => ("header", Some(h.as_str())),
                };
                let mut rate = json!({
                    "id": id.to_string(),
                    "requests": r.requests,
                    "per": r.per.millis / 1000,
                    "key": key,
                });
                if let Some(h) = header {
                    rate["header"] = h.into();
                }
                m.insert("rate".into(), rate);
            }
            _ => {}
        }
    }
    if let Some(auth) = &route.lowered.auth {
        let mut a = Map::new();
        // In the spec's order: the first method that admits names the consumer.
        let mut methods = Vec::new();
        for id in &auth.methods {
            match ir.policies.get(id).map(|i| &i.policy) {
                Some(Policy::KeyAuth(KeyAuth { location, name })) => {
                    methods.push(json!({
                        "kind": "key",
                        "query": *location == KeyLocation::Query,
                        "name": name,
                    }));
                }
                Some(Policy::BasicAuth(_)) => methods.push(json!({ "kind": "basic" })),
                Some(Policy::Jwt(j)) => {
                    let claims: Map<String, Value> = j
                        .claims_to_headers
                        .iter()
                        .map(|(c, h)| (c.clone(), Value::String(h.as_str().to_string())))
                        .collect();
                    methods.push(json!({
                        "kind": "jwt",
                        "id": id.to_string(),
                        "claim": j.consumer_claim,
                        "claims": claims,
                    }));
                }
                _ => {}
            }
        }
        a.insert("methods".into(), Value::Array(methods));
        if let Some(realm) = &auth.realm {
            a.insert("realm".into(), realm.clone().into());
        }
        m.insert("auth".into(), Value::Object(a));
    }
    if check_length && !m.is_empty() {
        m.insert("max_body".into(), route.lowered.max_body.0.into());
    }
    if preflight {
        m.insert("preflight".into(), true.into());
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_strings_escape_everything_that_could_end_them() {
        assert_eq!(lua_string("a-b_c.D9"), "\"a-b_c.D9\"");
        assert_eq!(lua_string("\"]]\n"), "\"\\034\\093\\093\\010\"");
    }
}
