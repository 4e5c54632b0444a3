//! Plugins from the IR's policy instances.
//!
//! An instance that every route's chain holds (and no route holds another
//! of its kind) is one global plugin; any other is one plugin per route
//! whose chain holds it, tagged with the instance's id. Kong runs one
//! plugin of a name per request, the most specific one, which is the
//! spec's one instance of a kind per chain.

use crate::model::{Plugin, PluginConfig, TransformList};
use crate::routing::route_name;
use gatefold_compiler::ir::policy::{Acl, CorsOrigin, HeaderTransform, KeyLocation, Policy};
use gatefold_compiler::ir::{PolicyId, PolicyKind, Route as IrRoute, RouteId, ValidIr};
use std::collections::BTreeMap;

/// Every plugin, instances in id order, routes in IR order.
pub fn plugins(ir: &ValidIr) -> Vec<Plugin> {
    let mut out = Vec::new();
    // The routes holding each instance, in IR order, from one pass over
    // the routes (a pass per instance was quadratic at 10,000 routes).
    let mut holding: BTreeMap<&PolicyId, Vec<&IrRoute>> = BTreeMap::new();
    for r in &ir.routes {
        for id in &r.chain {
            holding.entry(id).or_default().push(r);
        }
    }
    for (id, instance) in &ir.policies {
        let Some((name, config)) = plugin(&instance.policy) else {
            continue;
        };
        // Phase 4 in Lua (`auth`) replaces Kong's key-auth and basic-auth.
        let lua_auth = matches!(id.kind, PolicyKind::KeyAuth | PolicyKind::BasicAuth);
        let holders: Vec<&RouteId> = holding
            .get(id)
            .into_iter()
            .flatten()
            .filter(|r| !(lua_auth && crate::auth::in_lua(r)))
            .map(|r| &r.id)
            .collect();
        if holders.is_empty() {
            continue;
        }
        let tags = vec![crate::tag(id)];
        if is_global(ir, id, holders.len()) {
            out.push(Plugin {
                name,
                route: None,
                service: None,
                config,
                tags,
            });
        } else {
            for r in holders {
                out.push(Plugin {
                    name,
                    route: Some(route_name(r)),
                    service: None,
                    config: config.clone(),
                    tags: tags.clone(),
                });
            }
        }
    }
    out
}

/// Whether `id` applies to every route and no route has another instance
/// of its kind (which Kong would run instead of a global plugin).
fn is_global(ir: &ValidIr, id: &PolicyId, holders: usize) -> bool {
    holders == ir.routes.len()
        && ir
            .routes
            .iter()
            .all(|r| r.chain.iter().filter(|p| p.kind == id.kind).count() == 1)
}

/// The Kong plugin carrying out `policy`; `None` for kinds this target
/// leaves out (`check` has refused or warned about them) and `native`.
fn plugin(policy: &Policy) -> Option<(&'static str, PluginConfig)> {
    let p = match policy {
        Policy::KeyAuth(k) => (
            "key-auth",
            PluginConfig::KeyAuth {
                key_names: vec![k.name.clone()],
                key_in_header: k.location == KeyLocation::Header,
                key_in_query: k.location == KeyLocation::Query,
                key_in_body: false,
                // The spec strips the credential before proxying.
                hide_credentials: true,
            },
        ),
        Policy::BasicAuth(b) => (
            "basic-auth",
            PluginConfig::BasicAuth {
                hide_credentials: true,
                realm: b.realm.clone(),
            },
        ),
        Policy::Acl(a) => {
            let names = |s: &std::collections::BTreeSet<gatefold_compiler::ir::Name>| {
                Some(s.iter().map(|n| n.to_string()).collect())
            };
            let (allow, deny) = match a {
                Acl::Allow(s) => (names(s), None),
                Acl::Deny(s) => (None, names(s)),
            };
            (
                "acl",
                PluginConfig::Acl {
                    allow,
                    deny,
                    // The spec sends no group header upstream.
                    hide_groups_header: true,
                },
            )
        }
        Policy::Cors(c) => (
            "cors",
            PluginConfig::Cors {
                origins: c
                    .origins
                    .iter()
                    // Wildcard patterns are refused for Kong (`Target::fields`);
                    // were one here, leaving it out allows less, never more.
                    .filter_map(|o| match o {
                        CorsOrigin::Any => Some("*".to_string()),
                        CorsOrigin::Origin(o) => Some(o.clone()),
                        CorsOrigin::Pattern(_) => None,
                    })
                    .collect(),
                methods: c.methods.iter().map(|m| m.as_str().to_string()).collect(),
                headers: c.headers.iter().map(|h| h.to_string()).collect(),
                exposed_headers: c.expose.iter().map(|h| h.to_string()).collect(),
                credentials: c.credentials,
                max_age: c.max_age.map(|d| d.millis / 1000),
                preflight_continue: false,
            },
        ),
        Policy::RequestHeaders(t) => ("request-transformer", transformer(t)),
        Policy::ResponseHeaders(t) => ("response-transformer", transformer(t)),
        // mock, script, ip-filter, rate-limit and request-size-limit are
        // Lua in pre-function / post-function (`functions`).
        _ => return None,
    };
    debug_assert!(matches!(
        policy.kind(),
        PolicyKind::KeyAuth
            | PolicyKind::BasicAuth
            | PolicyKind::Acl
            | PolicyKind::Cors
            | PolicyKind::RequestHeaders
            | PolicyKind::ResponseHeaders
    ));
    Some(p)
}

/// `set` is `replace` (when present) plus `add` (when absent); the spec's
/// `add` is Kong's `append`. Kong applies remove, replace, add, append in
/// that order.
fn transformer(t: &HeaderTransform) -> PluginConfig {
    let pairs = |m: &gatefold_compiler::ir::HeaderMap| -> Vec<String> {
        m.iter().map(|(n, v)| format!("{n}:{v}")).collect()
    };
    PluginConfig::Transformer {
        remove: TransformList {
            headers: t.remove.iter().map(|h| h.to_string()).collect(),
        },
        replace: TransformList {
            headers: pairs(&t.set),
        },
        add: TransformList {
            headers: pairs(&t.set),
        },
        append: TransformList {
            headers: pairs(&t.add),
        },
    }
}
