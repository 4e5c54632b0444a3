//! The configuration as data: directives made of typed [`Word`]s, so that
//! every user string is quoted by what it is, in one place
//! ([`Word::render`]), whatever template prints it.

use crate::escape;
use crate::routing::{self, Dispatch};
use crate::script::{Promise, When};
use gatefold_compiler::ir::policy::{
    Cors, CorsOrigin, HeaderTransform, MockBody, Policy, Redirect, RedirectLocation, RedirectPath,
};
use gatefold_compiler::ir::{
    Balance, HeaderName, Ir, OriginHost, PolicyId, PolicyKind, ProxyPlan, Route, Secret, Upstream,
    UpstreamPath, ValidIr,
};
use gatefold_compiler::target::Options;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One word of a directive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "k", content = "v", rename_all = "kebab-case")]
pub enum Word {
    /// A token gatefold generated (keyword, number, name): written bare.
    Raw(String),
    /// A value gatefold generated that may reference variables: quoted,
    /// variables kept.
    Gen(String),
    /// A user string where nginx expands no variables.
    Lit(String),
    /// A user string where nginx expands variables: `$` kept literal.
    Val(String),
}

impl Word {
    pub fn render(&self) -> String {
        match self {
            // Fail safe: a raw word that could end a directive is quoted.
            Word::Raw(s)
                if s.is_empty()
                    || s.contains(|c: char| c.is_whitespace() || ";{}\"'#\\".contains(c)) =>
            {
                escape::literal(s)
            }
            Word::Raw(s) => s.clone(),
            Word::Gen(s) => escape::literal(s),
            Word::Lit(s) => escape::literal(s),
            Word::Val(s) => escape::value(s),
        }
    }
}

pub(crate) fn raw(s: impl Into<String>) -> Word {
    Word::Raw(s.into())
}
pub(crate) fn gen(s: impl Into<String>) -> Word {
    Word::Gen(s.into())
}

/// A directive or a block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    note: Option<String>,
    words: Vec<Word>,
    block: bool,
    body: Vec<Item>,
    gap: bool,
}

impl Item {
    pub fn d(words: Vec<Word>) -> Item {
        Item {
            note: None,
            words,
            block: false,
            body: Vec::new(),
            gap: false,
        }
    }
    pub fn b(words: Vec<Word>, body: Vec<Item>) -> Item {
        Item {
            note: None,
            words,
            block: true,
            body,
            gap: true,
        }
    }
    pub fn note(mut self, note: impl Into<String>) -> Item {
        self.note = Some(note.into());
        self
    }
    /// Appends the item as lines, its body indented one level deeper.
    /// (Flat lines keep the templates free of recursion, whose cost grows
    /// with the depth of the data in handlebars.)
    fn flatten(self, depth: usize, out: &mut Vec<Line>) {
        let indent = "    ".repeat(depth);
        let gap = self.gap && depth <= 1;
        if !self.block {
            out.push(Line {
                indent,
                note: self.note,
                words: self.words,
                end: ";",
                gap,
            });
            return;
        }
        out.push(Line {
            indent: indent.clone(),
            note: self.note,
            words: self.words,
            end: " {",
            gap: false,
        });
        for i in self.body {
            i.flatten(depth + 1, out);
        }
        out.push(Line {
            indent,
            note: None,
            words: Vec::new(),
            end: "}",
            gap,
        });
    }
}

/// One line of the configuration: indent, words, then `;`, ` {` or (a
/// line of its own) `}`.
#[derive(Clone, Debug)]
pub struct Line {
    indent: String,
    note: Option<String>,
    words: Vec<Word>,
    end: &'static str,
    gap: bool,
}

impl Line {
    /// Appends the line's text: each word quoted by [`Word::render`], the
    /// note as a comment that stays on its line.
    fn write(&self, out: &mut String) {
        if let Some(note) = &self.note {
            out.push_str(&self.indent);
            out.push_str("# ");
            out.push_str(&crate::render::comment(note));
            out.push('\n');
        }
        out.push_str(&self.indent);
        for (i, w) in self.words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&w.render());
        }
        out.push_str(self.end);
        out.push('\n');
        if self.gap {
            out.push('\n');
        }
    }
}

/// The exact location a dispatch target `name` (what `$gf_entry` holds) is
/// reached at: `rewrite` to `gf-NAME` finds it in nginx's location tree in
/// O(log n), where a named location is found by a linear scan over all of
/// them. No client's URI can reach it: those always begin with `/`.
fn entry_location(name: &str) -> Vec<Word> {
    vec![
        raw("location"),
        raw("="),
        Word::Lit(format!("{ENTRY_PREFIX}{name}")),
    ]
}

/// What the one `location /` rewrites every URI to (see [`entry_location`]).
const ENTRY_PREFIX: &str = "gf-";

/// `proxy_ignore_headers` with every `X-Accel-*` header nginx would act on.
const IGNORED_UPSTREAM_HEADERS: [&str; 6] = [
    "proxy_ignore_headers",
    "X-Accel-Redirect",
    "X-Accel-Expires",
    "X-Accel-Limit-Rate",
    "X-Accel-Buffering",
    "X-Accel-Charset",
];

/// A directive from raw words: `dr(["proxy_http_version", "1.1"])`.
pub fn dr<const N: usize>(words: [&str; N]) -> Item {
    Item::d(words.iter().map(|w| raw(*w)).collect())
}

/// What the templates read.
#[derive(Debug, Serialize)]
pub struct Model {
    name: String,
    hash: String,
    modules: Vec<&'static str>,
    env: Vec<String>,
    /// Whether the config includes the prefix's `resolver.conf` (see
    /// [`crate::dns`]).
    resolver: bool,
    /// The directives inside `http {}`, rendered line by line with
    /// [`Word::render`] (see `render.rs` for why not by a template loop).
    http: String,
    /// Whether some route runs the Lua access phase (`access.lua`).
    #[serde(skip)]
    pub lua: bool,
    /// The `match` condition sets, flag by flag (`conditions.lua`).
    #[serde(skip)]
    pub conditions: Vec<gatefold_compiler::ir::Conditions>,
    /// Whether some route verifies tokens (`jwt.lua`).
    #[serde(skip)]
    pub jwt: bool,
    /// Whether some route answers with `redirect.lua`.
    #[serde(skip)]
    pub redirects: bool,
    /// Per route index: what the Lua access phase does there.
    #[serde(skip)]
    pub lua_routes: BTreeMap<usize, LuaRoute>,
    /// Per bucket, what `miss.lua` tests for a 405's `allow`: the methods
    /// in `allow` order, each with the regexes (over `"$host $gf_path"`,
    /// after `$gf_conds ` with conditions) of the routes taking it.
    #[serde(skip)]
    pub misses: Vec<Vec<(gatefold_compiler::ir::Method, Vec<String>)>>,
}

/// A route's work in the Lua access phase.
#[derive(Debug, Default, Clone)]
pub struct LuaRoute {
    pub auth: Vec<PolicyId>,
    pub realm: Option<String>,
    pub acl: Option<PolicyId>,
    pub rate: Option<PolicyId>,
    /// `request-headers` `add` (with `set`/`remove` of the same names).
    pub headers: Option<HeaderTransform>,
    /// The named location answering after the access phase (mock/redirect).
    pub answer: Option<String>,
    /// The health-checked upstream the route calls: its name, or the
    /// variable a traffic-split sets to `gf_up_NAME`.
    pub health: Option<HealthOf>,
    /// The route holds a script (`lua/gatefold/scripts/rN.lua`): the
    /// response headers its header filter adds.
    pub script: Option<crate::script::Promises>,
}

/// Which upstream's health a route checks before proxying.
#[derive(Debug, Clone)]
pub enum HealthOf {
    Upstream(String),
    SplitVar(String),
}

const NEEDS_LUA: [PolicyKind; 6] = [
    // Phase 8 runs in access.lua (script.rs).
    PolicyKind::Script,
    PolicyKind::KeyAuth,
    PolicyKind::BasicAuth,
    PolicyKind::Jwt,
    PolicyKind::Acl,
    PolicyKind::RateLimit,
];

fn json_error(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// The largest body `cache` stores (the reference gateway's bound).
const CACHE_MAX_ENTRY_BYTES: u64 = 1 << 20;

/// Where nginx's own 400 and 405 go (see `server_defaults`).
const ERROR_URI: &str = "/.gatefold-error";

/// Every gateway-made error answer, by status.
const ERRORS: [(u16, &str, &str); 7] = [
    // nginx's own refusals of malformed requests (HTML otherwise).
    (400, "gf_400", "bad request"),
    (408, "gf_408", "request timeout"),
    (403, "gf_403", "forbidden"),
    (413, "gf_413", "payload too large"),
    (502, "gf_502", "bad gateway"),
    (504, "gf_504", "upstream timeout"),
    (500, "gf_500", "internal error"),
];

struct Builder<'a> {
    ir: &'a Ir,
    maps: Vec<Item>,
    /// Dedupes maps by what they compute: key -> variable.
    made: BTreeMap<String, String>,
    /// Shared 502/504 answers by their content -> named location.
    answers: HashMap<Vec<Item>, String>,
    counter: usize,
    locations: Vec<Item>,
    /// The exact locations answering a bucket's misses (405 or 404).
    entries: Vec<Item>,
    /// The entries of the map from the path's first segment to the bucket's
    /// target variable.
    bucket_entries: Vec<Item>,
    lua_routes: BTreeMap<usize, LuaRoute>,
    /// What `miss.lua` tests, per bucket (see [`Model::misses`]).
    misses: Vec<Vec<(gatefold_compiler::ir::Method, Vec<String>)>>,
    /// Whether some route has `match` conditions.
    conditions: bool,
}

