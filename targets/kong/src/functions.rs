//! `pre-function` and `post-function`: Lua for what Kong has no bundled
//! plugin to carry out exactly, placed where the spec's phases put it.
//!
//! Kong runs plugins by fixed priority and OSS Kong cannot reorder them, so
//! each check goes into the serverless plugin whose priority puts it in the
//! spec's place:
//!
//! - `pre-function` (priority 1,000,000, before every other plugin):
//!   phase 1 (`ip-filter`, 403), phase 3 (a `content-length` over the
//!   route's body limit, 413; `request-size-limit` or the baseline
//!   `max-body`), both before cors (2000) and authentication (1250, 1100),
//!   as the spec orders them, then phase 4 when Kong's plugins cannot carry it out
//!   (`jwt`, or a choice of methods: `crate::auth`). A CORS preflight skips phase 3 on a route
//!   with `cors`, which answers it at phase 2. Its `header_filter` adds
//!   the `x-ratelimit-*` headers phase 6 promised before response-transformer
//!   (800) runs, as the spec adds promised headers before phase 13.
//! - `post-function` (priority -1000, after authentication and acl):
//!   phase 6 (`rate-limit`, a fixed window in Kong's
//!   `kong_rate_limiting_counters` shared dict, keyed by policy instance),
//!   phase 8 (the request script), phase 9 (`mock`, answered here rather
//!   than by request-termination, priority 2, which would answer before
//!   phases 6 and 8; `redirect`, see `crate::redirect`), and last a body without `content-length`, read after
//!   phases 4 to 9 passed and refused with 413 over the limit.
//!
//! Kong runs one plugin of a name per request, the most specific, so each
//! route gets one of each holding all its chunks in phase order; when every
//! route's config is the same, that is one global plugin instead.

use crate::conditions::KongConditions;
use crate::model::{Plugin, PluginConfig};
use crate::routing::route_name;
use gatefold_compiler::ir::policy::{IpFilter, MockBody, Policy, RateKey, RateLimit};
use gatefold_compiler::ir::{PolicyId, PolicyKind, Route, Segment, UpstreamPath, ValidIr};
use gatefold_lua_script::lua::string as s;

/// The shared dict rate-limit counters live in: Kong's own (12 MiB,
/// nginx_kong.lua), shared by the workers of one Kong node.
pub const COUNTERS: &str = "kong_rate_limiting_counters";

/// Distinct keys all rate-limit instances together may count in one window
/// before new keys share an instance's overflow counter (refused together,
/// failing closed, as the reference does past its own cap). About 100
/// bytes an entry: 60,000 fit in the 12 MiB dict with the previous
/// window's entries still there, so no counter of the current window is
/// evicted (the dict evicts least recently used entries first).
const KEY_BUDGET: u64 = 60_000;

