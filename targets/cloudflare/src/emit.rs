//! The Worker's text: the spec's data as JSON constants, the routes with
//! references to their policy instances, the compiled router and the
//! runtime pieces the spec uses.

use crate::router::{js_str, router};
use gatefold_compiler::ir::policy::{
    Acl, Cors, CorsOrigin, Deprecation, HeaderTransform, KeyLocation, Mock, MockBody, Policy,
    RateKey, Redirect, RedirectLocation, RedirectPath, TrafficSplit,
};
use gatefold_compiler::ir::script::{Script, Side};
use gatefold_compiler::ir::{
    Balance, ClientAddress, Destination, PathPattern, PolicyId, ProxyPlan, Route, Secret, Segment,
    UpstreamPath, ValidIr,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const CORE: &str = include_str!("js/core.js");
const IP: &str = include_str!("js/ip.js");
const IP_FILTER: &str = include_str!("js/ipfilter.js");
const CORS: &str = include_str!("js/cors.js");
const AUTH: &str = include_str!("js/auth.js");
const ACL: &str = include_str!("js/acl.js");
const MOCK: &str = include_str!("js/mock.js");
const REDIRECT: &str = include_str!("js/redirect.js");
const HEADERS: &str = include_str!("js/headers.js");
const PROXY: &str = include_str!("js/proxy.js");
const RATE_LIMIT: &str = include_str!("js/ratelimit.js");
const JWT: &str = include_str!("js/jwt.js");
const SCRIPT: &str = include_str!("js/script.js");
const CONDITIONS: &str = include_str!("js/conditions.js");
const CACHE: &str = include_str!("js/cache.js");
const MIRROR: &str = include_str!("js/mirror.js");

/// The Durable Object class counting rate limits, and its binding.
pub const RATE_LIMIT_CLASS: &str = "GatefoldRateLimit";
pub const RATE_LIMIT_BINDING: &str = "GATEFOLD_RATE_LIMIT";

/// The value of a `server` header the gateway may add (as the reference's).
const SERVER: &str = concat!("gatefold/", env!("CARGO_PKG_VERSION"));

fn secret_name(s: &Secret) -> &str {
    match s {
        Secret::Env(name) => name,
    }
}

/// `[[4|6, "network", prefix], ...]` for the Worker's `blocks`.
fn cidrs<'a>(nets: impl IntoIterator<Item = &'a ipnet::IpNet>) -> Value {
    nets.into_iter()
        .map(|n| match n {
            ipnet::IpNet::V4(v) => json!([4, u32::from(v.network()).to_string(), v.prefix_len()]),
            ipnet::IpNet::V6(v) => json!([6, u128::from(v.network()).to_string(), v.prefix_len()]),
        })
        .collect()
}

fn joined<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    let list: Vec<&str> = items.into_iter().collect();
    if list.is_empty() {
        Value::Null
    } else {
        Value::String(list.join(", "))
    }
}