impl Model {
    pub fn build(ir: &ValidIr, options: &Options) -> Model {
        let ir: &Ir = ir;
        let lua_routes_needed = ir.routes.iter().any(|r| route_needs_lua(ir, r));
        let mut env = BTreeSet::new();
        if lua_routes_needed {
            for c in ir.consumers.values() {
                for Secret::Env(k) in &c.keys {
                    env.insert(k.clone());
                }
                if let Some(b) = &c.basic {
                    let Secret::Env(p) = &b.password;
                    env.insert(p.clone());
                }
            }
            for inst in ir.policies.values() {
                use gatefold_compiler::ir::policy::{JwtKey, PublicKey};
                if let Policy::Jwt(j) = &inst.policy {
                    match &j.key {
                        JwtKey::Hs256 {
                            secret: Secret::Env(k),
                        }
                        | JwtKey::Rs256(PublicKey::Env(k))
                        | JwtKey::Es256(PublicKey::Env(k)) => {
                            env.insert(k.clone());
                        }
                        JwtKey::Rs256(PublicKey::File { .. })
                        | JwtKey::Es256(PublicKey::File { .. }) => {}
                    }
                }
            }
        }
        let mut b = Builder {
            ir,
            maps: Vec::new(),
            made: BTreeMap::new(),
            answers: HashMap::new(),
            counter: 0,
            locations: Vec::new(),
            entries: Vec::new(),
            bucket_entries: Vec::new(),
            lua_routes: BTreeMap::new(),
            misses: Vec::new(),
            conditions: false,
        };
        let dispatch = routing::dispatch(ir);
        let mut http = b.preamble(lua_routes_needed);
        http.extend(b.upstreams());
        b.dispatch_maps(&dispatch);
        for (i, route) in ir.routes.iter().enumerate() {
            b.route(i, route, &dispatch);
        }
        let servers = b.servers(options);
        http.append(&mut b.maps);
        http.extend(servers);
        let mut lines = Vec::new();
        for item in http {
            item.flatten(1, &mut lines);
        }
        Model {
            name: ir.gateway.name.to_string(),
            hash: ir.hash.to_string(),
            modules: crate::LUA_MODULES.to_vec(),
            env: env.into_iter().collect(),
            resolver: crate::dns::uses_resolver(ir),
            http: {
                let mut text = String::with_capacity(lines.len() * 48);
                for l in &lines {
                    l.write(&mut text);
                }
                text
            },
            lua: lua_routes_needed,
            conditions: dispatch.conditions.clone(),
            jwt: ir
                .routes
                .iter()
                .any(|r| r.policy_id(PolicyKind::Jwt).is_some()),
            redirects: ir
                .policies
                .values()
                .any(|p| matches!(p.policy, Policy::Redirect(_))),
            lua_routes: b.lua_routes,
            misses: b.misses,
        }
    }
}

/// Whether `r` may authenticate by a key in the query (which access.lua
/// removes from the query).
fn query_key_auth(ir: &Ir, r: &Route) -> bool {
    r.lowered.auth.as_ref().is_some_and(|a| {
        a.methods.iter().any(|id| {
            matches!(
                ir.policies.get(id).map(|p| &p.policy),
                Some(Policy::KeyAuth(k)) if k.location == gatefold_compiler::ir::policy::KeyLocation::Query
            )
        })
    })
}

fn route_needs_lua(ir: &Ir, r: &Route) -> bool {
    r.chain.iter().any(|id| NEEDS_LUA.contains(&id.kind))
        || matches!(ir.policy(r, PolicyKind::RequestHeaders), Some(Policy::RequestHeaders(h)) if !h.add.is_empty())
        || health_checked_route(ir, r)
}

/// Whether `up` gets Lua's active health checks: it has `health` and every
/// target is an address (the Lua balancer and checks connect to
/// addresses, and nginx resolves no name for Lua; see [`crate::dns`] for
/// how a name is reached).
pub fn health_checked(up: &Upstream) -> bool {
    up.health.is_some()
        && up
            .targets
            .iter()
            .all(|t| matches!(t.url.host, OriginHost::Ip(_)))
}

/// Whether a route that proxies may call a health-checked upstream (the
/// access phase answers 503 when it has no target up).
fn health_checked_route(ir: &Ir, r: &Route) -> bool {
    let answers =
        r.policy_id(PolicyKind::Mock).is_some() || r.policy_id(PolicyKind::Redirect).is_some();
    !answers
        && r.lowered.proxy.as_ref().is_some_and(|p| {
            p.destinations()
                .iter()
                .any(|d| health_checked(&ir.upstreams[&d.upstream]))
        })
}