/// The pre-function and post-function plugins of every route, and the
/// 405 answers of the `fallbacks` ([`crate::routing::fallbacks`]).
pub fn plugins(ir: &ValidIr, fallbacks: &[crate::routing::Fallback]) -> Vec<Plugin> {
    let limits = ir
        .policies
        .keys()
        .filter(|id| id.kind == PolicyKind::RateLimit)
        .count() as u64;
    let cap = (KEY_BUDGET / limits.max(1)).max(1_000);
    let table = crate::conditions::ConditionTable::new(ir);
    let clear = table.clear_chunk();
    let mut pre = Vec::new();
    let mut post = Vec::new();
    for r in ir.routes.iter().map(|r| &**r) {
        let mut f = pre_config(ir, r);
        if let Some(c) = &clear {
            f.access.insert(0, c.clone());
        }
        pre.push((r, f));
        post.push((r, post_config(ir, r, cap)));
    }
    let mut out = Vec::new();
    scope("pre-function", pre, &mut out);
    // Kong runs only global plugins before it routes, on every request:
    // the global pre-function's rewrite holds the script runtime, the
    // jwt core and the redirect location module, once (see
    // `crate::script`), and the `match` markers.
    // With `gateway.tls`, first of all: the plain listener's 308 and the
    // TLS listener's 421 come before any other answer (`crate::tls`).
    if let Some(chunk) = crate::tls::rewrite_chunk(ir) {
        crate::conditions::add_rewrite(&mut out, chunk, Some("gateway/tls"));
    }
    let shared = crate::script::runtime_chunk(ir)
        .into_iter()
        .chain(crate::jwt::used(ir).then(crate::jwt::core_chunk))
        .chain(crate::redirect::location_chunk(ir));
    for chunk in shared {
        crate::conditions::add_rewrite(&mut out, chunk, None);
    }
    if let Some(chunk) = table.rewrite_chunk() {
        crate::conditions::add_rewrite(&mut out, chunk, Some("dispatch/match"));
    }
    scope("post-function", post, &mut out);
    // The 405 answers, one per `allow` set on the service its fallback
    // routes go through (a service-scoped plugin: the routes have none of
    // their own), before any other plugin runs.
    // A group with `match` conditions answers by the conditions that hold:
    // a pre-function of the fallback route's own.
    out.extend(
        fallbacks
            .iter()
            .filter_map(crate::conditions::fallback_plugin),
    );
    let allows: std::collections::BTreeSet<&str> =
        fallbacks.iter().map(|f| f.allow.as_str()).collect();
    for allow in allows {
        out.push(Plugin {
            name: "pre-function",
            route: None,
            service: Some(crate::routing::fallback_service(allow)),
            config: PluginConfig::Functions {
                rewrite: Vec::new(),
                access: vec![format!(
                    "-- gatefold: no route takes the method (405)\nreturn function()\n  return kong.response.exit(405, '{{\"error\":\"method not allowed\"}}', {{ [\"content-type\"] = \"application/json\", [\"allow\"] = {} }})\nend\n",
                    s(allow)
                )],
                header_filter: Vec::new(),
                body_filter: Vec::new(),
            },
            tags: vec![crate::tag("dispatch/405")],
        });
    }
    out
}

/// The config most routes share is one global plugin; a route with another
/// config gets its own, which Kong runs instead (the most specific plugin
/// of a name wins). Ties go to the earliest route, so the output is
/// deterministic. Tagged with the instances each carries out.
fn scope(name: &'static str, configs: Vec<(&Route, Functions)>, out: &mut Vec<Plugin>) {
    // Count per config (hashed: 10,000 routes may have as many configs),
    // remembering where each first appears.
    let mut counts: std::collections::HashMap<&Functions, (usize, usize)> =
        std::collections::HashMap::new();
    for (i, (_, f)) in configs.iter().enumerate() {
        counts.entry(f).or_insert((0, i)).0 += 1;
    }
    // The most shared config; ties go to the one appearing first.
    let Some(global) = counts
        .iter()
        .max_by_key(|(_, (n, first))| (*n, std::cmp::Reverse(*first)))
        .map(|(f, _)| (*f).clone())
    else {
        return;
    };
    let holders: Vec<&String> = configs
        .iter()
        .filter(|(_, f)| *f == global)
        .flat_map(|(_, f)| f.ids.iter())
        .collect();
    let global_tags = tags(holders.into_iter());
    let mut scoped = Vec::new();
    for (r, f) in configs {
        if f != global {
            scoped.push(Plugin {
                name,
                route: Some(route_name(&r.id)),
                service: None,
                tags: tags(f.ids.iter()),
                config: f.config(),
            });
        }
    }
    out.push(Plugin {
        name,
        route: None,
        service: None,
        config: global.config(),
        tags: global_tags,
    });
    out.extend(scoped);
}

fn tags<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<String> {
    let set: std::collections::BTreeSet<&String> = ids.collect();
    set.into_iter().map(crate::tag).collect()
}

/// The chunks of one serverless plugin, by phase, and what they carry out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
struct Functions {
    access: Vec<String>,
    header_filter: Vec<String>,
    body_filter: Vec<String>,
    ids: Vec<String>,
}

impl Functions {
    fn config(self) -> PluginConfig {
        PluginConfig::Functions {
            rewrite: Vec::new(),
            access: self.access,
            header_filter: self.header_filter,
            body_filter: self.body_filter,
        }
    }
}

fn policy<'a>(ir: &'a ValidIr, r: &Route, kind: PolicyKind) -> Option<(&'a PolicyId, &'a Policy)> {
    let id = r.policy_id(kind)?;
    let (id, p) = ir.policies.get_key_value(id)?;
    Some((id, &p.policy))
}

/// The JSON error answer `kong.response.exit` sends: the reference
/// gateway's `{"error":"..."}` with `content-type: application/json`.
pub(crate) fn exit(status: u16, message: &str) -> String {
    format!(
        "return kong.response.exit({status}, {}, {{ [\"content-type\"] = \"application/json\" }})",
        s(&format!(
            "{{\"error\":{}}}",
            serde_json::Value::from(message)
        ))
    )
}