fn cors(c: &Cors) -> Value {
    let origins: Vec<String> = c
        .origins
        .iter()
        .filter_map(|o| match o {
            CorsOrigin::Any => None,
            CorsOrigin::Origin(o) => Some(format!("={}", o.to_ascii_lowercase())),
            CorsOrigin::Pattern(p) => Some(format!("~{p}")),
        })
        .collect();
    let methods = if c.any_method {
        Value::Null
    } else {
        match joined(c.methods.iter().map(|m| m.as_str())) {
            Value::Null => json!("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            v => v,
        }
    };
    json!({
        "any": c.origins.contains(&CorsOrigin::Any),
        "origins": origins,
        "methods": methods,
        "headers": joined(c.headers.iter().map(|h| h.as_str())),
        "anyHeader": c.any_header,
        "expose": joined(c.expose.iter().map(|h| h.as_str())),
        "credentials": c.credentials,
        "maxAge": c.max_age.map(|d| (d.millis / 1000).to_string()),
    })
}

fn transform(t: &HeaderTransform) -> Value {
    let pairs = |m: &gatefold_compiler::ir::HeaderMap| -> Value {
        m.iter()
            .map(|(k, v)| json!([k.as_str(), v.as_str()]))
            .collect()
    };
    json!({
        "remove": t.remove.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
        "set": pairs(&t.set),
        "add": pairs(&t.add),
    })
}

fn deprecation(d: &Deprecation) -> Value {
    let since = d.since.map_or(0, |s| s.days_since_epoch() * 86_400);
    let mut out = vec![json!(["deprecation", format!("@{since}")])];
    if let Some(s) = d.sunset {
        out.push(json!(["sunset", s.http_date()]));
    }
    if let Some(l) = &d.link {
        out.push(json!(["link", format!("<{l}>; rel=\"deprecation\"")]));
    }
    Value::Array(out)
}

fn mock(m: &Mock) -> Value {
    let (body, content_type) = match &m.body {
        MockBody::Empty => (String::new(), None),
        MockBody::Text(t) => (t.clone(), Some("text/plain; charset=utf-8")),
        MockBody::Json(v) => (v.to_string(), Some("application/json")),
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    if let Some(t) = content_type {
        headers.insert("content-type".into(), t.into());
    }
    for (k, v) in m.headers.iter() {
        headers.insert(k.as_str().to_string(), v.as_str().to_string());
    }
    let headers: Vec<Value> = headers.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!({ "status": m.status, "headers": headers, "body": body })
}

fn redirect(r: &Redirect) -> Value {
    let status = r.status.code();
    match &r.location {
        RedirectLocation::To(to) => {
            let origin = gatefold_compiler::ir::policy::RedirectTo {
                path: String::new(),
                query: None,
                fragment: None,
                ..to.clone()
            };
            let mut template = to.path.clone();
            if let Some(q) = &to.query {
                template.push('?');
                template.push_str(q);
            }
            json!({
                "status": status,
                "origin": origin.to_string(),
                "template": template,
                "hasQuery": to.query.is_some(),
                "fragment": to.fragment.as_ref().map_or(String::new(), |f| format!("#{f}")),
            })
        }
        RedirectLocation::Parts(p) => json!({
            "status": status,
            "scheme": p.scheme.map(|s| s.as_str()),
            "host": p.host,
            "port": p.port,
            "path": match &p.path {
                None => Value::Null,
                Some(RedirectPath::Template(t)) => json!(["t", t]),
                Some(RedirectPath::ReplacePrefix(t)) => json!(["p", t]),
            },
        }),
    }
}

fn segments(p: &PathPattern) -> Value {
    p.segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => json!(["l", l.as_str()]),
            Segment::Param(n) => json!(["p", n.as_str()]),
        })
        .collect()
}

fn destination(d: &Destination) -> Value {
    json!({
        "upstream": d.upstream.as_str(),
        "read": d.read_timeout.millis,
        "retry": d.retry.as_ref().map(|r| json!({
            "attempts": r.attempts,
            "on": serde_json::to_value(&r.on).expect("retry conditions serialize"),
        })),
    })
}

fn split(s: &TrafficSplit, to: &[Destination]) -> Value {
    let at = |name: &str| {
        to.iter()
            .position(|d| d.upstream.as_str() == name)
            .unwrap_or(0)
    };
    let weighted: Vec<Value> =
        s.to.iter()
            .filter(|w| w.weight > 0)
            .map(|w| json!([w.weight, at(w.upstream.as_str())]))
            .collect();
    json!({
        "match": s.header_match.iter().map(|m| json!([m.name.as_str(), m.value, at(m.upstream.as_str())])).collect::<Vec<_>>(),
        "weighted": weighted,
        "total": s.to.iter().map(|w| u64::from(w.weight)).sum::<u64>(),
    })
}

/// What the routes use, deciding which runtime pieces are emitted.
#[derive(Default)]
struct Uses {
    ip_filter: bool,
    cors: bool,
    auth: bool,
    acl: bool,
    mock: bool,
    redirect: bool,
    headers: bool,
    rate: bool,
    jwt: bool,
    script: bool,
    conditions: bool,
    cache: bool,
    mirror: bool,
}