/// `5s`, `250ms`: nginx's time units.
fn time(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl Builder<'_> {
    fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("gf_{stem}{}", self.counter)
    }

    /// A map (made once per `dedupe` key) and its variable. `entries` is
    /// called only for a new map: most keys repeat on every route.
    fn map(
        &mut self,
        dedupe: String,
        stem: &str,
        source: Word,
        entries: impl FnOnce() -> Vec<(Word, Word)>,
        default: Word,
    ) -> String {
        if let Some(v) = self.made.get(&dedupe) {
            return v.clone();
        }
        let var = self.fresh(stem);
        let mut body = vec![Item::d(vec![raw("default"), default])];
        body.extend(entries().into_iter().map(|(k, v)| Item::d(vec![k, v])));
        self.maps.push(Item::b(
            vec![raw("map"), source, raw(format!("${var}"))],
            body,
        ));
        self.made.insert(dedupe, var.clone());
        var
    }

    fn preamble(&mut self, lua: bool) -> Vec<Item> {
        let mut out = vec![
            dr(["default_type", "application/octet-stream"]),
            dr(["server_tokens", "off"]),
            dr(["access_log", "logs/access.log"]),
            dr(["client_body_temp_path", "tmp/client_body"]),
            dr(["proxy_temp_path", "tmp/proxy"]),
            dr(["fastcgi_temp_path", "tmp/fastcgi"]),
            dr(["uwsgi_temp_path", "tmp/uwsgi"]),
            dr(["scgi_temp_path", "tmp/scgi"]),
            dr(["absolute_redirect", "off"]),
            dr(["recursive_error_pages", "on"]),
            dr(["proxy_http_version", "1.1"]),
            dr(["proxy_intercept_errors", "off"]),
            // An upstream must not steer nginx: `X-Accel-Redirect` would
            // serve an internal location (the routes' own), the others
            // change buffering, rate and caching. The spec passes an
            // upstream's headers through and acts on none of them.
            dr(IGNORED_UPSTREAM_HEADERS),
            // Every map and route adds variables: room for them all.
            dr(["variables_hash_max_size", "65536"]),
            dr(["variables_hash_bucket_size", "128"]),
            // A literal dollar for complex values (geo values are never
            // interpolated); see `escape::value`.
            Item::b(
                vec![raw("geo"), raw("$gf_dollar")],
                vec![Item::d(vec![raw("default"), Word::Lit("$".into())])],
            )
            .note("`${gf_dollar}` is a literal `$` inside values that expand variables"),
        ];
        // The client's host as the spec reads it: the request line's
        // authority (absolute form), else the `host` header (HTTP/2's
        // `:authority`); nginx's $host would be lowercased and portless.
        out.push(Item::b(
            vec![raw("map"), raw("$request"), raw("$gf_client_host")],
            vec![
                Item::d(vec![raw("default"), raw("$http_host")]),
                Item::d(vec![
                    gen("~^[^ ]+ [hH][tT][tT][pP][sS]?://(?<gf_authority>[^/?# ]*)"),
                    raw("$gf_authority"),
                ]),
            ],
        ));
        if self.ir.gateway.baseline.request_id {
            // Keep a well-formed incoming id, else a v4 UUID made from $request_id.
            out.push(Item::b(
                vec![raw("map"), raw("$request_id"), raw("$gf_uuid")],
                vec![
                    Item::d(vec![raw("default"), raw("$request_id")]),
                    Item::d(vec![
                        gen("~^(.{8})(.{4}).(.{3}).(.{3})(.{12})$"),
                        gen("$1-$2-4$3-a$4-$5"),
                    ]),
                ],
            ));
            out.push(Item::b(
                vec![raw("map"), raw("$http_x_request_id"), raw("$gf_request_id")],
                vec![
                    Item::d(vec![raw("default"), raw("$gf_uuid")]),
                    Item::d(vec![
                        gen("~^[A-Za-z0-9._:-]{1,128}$"),
                        raw("$http_x_request_id"),
                    ]),
                ],
            ));
        }
        // Lua is always loaded: the path every route matches is computed
        // there (lua/path.lua).
        out.push(Item::d(vec![
            raw("lua_package_path"),
            gen("$prefix/lua/?.lua;;"),
        ]));
        if lua {
            out.push(dr(["lua_shared_dict", "gf_rate", "16m"]));
        }
        if crate::dns::uses_resolver(self.ir) {
            // The machine's DNS servers: not the spec's, so not compiled in.
            out.push(
                dr(["include", &format!("../{}", crate::dns::RESOLVER_FILE)]).note(format!(
                    "host names of upstreams, resolved per request: PREFIX/{} holds `resolver ADDRESS ...;` (gatefold up writes it from /etc/resolv.conf)",
                    crate::dns::RESOLVER_FILE
                )),
            );
            // The reference gateway bounds resolving and connecting by
            // `connect`; so does each here (routes repeat it when theirs differs).
            out.push(Item::d(vec![
                raw("resolver_timeout"),
                raw(time(self.ir.gateway.baseline.timeouts.connect.millis)),
            ]));
        }
        if self.ir.upstreams.values().any(health_checked) {
            out.push(dr(["lua_shared_dict", "gf_health", "1m"]));
            out.push(
                Item::d(vec![
                    raw("init_worker_by_lua"),
                    gen("require(\"gatefold.health\").start()"),
                ])
                .note("active health checks (lua/gatefold/health.lua)"),
            );
        }
        if !self.ir.gateway.baseline.server_header {
            // nginx always writes `server: nginx` unless the header exists:
            // made, then cleared, it is left out.
            out.push(
                Item::d(vec![
                    raw("header_filter_by_lua"),
                    gen("ngx.header[\"Server\"] = \"-\"; ngx.header[\"Server\"] = nil"),
                ])
                .note("baseline server-header false: no `server` header"),
            );
        }
        out
    }

    /// What `proxy_pass` names for upstream `name`: its `upstream {}`
    /// block, or (resolved per request, see [`crate::dns`]) its target's
    /// `host:port`.
    fn dest(&self, name: &gatefold_compiler::ir::Name) -> String {
        let up = &self.ir.upstreams[name];
        if crate::dns::per_request(up) {
            let url = &up.targets[0].url;
            format!("{}:{}", url.host, url.port)
        } else {
            format!("gf_up_{name}")
        }
    }

    fn upstreams(&mut self) -> Vec<Item> {
        let mut out = Vec::new();
        for (name, up) in &self.ir.upstreams {
            if crate::dns::per_request(up) {
                // No block: nginx would resolve its name at start-up.
                continue;
            }
            let mut body = Vec::new();
            match &up.balance {
                Balance::RoundRobin => {}
                Balance::LeastRequest => body.push(dr(["least_conn"])),
                Balance::HashHeader(h) => body.push(Item::d(vec![
                    raw("hash"),
                    raw(format!("$http_{}", header_var(h))),
                    raw("consistent"),
                ])),
            }
            if health_checked(up) {
                // Lua picks a target that is up (lua/health.lua).
                body.clear();
                body.push(
                    dr(["server", "0.0.0.1"]).note("a placeholder: the balancer below picks"),
                );
                body.push(dr(["balancer_by_lua_file", "lua/gatefold/balance.lua"]));
            } else {
                for t in &up.targets {
                    body.push(Item::d(vec![
                        raw("server"),
                        Word::Lit(format!("{}:{}", t.url.host, t.url.port)),
                        raw(format!("weight={}", t.weight.max(1))),
                        raw("max_fails=0"),
                    ]));
                }
            }
            body.push(dr(["keepalive", "32"]));
            out.push(
                Item::b(vec![raw("upstream"), raw(format!("gf_up_{name}"))], body)
                    .note(format!("upstream `{name}`")),
            );
        }
        out
    }

    /// The maps of each bucket and the locations that enter them.
    fn dispatch_maps(&mut self, d: &Dispatch) {
        // The condition flags lead every source (see `routing`).
        let pre = if d.conditions.is_empty() {
            ""
        } else {
            self.conditions = true;
            "$gf_conds "
        };
        for (k, b) in d.buckets.iter().enumerate() {
            let v = |name: &str| format!("$gf_{name}_b{k}");
            // Route choice: first regex in IR order wins.
            let entries = b
                .routes
                .iter()
                .map(|(re, i)| (gen(re.clone()), raw(format!("r{i}"))))
                .collect();
            let note = match &b.first {
                None => "paths whose first segment no route names: the first entry that matches wins (IR order)".to_string(),
                Some(f) => format!("paths under /{}: the first entry that matches wins (IR order)", f.replace(['\n', '\r'], " ")),
            };
            self.maps.push(
                map_item(
                    &format!("{pre}$host $gf_method $gf_path"),
                    &v("route"),
                    entries,
                    raw(format!("gf_miss_b{k}")),
                )
                .note(note),
            );
            // A miss (no route takes host, method and path) is answered by
            // miss.lua: 405 with the union of the methods of the routes
            // taking host and path, else 404. In Lua rather than a map per
            // method: nginx gives every request a zeroed slot for every
            // variable of the configuration, and those maps (four per
            // bucket) were most of them at 10,000 routes.
            self.misses
                .push(b.allow.iter().map(|(m, res)| (*m, res.clone())).collect());
            let target = if b.preflight.is_empty() {
                v("route")
            } else {
                let entries = b
                    .preflight
                    .iter()
                    .map(|(re, x)| (gen(re.clone()), x.clone().map(raw).unwrap_or_else(empty)))
                    .collect();
                self.maps.push(
                    map_item(&format!("{pre}$host $http_access_control_request_method $gf_path"), &v("pre_route"), entries, empty())
                        .note("CORS preflights: routed by the method they ask about, when that route has cors"),
                );
                self.maps.push(map_item(
                    &v("pre_route"),
                    &v("pre"),
                    vec![(gen("~."), raw(v("pre_route")))],
                    raw(v("route")),
                ));
                self.maps.push(map_item(
                    "$gf_method|$http_origin|$http_access_control_request_method",
                    &v("target"),
                    vec![(gen("~^OPTIONS\\|.+\\|.+$"), raw(v("pre")))],
                    raw(v("route")),
                ));
                v("target")
            };
            // The bucket: its target variable, by the path's first segment.
            let entry = match &b.first {
                None => Item::d(vec![raw("default"), raw(target)]),
                Some(f) => Item::d(vec![Word::Lit(map_key(f)), raw(target)]),
            };
            self.bucket_entries.push(entry);
            // Reached by a rewrite: nginx would check the body size again.
            // `add_header` skips the empty `allow` of a 404.
            let mut miss = vec![
                dr(["default_type", "application/json"]),
                dr(["client_max_body_size", "0"]),
                Item::d(vec![raw("set"), raw("$gf_allow"), Word::Lit(String::new())]),
            ];
            miss.extend(self.common_headers());
            miss.push(dr(["add_header", "allow", "$gf_allow", "always"]));
            miss.push(Item::d(vec![
                raw("content_by_lua"),
                Word::Lit(format!("return require(\"gatefold.miss\").answer({k})")),
            ]));
            self.entries
                .push(Item::b(entry_location(&format!("gf_miss_b{k}")), miss));
        }
        // The method as the client sent it: nginx's own 405 for TRACE goes
        // through error_page, which turns `$request_method` into GET.
        self.maps.push(map_item(
            "$request",
            "$gf_method",
            vec![(gen("~^(?<gf_m>[^ ]+)"), raw("$gf_m"))],
            raw("$request_method"),
        ));
        self.maps.push(map_item(
            "$status",
            "$gf_nginx_400",
            vec![(gen("400"), raw("1"))],
            empty(),
        ));
        self.maps.push(map_item(
            "$gf_path",
            "$gf_bad_path",
            vec![(gen(""), raw("1"))],
            empty(),
        ));
        // The bucket by the first segment (exact strings: a hash lookup).
        self.maps.push(
            map_item(
                "$gf_path",
                "$gf_first",
                vec![(gen("~^/(?<gf_f>[^/]*)"), raw("$gf_f"))],
                empty(),
            )
            .note("the first segment of the normalized path"),
        );
        let mut body = std::mem::take(&mut self.bucket_entries);
        // `default` first, as map_item writes it.
        body.sort_by_key(|i| !matches!(i.words.first(), Some(Word::Raw(w)) if w == "default"));
        self.maps.push(Item::b(
            vec![raw("map"), raw("$gf_first"), raw("$gf_entry")],
            body,
        ));
    }

    /// The servers: the plain listener (or its redirect to https) and,
    /// with `gateway.tls`, one TLS server per reachable certificate, all
    /// with the same locations.
    fn servers(&mut self, options: &Options) -> Vec<Item> {
        let locations = self.locations_all();
        let plain = match options.listen {
            Some(a) => a.to_string(),
            None => self.ir.gateway.listen.to_string(),
        };
        let mut out = Vec::new();
        let Some(tls) = &self.ir.gateway.tls else {
            let mut body = vec![Item::d(vec![
                raw("listen"),
                Word::Lit(plain.clone()),
                raw("default_server"),
            ])];
            body.push(dr(["server_name", "_"]));
            body.extend(locations);
            out.push(Item::b(vec![raw("server")], body));
            out.push(self.version_server(&plain));
            return out;
        };
        let (tls_addr, tls_port) = match options.listen_tls {
            Some(a) => (a.to_string(), a.port()),
            None => (tls.listen.to_string(), tls.listen),
        };
        let mut body = vec![Item::d(vec![
            raw("listen"),
            Word::Lit(plain.clone()),
            raw("default_server"),
        ])];
        body.push(dr(["server_name", "_"]));
        if tls.redirect_http {
            let port = if tls_port == 443 {
                String::new()
            } else {
                format!(":{tls_port}")
            };
            body.push(Item::d(vec![
                raw("return"),
                raw("308"),
                gen(format!("https://$host{port}$request_uri")),
            ]));
        } else {
            body.extend(locations.clone());
        }
        out.push(Item::b(vec![raw("server")], body).note("plain HTTP"));
        let misdirected = self.misdirected(tls);
        // The certificate for an SNI name is the first whose names cover it,
        // else the first: a name an earlier certificate covers is dropped
        // from later ones, and `*.x` (one label, as TLS reads it) is a regex.
        let mut earlier: Vec<&str> = Vec::new();
        for (i, cert) in tls.certificates.iter().enumerate() {
            let names: Vec<&String> = cert
                .names
                .iter()
                .filter(|n| {
                    !earlier
                        .iter()
                        .any(|e| gatefold_compiler::ir::tls::name_covers_name(e, n))
                })
                .collect();
            earlier.extend(cert.names.iter().map(String::as_str));
            if i > 0 && names.is_empty() {
                continue;
            }
            let mut listen = vec![
                raw("listen"),
                Word::Lit(tls_addr.clone()),
                raw("ssl"),
                raw("http2"),
            ];
            if i == 0 {
                listen.push(raw("default_server"));
            }
            let mut body = vec![Item::d(listen)];
            let mut server_name = vec![raw("server_name")];
            if names.is_empty() {
                server_name.push(raw("_"));
            }
            for n in names {
                match n.strip_prefix("*.") {
                    Some(suffix) => server_name
                        .push(gen(format!("~^[^.]+\\.{}$", crate::escape::regex(suffix)))),
                    None => server_name.push(Word::Lit(n.clone())),
                }
            }
            body.push(Item::d(server_name));
            body.push(Item::d(vec![
                raw("ssl_certificate"),
                Word::Lit(format!("tls/cert-{i}.pem")),
            ]));
            let key = match &cert.key {
                gatefold_compiler::ir::tls::TlsKey::File(path) => path.clone(),
                gatefold_compiler::ir::tls::TlsKey::Env(_) => format!("../{}", tls_key_file(i)),
            };
            body.push(Item::d(vec![raw("ssl_certificate_key"), Word::Lit(key)]));
            // TLS 1.2 and 1.3, as the reference gateway, Envoy and Kong
            // serve: nginx 1.22's default leaves 1.3 out.
            body.push(dr(["ssl_protocols", "TLSv1.2", "TLSv1.3"]));
            body.push(refuse(&misdirected, 421, "misdirected request"));
            body.extend(locations.clone());
            out.push(Item::b(vec![raw("server")], body).note(format!("TLS, certificate {i}")));
        }
        out.push(self.version_server(&plain));
        out
    }

    /// The server answering which config this is (the IR's content hash)
    /// at [`crate::VERSION_PATH`], for `gatefold apply` (verify) and
    /// `gatefold drift`: on the plain listener, reached only with the
    /// reserved host name [`crate::VERSION_HOST`] (`.invalid` is never a
    /// real host, RFC 2606), and only from loopback clients.
    fn version_server(&self, listen: &str) -> Item {
        Item::b(
            vec![raw("server")],
            vec![
                Item::d(vec![raw("listen"), Word::Lit(listen.to_string())]),
                Item::d(vec![raw("server_name"), raw(crate::VERSION_HOST)]),
                dr(["allow", "127.0.0.1"]),
                dr(["allow", "::1"]),
                dr(["deny", "all"]),
                dr(["access_log", "off"]),
                Item::b(
                    vec![raw("location"), raw("="), raw(crate::VERSION_PATH)],
                    vec![
                        dr(["default_type", "text/plain"]),
                        Item::d(vec![
                            raw("return"),
                            raw("200"),
                            Word::Val(self.ir.hash.to_string()),
                        ]),
                    ],
                ),
                Item::b(vec![raw("location"), raw("/")], vec![dr(["return", "404"])]),
            ],
        )
        .note("which config this is, for gatefold's fleet sync: loopback clients only")
    }

    /// A variable set when the request's host is not covered by the
    /// certificate its connection got (by SNI: the first covering, else
    /// the first): 421. nginx picks the server block by `host` after the
    /// handshake, so the certificate is found from `$ssl_server_name`.
    fn misdirected(&mut self, tls: &gatefold_compiler::ir::tls::Tls) -> String {
        let name_re = |n: &str| match n.strip_prefix("*.") {
            Some(suffix) => format!("[^.]+\\.{}", escape::regex(&suffix.to_ascii_lowercase())),
            None => escape::regex(&n.to_ascii_lowercase()),
        };
        let mut by_sni = Vec::new();
        let mut covered = Vec::new();
        for (i, cert) in tls.certificates.iter().enumerate() {
            for n in &cert.names {
                by_sni.push((gen(format!("~*^{}$", name_re(n))), raw(i.to_string())));
                covered.push((gen(format!("~*^{i} {}$", name_re(n))), empty()));
            }
        }
        let cert = self.fresh("cert");
        let mut body = vec![Item::d(vec![raw("default"), raw("0")])];
        body.extend(by_sni.into_iter().map(|(k, v)| Item::d(vec![k, v])));
        self.maps.push(
            Item::b(
                vec![raw("map"), raw("$ssl_server_name"), raw(format!("${cert}"))],
                body,
            )
            .note("the certificate a TLS connection got: the first covering its SNI name, else the first"),
        );
        let var = self.fresh("misdirected");
        self.maps.push(map_item(
            &format!("${cert} $host"),
            &format!("${var}"),
            covered,
            raw("1"),
        ));
        format!("${var}")
    }

    fn locations_all(&mut self) -> Vec<Item> {
        let mut body = self.server_defaults();
        // The spec's normalized path, from the raw request target (server
        // rewrite phase, before any location); "" is a bad path.
        body.push(
            Item::d(vec![
                raw("set_by_lua"),
                raw("$gf_path"),
                gen("return require(\"gatefold.path\").current()"),
            ])
            .note("the spec's normalized path (nginx's $uri decodes %2F and every other escape)"),
        );
        body.push(refuse("$gf_bad_path", 400, "bad request"));
        if self.conditions {
            body.push(
                Item::d(vec![
                    raw("set_by_lua"),
                    raw("$gf_conds"),
                    gen("return require(\"gatefold.conditions\").flags()"),
                ])
                .note("one flag per `match` condition set: 1 when every condition holds (lua/gatefold/conditions.lua)"),
            );
        }
        // Every request enters here and jumps to the location the dispatch
        // maps name; nginx's own location rules decide nothing. (No body
        // limit here: nginx checks content-length against the location it
        // finds, before any route's own checks.)
        let jump = vec![
            dr(["client_max_body_size", "0"]),
            Item::d(vec![
                raw("rewrite"),
                raw("^"),
                raw(format!("{ENTRY_PREFIX}$gf_entry")),
                raw("last"),
            ]),
        ];
        body.push(Item::b(vec![raw("location"), raw("/")], jump.clone()));
        // nginx's own 400 (with `$status` 400) answers JSON; anything else
        // here (a client asking for this path, a TRACE) is dispatched.
        let mut error = vec![refuse("$gf_nginx_400", 400, "bad request")];
        error.extend(jump);
        body.push(Item::b(
            vec![raw("location"), raw("="), Word::Lit(ERROR_URI.into())],
            error,
        ));
        body.append(&mut self.entries);
        let common = self.common_headers();
        for (code, name, message) in ERRORS {
            let mut err = vec![dr(["default_type", "application/json"])];
            err.extend(common.clone());
            err.push(Item::d(vec![
                raw("return"),
                raw(code.to_string()),
                Word::Val(json_error(message)),
            ]));
            body.push(Item::b(vec![raw("location"), raw(format!("@{name}"))], err));
        }
        body.append(&mut self.locations);
        body
    }

    /// What every proxied request gets (the host header of the route's
    /// upstream is `$gf_host`, which each route sets).
    fn base_request_headers(&self) -> BTreeMap<String, Word> {
        let mut set: BTreeMap<String, Word> = BTreeMap::new();
        set.insert("host".into(), raw("$gf_host"));
        set.insert("x-forwarded-for".into(), raw("$proxy_add_x_forwarded_for"));
        set.insert("x-forwarded-host".into(), raw("$gf_client_host"));
        set.insert("x-forwarded-proto".into(), raw("$scheme"));
        set.insert("forwarded".into(), empty());
        set.insert("x-real-ip".into(), empty());
        // Hop-by-hop headers stay on this hop (nginx drops only some).
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
        ] {
            set.insert(name.into(), empty());
        }
        if self.ir.gateway.baseline.request_id {
            set.insert("x-request-id".into(), raw("$gf_request_id"));
        }
        set
    }

    /// Directives every location inherits from the server unless it
    /// repeats them (nginx inherits these all or nothing).
    fn server_defaults(&self) -> Vec<Item> {
        let base = &self.ir.gateway.baseline;
        let mut out = vec![dr(["default_type", "application/json"])];
        // Declared for every request; each proxying route sets its own.
        out.push(Item::d(vec![raw("set"), raw("$gf_host"), empty()]));
        // The consumer phase 4 identified (access.lua sets it), for cache keys.
        out.push(Item::d(vec![raw("set"), raw("$gf_consumer"), empty()]));
        // A request nginx refuses before its URI is parsed cannot enter a
        // named location: 400 goes to a URI. So does nginx's own 405 for
        // TRACE (with `=`: the route's answer decides the status), which
        // the spec routes like any method.
        out.extend(
            Self::error_pages()
                .into_iter()
                .filter(|i| !matches!(i.words.get(1), Some(Word::Raw(c)) if c == "400")),
        );
        out.push(Item::d(vec![
            raw("error_page"),
            raw("400"),
            Word::Lit(ERROR_URI.into()),
        ]));
        out.push(Item::d(vec![
            raw("error_page"),
            raw("405"),
            raw("="),
            Word::Lit(ERROR_URI.into()),
        ]));
        out.push(Item::d(vec![
            raw("client_max_body_size"),
            raw(base.max_body.0.to_string()),
        ]));
        out.push(Item::d(vec![
            raw("proxy_connect_timeout"),
            raw(time(base.timeouts.connect.millis)),
        ]));
        out.push(Item::d(vec![
            raw("proxy_read_timeout"),
            raw(time(base.timeouts.read.millis)),
        ]));
        out.push(Item::d(vec![
            raw("proxy_send_timeout"),
            raw(time(base.timeouts.read.millis)),
        ]));
        out.push(dr(["proxy_next_upstream", "off"]));
        out.push(dr(["proxy_method", "$gf_method"]));
        for (name, value) in self.base_request_headers() {
            out.push(Item::d(vec![
                raw("proxy_set_header"),
                Word::Lit(name),
                value,
            ]));
        }
        out.extend(self.common_headers());
        out
    }

    /// Headers on every response: the request id.
    fn common_headers(&self) -> Vec<Item> {
        if self.ir.gateway.baseline.request_id {
            vec![dr([
                "add_header",
                "x-request-id",
                "$gf_request_id",
                "always",
            ])]
        } else {
            Vec::new()
        }
    }

    fn error_pages() -> Vec<Item> {
        ERRORS
            .iter()
            .map(|(code, name, _)| {
                Item::d(vec![
                    raw("error_page"),
                    raw(code.to_string()),
                    raw(format!("@{name}")),
                ])
            })
            .collect()
    }

    fn route(&mut self, i: usize, route: &Route, d: &Dispatch) {
        let ir = self.ir;
        let policy = |k| ir.policy(route, k);
        let mut checks = Vec::new(); // rewrite-phase refusals, in phase order
        let mut headers = self.common_headers(); // add_header lines
        let mut hide = BTreeSet::new(); // proxy_hide_header names
                                        // A route with a script adds its response headers in Lua instead
                                        // (script.rs): these, in the order add_header would add them.
        let scripted = crate::script::script_of(ir, route).is_some();
        let mut promised = Vec::new();
        if ir.gateway.baseline.request_id {
            promised.push(Promise::var("x-request-id", "gf_request_id", When::Always));
            // The gateway's id replaces one the upstream answers with.
            hide.insert("x-request-id".to_string());
        }
        let stoppable = route_needs_lua(ir, route)
            || policy(PolicyKind::IpFilter).is_some()
            || route.lowered.max_body.0 > 0;
        // Phase 1: ip-filter.
        let ipf = if let Some(Policy::IpFilter(f)) = policy(PolicyKind::IpFilter) {
            let var = self.ip_filter(route.policy_id(PolicyKind::IpFilter).expect("in chain"), f);
            checks.push(refuse(&var, 403, "forbidden"));
            Some(var)
        } else {
            None
        };
        // Phase 2: cors, on actual requests (preflights have their own location).
        let cors = match policy(PolicyKind::Cors) {
            Some(Policy::Cors(c)) => {
                Some(self.cors(route.policy_id(PolicyKind::Cors).expect("in chain"), c))
            }
            _ => None,
        };
        if let Some(c) = &cors {
            for (name, var) in [
                ("access-control-allow-origin", &c.origin),
                ("vary", &c.vary),
                ("access-control-allow-credentials", &c.credentials),
                ("access-control-expose-headers", &c.expose),
            ] {
                if let Some(var) = var {
                    headers.push(dr(["add_header", name, var, "always"]));
                    promised.push(Promise::var(name, var, When::Always));
                    if name != "vary" {
                        hide.insert(name.to_string());
                    }
                }
            }
        }
        // Phase 3: body size, by content-length (chunked bodies: client_max_body_size).
        let max = route.lowered.max_body.0;
        let big = self.map(
            format!("big {max}"),
            "big",
            raw("$content_length"),
            || vec![(gen(format!("~{}", escape::greater_than(max))), raw("1"))],
            empty(),
        );
        // A route reached at its exact location (no ip-filter or cors
        // before phase 3) has its content-length checked by nginx itself
        // when the rewrite finds it (client_max_body_size, answered by
        // @gf_413): an `if` (an implicit location, each costing at
        // start-up) would repeat it.
        if max == 0 || ipf.is_some() || cors.is_some() {
            checks.push(refuse(&format!("${big}"), 413, "payload too large"));
        }
        // Phases 4-6 (and request-headers `add`): Lua.
        let answer_loc = format!("r{i}_answer");
        let has_answer =
            policy(PolicyKind::Mock).is_some() || policy(PolicyKind::Redirect).is_some();
        let lua = route_needs_lua(ir, route);
        let gated = stoppable
            && (policy(PolicyKind::ResponseHeaders).is_some()
                || policy(PolicyKind::Deprecation).is_some());
        let mut body = Vec::new();
        if gated {
            body.push(Item::d(vec![raw("set"), raw("$gf_stop"), empty()]));
        }
        if max != ir.gateway.baseline.max_body.0 {
            body.push(Item::d(vec![
                raw("client_max_body_size"),
                raw(max.to_string()),
            ]));
        }
        body.extend(checks);
        if lua {
            let rate = route.policy_id(PolicyKind::RateLimit).cloned();
            if rate.is_some() {
                for (h, v) in [
                    ("x-ratelimit-limit", "$gf_rl_limit"),
                    ("x-ratelimit-remaining", "$gf_rl_remaining"),
                    ("x-ratelimit-reset", "$gf_rl_reset"),
                ] {
                    body.push(Item::d(vec![raw("set"), raw(v), empty()]));
                    headers.push(dr(["add_header", h, v, "always"]));
                    promised.push(Promise::var(h, v, When::Always));
                    hide.insert(h.to_string());
                }
            }
            body.push(Item::d(vec![
                raw("set"),
                raw("$gf_route_index"),
                raw(i.to_string()),
            ]));
            // access.lua says when removing a query key left no query.
            if query_key_auth(ir, route) {
                body.push(Item::d(vec![raw("set"), raw("$gf_query_gone"), empty()]));
            }
            body.extend(crate::script::route_items(ir, route));
            body.push(dr(["access_by_lua_file", "lua/gatefold/access.lua"]));
            let add_headers = match policy(PolicyKind::RequestHeaders) {
                Some(Policy::RequestHeaders(h)) if !h.add.is_empty() => Some(h.clone()),
                _ => None,
            };
            let health = self.health_of(route);
            self.lua_routes.insert(
                i,
                LuaRoute {
                    auth: route
                        .lowered
                        .auth
                        .as_ref()
                        .map(|a| a.methods.clone())
                        .unwrap_or_default(),
                    realm: route.lowered.auth.as_ref().and_then(|a| a.realm.clone()),
                    acl: route.policy_id(PolicyKind::Acl).cloned(),
                    rate,
                    headers: add_headers,
                    answer: has_answer.then(|| format!("@{answer_loc}")),
                    health,
                    script: scripted.then(Default::default),
                },
            );
        } else if has_answer {
            // error_page is inherited all or nothing.
            body.extend(Self::error_pages());
            body.push(Item::d(vec![
                raw("error_page"),
                raw("419"),
                raw("="),
                raw(format!("@{answer_loc}")),
            ]));
            body.push(dr(["return", "419"]));
        }
        // Phase 13 for upstream responses: response-headers.
        let response = match policy(PolicyKind::ResponseHeaders) {
            Some(Policy::ResponseHeaders(h)) => Some(h.clone()),
            _ => None,
        };
        let mut late_headers = Vec::new();
        // Phase 7: deprecation, promised to every later response.
        let deprecation = match policy(PolicyKind::Deprecation) {
            Some(Policy::Deprecation(d)) => deprecation_headers(d),
            _ => Vec::new(),
        };
        for (name, value) in &deprecation {
            hide.insert(name.clone());
            promised.push(Promise::lit(name, value, false, When::Live));
            if !scripted {
                let name: HeaderName = name.parse().expect("a header name");
                late_headers.push(self.late_header(&name, value, gated));
            }
        }
        if let Some(h) = &response {
            for name in h.remove.iter().chain(h.set.keys()) {
                hide.insert(name.to_string());
            }
            for name in &h.remove {
                promised.push(Promise::gone(name.as_str(), When::Passed));
            }
            for (name, value) in h.set.iter() {
                promised.push(Promise::lit(
                    name.as_str(),
                    value.as_str(),
                    false,
                    When::Passed,
                ));
            }
            for (name, value) in h.add.iter() {
                promised.push(Promise::lit(
                    name.as_str(),
                    value.as_str(),
                    true,
                    When::Passed,
                ));
            }
            if !scripted {
                for (name, value) in h.set.iter().chain(h.add.iter()) {
                    late_headers.push(self.late_header(name, value.as_str(), gated));
                }
            }
        }
        // A route that answers itself (mock, redirect) never proxies.
        if let Some(plan) = route.lowered.proxy.as_ref().filter(|_| !has_answer) {
            body.extend(self.proxy(i, route, plan));
            // Phase 11: cache, around the proxy.
            if let (Some(Policy::Cache(c)), Some(id)) = (
                policy(PolicyKind::Cache),
                route.policy_id(PolicyKind::Cache),
            ) {
                body.extend(self.cache(id, c));
            }
            for h in &hide {
                body.push(Item::d(vec![
                    raw("proxy_hide_header"),
                    Word::Lit(h.clone()),
                ]));
            }
        }
        // add_header is inherited all or nothing: a route with headers of
        // its own repeats the server's request id.
        let own_headers =
            scripted || headers.len() > self.common_headers().len() || !late_headers.is_empty();
        if scripted {
            body.extend(crate::script::filter_items(i, "header"));
        } else if own_headers {
            body.extend(headers.iter().cloned());
            body.extend(late_headers.iter().cloned());
        }
        // The gateway's answers when the upstream fails come after phase 9:
        // they carry the route's headers too (error_page is inherited all
        // or nothing, so the route repeats the others).
        let proxies = route.lowered.proxy.is_some() && !has_answer;
        if proxies && own_headers {
            for (code, name, message) in ERRORS {
                if ![502, 504].contains(&code) {
                    body.push(Item::d(vec![
                        raw("error_page"),
                        raw(code.to_string()),
                        raw(format!("@{name}")),
                    ]));
                    continue;
                }
                let mut err = vec![dr(["default_type", "application/json"])];
                if scripted {
                    err.extend(crate::script::filter_items(i, "header"));
                } else {
                    err.extend(headers.iter().cloned());
                    err.extend(late_headers.iter().cloned());
                }
                err.push(Item::d(vec![
                    raw("return"),
                    raw(code.to_string()),
                    Word::Val(json_error(message)),
                ]));
                // Shared by content: routes with the same headers answer
                // alike, and every named location costs (nginx looks named
                // locations up by a linear scan, and each one costs at
                // start-up).
                let loc = match self.answers.get(&err) {
                    Some(loc) => loc.clone(),
                    None => {
                        let loc = format!("@{}", self.fresh(&format!("{code}_")));
                        self.answers.insert(err.clone(), loc.clone());
                        self.locations
                            .push(Item::b(vec![raw("location"), raw(loc.clone())], err));
                        loc
                    }
                };
                body.push(Item::d(vec![
                    raw("error_page"),
                    raw(code.to_string()),
                    raw(loc),
                ]));
            }
        }
        // `native` nginx directives: last, so they tune what the route set up.
        body.extend(crate::native::items(ir, route));
        if let Some(p) = self.lua_routes.get_mut(&i).and_then(|l| l.script.as_mut()) {
            p.route = promised.clone();
        }
        let note = format!("route {}: {}", route.id, d.describe(i));
        if ipf.is_some() || cors.is_some() {
            // nginx checks content-length against the location a rewrite
            // finds, before its rewrite phase: a route whose ip-filter or
            // cors comes first (phases 1-2, before the body size) is a named
            // location behind an exact one without a limit.
            self.locations.push(
                Item::b(
                    entry_location(&format!("r{i}")),
                    vec![
                        dr(["client_max_body_size", "0"]),
                        dr(["error_page", "418", "=", &format!("@r{i}")]),
                        dr(["return", "418"]),
                    ],
                )
                .note(note.clone()),
            );
            self.locations
                .push(Item::b(vec![raw("location"), raw(format!("@r{i}"))], body));
        } else {
            self.locations
                .push(Item::b(entry_location(&format!("r{i}")), body).note(note));
        }
        // The answer of mock/redirect, after the checks (phase 9), then phase 13.
        if has_answer {
            let ans = self.answer(
                i,
                route,
                &headers,
                &promised,
                &deprecation,
                response.as_ref(),
            );
            self.locations.push(Item::b(
                vec![raw("location"), raw(format!("@{answer_loc}"))],
                ans,
            ));
        }
        // The CORS preflight answer (phase 2), after ip-filter only.
        if let Some(c) = &cors {
            let mut pre = vec![
                dr(["default_type", "application/json"]),
                dr(["client_max_body_size", "0"]),
            ];
            pre.extend(Self::error_pages());
            if let Some(var) = &ipf {
                pre.push(refuse(var, 403, "forbidden"));
            }
            pre.extend(self.common_headers());
            for (name, var) in [
                ("access-control-allow-origin", &c.origin),
                ("vary", &c.vary),
                ("access-control-allow-methods", &c.methods),
                ("access-control-allow-headers", &c.allow_headers),
                ("access-control-allow-credentials", &c.credentials),
                ("access-control-max-age", &c.max_age),
                // As the spec's preflight answers carry it (language 1.1).
                ("access-control-expose-headers", &c.expose),
            ] {
                if let Some(var) = var {
                    pre.push(dr(["add_header", name, var, "always"]));
                }
            }
            pre.push(dr(["return", "204"]));
            self.locations
                .push(Item::b(entry_location(&format!("pre_r{i}")), pre));
        }
    }

    /// `cache` as proxy_cache: one zone per policy instance, keyed as the
    /// spec keys (method as sent, host lowercased, path and query as
    /// received, consumer, `vary` headers), only 200s without set-cookie
    /// (nginx's own rule), `no-store` or `private` stored, for `ttl` whatever
    /// the upstream's cache headers say; methods not listed neither read nor
    /// stored (nginx always caches GET and HEAD otherwise).
    fn cache(&mut self, id: &PolicyId, c: &gatefold_compiler::ir::policy::Cache) -> Vec<Item> {
        let zone = match self.made.get(&format!("cache {id}")) {
            Some(z) => z.clone(),
            None => {
                let zone = self.fresh("cache");
                self.maps.push(
                    Item::d(vec![
                        raw("proxy_cache_path"),
                        Word::Lit(format!("tmp/{zone}")),
                        raw(format!("keys_zone={zone}:2m")),
                        raw("max_size=64m"),
                        raw("use_temp_path=off"),
                    ])
                    .note(format!("cache {id}")),
                );
                self.made.insert(format!("cache {id}"), zone.clone());
                zone
            }
        };
        let methods: Vec<&str> = c.methods.iter().map(|m| m.as_str()).collect();
        let skip = self.map(
            format!("cache-skip {}", methods.join(",")),
            "cacheskip",
            raw("$gf_method"),
            || methods.iter().map(|m| (gen(*m), empty())).collect(),
            raw("1"),
        );
        let nostore = self.map(
            "cache-nostore".to_string(),
            "nostore",
            raw("$upstream_http_cache_control"),
            || {
                vec![(
                    gen("~*(?:^|,)[ \t]*(?:no-store|private)[ \t]*(?:,|$)"),
                    raw("1"),
                )]
            },
            empty(),
        );
        let big = self.map(
            "cache-big".to_string(),
            "cachebig",
            raw("$upstream_http_content_length"),
            || {
                vec![(
                    gen(format!("~{}", escape::greater_than(CACHE_MAX_ENTRY_BYTES))),
                    raw("1"),
                )]
            },
            empty(),
        );
        let mut key = "$gf_method\n$gf_cache_host\n$request_uri\n$gf_consumer".to_string();
        for h in &c.vary {
            key.push_str(&format!("\n$http_{}", header_var(h)));
        }
        let ttl = c.ttl.millis.div_ceil(1000).max(1);
        vec![
            Item::d(vec![
                raw("set_by_lua"),
                raw("$gf_cache_host"),
                gen("return (ngx.var.http_host or \"\"):lower()"),
            ]),
            Item::d(vec![raw("proxy_cache"), raw(zone)]),
            Item::d(vec![raw("proxy_cache_key"), gen(key)]),
            dr(["proxy_cache_convert_head", "off"]),
            Item::d(vec![
                raw("proxy_cache_valid"),
                raw("200"),
                raw(format!("{ttl}s")),
            ]),
            // A location's list replaces the server-wide one: repeat it.
            Item::d(
                IGNORED_UPSTREAM_HEADERS
                    .iter()
                    .chain(&["Cache-Control", "Expires", "Vary"])
                    .map(|w| raw(*w))
                    .collect(),
            ),
            Item::d(vec![raw("proxy_cache_bypass"), raw(format!("${skip}"))]),
            Item::d(vec![
                raw("proxy_no_cache"),
                raw(format!("${skip}")),
                raw(format!("${nostore}")),
                raw(format!("${big}")),
            ]),
        ]
    }

    /// The health-checked upstream `route` calls, if any.
    fn health_of(&mut self, route: &Route) -> Option<HealthOf> {
        if !health_checked_route(self.ir, route) {
            return None;
        }
        match route.lowered.proxy.as_ref()? {
            ProxyPlan::Single(d) => Some(HealthOf::Upstream(d.upstream.to_string())),
            ProxyPlan::Split { policy, .. } => Some(HealthOf::SplitVar(
                self.split(policy).trim_start_matches('$').to_string(),
            )),
        }
    }

    /// A response header of phase 13, left off the gateway's own refusals.
    fn late_header(&mut self, name: &HeaderName, value: &str, gated: bool) -> Item {
        if !gated {
            return Item::d(vec![
                raw("add_header"),
                Word::Lit(name.to_string()),
                Word::Val(value.to_string()),
                raw("always"),
            ]);
        }
        let var = self.map(
            format!("late {name} {value}"),
            "late",
            raw("$gf_stop"),
            || vec![(gen("~."), empty())],
            Word::Val(value.to_string()),
        );
        Item::d(vec![
            raw("add_header"),
            Word::Lit(name.to_string()),
            raw(format!("${var}")),
            raw("always"),
        ])
    }

    fn ip_filter(&mut self, id: &PolicyId, f: &gatefold_compiler::ir::policy::IpFilter) -> String {
        if let Some(v) = self.made.get(&format!("ipf {id}")) {
            return format!("${v}");
        }
        let var = self.fresh("ipf");
        // geo takes the most specific network; deny must win over allow,
        // so an allowed network inside a denied one is dropped.
        let mut body = vec![Item::d(vec![
            raw("default"),
            if f.allow.is_empty() {
                empty()
            } else {
                raw("1")
            },
        ])];
        for net in &f.allow {
            if f.deny.iter().any(|d| d.contains(net)) {
                continue;
            }
            body.push(Item::d(vec![raw(net.to_string()), empty()]));
        }
        for net in &f.deny {
            body.push(Item::d(vec![raw(net.to_string()), raw("1")]));
        }
        self.maps.push(
            Item::b(vec![raw("geo"), raw(format!("${var}"))], body).note(format!("ip-filter {id}")),
        );
        self.made.insert(format!("ipf {id}"), var.clone());
        format!("${var}")
    }

    fn cors(&mut self, id: &PolicyId, c: &Cors) -> CorsVars {
        let any = c.origins.contains(&CorsOrigin::Any);
        // `*` only for any origin without credentials; otherwise the
        // request's own origin (with `vary: origin`), never `*`.
        let star = any && !c.credentials;
        let entries = if any {
            let value = if star {
                Word::Lit("*".into())
            } else {
                raw("$http_origin")
            };
            vec![(gen("~."), value)]
        } else {
            c.origins
                .iter()
                .filter_map(|o| match o {
                    CorsOrigin::Origin(o) => Some((
                        gen(format!("~*^{}$", escape::regex(o))),
                        raw("$http_origin"),
                    )),
                    // `https://*.example.com`: one or more whole labels.
                    CorsOrigin::Pattern(p) => {
                        let (scheme, suffix) = p.split_once("://*")?;
                        Some((
                            gen(format!(
                                "~*^{}://[a-z0-9-]+(?:\\.[a-z0-9-]+)*{}$",
                                escape::regex(scheme),
                                escape::regex(suffix)
                            )),
                            raw("$http_origin"),
                        ))
                    }
                    CorsOrigin::Any => None,
                })
                .collect()
        };
        let origin = self.map(
            format!("cors {id} origin"),
            "cors",
            raw("$http_origin"),
            || entries,
            empty(),
        );
        let when = |this: &mut Self, what: &str, value: Option<Word>| -> Option<String> {
            let value = value?;
            Some(format!(
                "${}",
                this.map(
                    format!("cors {id} {what}"),
                    "cors",
                    raw(format!("${origin}")),
                    || vec![(gen("~."), value)],
                    empty()
                )
            ))
        };
        let join = |items: Vec<&str>| items.join(", ");
        let methods = join(c.methods.iter().map(|m| m.as_str()).collect());
        let methods = if methods.is_empty() {
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".to_string()
        } else {
            methods
        };
        // methods ["*"]: `*`, or with credentials the method asked for.
        let methods = match (c.any_method, c.credentials) {
            (false, _) => Word::Lit(methods),
            (true, false) => Word::Lit("*".into()),
            (true, true) => raw("$http_access_control_request_method"),
        };
        // headers ["*"] without credentials: `*`; else the list, or the
        // headers asked for.
        let allow_headers = if c.any_header && !c.credentials {
            Word::Lit("*".into())
        } else if c.headers.is_empty() {
            raw("$http_access_control_request_headers")
        } else {
            Word::Lit(join(c.headers.iter().map(|h| h.as_str()).collect()))
        };
        CorsVars {
            origin: Some(format!("${origin}")),
            vary: when(self, "vary", (!star).then(|| raw("origin"))),
            methods: when(self, "methods", Some(methods)),
            allow_headers: when(self, "headers", Some(allow_headers)),
            credentials: when(self, "credentials", c.credentials.then(|| raw("true"))),
            max_age: when(
                self,
                "max-age",
                c.max_age.map(|d| raw((d.millis / 1000).to_string())),
            ),
            expose: when(
                self,
                "expose",
                (!c.expose.is_empty())
                    .then(|| Word::Lit(join(c.expose.iter().map(|h| h.as_str()).collect()))),
            ),
        }
    }

    fn proxy(&mut self, i: usize, route: &Route, plan: &ProxyPlan) -> Vec<Item> {
        let dest = &plan.destinations()[0];
        let up = &self.ir.upstreams[&dest.upstream];
        let first = &up.targets[0].url;
        let ir = self.ir;
        let authority = |name: &gatefold_compiler::ir::Name| {
            let url = &ir.upstreams[name].targets[0].url;
            format!("{}:{}", url.host, url.port)
        };
        // The upstream (a variable for a split) and the host header it gets.
        let (upstream, host_word) = match plan {
            ProxyPlan::Single(_) => (
                self.dest(&dest.upstream),
                Word::Lit(authority(&dest.upstream)),
            ),
            ProxyPlan::Split { policy, to } => {
                let var = self.split(policy);
                let entries = to
                    .iter()
                    .map(|d| {
                        (
                            gen(format!("~^{}$", escape::regex(&self.dest(&d.upstream)))),
                            Word::Lit(authority(&d.upstream)),
                        )
                    })
                    .collect();
                let host = self.map(
                    format!("split-host {policy}"),
                    "splithost",
                    raw(var.clone()),
                    || entries,
                    empty(),
                );
                (var, raw(format!("${host}")))
            }
        };
        // preserve-host (1.1): the client's host, as x-forwarded-host has it.
        let host_word = if route.lowered.preserve_host {
            raw("$gf_client_host")
        } else {
            host_word
        };
        let base = &self.ir.gateway.baseline.timeouts;
        let mut out = vec![Item::d(vec![raw("set"), raw("$gf_host"), host_word])];
        if health_checked_route(self.ir, route) {
            // For the Lua balancer: which upstream (`gf_up_NAME`).
            out.push(Item::d(vec![
                raw("set"),
                raw("$gf_upstream"),
                raw(upstream.clone()),
            ]));
        }
        if dest.connect_timeout != base.connect {
            out.push(Item::d(vec![
                raw("proxy_connect_timeout"),
                raw(time(dest.connect_timeout.millis)),
            ]));
            if crate::dns::uses_resolver(self.ir) {
                out.push(Item::d(vec![
                    raw("resolver_timeout"),
                    raw(time(dest.connect_timeout.millis)),
                ]));
            }
        }
        if dest.read_timeout != base.read {
            out.push(Item::d(vec![
                raw("proxy_read_timeout"),
                raw(time(dest.read_timeout.millis)),
            ]));
            out.push(Item::d(vec![
                raw("proxy_send_timeout"),
                raw(time(dest.read_timeout.millis)),
            ]));
        }
        // No retry: the server-level `proxy_next_upstream off` holds.
        match &dest.retry {
            None => {}
            Some(r) => {
                let mut names = Vec::new();
                for on in &r.on {
                    use gatefold_compiler::ir::policy::RetryOn as O;
                    names.push(match on {
                        // nginx's `error` takes both: a connection that
                        // failed, or one closed before the response head.
                        O::ConnectFailure | O::Reset => "error",
                        O::Timeout => "timeout",
                        O::Status500 => "http_500",
                        O::Status502 => "http_502",
                        O::Status503 => "http_503",
                        O::Status504 => "http_504",
                    });
                }
                names.dedup();
                let mut words = vec![raw("proxy_next_upstream")];
                words.extend(names.into_iter().map(raw));
                if words.len() == 1 {
                    words.push(raw("off"));
                }
                out.push(Item::d(words));
                out.push(Item::d(vec![
                    raw("proxy_next_upstream_tries"),
                    raw((r.attempts + 1).to_string()),
                ]));
            }
        }
        // proxy_set_header is inherited all or nothing: a route that sets
        // or removes request headers repeats the server's.
        if let Some(Policy::RequestHeaders(h)) = self.ir.policy(route, PolicyKind::RequestHeaders) {
            let mut set = self.base_request_headers();
            // Names with `add` are done by Lua (nginx cannot add a second value).
            for name in &h.remove {
                if !h.add.contains_key(name) {
                    set.insert(name.to_string(), empty());
                }
            }
            for (name, value) in &h.set {
                if !h.add.contains_key(name) {
                    set.insert(name.to_string(), Word::Val(value.as_str().to_string()));
                }
            }
            for (name, value) in set {
                out.push(Item::d(vec![
                    raw("proxy_set_header"),
                    Word::Lit(name),
                    value,
                ]));
            }
        }
        // A request script may set the path phase 10 starts from.
        let from = if crate::script::sets_path(self.ir, route) {
            "$gf_spath"
        } else {
            "$gf_path"
        };
        let target = match &route.lowered.upstream_path {
            UpstreamPath::Keep => from.to_string(),
            UpstreamPath::Prefix { strip, add } => {
                let strip = strip
                    .as_deref()
                    .filter(|s| *s != "/")
                    .map(str::to_string)
                    .unwrap_or_default();
                let add = add
                    .as_deref()
                    .filter(|s| *s != "/")
                    .map(str::to_string)
                    .unwrap_or_default();
                let re = escape::regex(&strip);
                let add_v = dollar(&add);
                let whole = if add_v.is_empty() {
                    "/".to_string()
                } else {
                    add_v.clone()
                };
                let var = self.map(
                    format!("prefix {strip} {add} {from}"),
                    "path",
                    raw(from),
                    || {
                        vec![
                            (gen(format!("~(?s)^{re}\\z")), gen(whole)),
                            (
                                gen(format!("~(?s)^{re}(?<gf_rest>/.*)\\z")),
                                gen(format!("{add_v}${{gf_rest}}")),
                            ),
                        ]
                    },
                    raw(from),
                );
                format!("${var}")
            }
            UpstreamPath::Template(t) => {
                let (re, names) = routing::capture_regex(&route.matcher.path);
                let mut value = String::new();
                for s in &t.segments {
                    value.push('/');
                    match s {
                        gatefold_compiler::ir::Segment::Literal(l) => value.push_str(&dollar(l)),
                        gatefold_compiler::ir::Segment::Param(p) => {
                            let n = names.iter().position(|x| x == p).unwrap_or(0);
                            value.push_str(&format!("${{gf_p{n}}}"));
                        }
                    }
                }
                if value.is_empty() {
                    value.push('/');
                }
                let var = self.map(
                    format!("template {i}"),
                    "path",
                    raw("$gf_path"),
                    || vec![(gen(re), gen(value))],
                    raw("$gf_path"),
                );
                format!("${var}")
            }
        };
        // The path as computed, byte for byte: with variables in its URL,
        // proxy_pass sends the URI unchanged (a rewritten `$uri` would be
        // sent decoded, then re-escaped nginx's way).
        let scheme = if first.tls { "https" } else { "http" };
        if first.tls {
            out.push(dr(["proxy_ssl_server_name", "on"]));
            out.push(Item::d(vec![
                raw("proxy_ssl_name"),
                Word::Lit(first.host.to_string()),
            ]));
        }
        out.push(Item::d(vec![
            raw("proxy_pass"),
            raw(format!("{scheme}://{upstream}{target}$is_args$args")),
        ]));
        out
    }

    /// The variable naming the upstream a `traffic-split` picks: header
    /// matches first (first wins, exact and case-sensitive), then
    /// `split_clients` over the random `$request_id` by weight.
    fn split(&mut self, id: &PolicyId) -> String {
        if let Some(v) = self.made.get(&format!("split {id}")) {
            return format!("${v}");
        }
        let Some(Policy::TrafficSplit(s)) = self.ir.policies.get(id).map(|p| &p.policy) else {
            unreachable!("a split plan names a traffic-split");
        };
        let var = self.fresh("split");
        let weighted: Vec<_> = s.to.iter().filter(|w| w.weight > 0).collect();
        let total: u64 = weighted.iter().map(|w| u64::from(w.weight)).sum();
        let mut body = Vec::new();
        for (n, w) in weighted.iter().enumerate() {
            let share = if n + 1 == weighted.len() {
                "*".to_string()
            } else {
                // Hundredths of a percent, rounded (split_clients' precision).
                let bp = (u64::from(w.weight) * 10_000 + total / 2) / total;
                format!("{}.{:02}%", bp / 100, bp % 100)
            };
            body.push(Item::d(vec![raw(share), raw(self.dest(&w.upstream))]));
        }
        self.maps.push(
            Item::b(
                vec![
                    raw("split_clients"),
                    raw("$request_id"),
                    raw(format!("${var}")),
                ],
                body,
            )
            .note(format!("traffic-split {id}")),
        );
        let mut target = format!("${var}");
        for m in s.header_match.iter().rev() {
            let next = self.fresh("split");
            self.maps.push(Item::b(
                vec![
                    raw("map"),
                    raw(format!("$http_{}", header_var(&m.name))),
                    raw(format!("${next}")),
                ],
                vec![
                    Item::d(vec![raw("default"), raw(target.clone())]),
                    Item::d(vec![
                        gen(format!("~(?s)^{}\\z", escape::regex(&m.value))),
                        raw(self.dest(&m.upstream)),
                    ]),
                ],
            ));
            target = format!("${next}");
        }
        let name = target.trim_start_matches('$').to_string();
        self.made.insert(format!("split {id}"), name);
        target
    }

    /// The location of a mock's or redirect's answer: `headers` the
    /// route's add_header lines, or on a route with a script `scripted`
    /// the headers its Lua adds (`Always` ones go first here).
    fn answer(
        &mut self,
        i: usize,
        route: &Route,
        headers: &[Item],
        scripted: &[Promise],
        promised: &[(String, String)],
        response: Option<&HeaderTransform>,
    ) -> Vec<Item> {
        let ir = self.ir;
        let mut out = Vec::new();
        // The answer's own headers, each added once.
        let mut own: Vec<Promise> = Vec::new();
        // A redirect: whether `to` has a query, and its `#fragment`.
        let mut redirect: Option<(bool, Option<String>)> = None;
        let mut content_type: Option<String> = None;
        let (status, body_word): (u16, Option<Word>) = match (
            ir.policy(route, PolicyKind::Mock),
            ir.policy(route, PolicyKind::Redirect),
        ) {
            (Some(Policy::Mock(m)), _) => {
                let body = match &m.body {
                    MockBody::Empty => String::new(),
                    MockBody::Text(t) => {
                        content_type = Some("text/plain; charset=utf-8".into());
                        t.clone()
                    }
                    MockBody::Json(v) => {
                        content_type = Some("application/json".into());
                        v.to_string()
                    }
                };
                for (k, v) in &m.headers {
                    if k.as_str() == "content-type" {
                        content_type = Some(v.as_str().to_string());
                    } else {
                        own.push(Promise::lit(k.as_str(), v.as_str(), false, When::Passed));
                    }
                }
                (m.status, Some(Word::Val(body)))
            }
            // Part-wise redirects are refused for nginx (`Target::fields`),
            // so every redirect emitted here has a `to`.
            (
                _,
                Some(Policy::Redirect(Redirect {
                    location: RedirectLocation::To(target),
                    status,
                })),
            ) => {
                let (re, names) = routing::capture_regex(&route.matcher.path);
                // The fragment goes after the request's query (redirect.lua).
                let to = gatefold_compiler::ir::policy::RedirectTo {
                    fragment: None,
                    ..target.clone()
                };
                redirect = Some((
                    target.query.is_some(),
                    target.fragment.as_ref().map(|f| format!("#{f}")),
                ));
                let (value, has_params) = fill(&to.to_string(), &names);
                let word = if has_params {
                    let var = self.map(
                        format!("redirect {i}"),
                        "loc",
                        raw("$gf_path"),
                        || vec![(gen(re), gen(value))],
                        empty(),
                    );
                    // A parameter must not make a local redirect point at
                    // another host (`/\evil`), nor carry control characters.
                    let bad = self.map(
                        format!("redirect-bad {i}"),
                        "bad",
                        raw(format!("${var}")),
                        || {
                            vec![
                                (gen("~^[/\\\\][/\\\\]"), raw("1")),
                                (gen("~[\\x00-\\x1f\\x7f]"), raw("1")),
                            ]
                        },
                        empty(),
                    );
                    out.push(refuse(&format!("${bad}"), 400, "bad request"));
                    raw(format!("${var}"))
                } else {
                    gen(value)
                };
                (status.code(), Some(word))
            }
            // Parts (1.1): redirect.lua builds `location` from the request;
            // nginx gives it the path (template filled in by a map) and the
            // parts the spec sets.
            (
                _,
                Some(Policy::Redirect(Redirect {
                    location: RedirectLocation::Parts(parts),
                    status,
                })),
            ) => {
                redirect = Some((false, None));
                let set = |name: &str, w: Word| Item::d(vec![raw("set"), raw(name), w]);
                let (mode, path_word) = match &parts.path {
                    None => ("keep", raw("$gf_path")),
                    Some(RedirectPath::ReplacePrefix(prefix)) => {
                        out.push(set("$gf_rd_prefix", Word::Val(prefix.clone())));
                        out.push(set(
                            "$gf_rd_segments",
                            raw(route.matcher.path.segments.len().to_string()),
                        ));
                        ("prefix", raw("$gf_path"))
                    }
                    Some(RedirectPath::Template(t)) => {
                        let (re, names) = routing::capture_regex(&route.matcher.path);
                        let (value, has_params) = fill(t, &names);
                        let word = if has_params {
                            let var = self.map(
                                format!("redirect {i}"),
                                "loc",
                                raw("$gf_path"),
                                || vec![(gen(re), gen(value))],
                                empty(),
                            );
                            raw(format!("${var}"))
                        } else {
                            gen(value)
                        };
                        ("template", word)
                    }
                };
                out.push(set("$gf_rd_mode", raw(mode)));
                out.push(set(
                    "$gf_rd_scheme",
                    parts
                        .scheme
                        .map_or_else(empty, |s| raw(s.as_str().to_string())),
                ));
                out.push(set(
                    "$gf_rd_host",
                    parts.host.clone().map_or_else(empty, Word::Val),
                ));
                out.push(set(
                    "$gf_rd_port",
                    parts.port.map_or_else(empty, |p| raw(p.to_string())),
                ));
                (status.code(), Some(path_word))
            }
            _ => (500, None),
        };
        // Promised headers replace the answer's own.
        for (k, v) in promised {
            own.retain(|o| &o.name != k);
            own.push(Promise::lit(k, v, false, When::Live));
        }
        // Phase 13 over the answer's own headers: remove, set, add.
        if let Some(h) = response {
            own.retain(|o| {
                !h.remove.iter().any(|r| r.as_str() == o.name)
                    && !h.set.keys().any(|s| s.as_str() == o.name)
            });
            if h.remove.iter().any(|r| r.as_str() == "content-type") {
                content_type = None;
            }
            let set = h.set.iter().map(|kv| (kv, false));
            for ((k, v), append) in set.chain(h.add.iter().map(|kv| (kv, true))) {
                if k.as_str() == "content-type" && content_type.is_none() {
                    content_type = Some(v.as_str().to_string());
                } else {
                    own.push(Promise::lit(k.as_str(), v.as_str(), append, When::Passed));
                }
            }
        }
        out.insert(
            0,
            Item::d(vec![
                raw("default_type"),
                match &content_type {
                    Some(t) => Word::Lit(t.clone()),
                    None => empty(),
                },
            ]),
        );
        if let Some(p) = self.lua_routes.get_mut(&i).and_then(|l| l.script.as_mut()) {
            p.answer = scripted
                .iter()
                .filter(|p| p.when == When::Always)
                .cloned()
                .chain(own)
                .collect();
            out.extend(crate::script::filter_items(i, "answer"));
        } else {
            out.extend(headers.iter().cloned());
            for p in own {
                if let crate::script::Value::Lit(v) = p.value {
                    out.push(Item::d(vec![
                        raw("add_header"),
                        Word::Lit(p.name),
                        Word::Val(v),
                        raw("always"),
                    ]));
                }
            }
        }
        match redirect {
            // nginx's `return 3xx` writes an HTML body and cannot append
            // the query: Lua answers with `location` and an empty body.
            Some((has_query, fragment)) => {
                out.push(Item::d(vec![
                    raw("set"),
                    raw("$gf_location"),
                    body_word.unwrap_or_else(empty),
                ]));
                out.push(Item::d(vec![
                    raw("set"),
                    raw("$gf_redirect"),
                    gen(format!("{status}{}", if has_query { "&" } else { "?" })),
                ]));
                out.push(Item::d(vec![
                    raw("set"),
                    raw("$gf_fragment"),
                    Word::Val(fragment.unwrap_or_default()),
                ]));
                out.push(dr(["content_by_lua_file", "lua/gatefold/redirect.lua"]));
            }
            None => {
                let mut ret = vec![raw("return"), raw(status.to_string())];
                ret.extend(body_word);
                out.push(Item::d(ret));
            }
        }
        out
    }
}

