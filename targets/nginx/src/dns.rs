//! Upstream host names. nginx 1.22 resolves every `server` of an
//! `upstream {}` block once, at start-up, and refuses to start while one
//! does not resolve; the reference gateway and Envoy resolve when they
//! connect. So an upstream whose one target is a DNS name has no
//! `upstream {}` block: its routes `proxy_pass` to `host:port` in a URL
//! holding variables, which nginx resolves per request through the
//! `resolver` of [`RESOLVER_FILE`] (an unresolvable name then answers 502
//! `bad gateway`, as on the reference gateway).
//!
//! The resolver's address belongs to the machine, not the spec: the
//! compiled config only `include`s [`RESOLVER_FILE`] (relative to the
//! prefix), which whoever runs nginx writes (`gatefold up` and fleet sync
//! from `/etc/resolv.conf`).
//!
//! Kept in an `upstream {}` block, resolved at start-up:
//! * `localhost`: nginx's resolver reads no `/etc/hosts`, where the name
//!   lives (start-up resolution reads it, as the reference gateway does);
//! * an upstream with several targets, one of them a name: its balance,
//!   weights and retries to the next target are the block's, which a
//!   per-request name cannot join. Said by a warning ([`warnings`]).

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::{Ir, Loc, OriginHost, Upstream, ValidIr};
use gatefold_compiler::target::span_of;

/// The file holding the `resolver` directive, relative to the prefix
/// (`include`d as `../resolver.conf` from `conf/nginx.conf`), when
/// [`resolves_names`]. `gatefold_runtime::nginx::RESOLVER_FILE` is the
/// same path.
pub const RESOLVER_FILE: &str = "resolver.conf";

/// Whether `host` is a name nginx cannot resolve per request: the
/// loopback name, found in `/etc/hosts` only.
fn loopback_name(host: &str) -> bool {
    host == "localhost"
}

/// Whether `up` is reached by name per request: one target, a DNS name
/// other than `localhost`.
pub(crate) fn per_request(up: &Upstream) -> bool {
    matches!(up.targets.as_slice(),
        [t] if matches!(&t.url.host, OriginHost::Dns(name) if !loopback_name(name)))
}

/// Whether the compiled config of `ir` resolves upstream names per request
/// (and so `include`s [`RESOLVER_FILE`]).
pub fn resolves_names(ir: &ValidIr) -> bool {
    uses_resolver(ir)
}

pub(crate) fn uses_resolver(ir: &Ir) -> bool {
    ir.upstreams.values().any(per_request)
}

/// One warning per upstream whose names nginx resolves at start-up only:
/// several targets, one of them a DNS name other than `localhost`.
pub fn warnings(ir: &ValidIr) -> Diagnostics {
    let mut out = Diagnostics::new();
    for (name, up) in &ir.upstreams {
        let named = up.targets.iter().find_map(|t| match &t.url.host {
            OriginHost::Dns(host) if !loopback_name(host) => Some(host),
            _ => None,
        });
        let (Some(host), true) = (named, up.targets.len() > 1) else {
            continue;
        };
        let loc = ir
            .sources
            .upstreams
            .get(name)
            .copied()
            .unwrap_or(Loc::START);
        out.push(
            Diagnostic::warning(
                "upstream-resolved-at-start",
                span_of(loc),
                format!(
                    "target `nginx` resolves the host names of upstream `{name}` (`{host}`) once, when nginx starts, and does not start while one does not resolve: an upstream with several targets keeps nginx's `upstream` block for its balance, weights and retries, and nginx 1.22 resolves no name of such a block per request"
                ),
            )
            .with_help(
                "give the targets as IP addresses, or one upstream per host name (a `traffic-split` across them), to have the names resolved per request",
            ),
        );
    }
    out
}