fn jwt(j: &gatefold_compiler::ir::policy::Jwt) -> Value {
    use gatefold_compiler::ir::policy::{JwtKey, PublicKey};
    let (alg, key) = match &j.key {
        JwtKey::Hs256 { secret } => ("HS256", json!({ "secret": secret_name(secret) })),
        JwtKey::Rs256(k) | JwtKey::Es256(k) => {
            let alg = if matches!(j.key, JwtKey::Rs256(_)) {
                "RS256"
            } else {
                "ES256"
            };
            match k {
                PublicKey::File { jwk, .. } => (alg, json!({ "jwk": jwk })),
                PublicKey::Env(name) => (alg, json!({ "pemEnv": name })),
            }
        }
    };
    let mut m = json!({
        "kind": "jwt",
        "alg": alg,
        "issuer": j.issuer,
        "audiences": j.audiences,
        "consumerClaim": j.consumer_claim,
        "claims": j.claims_to_headers.iter().map(|(c, h)| json!([c, h.as_str()])).collect::<Vec<_>>(),
        "leeway": j.leeway.millis as f64 / 1000.0,
    });
    if let (Value::Object(m), Value::Object(k)) = (&mut m, key) {
        m.extend(k);
    }
    m
}

/// The data one policy instance becomes, when its kind has a runtime piece.
fn instance(ir: &ValidIr, id: &PolicyId, policy: &Policy, uses: &mut Uses) -> Option<Value> {
    Some(match policy {
        Policy::IpFilter(f) => {
            uses.ip_filter = true;
            json!({ "allow": cidrs(&f.allow), "deny": cidrs(&f.deny) })
        }
        Policy::Cors(c) => {
            uses.cors = true;
            cors(c)
        }
        Policy::Acl(a) => {
            uses.acl = true;
            let (allow, groups) = match a {
                Acl::Allow(g) => (true, g),
                Acl::Deny(g) => (false, g),
            };
            json!({ "allow": allow, "groups": groups.iter().map(|g| g.as_str()).collect::<Vec<_>>() })
        }
        Policy::Deprecation(d) => deprecation(d),
        Policy::Mock(m) => {
            uses.mock = true;
            mock(m)
        }
        Policy::Redirect(r) => {
            uses.redirect = true;
            redirect(r)
        }
        Policy::RequestHeaders(t) | Policy::ResponseHeaders(t) => {
            uses.headers = true;
            transform(t)
        }
        Policy::RateLimit(r) => {
            uses.rate = true;
            let key = match &r.key {
                RateKey::Ip => json!(["ip"]),
                RateKey::Consumer => json!(["consumer"]),
                RateKey::Global => json!(["global"]),
                RateKey::Header(h) => json!(["header", h.as_str()]),
            };
            json!({
                "id": id.to_string(),
                "requests": r.requests,
                // Whole seconds, at least one, as the reference counts.
                "per": (r.per.millis / 1000).max(1) * 1000,
                "key": key,
            })
        }
        Policy::Cache(c) => {
            uses.cache = true;
            json!({
                "id": id.to_string(),
                "ttl": c.ttl.millis,
                "methods": c.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                "vary": c.vary.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
            })
        }
        Policy::Mirror(m) => {
            uses.mirror = true;
            // The mirror upstream's own timeouts, else the baseline's:
            // one deadline for the whole exchange, as fetch() has no
            // connect phase.
            let base = &ir.gateway.baseline.timeouts;
            let own = ir
                .upstreams
                .get(&m.upstream)
                .and_then(|u| u.timeouts.as_ref());
            let connect = own.and_then(|t| t.connect).unwrap_or(base.connect);
            let read = own.and_then(|t| t.read).unwrap_or(base.read);
            json!({
                "id": id.to_string(),
                "upstream": m.upstream.as_str(),
                "percent": m.percent,
                "timeout": connect.millis + read.millis,
            })
        }
        _ => return None,
    })
}

/// The route field an instance of `policy` goes under.
fn field(policy: &Policy) -> Option<&'static str> {
    Some(match policy {
        Policy::IpFilter(_) => "ipf",
        Policy::Cors(_) => "cors",
        Policy::Acl(_) => "acl",
        Policy::Deprecation(_) => "dep",
        Policy::Mock(_) => "mock",
        Policy::Redirect(_) => "redirect",
        Policy::RequestHeaders(_) => "reqh",
        Policy::ResponseHeaders(_) => "resph",
        Policy::RateLimit(_) => "rate",
        Policy::Cache(_) => "cache",
        Policy::Mirror(_) => "mirror",
        _ => return None,
    })
}

