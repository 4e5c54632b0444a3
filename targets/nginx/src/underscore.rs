//! Request headers whose name holds `_` never reach nginx's configuration:
//! nginx drops such header lines while reading the request
//! (`ignore_invalid_headers`). Turning that off (`underscores_in_headers`)
//! would be worse: `$http_x_key` then reads `x_key` and `x-key` alike. So
//! a spec that reads such a header is refused at the place it is named:
//! a condition that could never hold, a key that is never found, a limit,
//! cache key or split that would see every request as the same, a script's
//! `req.header("x_name")` that would always be `null`.

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::policy::{KeyLocation, RateKey};
use gatefold_compiler::ir::script::{visit_exprs, Expr, Side, Stmt};
use gatefold_compiler::ir::{Balance, HeaderName, Loc, Policy, ValidIr};
use gatefold_compiler::target::span_of;

/// One error per place that reads a request header named with `_`.
pub fn refusals(ir: &ValidIr) -> Diagnostics {
    let mut out = Diagnostics::new();
    let mut refuse = |name: &str, what: String, loc: Option<&Loc>, help: &str| {
        if !name.contains('_') {
            return;
        }
        let loc = loc.copied().unwrap_or(Loc::START);
        out.push(
            Diagnostic::error(
                "unsupported-feature",
                span_of(loc),
                format!(
                    "target `nginx` cannot read header `{name}` ({what}): nginx drops request header lines whose name holds `_` before any configuration reads them"
                ),
            )
            .with_help(help.to_string()),
        );
    };
    const RENAME: &str =
        "name a header without `_` (for example `-` in its place) for the nginx target";
    for r in &ir.routes {
        for name in r.matcher.conditions.headers.keys() {
            refuse(
                name.as_str(),
                format!("a `match` condition of route `{}`", r.id),
                ir.sources.routes.get(&r.id),
                "name a header without `_` in `match`, or route by another condition for the nginx target",
            );
        }
    }
    for (id, instance) in &ir.policies {
        let loc = ir.sources.policies.get(id);
        let mut each = |name: &HeaderName, what: &str| {
            refuse(
                name.as_str(),
                format!("{what} of policy `{id}`"),
                loc,
                RENAME,
            )
        };
        match &instance.policy {
            Policy::KeyAuth(k) if k.location == KeyLocation::Header => {
                refuse(&k.name, format!("the key of policy `{id}`"), loc, RENAME)
            }
            Policy::RateLimit(l) => {
                if let RateKey::Header(h) = &l.key {
                    each(h, "the key");
                }
            }
            Policy::Cache(c) => c.vary.iter().for_each(|h| each(h, "a `vary` header")),
            Policy::TrafficSplit(t) => t
                .header_match
                .iter()
                .for_each(|m| each(&m.name, "a header match")),
            Policy::Script(script) => {
                let mut names = Vec::new();
                if let Some(p) = &script.request {
                    request_header_reads(&p.body, &mut names);
                }
                for name in names {
                    refuse(
                        &name,
                        format!("`req.header()` in policy `{id}`"),
                        loc,
                        "name a header without `_` in `req.header()` for the nginx target",
                    );
                }
            }
            _ => {}
        }
    }
    for (name, up) in &ir.upstreams {
        if let Balance::HashHeader(h) = &up.balance {
            refuse(
                h.as_str(),
                format!("the `balance` hash of upstream `{name}`"),
                ir.sources.upstreams.get(name),
                RENAME,
            );
        }
    }
    out
}

/// The names a request script reads with `req.header("...")` written as a
/// string (a computed name is only known at run time, where nginx reads
/// `null` for a name with `_`).
fn request_header_reads(body: &[Stmt], out: &mut Vec<String>) {
    visit_exprs(body, &mut |e| {
        if let Expr::Header {
            side: Side::Request,
            name,
        } = e
        {
            if let Expr::Str(n) = name.as_ref() {
                out.push(n.to_ascii_lowercase());
            }
        }
    });
}