/// Phases 1 and 3, and the promised rate-limit headers.
fn pre_config(ir: &ValidIr, r: &Route) -> Functions {
    let mut f = Functions::default();
    let mut body = String::new();
    body.push_str("-- gatefold: phases 1 (ip-filter) and 3 (content-length)\n");
    let filter = match policy(ir, r, PolicyKind::IpFilter) {
        Some((id, Policy::IpFilter(x))) => Some((id, x)),
        _ => None,
    };
    if let Some((id, x)) = filter {
        f.ids.push(id.to_string());
        body.push_str(&ip_filter_prelude(x));
    }
    f.ids.push("baseline/max-body".to_string());
    let max = r.lowered.max_body.0;
    body.push_str(&format!("local MAX = {max}\nreturn function()\n"));
    if filter.is_some() {
        body.push_str(&format!(
            "  local a = kong.client.get_ip()\n  a = a and (v4(a) or v6(a))\n  if not a or listed(a, DENY) or (ALLOW and not listed(a, ALLOW)) then\n    {}\n  end\n",
            exit(403, "forbidden")
        ));
    }
    if r.policy_id(PolicyKind::Cors).is_some() {
        // Kong's cors answers a preflight in access (cors handler.lua:
        // OPTIONS with an origin and access-control-request-method).
        body.push_str(
            "  if kong.request.get_method() == \"OPTIONS\" and (kong.request.get_header(\"origin\") or \"\") ~= \"\"\n     and kong.request.get_header(\"access-control-request-method\") then\n    return\n  end\n",
        );
    }
    body.push_str(&format!(
        "  local n = tonumber(kong.request.get_header(\"content-length\") or \"\")\n  if n and n > MAX then\n    {}\n  end\nend\n",
        exit(413, "payload too large")
    ));
    f.access.push(body);
    let cors = r.policy_id(PolicyKind::Cors).is_some();
    if let Some(chunk) = crate::auth::chunk(ir, r, cors) {
        let methods = r.lowered.auth.iter().flat_map(|a| a.methods.iter());
        f.ids.extend(methods.map(|id| id.to_string()));
        f.access.push(chunk);
    }
    // The same chunk for every rate-limit instance (it reads what the
    // post-function's count stored), so routes of different limits can
    // share one pre-function.
    if r.policy_id(PolicyKind::RateLimit).is_some() {
        f.header_filter.push(RATE_HEADERS.to_string());
    }
    if let Some((id, Policy::Deprecation(d))) = policy(ir, r, PolicyKind::Deprecation) {
        f.ids.push(id.to_string());
        f.header_filter.push(deprecation_headers(d));
    }
    f
}

/// The headers phase 7 promised, on every response made after it (the
/// post-function marks the request when it passes phase 7).
fn deprecation_headers(d: &gatefold_compiler::ir::policy::Deprecation) -> String {
    let since = d.since.map_or(0, |x| x.days_since_epoch() * 86_400);
    let mut sets = vec![format!(
        "    kong.response.set_header(\"deprecation\", {})",
        s(&format!("@{since}"))
    )];
    if let Some(sunset) = d.sunset {
        sets.push(format!(
            "    kong.response.set_header(\"sunset\", {})",
            s(&http_date(sunset.days_since_epoch()))
        ));
    }
    if let Some(link) = &d.link {
        sets.push(format!(
            "    kong.response.set_header(\"link\", {})",
            s(&format!("<{link}>; rel=\"deprecation\""))
        ));
    }
    format!(
        "-- gatefold: deprecation headers promised at phase 7\nreturn function()\n  if kong.ctx.shared.gatefold_deprecation then\n{}\n  end\nend\n",
        sets.join("\n")
    )
}

/// `Sun, 06 Nov 1994 00:00:00 GMT` for a day counted from 1970-01-01.
fn http_date(days: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} 00:00:00 GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

/// Sets the headers phase 6 promised (stored by the rate-limit chunk).
const RATE_HEADERS: &str = r#"-- gatefold: x-ratelimit-* promised at phase 6
return function()
  local rl = kong.ctx.shared.gatefold_ratelimit
  if rl then
    kong.response.set_header("x-ratelimit-limit", tostring(rl[1]))
    kong.response.set_header("x-ratelimit-remaining", tostring(rl[2]))
    kong.response.set_header("x-ratelimit-reset", tostring(rl[3]))
  end