fn route_js(
    ir: &ValidIr,
    r: &Route,
    names: &BTreeMap<&PolicyId, String>,
    uses: &mut Uses,
) -> String {
    let mut fields = vec![
        format!("id: {}", js_str(&r.id.to_string())),
        format!("pat: {}", segments(&r.matcher.path)),
        format!("maxBody: {}", r.lowered.max_body.0),
    ];
    let c = &r.matcher.conditions;
    if !c.is_empty() {
        uses.conditions = true;
        let pairs = |m: Vec<(&str, &str)>| {
            m.into_iter()
                .map(|(k, v)| json!([k, v]))
                .collect::<Vec<_>>()
        };
        fields.push(format!(
            "cond: {}",
            json!({
                "h": pairs(c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()),
                "q": pairs(c.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()),
            })
        ));
    }
    let mut request_scripts = Vec::new();
    let mut response_script = None;
    for (id, inst) in ir.chain(r) {
        if let (Some(f), Some(name)) = (field(&inst.policy), names.get(id)) {
            fields.push(format!("{f}: {name}"));
        }
        if let (Policy::Script(s), Some(name)) = (&inst.policy, names.get(id)) {
            if s.request.is_some() {
                request_scripts.push(format!("{name}Q"));
            }
            // One response side per route, as the reference places it.
            if s.response.is_some() {
                response_script = Some(format!("{name}R"));
            }
        }
    }
    if !request_scripts.is_empty() {
        fields.push(format!("sreq: [{}]", request_scripts.join(", ")));
    }
    if let Some(r) = response_script {
        fields.push(format!("sres: {r}"));
    }
    if let Some(auth) = &r.lowered.auth {
        uses.auth = true;
        let methods: Vec<Value> = auth
            .methods
            .iter()
            .filter_map(|id| match ir.policies.get(id).map(|p| &p.policy) {
                Some(Policy::KeyAuth(k)) => Some(json!({
                    "kind": "key",
                    "query": matches!(k.location, KeyLocation::Query),
                    "name": if matches!(k.location, KeyLocation::Query) { k.name.clone() } else { k.name.to_ascii_lowercase() },
                })),
                Some(Policy::BasicAuth(_)) => Some(json!({ "kind": "basic" })),
                Some(Policy::Jwt(j)) => {
                    uses.jwt = true;
                    Some(jwt(j))
                }
                _ => None,
            })
            .collect();
        let challenge = auth.realm.as_ref().map(|r| format!("Basic realm=\"{r}\""));
        fields.push(format!(
            "auth: {}",
            json!({ "methods": methods, "challenge": challenge })
        ));
    }
    if r.lowered.preserve_host {
        fields.push("keepHost: true".to_string());
    }
    match &r.lowered.upstream_path {
        UpstreamPath::Keep => {}
        UpstreamPath::Prefix { strip, add } => {
            fields.push(format!("upPath: {}", json!({ "strip": strip, "add": add })))
        }
        UpstreamPath::Template(t) => {
            fields.push(format!("upPath: {}", json!({ "template": segments(t) })))
        }
    }
    if let Some(plan) = &r.lowered.proxy {
        let to: Vec<Value> = plan.destinations().iter().map(destination).collect();
        let proxy = match plan {
            ProxyPlan::Single(_) => json!({ "to": to }),
            ProxyPlan::Split { policy, to: dests } => {
                match ir.policies.get(policy).map(|p| &p.policy) {
                    Some(Policy::TrafficSplit(s)) => json!({ "to": to, "split": split(s, dests) }),
                    _ => json!({ "to": to }),
                }
            }
        };
        fields.push(format!("proxy: {proxy}"));
    }
    format!("{{ {} }}", fields.join(", "))
}

