//! The nginx target: a complete, runnable `nginx.conf` for nginx 1.22 (as
//! Debian ships it), plus Lua files for what nginx alone cannot do exactly.
//!
//! # Output layout
//!
//! The output folder is an nginx *prefix* (`nginx -p DIR -c conf/nginx.conf`):
//!
//! * `conf/nginx.conf`: the entry; `daemon off;`, `pid logs/nginx.pid;`,
//!   `error_log`, access log and every `*_temp_path` under the prefix, and
//!   `load_module` lines (absolute paths) only when the spec needs Lua.
//! * `lua/gatefold/path.lua`: the spec's path normalization, which every
//!   route matches (nginx's `$uri` decodes every escape, `%2F` included),
//!   so the Lua module is always loaded; `redirect.lua` when a route
//!   redirects; `access.lua` and `config.lua` only when some route needs
//!   the access phase (see [`needs_lua`]). Loaded relative to the prefix.
//!
//! * `resolver.conf` (not written here): when an upstream's one target is
//!   a host name, nginx resolves it per request (see [`dns`]) with the
//!   `resolver` directive this file holds, which whoever starts nginx writes
//!   (`gatefold up` from `/etc/resolv.conf`); `conf/nginx.conf` includes it.
//! * `conf/tls/cert-N.pem`: certificate chains (public), with `gateway.tls`.
//!   Private keys are never compiled in: a key the spec reads from a file is
//!   referenced by its absolute path; a key in an environment variable must
//!   be written by whoever starts nginx to [`tls_key_file`]`(N)` under the
//!   prefix (mode 0600) first.
//!
//! In [`Mode::HttpOnly`] the entry is `conf/http.conf` instead: the content of
//! an `http {}` block, to be included into a user's own configuration.
//!
//! # Precedence
//!
//! nginx's own `location` and `server_name` rules (exact, longest prefix,
//! regex order, default server) differ from the spec's, so neither decides
//! anything here: one server takes every request and a `map` over
//! `"$host $gf_method $gf_path"` whose entries are regexes *in IR order*
//! picks the route (nginx tries a map's regexes in the order written: the
//! first that matches wins, which is the spec's rule). Each route is an exact
//! location `= gf-rN`, reached by `rewrite ^ gf-$gf_entry last` from the one
//! `location /` (client URIs begin with `/`, so none reaches it directly):
//! nginx finds exact locations in a tree, named ones by a linear scan, which
//! at 10,000 routes cost more than everything else per request.
//!
//! # Escaping
//!
//! Text comes from handlebars templates whose default escape is
//! [`escape::token`]; user strings go through the helpers registered in
//! [`render`] (`lit`, `val`, `re`), and Lua data through [`escape::lua`].

#![forbid(unsafe_code)]

mod dns;
pub mod escape;
mod lua;
mod model;
mod native;
pub use dns::{resolves_names, RESOLVER_FILE};
pub use model::tls_key_file;
mod render;
mod routing;
mod script;
mod underscore;

use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::{
    language_1_1_uses, Feature, FieldSupport, ModelSupport, Options, Output, OutputFile, RelPath,
    Support, Target,
};

/// What the entry file holds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `conf/nginx.conf`, complete and runnable.
    #[default]
    Full,
    /// `conf/http.conf`: only the content of the `http {}` block.
    HttpOnly,
}

/// The nginx back end.
#[derive(Copy, Clone, Debug, Default)]
pub struct Nginx {
    pub mode: Mode,
}

/// The reserved host name (`.invalid`, RFC 2606) of the server that
/// answers which config runs, for loopback clients only.
pub const VERSION_HOST: &str = "gatefold-version.invalid";
/// Where that server answers the config's content hash (`sha256:...`).
pub const VERSION_PATH: &str = "/.gatefold/version";

/// Absolute paths of the Lua module and the NDK it needs (Debian's).
pub const LUA_MODULES: [&str; 2] = [
    "/usr/lib/nginx/modules/ndk_http_module.so",
    "/usr/lib/nginx/modules/ngx_http_lua_module.so",
];

impl Target for Nginx {
    fn kind(&self) -> TargetKind {
        TargetKind::Nginx
    }

