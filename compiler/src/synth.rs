//! Synthetic specs for benchmarks, fuzzing and load tests.
//!
//! [`spec`] writes a valid spec of `apis × routes_per_api` routes with a
//! realistic mix of what real specs use: upstreams with health checks and
//! anchors, consumers with keys and basic credentials, named policies,
//! bundles (one nested in another), gateway-, api- and route-level
//! attachment, inline policies, `disable`, hosts and wildcard hosts,
//! `strip-base-path`, exact, templated and prefix paths, the same path with
//! different methods, rewrites, redirects, mocks, traffic splits and per-route
//! upstream overrides. It compiles without errors (warnings aside) and is the
//! same text for the same arguments.

use std::fmt::Write as _;

/// A tiny deterministic PRNG (xorshift64*): no dependency, same sequence on
/// every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Spread small seeds over the state; the state must never be zero.
        let s = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x2545_F491_4F6C_DD1D);
        Rng(if s == 0 { 1 } else { s })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const RESOURCES: &[&str] = &[
    "orders",
    "pets",
    "users",
    "items",
    "invoices",
    "carts",
    "reports",
    "files",
    "tickets",
    "accounts",
    "payments",
    "shipments",
    "products",
    "reviews",
    "sessions",
    "teams",
];

/// What an api attaches, which decides what its routes may add.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Profile {
    /// Any of three logins, per-consumer limits and CORS.
    Partner,
    /// No login; CORS and an api-wide rate limit.
    Public,
    /// A key and a request header.
    Internal,
    /// `strip-base-path`, deprecated as a whole.
    Legacy,
    /// A token and a traffic split between two upstreams.
    Canary,
}

impl Profile {
    fn authenticated(self) -> bool {
        matches!(self, Profile::Partner | Profile::Internal | Profile::Canary)
    }
}

/// A valid spec of `apis` apis with `routes_per_api` routes each,
/// deterministic for `seed`. `apis` and `routes_per_api` of 0 are taken as 1.
pub fn spec(apis: usize, routes_per_api: usize, seed: u64) -> String {
    let apis = apis.max(1);
    let routes_per_api = routes_per_api.max(1);
    let mut rng = Rng::new(seed);
    let upstreams = apis / 2 + 2;
    let consumers = 4 + apis / 10;
    // Roughly 130 bytes per route.
    let mut out = String::with_capacity(4096 + apis * routes_per_api * 140);

    out.push_str(
        "# A synthetic gatefold spec (gatefold_compiler::synth).\n\
         gatefold: 1\n\n\
         gateway:\n  name: synth\n  listen: 8080\n  baseline:\n    request-id: true\n    \
         max-body: 2MiB\n    timeouts: { connect: 3s, read: 20s }\n  policies:\n    - edge\n    \
         - rate-limit: { requests: 5000, per: 1m }\n\n",
    );

    upstream_section(&mut out, &mut rng, upstreams);
    consumer_section(&mut out, &mut rng, consumers);
    out.push_str(POLICIES);

    out.push_str("\napis:\n");
    for a in 0..apis {
        api(&mut out, &mut rng, a, routes_per_api, upstreams);
    }
    out
}

fn upstream_section(out: &mut String, rng: &mut Rng, count: usize) {
    out.push_str("upstreams:\n");
    for u in 0..count {
        let _ = writeln!(out, "  svc-{u}:\n    targets:");
        let targets = 1 + rng.below(3);
        for t in 0..targets {
            let host = (u * 3 + t) % 250 + 1;
            if rng.chance(30) {
                let _ = writeln!(
                    out,
                    "      - {{ url: \"http://10.{}.0.{host}:8080\", weight: {} }}",
                    u / 250 % 250,
                    1 + rng.below(5)
                );
            } else {
                let _ = writeln!(
                    out,
                    "      - url: http://10.{}.0.{host}:8080",
                    u / 250 % 250
                );
            }
        }
        let balance = rng.pick(&["round-robin", "least-request", "hash-header:x-user-id"]);
        let _ = writeln!(out, "    balance: {balance}");
        if u == 0 {
            out.push_str(
                "    health: &standard-health\n      path: /healthz\n      interval: 5s\n      \
                 timeout: 1s\n      unhealthy-after: 2\n      healthy-after: 2\n",
            );
        } else if rng.chance(60) {
            out.push_str("    health: *standard-health\n");
        }
        if rng.chance(40) {
            out.push_str("    retries: { attempts: 2, on: [connect-failure, 502, 503] }\n");
        }
        if rng.chance(40) {
            let _ = writeln!(
                out,
                "    timeouts: {{ connect: {}s, read: {}s }}",
                1 + rng.below(3),
                5 + rng.below(30)
            );
        }
    }
    out.push('\n');
}

