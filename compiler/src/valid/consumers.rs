//! Checks over the consumers: group names that differ only in case, basic
//! users shared by two consumers, and authentication kinds no consumer has
//! a credential for.

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::*;
use crate::ir::policy::PolicyKind;
use crate::ir::values::Name;
use crate::resolve::ResolvedRoute;
use crate::source::Span;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Consumer-wide rules: group names that differ only in case, and basic
/// users shared by two consumers (the gateway could not tell them apart).
pub fn check_consumers(spec: &SpecAst, diags: &mut Diagnostics) {
    let mut groups: BTreeMap<String, &NameRef> = BTreeMap::new();
    let mut users: HashMap<&str, (&Name, Span)> = HashMap::new();
    for c in &spec.consumers {
        for g in &c.value.group_refs {
            let first = *groups
                .entry(g.name.as_str().to_ascii_lowercase())
                .or_insert(g);
            if first.name != g.name {
                diags.push(
                    Diagnostic::error(
                        "name-case-clash",
                        g.span,
                        format!("group `{}` differs from group `{}` only in case", g.name, first.name),
                    )
                    .with_related(first.span, format!("`{}` is used here", first.name))
                    .with_help(format!("groups are case-sensitive; write `{}` if it is the same group, or rename one", first.name)),
                );
            }
        }
        let (Some(b), Some(at)) = (&c.value.basic, c.value.basic_user_span) else {
            continue;
        };
        match users.get(b.user.as_str()) {
            Some((first, first_at)) => diags.push(
                Diagnostic::error(
                    "duplicate-basic-user",
                    at,
                    format!(
                        "consumers `{first}` and `{}` have the same basic-auth user `{}`",
                        c.name, b.user
                    ),
                )
                .with_related(*first_at, format!("`{first}` uses it here"))
                .with_help("give each consumer its own user, so the gateway knows who is calling"),
            ),
            None => {
                users.insert(b.user.as_str(), (&c.name, at));
            }
        }
    }
}

/// `key-auth` and `basic-auth` need a consumer holding that credential,
/// or every request they check would get 401.
pub fn check_credentials_exist(
    spec: &SpecAst,
    routes: &[ResolvedRoute<'_>],
    diags: &mut Diagnostics,
) {
    if spec.decode_errors {
        return; // a credential may be among what failed to decode
    }
    let consumers = &spec.consumers;
    let has_key = consumers.iter().any(|c| !c.value.keys.is_empty());
    let has_basic = consumers.iter().any(|c| c.value.basic.is_some());
    let mut seen = BTreeSet::new();
    for step in routes.iter().flat_map(|r| &r.steps) {
        let p = step.policy;
        let (missing, credential) = match p.kind() {
            PolicyKind::KeyAuth => (!has_key, "credentials: { key: { env: ACME_API_KEY } }"),
            PolicyKind::BasicAuth => (
                !has_basic,
                "credentials: { basic: { user: acme, password: { env: ACME_PASSWORD } } }",
            ),
            _ => continue,
        };
        if missing && seen.insert(p.kind_span) {
            diags.push(
                Diagnostic::error(
                    "no-credentials",
                    p.kind_span,
                    format!("`{}` is used, but no consumer has a credential it accepts, so every request would get 401", p.kind()),
                )
                .with_help(format!("give a consumer `{credential}`")),
            );
        }
    }
}