    fn support(&self, kind: PolicyKind) -> Support {
        use PolicyKind as K;
        match kind {
            // geo + if/return in the rewrite phase.
            K::IpFilter => Support::Builtin,
            // maps on `Origin` + add_header; preflights routed by a map.
            K::Cors => Support::Emulated,
            // a map over Content-Length + client_max_body_size for chunked bodies.
            K::RequestSizeLimit => Support::Builtin,
            // Lua (lua-resty-core only): nginx has no consumer-aware auth.
            // JWT signatures by OpenSSL's libcrypto through LuaJIT's FFI.
            K::KeyAuth | K::BasicAuth | K::Jwt | K::Acl => Support::Emulated,
            // Fixed windows in a lua_shared_dict: limit_req is a leaky bucket.
            K::RateLimit => Support::Emulated,
            K::Deprecation => Support::Builtin,
            // Lua from gatefold-lua-script: phase 8 in access.lua, the
            // response script in the route's header filter (script.rs).
            K::Script => Support::Emulated,
            K::Mock | K::Redirect => Support::Builtin,
            K::RequestHeaders | K::ResponseHeaders => Support::Builtin,
            K::Rewrite | K::Timeout => Support::Builtin,
            K::Retry => Support::Approximate {
                note: "nginx retries on the next server of the upstream only (proxy_next_upstream), never the same one twice, and `timeout` retries only connect timeouts",
            },
            K::TrafficSplit => Support::Approximate {
                note: "every destination is called with the first destination's timeouts and retries, and weights are rounded to 0.01%",
            },
            K::Cache => Support::Approximate {
                note: "proxy_cache: evicted by nginx's cache manager (64 MiB per policy, least recently used) instead of the oldest of 10,000 entries; a body over 1 MiB is stored when its length is not announced; a `vary` header and the upstream's `cache-control` are read from their first line only; a ttl under a second counts as one",
            },
            // Advisory: left out with a warning (the answer never depended
            // on it). nginx's `mirror` directive waits for the copy's
            // subrequest before the next request on a connection.
            K::Mirror => Support::Unsupported,
            // `native` for other targets is ignored; an `nginx` entry is
            // checked against a subset of directives (native.rs).
            K::Native => Support::Builtin,
        }
    }

    fn feature(&self, feature: Feature) -> Support {
        match feature {
            // Lua flags per condition set, matched by the dispatch maps.
            Feature::Conditions => Support::Emulated,
            // `proxy_set_header host $http_host`.
            Feature::PreserveHost => Support::Builtin,
        }
    }

    fn spec_diagnostics(&self, ir: &ValidIr) -> gatefold_compiler::diag::Diagnostics {
        let mut out = underscore::refusals(ir);
        out.extend(native::refusals(ir));
        out.extend(dns::warnings(ir));
        out
    }

    fn fields(&self) -> Vec<FieldSupport> {
        vec![FieldSupport {
            kind: PolicyKind::RequestHeaders,
            field: "add",
            value: None,
            support: Support::Emulated,
        }]
        .into_iter()
        // Every language 1.1 form is carried out: redirect parts by
        // redirect.lua, cors wildcards by maps, `retry` `on: reset` as
        // `proxy_next_upstream error`.
        .collect()
    }

    fn request_model(&self) -> Vec<ModelSupport> {
        vec![ModelSupport {
            part: "baseline.path",
            support: Support::Approximate {
                note: "a path holding `%00` is answered 400 `{\"error\":\"bad request\"}`: nginx refuses an encoded NUL while reading the request line, before any configuration runs; every other path is normalized as the spec says",
            },
        }]
    }