/// `deprecation`, `sunset` and `link` as the spec writes them.
fn deprecation_headers(d: &gatefold_compiler::ir::policy::Deprecation) -> Vec<(String, String)> {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let since = d.since.map_or(0, |d| d.days_since_epoch() * 86_400);
    let mut out = vec![("deprecation".to_string(), format!("@{since}"))];
    if let Some(s) = d.sunset {
        let wd = WEEKDAYS[s.days_since_epoch().rem_euclid(7) as usize];
        out.push((
            "sunset".to_string(),
            format!(
                "{wd}, {:02} {} {:04} 00:00:00 GMT",
                s.day,
                MONTHS[s.month as usize - 1],
                s.year
            ),
        ));
    }
    if let Some(link) = &d.link {
        out.push(("link".to_string(), format!("<{link}>; rel=\"deprecation\"")));
    }
    out
}

/// Where `gatefold up` (or whoever runs the output) writes the private key
/// of certificate `i` whose spec names an environment variable, relative to
/// the prefix, mode 0600, before starting nginx: keys are never compiled in.
pub fn tls_key_file(i: usize) -> String {
    format!("keys/cert-{i}.key")
}

/// The variables a cors instance's headers read.
struct CorsVars {
    origin: Option<String>,
    vary: Option<String>,
    methods: Option<String>,
    allow_headers: Option<String>,
    credentials: Option<String>,
    max_age: Option<String>,
    expose: Option<String>,
}