end
"#;

/// Address parsing (to network-order bytes, IPv4-mapped IPv6 as IPv4, as
/// the spec's client address) and the lists of one ip-filter.
fn ip_filter_prelude(x: &IpFilter) -> String {
    let list = |items: Vec<String>| format!("{{ {} }}", items.join(", "));
    let deny = list(
        x.deny
            .iter()
            .map(|n| net(n.network(), n.prefix_len()))
            .collect(),
    );
    let allow = if x.allow.is_empty() {
        "nil".to_string()
    } else {
        list(
            x.allow
                .iter()
                .map(|n| net(n.network(), n.prefix_len()))
                .collect(),
        )
    };
    format!("{IP_PARSE}local DENY = {deny}\nlocal ALLOW = {allow}\n")
}

/// `{ "BYTES", PREFIX }`: a network as the Lua matcher takes it.
fn net(addr: std::net::IpAddr, prefix: u8) -> String {
    let b = match addr {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    };
    format!("{{ {}, {prefix} }}", bytes(&b))
}

/// A Lua string literal of raw bytes.
fn bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for x in b {
        out.push_str(&format!("\\{x}"));
    }
    out.push('"');
    out
}

const IP_PARSE: &str = r#"local function v4(t)
  local a, b, c, d = t:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return string.char(a, b, c, d)