    fn policy_fields(&self, policy: &Policy) -> Vec<FieldSupport> {
        let all = self.fields();
        let pick = |field: &str, value: Option<&str>| {
            all.iter()
                .find(|f| f.kind == policy.kind() && f.field == field && f.value == value)
                .copied()
        };
        let newer = language_1_1_uses(policy)
            .into_iter()
            .filter_map(|(f, v)| pick(f, v));
        match policy {
            Policy::Redirect(_) | Policy::Cors(_) => newer.collect(),
            Policy::RequestHeaders(h) if !h.add.is_empty() => {
                pick("add", None).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    fn emit(&self, ir: &ValidIr, options: &Options) -> Output {
        let model = model::Model::build(ir, options);
        let mut files = Vec::new();
        let entry = match self.mode {
            Mode::Full => (
                "conf/nginx.conf",
                "nginx's main configuration (run with `nginx -p DIR -c conf/nginx.conf`)",
            ),
            Mode::HttpOnly => (
                "conf/http.conf",
                "the content of an `http {}` block, to include into your own nginx.conf",
            ),
        };
        files.push(file(entry.0, render::render(&model, self.mode), entry.1));
        if let Some(tls) = &ir.gateway.tls {
            for (i, cert) in tls.certificates.iter().enumerate() {
                files.push(file(
                    &format!("conf/tls/cert-{i}.pem"),
                    cert.chain.clone(),
                    "a TLS certificate chain (public)",
                ));
            }
        }
        files.push(file(
            "lua/gatefold/path.lua",
            lua::PATH.to_string(),
            "the spec's path normalization, which every route matches (nginx's own $uri decodes every escape)",
        ));
        if ir.upstreams.values().any(model::health_checked) {
            files.push(file(
                "lua/gatefold/health.lua",
                lua::HEALTH.to_string(),
                "active health checks and the balancer of upstreams with `health`",
            ));
            files.push(file(
                "lua/gatefold/balance.lua",
                lua::BALANCE.to_string(),
                "the balancer of upstreams with `health`",
            ));
            files.push(file(
                "lua/gatefold/upstreams.lua",
                lua::upstreams(ir),
                "the upstreams with `health`: checks and targets",
            ));
        }
        files.push(file(
            "lua/gatefold/miss.lua",
            lua::miss(&model.misses, !model.conditions.is_empty()),
            "the 405 `allow` or 404 of a request no route takes",
        ));
        if !model.conditions.is_empty() {
            files.push(file(
                "lua/gatefold/conditions.lua",
                lua::conditions(&model.conditions),
                "the routes' `match` conditions: one flag per condition set, before dispatch",
            ));
        }
        if model.jwt {
            files.push(file(
                "lua/gatefold/jwt.lua",
                lua::JWT.to_string(),
                "jwt verification: signatures by libcrypto",
            ));
            files.push(file(
                "lua/gatefold/jwt_core.lua",
                lua::JWT_CORE.to_string(),
                "jwt verification: token, header and claims as the spec reads them",
            ));
        }
        if model.redirects {
            files.push(file(
                "lua/gatefold/redirect.lua",
                lua::REDIRECT.to_string(),
                "the answer of `redirect`: location with the request's query, empty body",
            ));
            files.push(file(
                "lua/gatefold/location.lua",
                gatefold_lua_script::LOCATION.to_string(),
                "a part-wise redirect's location, as every Lua target builds it",
            ));
        }
        let scripts = script::files(ir, &model);
        if !scripts.is_empty() {
            files.push(file(
                "lua/gatefold/promised.lua",
                script::PROMISED.to_string(),
                "the header filter of routes with a script: their promised response headers, then the response script",
            ));
        }
        for (path, text) in scripts {
            files.push(file(
                &path,
                text,
                "a route's script: phase 8 (access.lua) and the response script (header filter)",
            ));
        }
        if model.lua {
            files.push(file(
                "lua/gatefold/access.lua",
                lua::ACCESS.to_string(),
                "the access phase of routes with authentication, acl or rate-limit (lua-resty-core only)",
            ));
            files.push(file(
                "lua/gatefold/config.lua",
                lua::config(ir, &model),
                "the routes', consumers' and limits' settings the access phase reads (secrets by environment variable name)",
            ));
        }
        Output::new(TargetKind::Nginx, ir, files)
    }
}

fn file(path: &str, text: String, description: &str) -> OutputFile {
    OutputFile {
        path: RelPath::new(path).expect("a relative path"),
        bytes: text.into_bytes(),
        description: description.to_string(),
    }
}

/// Whether the compiled configuration of `ir` runs the Lua access phase:
/// only when some route's chain holds a kind nginx cannot do alone. (The
/// Lua module itself is always loaded: every request's path is normalized
/// there, see `lua/path.lua`.)
pub fn needs_lua(ir: &ValidIr) -> bool {
    model::Model::build(ir, &Options::default()).lua
}