fn consumer_section(out: &mut String, rng: &mut Rng, count: usize) {
    out.push_str("consumers:\n");
    for c in 0..count {
        let groups = match c % 4 {
            0 => "[staff, gold]",
            1 => "[partners]",
            2 => "[gold]",
            _ => "[silver, partners]",
        };
        let _ = writeln!(out, "  client-{c}:\n    groups: {groups}\n    credentials:");
        // The first has a key, the second basic credentials: key-auth and
        // basic-auth always have someone to admit.
        let key = c != 1 && (c == 0 || rng.chance(80));
        if key {
            if rng.chance(20) {
                let _ = writeln!(
                    out,
                    "      keys: [{{ env: CLIENT_{c}_KEY }}, {{ env: CLIENT_{c}_KEY_NEXT }}]"
                );
            } else {
                let _ = writeln!(out, "      key: {{ env: CLIENT_{c}_KEY }}");
            }
        }
        if !key || c == 1 || rng.chance(30) {
            let _ = writeln!(
                out,
                "      basic: {{ user: client-{c}, password: {{ env: CLIENT_{c}_PASSWORD }} }}"
            );
        }
    }
    out.push('\n');
}

const POLICIES: &str = "\
policies:
  # bundles
  edge:
    - blocklist
    - security-headers
  any-login:
    - api-key
    - staff-login
    - service-token
  partner-access:                 # a bundle that includes a bundle
    - any-login
    - per-consumer
  # named policies
  blocklist:
    ip-filter:
      deny: [203.0.113.0/24, \"2001:db8:bad::/48\"]
  security-headers:
    response-headers:
      set:
        x-content-type-options: nosniff
        strict-transport-security: max-age=31536000
      remove: [x-powered-by]
  api-key:
    key-auth: { in: header, name: x-api-key }
  staff-login:
    basic-auth: { realm: synth staff }
  service-token:
    jwt:
      issuer: https://auth.example.com/
      audiences: [synth]
      algorithms: [HS256]
      secret: { env: JWT_SECRET }
      claims-to-headers: { sub: x-user-id }
      leeway: 30s
  per-consumer:
    rate-limit: { requests: 600, per: 1m, key: consumer }
  admins-only:
    acl: { allow: [staff] }
  no-partners:
    acl: { deny: [partners] }
  browser:
    cors:
      origins: [https://app.example.com, \"http://localhost:3000\"]
      methods: [GET, HEAD, POST, PUT, DELETE]
      headers: [content-type, x-api-key]
      expose: [x-request-id]
      credentials: true
      max-age: 10m
  short-cache:
    cache: { ttl: 30s, methods: [GET, HEAD], vary: [accept-language] }
  big-upload:
    request-size-limit: { max: 50MiB }
  no-retry:
    retry: { attempts: 0 }
";

fn api(out: &mut String, rng: &mut Rng, a: usize, routes: usize, upstreams: usize) {
    let profile = match rng.below(10) {
        0..=2 => Profile::Partner,
        3..=4 => Profile::Public,
        5..=6 => Profile::Internal,
        7 => Profile::Legacy,
        _ => Profile::Canary,
    };
    let _ = writeln!(out, "  api-{a}:");
    match a % 3 {
        0 => {
            let _ = writeln!(out, "    hosts: [api{a}.example.com]");
        }
        1 => {
            let _ = writeln!(
                out,
                "    hosts: [api{a}.example.com, \"*.api{a}.example.com\"]"
            );
        }
        _ => {}
    }
    let base = format!("/v{}/api{a}", 1 + a % 3);
    let _ = writeln!(out, "    base-path: {base}");
    let strip = profile == Profile::Legacy;
    if strip {
        out.push_str("    strip-base-path: true\n");
    }
    let upstream = a % upstreams;
    let other = (a + 1) % upstreams;
    if profile != Profile::Canary {
        let _ = writeln!(out, "    upstream: svc-{upstream}");
    }
    match profile {
        Profile::Partner => out.push_str("    policies: [partner-access, browser]\n"),
        Profile::Public => {
            out.push_str(
                "    policies:\n      - browser\n      \
                 - rate-limit: { requests: 100, per: 1s, key: ip }\n",
            );
            if rng.chance(50) {
                out.push_str("    disable: [ip-filter]\n");
            }
        }
        Profile::Internal => out.push_str(
            "    policies:\n      - api-key\n      - request-headers:\n          \
             set: { x-internal: \"1\" }\n          remove: [x-debug]\n",
        ),
        Profile::Legacy => out.push_str(
            "    policies:\n      - deprecation:\n          since: \"2025-01-01\"\n          \
             sunset: \"2026-06-30\"\n          link: https://docs.example.com/migrate\n",
        ),
        Profile::Canary => {
            let _ = writeln!(
                out,
                "    policies:\n      - service-token\n      - traffic-split:\n          \
                 header-match:\n            - {{ name: x-canary, value: always, upstream: svc-{other} }}\n          \
                 to:\n            - {{ upstream: svc-{upstream}, weight: 90 }}\n            \
                 - {{ upstream: svc-{other}, weight: 10 }}"
            );
        }
    }
    out.push_str("    routes:\n");
    for r in 0..routes {
        route(out, rng, profile, &base, r, other);
    }
}

/// Routes come in groups of six per resource: list and create on one exact
/// path, get and change on a templated one, a nested template and a prefix.
fn route(out: &mut String, rng: &mut Rng, profile: Profile, base: &str, r: usize, other: usize) {
    let k = r / 6;
    let word = RESOURCES[k % RESOURCES.len()];
    let res = match k / RESOURCES.len() {
        0 => word.to_string(),
        n => format!("{word}{n}"),
    };
    let strip = profile == Profile::Legacy;
    let (name, path, methods) = match r % 6 {
        0 => ("list", format!("/{res}"), "[GET, HEAD]"),
        1 => ("create", format!("/{res}"), "[POST]"),
        2 => ("get", format!("/{res}/{{id}}"), "[GET]"),
        3 => ("change", format!("/{res}/{{id}}"), "[PUT, PATCH, DELETE]"),
        4 => ("children", format!("/{res}/{{id}}/items/{{item}}"), "[GET]"),
        _ => ("files", format!("/{res}/files/*"), "[GET, HEAD]"),
    };
    let mut policies: Vec<String> = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    let mut add = |kind: &'static str, text: String, kinds: &mut Vec<&str>| {
        if !kinds.contains(&kind) {
            kinds.push(kind);
            policies.push(text);
        }
    };
    match r % 6 {
        0 => {
            if rng.chance(30) {
                add("cache", "short-cache".into(), &mut kinds);
            } else if rng.chance(10) {
                add(
                    "redirect",
                    format!(
                        "{{ redirect: {{ to: \"https://new.example.com/{res}\", status: 308 }} }}"
                    ),
                    &mut kinds,
                );
            }
        }
        1 => {
            if rng.chance(30) {
                add("request-size-limit", "big-upload".into(), &mut kinds);
            } else if rng.chance(20) {
                add(
                    "request-size-limit",
                    "{ request-size-limit: { max: 64KiB } }".into(),
                    &mut kinds,
                );
            }
            if rng.chance(20) {
                add("retry", "no-retry".into(), &mut kinds);
            }
        }
        2 => {
            if !strip && rng.chance(20) {
                add(
                    "rewrite",
                    format!("{{ rewrite: {{ path: \"/{res}/by-id/{{id}}\" }} }}"),
                    &mut kinds,
                );
            } else if rng.chance(8) {
                add(
                    "mock",
                    format!("{{ mock: {{ status: 200, json: {{ id: sample, kind: {res} }} }} }}"),
                    &mut kinds,
                );
            }
        }
        3 => {
            if rng.chance(50) {
                if !profile.authenticated() {
                    add("key-auth", "api-key".into(), &mut kinds);
                }
                add("acl", "admins-only".into(), &mut kinds);
            }
            if rng.chance(30) {
                add(
                    "timeout",
                    "{ timeout: { connect: 1s, read: 5s } }".into(),
                    &mut kinds,
                );
            }
        }
        4 => {
            if rng.chance(15) && profile != Profile::Legacy {
                add(
                    "deprecation",
                    "{ deprecation: { sunset: \"2027-01-31\" } }".into(),
                    &mut kinds,
                );
            }
        }
        _ => {
            if !strip && rng.chance(40) {
                add(
                    "rewrite",
                    format!("{{ rewrite: {{ strip-prefix: {base}/{res}/files, add-prefix: /static }} }}"),
                    &mut kinds,
                );
            }
            if rng.chance(30) {
                add("cache", "{ cache: { ttl: 10m } }".into(), &mut kinds);
            }
        }
    }
    if rng.chance(10) {
        add(
            "response-headers",
            "{ response-headers: { set: { cache-control: no-store } } }".into(),
            &mut kinds,
        );
    }
    if rng.chance(5) {
        add(
            "request-headers",
            format!(
                "{{ request-headers: {{ set: {{ x-route: {name}-{r} }}, remove: [x-debug] }} }}"
            ),
            &mut kinds,
        );
    }
    if profile == Profile::Partner && rng.chance(5) {
        add("acl", "no-partners".into(), &mut kinds);
    }
    if rng.chance(3) {
        add(
            "script",
            "{ script: { request: \"req.setHeader('x-synth', '1');\" } }".into(),
            &mut kinds,
        );
    }
    if rng.chance(2) {
        add(
            "native",
            "{ native: { kong: { plugins: [{ name: correlation-id }] } } }".into(),
            &mut kinds,
        );
    }
    if rng.chance(5) && !kinds.contains(&"rate-limit") {
        add(
            "rate-limit",
            "{ rate-limit: { requests: 20, per: 1s, key: \"header:x-tenant\" } }".into(),
            &mut kinds,
        );
    }

    let mut disable: Vec<&str> = Vec::new();
    if rng.chance(8) && !kinds.contains(&"rate-limit") {
        disable.push("rate-limit");
    }
    if rng.chance(4) && profile != Profile::Public {
        // Public apis may already disable ip-filter.
        disable.push("ip-filter");
    }
    let own_upstream = profile != Profile::Canary && rng.chance(10);

    let route_name = format!("{name}-{res}");
    if policies.is_empty() && disable.is_empty() && !own_upstream && rng.chance(60) {
        let _ = writeln!(
            out,
            "      {route_name}: {{ path: \"{path}\", methods: {methods} }}"
        );
        return;
    }
    let _ = writeln!(
        out,
        "      {route_name}:\n        path: \"{path}\"\n        methods: {methods}"
    );
    if own_upstream {
        let _ = writeln!(out, "        upstream: svc-{other}");
    }
    if !disable.is_empty() {
        let _ = writeln!(out, "        disable: [{}]", disable.join(", "));
    }
    if !policies.is_empty() {
        out.push_str("        policies:\n");
        for p in &policies {
            let _ = writeln!(out, "          - {p}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;

    fn errors(text: &str) -> String {
        let c = crate::compile_str("synth.yaml", text);
        let errs: Vec<String> = c
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| format!("{}: {} at {:?}", d.code, d.message, d.span))
            .collect();
        errs.join("\n")
    }

    #[test]
    fn ten_by_ten_compiles_without_errors() {
        let text = spec(10, 10, 1);
        assert_eq!(errors(&text), "", "{text}");
        let c = crate::compile_str("synth.yaml", &text);
        assert_eq!(c.ir.expect("compiles").routes.len(), 100);
    }

    #[test]
    fn other_seeds_and_sizes_compile_too() {
        for (apis, routes, seed) in [(1, 1, 0), (3, 40, 7), (25, 6, 42), (12, 100, 3)] {
            let text = spec(apis, routes, seed);
            assert_eq!(errors(&text), "", "spec({apis}, {routes}, {seed})");
        }
    }

    #[test]
    fn same_seed_same_text() {
        assert_eq!(spec(5, 20, 9), spec(5, 20, 9));
        assert_ne!(spec(5, 20, 9), spec(5, 20, 10));
    }
}