fn map_item(source: &str, var: &str, entries: Vec<(Word, Word)>, default: Word) -> Item {
    let mut body = vec![Item::d(vec![raw("default"), default])];
    body.extend(entries.into_iter().map(|(k, v)| Item::d(vec![k, v])));
    let source = if source.contains(' ') || source.contains('|') {
        gen(source)
    } else {
        raw(source)
    };
    Item::b(vec![raw("map"), source, raw(var)], body)
}

fn empty() -> Word {
    Word::Lit(String::new())
}

/// `if ($var) { set $gf_stop 1; return CODE '{"error":...}'; }`
fn refuse(var: &str, code: u16, message: &str) -> Item {
    Item::b(
        vec![raw("if"), raw(format!("({var})"))],
        vec![
            dr(["set", "$gf_stop", "1"]),
            Item::d(vec![
                raw("return"),
                raw(code.to_string()),
                Word::Val(json_error(message)),
            ]),
        ],
    )
}

/// A `map` key matching exactly `s`: a leading `~` (a regex) or a
/// special word (`default`, `hostnames`, `include`, `volatile`) is escaped
/// with `\\`.
fn map_key(s: &str) -> String {
    if s.starts_with('~')
        || s.starts_with('\\')
        || ["default", "hostnames", "include", "volatile"].contains(&s)
    {
        format!("\\{s}")
    } else {
        s.to_string()
    }
}

/// `x-api-key` -> `x_api_key`, as nginx names `$http_*` variables.
pub fn header_var(h: &HeaderName) -> String {
    h.as_str()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A literal for a complex value: `$` kept literal.
fn dollar(s: &str) -> String {
    s.replace('$', "${gf_dollar}")
}

/// A redirect target with `{param}` replaced by the route's captures; other
/// braces kept. Returns whether any parameter was used.
fn fill(to: &str, names: &[String]) -> (String, bool) {
    let mut out = String::new();
    let mut used = false;
    let mut rest = to;
    while let Some(open) = rest.find('{') {
        out.push_str(&dollar(&rest[..open]));
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match names.iter().position(|n| n == name) {
                    Some(n) => {
                        out.push_str(&format!("${{gf_p{n}}}"));
                        used = true;
                    }
                    None => out.push_str(&dollar(&format!("{{{name}}}"))),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&dollar(&rest[open..]));
                rest = "";
            }
        }
    }
    out.push_str(&dollar(rest));
    (out, used)
}