end
local function groups(part)
  local out = {}
  if part == "" then return out end
  for g in (part .. ":"):gmatch("([^:]*):") do
    if not g:match("^%x%x?%x?%x?$") then return nil end
    out[#out + 1] = tonumber(g, 16)
  end
  return out
end
local function v6(t)
  local tail = t:match(":(%d+%.%d+%.%d+%.%d+)$")
  if tail then
    local b = v4(tail)
    if not b then return nil end
    t = t:sub(1, #t - #tail) .. string.format("%x:%x", b:byte(1) * 256 + b:byte(2), b:byte(3) * 256 + b:byte(4))
  end
  local left, right = t, nil
  local i = t:find("::", 1, true)
  if i then left, right = t:sub(1, i - 1), t:sub(i + 2) end
  local l = groups(left)
  local r = right and groups(right) or {}
  if not l or not r then return nil end
  local n = #l + #r
  if (right and n > 7) or (not right and n ~= 8) then return nil end
  local out = {}
  local function put(g) out[#out + 1] = string.char(math.floor(g / 256), g % 256) end
  for _, g in ipairs(l) do put(g) end
  for _ = n + 1, 8 do put(0) end
  for _, g in ipairs(r) do put(g) end
  local b = table.concat(out)
  if b:sub(1, 12) == "\0\0\0\0\0\0\0\0\0\0\255\255" then return b:sub(13) end
  return b
end
local function inside(a, net, bits)
  if #a ~= #net then return false end
  local full = math.floor(bits / 8)
  if a:sub(1, full) ~= net:sub(1, full) then return false end
  local rest = bits % 8
  if rest == 0 then return true end
  local d = 2 ^ (8 - rest)
  return math.floor(a:byte(full + 1) / d) == math.floor(net:byte(full + 1) / d)
end
local function listed(a, list)
  for _, n in ipairs(list) do
    if inside(a, n[1], n[2]) then return true end
  end
  return false
end
"#;

/// Phases 6, 8 and 9 and the deferred body check, then the response side.
fn post_config(ir: &ValidIr, r: &Route, cap: u64) -> Functions {
    let mut f = Functions::default();
    if let Some((id, Policy::RateLimit(l))) = policy(ir, r, PolicyKind::RateLimit) {
        f.ids.push(id.to_string());
        f.access.push(rate_limit(id, l, cap));
    }
    if let Some((id, _)) = policy(ir, r, PolicyKind::Deprecation) {
        f.ids.push(id.to_string());
        f.access.push(
            "-- gatefold: deprecation (phase 7) passed\nreturn function()\n  kong.ctx.shared.gatefold_deprecation = true\nend\n"
                .to_string(),
        );
    }
    if let Some((id, Policy::Script(sc))) = policy(ir, r, PolicyKind::Script) {
        f.ids.push(id.to_string());
        let (access, header_filter, body_filter) = crate::script::chunks(ir, id, sc);
        f.access.push(access);
        f.header_filter.extend(header_filter);
        f.body_filter.extend(body_filter);
    }
    if let Some((id, Policy::Mock(m))) = policy(ir, r, PolicyKind::Mock) {
        f.ids.push(id.to_string());
        f.access.push(mock(m));
    }
    if let Some((id, Policy::Redirect(red))) = policy(ir, r, PolicyKind::Redirect) {
        f.ids.push(id.to_string());
        f.access.push(crate::redirect::chunk(ir, r, red));
    }
    if let Some(chunk) = upstream_path(r) {
        if let Some(id) = r.policy_id(PolicyKind::Rewrite) {
            f.ids.push(id.to_string());
        }
        f.access.push(chunk);
    }
    if let Some((id, Policy::TrafficSplit(ts))) = policy(ir, r, PolicyKind::TrafficSplit) {
        f.ids.push(id.to_string());
        f.access.push(traffic_split(ir, ts));
    }
    // A route that always answers at phase 9 (mock, redirect) never reads
    // a body; every other one checks a body without content-length as it
    // is read.
    let answers =
        r.policy_id(PolicyKind::Mock).is_some() || r.policy_id(PolicyKind::Redirect).is_some();
    if !answers {
        f.ids.push("baseline/max-body".to_string());
        f.access.push(body_limit(r.lowered.max_body.0));
    }
    f
}

/// Phase 10's path (`rewrite`, `strip-base-path`): the route's lowered
/// upstream path, set with `kong.service.request.set_path` (Kong keeps the
/// query). A prefix rewrite starts from the path a request script set
/// (the Kong adapter keeps it in `kong.ctx.shared.gatefold_script_path`),
/// else the request's; a whole-path template replaces either, its params
/// from the request's path.
fn upstream_path(r: &Route) -> Option<String> {
    let body = match &r.lowered.upstream_path {
        UpstreamPath::Keep => return None,
        UpstreamPath::Prefix { strip, add } => {
            let opt = |v: &Option<String>| v.as_deref().map_or("nil".to_string(), s);
            format!(
                r#"local STRIP, ADD = {}, {}
return function()
  local p = kong.ctx.shared.gatefold_script_path or kong.request.get_path()
  local rest = p
  if STRIP and STRIP ~= "/" and p:sub(1, #STRIP) == STRIP then
    local left = p:sub(#STRIP + 1)
    if left == "" or left:sub(1, 1) == "/" then rest = left end
  end
  local out = ((ADD and ADD ~= "/") and ADD or "") .. rest
  if out == "" then out = "/" end
  kong.service.request.set_path(out)
end
"#,
                opt(strip),
                opt(add)
            )
        }
        UpstreamPath::Template(t) => {
            // A param is the request's segment at its place in the route's path.
            let at = |name: &str| {
                r.matcher
                    .path
                    .segments
                    .iter()
                    .position(|x| matches!(x, Segment::Param(p) if p.as_str() == name))
                    .map(|i| i + 1)
            };
            let parts: Vec<String> = t
                .segments
                .iter()
                .map(|x| match x {
                    Segment::Literal(l) => s(&format!("/{l}")),
                    Segment::Param(p) => at(p.as_str()).map_or_else(|| s("/"), |i| i.to_string()),
                })
                .collect();
            format!(
                r#"local PARTS = {{ {} }}
return function()
  local segs = {{}}
  for x in (kong.request.get_path():sub(2) .. "/"):gmatch("([^/]*)/") do segs[#segs + 1] = x end
  local out = {{}}
  for _, x in ipairs(PARTS) do
    if type(x) == "number" then out[#out + 1] = "/" .. (segs[x] or "") else out[#out + 1] = x end
  end
  local path = table.concat(out)
  if path == "" then path = "/" end
  kong.service.request.set_path(path)
end
"#,
                parts.join(", ")
            )
        }
    };
    Some(format!("-- gatefold: the upstream path (phase 10)\n{body}"))
}

/// Phase 12's choice of upstream: the first `header-match` whose header's
/// first value is exactly its value, else a weighted random choice
/// (`math.random(total)`), as the reference gateway picks; the request then
/// goes to that Kong upstream with its scheme through the route's service.
fn traffic_split(ir: &ValidIr, ts: &gatefold_compiler::ir::policy::TrafficSplit) -> String {
    let scheme = |u: &gatefold_compiler::ir::Name| {
        let tls = ir
            .upstreams
            .get(u)
            .and_then(|x| x.targets.first())
            .is_some_and(|t| t.url.tls);
        if tls {
            "\"https\""
        } else {
            "\"http\""
        }
    };
    let matches: Vec<String> = ts
        .header_match
        .iter()
        .map(|m| {
            format!(
                "{{ {}, {}, {}, {} }}",
                s(m.name.as_str()),
                s(&m.value),
                s(m.upstream.as_str()),
                scheme(&m.upstream)
            )
        })
        .collect();
    let weighted: Vec<String> = ts
        .to
        .iter()
        .filter(|w| w.weight > 0)
        .map(|w| {
            format!(
                "{{ {}, {}, {} }}",
                w.weight,
                s(w.upstream.as_str()),
                scheme(&w.upstream)
            )
        })
        .collect();
    let total: u64 = ts.to.iter().map(|w| u64::from(w.weight)).sum();
    format!(
        r#"-- gatefold: traffic-split (phase 12)
local MATCH = {{ {} }}
local WEIGHTED = {{ {} }}
local TOTAL = {total}
return function()
  local up, scheme
  for _, m in ipairs(MATCH) do
    if kong.request.get_header(m[1]) == m[2] then up, scheme = m[3], m[4]; break end
  end
  if not up then
    local n = math.random(TOTAL)
    for _, w in ipairs(WEIGHTED) do
      n = n - w[1]
      if n <= 0 then up, scheme = w[2], w[3]; break end
    end
  end
  local ok, err = kong.service.set_upstream(up)
  if not ok then
    kong.log.err("gatefold: traffic-split: ", err)
    {bad}
  end
  kong.service.request.set_scheme(scheme)
end
"#,
        matches.join(", "),
        weighted.join(", "),
        bad = exit(502, "bad gateway"),
    )
}

fn rate_limit(id: &PolicyId, l: &RateLimit, cap: u64) -> String {
    let per = (l.per.millis / 1000).max(1) * 1000;
    // Options in the key: changed options start new counters, as the spec
    // keeps an instance's counters only while its options stay the same.
    let prefix = format!("gatefold:{id}:{}:{per}:", l.requests);
    let ip = "\"ip:\" .. (kong.client.get_ip() or \"\")";
    let who = match &l.key {
        RateKey::Global => "\"global\"".to_string(),
        RateKey::Ip => ip.to_string(),
        RateKey::Consumer => format!(
            "(function() local c = kong.client.get_consumer(); return c and (\"consumer:\" .. c.username) or {ip} end)()"
        ),
        RateKey::Header(h) => format!(
            "(function() local v = kong.request.get_header({}); return v and (\"header:\" .. v) or {ip} end)()",
            s(h.as_str())
        ),
    };
    format!(
        r##"-- gatefold: rate-limit {idq} (phase 6), fixed windows since the epoch
local LIMIT, PER, CAP = {requests}, {per}, {cap}
local PREFIX = {prefix}
return function()
  local dict = ngx.shared.{COUNTERS}
  local now = math.floor(ngx.now() * 1000)
  local window = math.floor(now / PER)
  local reset = math.ceil((PER - now % PER) / 1000)
  local base = PREFIX .. string.format("%d", window) .. ":"
  local key = base .. {who}
  if dict:get(key) == nil then
    local keys = dict:incr(base .. "#keys", 1, 0, reset + 1)
    if not keys or keys > CAP then key = base .. "#overflow" end
  end
  local count, err = dict:incr(key, 1, 0, reset + 1)
  if not count then
    kong.log.err("gatefold: rate-limit counter: ", err)
    count = LIMIT + 1
  end
  local remaining = LIMIT - count
  if remaining < 0 then remaining = 0 end
  kong.ctx.shared.gatefold_ratelimit = {{ LIMIT, remaining, reset }}
  if count > LIMIT then
    return kong.response.exit(429, '{{"error":"too many requests"}}', {{
      ["content-type"] = "application/json", ["retry-after"] = tostring(reset),
      ["x-ratelimit-limit"] = tostring(LIMIT), ["x-ratelimit-remaining"] = "0",
      ["x-ratelimit-reset"] = tostring(reset) }})
  end
end
"##,
        idq = s(&id.to_string()),
        requests = l.requests,
        prefix = s(&prefix),
    )
}

fn mock(m: &gatefold_compiler::ir::policy::Mock) -> String {
    let (body, content_type) = match &m.body {
        MockBody::Empty => (String::new(), None),
        MockBody::Text(t) => (t.clone(), Some("text/plain; charset=utf-8")),
        MockBody::Json(v) => (v.to_string(), Some("application/json")),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(t) = content_type {
        headers.push(("content-type".to_string(), t.to_string()));
    }
    for (n, v) in &m.headers {
        let n = n.to_string().to_ascii_lowercase();
        headers.retain(|(h, _)| *h != n);
        headers.push((n, v.as_str().to_string()));
    }
    let fields: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("[{}] = {}", s(n), s(v)))
        .collect();
    format!(
        "-- gatefold: mock (phase 9)\nlocal HEADERS = {{ {} }}\nreturn function()\n  return kong.response.exit({}, {}, HEADERS)\nend\n",
        fields.join(", "),
        m.status,
        s(&body)
    )
}

/// A body without `content-length` (chunked): read after phases 4 to 9
/// passed, refused with 413 over the limit. `get_raw_body(max)` stops at a
/// buffered file larger than `max` ("request body file too big").
fn body_limit(max: u64) -> String {
    format!(
        r#"-- gatefold: a body without content-length, read after phases 4 to 9
local MAX = {max}
return function()
  if kong.request.get_header("content-length") then return end
  local body, err = kong.request.get_raw_body({file_max})
  if body and #body <= MAX then return end
  if body or (err and err:find("too big", 1, true)) then
    {too_large}
  end
  kong.log.err("gatefold: reading the request body: ", err)
  {bad}
end
"#,
        file_max = max.max(1),
        too_large = exit(413, "payload too large"),
        bad = exit(400, "bad request"),
    )
}

/// What these chunks cannot carry out exactly, one error each:
///
/// - an `ip-filter` or `rate-limit` (keyed by anything but `global`) when
///   `baseline.client-address` is not the TCP peer: the chunks read the
///   peer (`kong.client.get_ip`); Kong's own `trusted_ips` /
///   `real_ip_header` walk is not the spec's;
/// - a `rate-limit` keyed by `header:NAME` on a route whose
///   `request-headers` changes NAME: Kong runs request-transformer
///   (phase 10) before post-function (phase 6), so the count would read
///   the changed header.
pub fn conflicts(
    ir: &ValidIr,
    out: &mut gatefold_compiler::diag::Diagnostics,
    origin: gatefold_compiler::ir::Loc,
) {
    use gatefold_compiler::diag::Diagnostic;
    use gatefold_compiler::target::span_of;
    let at = |id: &PolicyId| span_of(ir.sources.policies.get(id).copied().unwrap_or(origin));
    if !ir.gateway.baseline.client_address.is_peer() {
        for (id, p) in &ir.policies {
            let reads_ip = match &p.policy {
                Policy::IpFilter(_) => true,
                Policy::RateLimit(l) => l.key != RateKey::Global,
                _ => false,
            };
            let used = ir.routes.iter().any(|r| r.chain.contains(id));
            if reads_ip && used {
                out.push(
                    Diagnostic::error(
                        "unsupported-policy",
                        at(id),
                        format!("target `kong` cannot carry out `{id}` with `baseline.client-address` other than the TCP peer: its Lua reads the peer's address"),
                    )
                    .with_help("remove `baseline.client-address` for the Kong target, or this policy"),
                );
            }
        }
    }
    for r in &ir.routes {
        let Some((id, Policy::RateLimit(l))) = policy(ir, r, PolicyKind::RateLimit) else {
            continue;
        };
        let RateKey::Header(h) = &l.key else { continue };
        let Some((_, Policy::RequestHeaders(t))) = policy(ir, r, PolicyKind::RequestHeaders) else {
            continue;
        };
        let touched = t.set.iter().chain(t.add.iter()).any(|(n, _)| n == h)
            || t.remove.iter().any(|n| n == h);
        if touched {
            out.push(
                Diagnostic::error(
                    "unsupported-policy",
                    at(id),
                    format!("target `kong` cannot count `{id}` by header `{h}` on route `{}`: Kong runs request-transformer (phase 10), which changes that header, before the count (phase 6)", r.id),
                )
                .with_help(format!("for the Kong target, key this rate-limit by another header, or leave `{h}` to the client on this route")),
            );
        }
    }
}