fn client_address(ca: &ClientAddress) -> (String, bool) {
    match ca {
        ClientAddress::Peer => (
            "function clientAddress(request, peer) {\n  return peer;\n}\n".into(),
            false,
        ),
        ClientAddress::PlatformHeader(h) => (
            format!(
                r#"// The platform's header: one address, else the peer.
function clientAddress(request, peer) {{
  const v = request.headers.get({header});
  if (v === null || v.includes(",")) return peer;
  const a = parseIp(v.trim());
  return a === null ? peer : stripPort(v.trim());
}}
"#,
                header = js_str(h.as_str()),
            ),
            true,
        ),
        ClientAddress::TrustedProxies { proxies, header } => (
            format!(
                r#"// Right to left through the header from a trusted peer; the first
// address that is not a trusted proxy.
const TRUSTED = blocks({blocks});
function forwardedFor(element) {{
  for (const pair of element.split(";")) {{
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== "for") continue;
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    return addrWithPort(v);
  }}
  return null;
}}
function addrWithPort(s) {{
  if (parseIp(s) !== null) return stripPort(s);
  if (s.startsWith("[")) {{
    const end = s.indexOf("]");
    if (end < 0) return null;
    const a = s.slice(1, end);
    return parseIp(a) === null ? null : stripPort(a);
  }}
  const c = s.lastIndexOf(":");
  if (c < 0 || !/^\d{{1,5}}$/.test(s.slice(c + 1)) || Number(s.slice(c + 1)) > 65535) return null;
  const h = s.slice(0, c);
  const a = parseIp(h);
  return a !== null && a[0] === 4 && !h.includes(":") ? h : null;
}}
function clientAddress(request, peer) {{
  const trusted = (a) => inBlocks(parseIp(a), TRUSTED);
  if (!trusted(peer)) return peer;
  const v = request.headers.get({header});
  if (v === null) return peer;
  const entries = v.split(",").reverse();
  let client = peer;
  for (const entry of entries) {{
    const a = {parse};
    if (a === null) break;
    client = a;
    if (!trusted(a)) break;
  }}
  return client;
}}
"#,
                blocks = cidrs(proxies),
                header = js_str(header.name()),
                parse = match header {
                    gatefold_compiler::ir::ForwardedHeader::XForwardedFor =>
                        "addrWithPort(entry.trim())",
                    gatefold_compiler::ir::ForwardedHeader::Forwarded => "forwardedFor(entry)",
                },
            ),
            true,
        ),
    }
}

/// A script instance: its failure places, a function per side and the
/// entries routes point at (`NAMEQ` request side, `NAMER` response side):
/// `[function, policy id, places by site, the policy's place]`.
fn script_instance(ir: &ValidIr, id: &PolicyId, s: &Script, name: &str) -> String {
    let sources = &ir.sources;
    let sites: Vec<String> = sources
        .scripts
        .get(id)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|l| sources.describe(*l))
        .collect();
    let place = sources
        .policies
        .get(id)
        .map_or_else(|| "?".to_string(), |l| sources.describe(*l));
    let mut out = format!(
        "// script `{id}`\nconst {name}S = {};\n",
        json!({ "id": id.to_string(), "sites": sites, "place": place })
    );
    let sides = [
        (&s.request, Side::Request, 'q', 'Q'),
        (&s.response, Side::Response, 's', 'R'),
    ];
    for (program, side, f, entry) in sides {
        if let Some(p) = program {
            out.push_str(&crate::script::function(
                &format!("{name}{f}"),
                &id.to_string(),
                p,
                side,
            ));
            let _ = writeln!(
                out,
                "const {name}{entry} = [{name}{f}, {name}S.id, {name}S.sites, {name}S.place];"
            );
        }
    }
    out
}

/// `text` with each line that ends in `//@TAG` kept (without the tag)
/// when TAG is on, else dropped: a piece's hook for a kind the spec may not
/// use (a spec without `cache` carries no cache branch).
fn with_tags(text: &str, tags: &[(&str, bool)]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let tagged = body
            .rsplit_once(" //@")
            .and_then(|(code, tag)| Some((code, tags.iter().find(|(t, _)| *t == tag)?.1)));
        match tagged {
            Some((code, true)) => {
                out.push_str(code);
                out.push('\n');
            }
            Some((_, false)) => {}
            None => out.push_str(line),
        }
    }
    out
}

/// The whole Worker module.
pub fn worker(ir: &ValidIr) -> String {
    let mut uses = Uses::default();
    let mut out = String::from(
        "// Generated by gatefold for Cloudflare Workers; do not edit.\n// Every string from the spec below is a JSON string literal.\n\n",
    );
    let base = &ir.gateway.baseline;
    let _ = writeln!(
        out,
        "const GW = {};",
        json!({
            "name": ir.gateway.name.as_str(),
            "hash": ir.hash.to_string(),
            "requestId": base.request_id,
            "server": base.server_header.then_some(SERVER),
        })
    );
    // Policy instances, once each, named by their place in the IR.
    let mut names: BTreeMap<&PolicyId, String> = BTreeMap::new();
    for (i, (id, inst)) in ir.policies.iter().enumerate() {
        if let Policy::Script(s) = &inst.policy {
            uses.script = true;
            let name = format!("P{i}");
            out.push_str(&script_instance(ir, id, s, &name));
            names.insert(id, name);
            continue;
        }
        if let Some(value) = instance(ir, id, &inst.policy, &mut uses) {
            let name = format!("P{i}");
            let _ = writeln!(out, "const {name} = {value};");
            names.insert(id, name);
        }
    }
    let routes: Vec<String> = ir
        .routes
        .iter()
        .map(|r| route_js(ir, r, &names, &mut uses))
        .collect();
    let _ = writeln!(out, "const R = [\n  {}\n];", routes.join(",\n  "));
    let proxied = ir.routes.iter().any(|r| r.lowered.proxy.is_some());
    if proxied {
        // The routes' destinations and the mirrors' upstreams.
        let used: BTreeSet<&str> = ir
            .routes
            .iter()
            .filter_map(|r| r.lowered.proxy.as_ref())
            .flat_map(|p| p.destinations().iter().map(|d| d.upstream.as_str()))
            .chain(ir.policies.values().filter_map(|p| match &p.policy {
                Policy::Mirror(m) => Some(m.upstream.as_str()),
                _ => None,
            }))
            .collect();
        let ups: serde_json::Map<String, Value> = ir
            .upstreams
            .iter()
            .filter(|(n, _)| used.contains(n.as_str()))
            .map(|(n, u)| {
                let targets: Vec<Value> = u
                    .targets
                    .iter()
                    .map(|t| {
                        let authority = format!("{}:{}", t.url.host, t.url.port);
                        json!({
                            "base": t.url.to_string(),
                            "authority": authority,
                            "weight": t.weight.max(1),
                        })
                    })
                    .collect();
                let balance = match &u.balance {
                    Balance::RoundRobin => json!(["rr"]),
                    Balance::LeastRequest => json!(["least"]),
                    Balance::HashHeader(h) => json!(["hash", h.as_str()]),
                };
                (
                    n.to_string(),
                    json!({ "targets": targets, "balance": balance }),
                )
            })
            .collect();
        let _ = writeln!(out, "const UP = {};", Value::Object(ups));
    }
    if uses.auth || uses.acl || uses.jwt {
        let consumers: serde_json::Map<String, Value> = ir
            .consumers
            .iter()
            .map(|(n, c)| {
                (
                    n.to_string(),
                    json!({
                        "groups": c.groups.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                        "keys": c.keys.iter().map(secret_name).collect::<Vec<_>>(),
                        "user": c.basic.as_ref().map(|b| b.user.as_str()),
                        "password": c.basic.as_ref().map(|b| secret_name(&b.password)),
                    }),
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "// Secrets are Worker bindings named here, read as env[NAME].\nconst CONSUMERS = {};",
            Value::Object(consumers)
        );
    }
    out.push('\n');
    out.push_str(&router(ir));
    let tags = [
        ("cache", uses.cache && proxied),
        ("mirror", uses.mirror && proxied),
    ];
    out.push('\n');
    out.push_str(&with_tags(CORE, &tags));
    let (client, needs_ip) = client_address(&base.client_address);
    out.push('\n');
    out.push_str(&client);
    let pieces = [
        (needs_ip || uses.ip_filter || uses.redirect, IP),
        (uses.ip_filter, IP_FILTER),
        (uses.cors, CORS),
        (uses.auth, AUTH),
        (uses.jwt, JWT),
        (uses.acl, ACL),
        (uses.mock, MOCK),
        (uses.redirect, REDIRECT),
        (uses.headers, HEADERS),
        (proxied, PROXY),
        (uses.rate, RATE_LIMIT),
        (uses.script, SCRIPT),
        (uses.conditions, CONDITIONS),
        (uses.cache && proxied, CACHE),
        (uses.mirror && proxied, MIRROR),
    ];
    for (used, text) in pieces {
        if used {
            out.push('\n');
            out.push_str(&with_tags(text, &tags));
        }
    }
    out
}
