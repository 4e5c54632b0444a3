//! A config at run time: built once from a [`ValidIr`] (compiled router,
//! policy instances with their state, resolved secrets, upstream pools) and
//! swapped in whole. Requests hold the `Arc<Runtime>` they started with, so
//! a swap never changes a request in flight.
//!
//! State that belongs to a *place* survives a swap when the place and the
//! policy are unchanged: rate-limit counters (a reload never resets a
//! limit), upstream pools with their health (a reload never sends traffic to
//! a target known to be down) and per-route metrics. Response caches start
//! empty with each config.

use super::clock::Clock;
use super::metrics::{Metrics, RouteMetrics, TargetHealth};
use super::phases::Policy;
use super::policies::{
    acl::AclPolicy, auth::Authentication, auth::Authenticator, basic_auth::BasicAuthMethod,
    cache::ResponseCache, cors::CorsPolicy, deprecation::DeprecationPolicy, headers,
    ip_filter::IpFilterPolicy, jwt::JwtMethod, key_auth::KeyAuthMethod, mock::MockPolicy,
    rate_limit::FixedWindow, rate_limit::RateLimitPolicy, redirect::RedirectPolicy,
    request_size_limit, rewrite::RewritePolicy, traffic_split::Split,
};
use super::router::Router;
use super::secrets::SecretSource;
use super::upstream::pool::Pool;
use gatefold_compiler::ir::policy::{Retry, Timeout};
use gatefold_compiler::ir::{Level, Phase, Policy as IrPolicy, Route, ValidIr};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// One upstream a route may send to, with the route's view of its
/// timeouts and retries.
pub struct Dest {
    pub pool: Arc<Pool>,
    pub tls: Arc<rustls::ClientConfig>,
    pub connect: Duration,
    pub read: Duration,
    pub retry: Option<Retry>,
}

/// How a route reaches its upstream (phase 12).
pub struct ProxyPlan {
    pub dests: Vec<Dest>,
    /// With a traffic split, it picks among `dests`; otherwise `dests[0]`.
    pub split: Option<Split>,
}

/// A route ready to serve.
pub struct RouteRt {
    pub id: Arc<str>,
    /// The chain's policies in phase order.
    pub policies: Vec<Box<dyn Policy>>,
    /// Index of the first policy at phase 3 or later (the body check runs there).
    pub after_body: usize,
    pub max_body: u64,
    pub has_cors: bool,
    pub cache: Option<Arc<ResponseCache>>,
    /// `None` for routes that always answer themselves (mock, redirect).
    pub proxy: Option<ProxyPlan>,
    pub metrics: Arc<RouteMetrics>,
}

/// The running config.
pub struct Runtime {
    pub ir: Arc<ValidIr>,
    pub router: Router,
    pub routes: Vec<RouteRt>,
    pub pools: BTreeMap<String, Arc<Pool>>,
    pub request_id: bool,
    pub server_header: bool,
    /// When it was loaded (since the epoch).
    pub loaded_at: Duration,
    pub no_route: Arc<RouteMetrics>,
    /// `gateway.tls`'s certificates with their keys, when the config has it.
    pub tls: Option<Arc<super::tls_listener::CertSet>>,
    /// Rate-limit counters by place, for the next config to keep.
    limiters: HashMap<String, Arc<FixedWindow>>,
}

/// What building a runtime needs from the gateway.
pub struct BuildEnv<'a> {
    pub secrets: &'a dyn SecretSource,
    pub clock: Arc<dyn Clock>,
    pub metrics: &'a Metrics,
    /// TLS settings for https upstreams.
    pub tls: Arc<rustls::ClientConfig>,
    pub previous: Option<&'a Runtime>,
}

/// Where a chain step was attached, naming its counters: the level, the api
/// or route it was attached to, the spec location of its options, and the
/// options themselves (changed options mean new counters).
fn place_key(ir: &ValidIr, route: &Route, step: usize, policy: &IrPolicy) -> String {
    let options = serde_json::to_string(policy).unwrap_or_default();
    match ir
        .sources
        .routes
        .get(&route.id)
        .and_then(|s| s.chain.get(step))
    {
        Some(src) => {
            let owner = match src.level {
                Level::Gateway => String::new(),
                Level::Api => route.id.api.to_string(),
                Level::Route => route.id.to_string(),
            };
            let at = src.at;
            format!(
                "{:?}|{owner}|{}:{}:{}|{options}",
                src.level, at.file, at.line, at.col
            )
        }
        None => format!("Route|{}|{options}", route.id),
    }
}

impl Runtime {
    /// Builds a runtime, or every reason it cannot be (a missing secret, an
    /// unusable key, a policy this gateway does not run).
    pub fn build(ir: ValidIr, env: &BuildEnv<'_>) -> Result<Runtime, Vec<String>> {
        let mut errors = Vec::new();
        let consumers = match super::policies::auth::build_consumers(&ir, env.secrets) {
            Ok(c) => Arc::new(c),
            Err(mut e) => {
                errors.append(&mut e);
                Arc::default()
            }
        };

        let tls = match ir.gateway.tls.as_ref() {
            Some(t) => match super::tls_listener::CertSet::build(t, env.secrets) {
                Ok(set) => Some(Arc::new(set)),
                Err(mut e) => {
                    errors.append(&mut e);
                    None
                }
            },
            None => None,
        };

        let mut pools = BTreeMap::new();
        for (name, def) in &ir.upstreams {
            let reused = env
                .previous
                .and_then(|p| p.pools.get(name.as_str()))
                .filter(|p| p.def == *def);
            match reused {
                Some(p) => {
                    pools.insert(name.to_string(), p.clone());
                }
                None => match Pool::start(name.as_str(), def, &env.tls) {
                    Ok(p) => {
                        pools.insert(name.to_string(), p);
                    }
                    Err(e) => errors.push(e),
                },
            }
        }

        let baseline = &ir.gateway.baseline;
        let mut limiters: HashMap<String, Arc<FixedWindow>> = HashMap::new();
        let mut caches: HashMap<String, Arc<ResponseCache>> = HashMap::new();
        let mut routes = Vec::with_capacity(ir.routes.len());
        for route in &ir.routes {
            let id: Arc<str> = route.id.to_string().into();
            let metrics = env.metrics.route(&id);
            let mut policies: Vec<Box<dyn Policy>> = Vec::new();
            let mut after_body = None;
            let mut auth: Vec<Box<dyn Authenticator>> = Vec::new();
            let mut realm = None;
            let mut cache = None;
            let mut timeout: Option<&Timeout> = None;
            let mut retry: Option<&Retry> = None;
            let mut split_cfg = None;
            let mut has_cors = false;
            let mut fail = |e: String| errors.push(format!("route {}: {e}", route.id));
            for (step, p) in route.chain.iter().enumerate() {
                if after_body.is_none() && p.kind().phase() >= Phase::RequestSizeLimit {
                    after_body = Some(policies.len());
                }
                // The authentication methods form one phase-4 policy, placed
                // where the first of them sits.
                if !p.kind().is_authentication() && !auth.is_empty() {
                    policies.push(Box::new(Authentication::new(
                        std::mem::take(&mut auth),
                        realm.take(),
                    )));
                }
                match p {
                    IrPolicy::IpFilter(c) => policies.push(Box::new(IpFilterPolicy::new(c))),
                    IrPolicy::Cors(c) => {
                        has_cors = true;
                        policies.push(Box::new(CorsPolicy::new(c)));
                    }
                    // Enforced by the body check, see `request_size_limit`.
                    IrPolicy::RequestSizeLimit(_) => {}
                    IrPolicy::KeyAuth(c) => match KeyAuthMethod::new(c, consumers.clone()) {
                        Ok(m) => auth.push(Box::new(m)),
                        Err(e) => fail(e),
                    },
                    IrPolicy::BasicAuth(c) => {
                        realm = Some(c.realm.as_str());
                        auth.push(Box::new(BasicAuthMethod::new(consumers.clone())));
                    }
                    IrPolicy::Jwt(c) => {
                        match JwtMethod::new(c, env.secrets, env.clock.clone(), consumers.clone()) {
                            Ok(m) => auth.push(Box::new(m)),
                            Err(e) => fail(e),
                        }
                    }
                    IrPolicy::Acl(c) => policies.push(Box::new(AclPolicy::new(c))),
                    IrPolicy::RateLimit(c) => {
                        // Counters by the IR's scope (where the limit is
                        // attached) and options: changed options, new counters.
                        let key = serde_json::to_string(c).unwrap_or_default();
                        let counters = limiters
                            .entry(key.clone())
                            .or_insert_with(|| {
                                env.previous
                                    .and_then(|prev| prev.limiters.get(&key).cloned())
                                    .unwrap_or_else(|| Arc::new(FixedWindow::new(c)))
                            })
                            .clone();
                        policies.push(Box::new(RateLimitPolicy::new(
                            c,
                            counters,
                            env.clock.clone(),
                            metrics.clone(),
                        )));
                    }
                    IrPolicy::Deprecation(c) => match DeprecationPolicy::new(c) {
                        Ok(d) => policies.push(Box::new(d)),
                        Err(e) => fail(e),
                    },
                    IrPolicy::Script(_) => fail(
                        "`script` policies are not run by the reference gateway yet; \
                         refusing the config rather than skipping the script"
                            .into(),
                    ),
                    IrPolicy::Mock(c) => match MockPolicy::new(c) {
                        Ok(m) => policies.push(Box::new(m)),
                        Err(e) => fail(e),
                    },
                    IrPolicy::Redirect(c) => match RedirectPolicy::new(c, &route.matcher.path) {
                        Ok(r) => policies.push(Box::new(r)),
                        Err(e) => fail(e),
                    },
                    IrPolicy::RequestHeaders(c) => match headers::Transform::new(c) {
                        Ok(t) => policies.push(Box::new(headers::RequestHeaders(t))),
                        Err(e) => fail(e),
                    },
                    IrPolicy::Rewrite(c) => {
                        policies.push(Box::new(RewritePolicy::new(c, &route.matcher.path)))
                    }
                    IrPolicy::Cache(c) => {
                        let key = place_key(&ir, route, step, p);
                        if let Some(existing) = caches.get(&key) {
                            cache = Some(existing.clone());
                        } else {
                            match ResponseCache::new(c, env.clock.clone()) {
                                Ok(rc) => {
                                    let rc = Arc::new(rc);
                                    caches.insert(key, rc.clone());
                                    cache = Some(rc);
                                }
                                Err(e) => fail(e),
                            }
                        }
                    }
                    IrPolicy::Timeout(t) => timeout = Some(t),
                    IrPolicy::Retry(r) => retry = Some(r),
                    IrPolicy::TrafficSplit(s) => split_cfg = Some(s),
                    IrPolicy::ResponseHeaders(c) => match headers::Transform::new(c) {
                        Ok(t) => policies.push(Box::new(headers::ResponseHeaders(t))),
                        Err(e) => fail(e),
                    },
                    // Configuration for other targets; nothing here for this one.
                    IrPolicy::Native(_) => {}
                }
            }
            if !auth.is_empty() {
                policies.push(Box::new(Authentication::new(auth, realm)));
            }
            if let Some(base) = &route.strip_prefix {
                // strip-base-path runs at phase 10; phase-10 policies sit
                // before cache/proxy/response ones, and order within phase 10
                // does not matter (a rewrite and strip-base-path never meet).
                policies.push(Box::new(RewritePolicy::strip_base(base)));
            }
            let after_body = after_body.unwrap_or(policies.len()).min(policies.len());

            // Phase 12: the destinations.
            let dest = |name: &str| -> Option<Dest> {
                let pool = pools.get(name)?.clone();
                let up = pool.def.timeouts.as_ref();
                let pick = |r: Option<gatefold_compiler::ir::Duration>,
                            u: Option<gatefold_compiler::ir::Duration>,
                            b: gatefold_compiler::ir::Duration| {
                    r.or(u).unwrap_or(b).as_std()
                };
                let connect = pick(
                    timeout.and_then(|t| t.connect),
                    up.and_then(|t| t.connect),
                    baseline.timeouts.connect,
                );
                let read = pick(
                    timeout.and_then(|t| t.read),
                    up.and_then(|t| t.read),
                    baseline.timeouts.read,
                );
                Some(Dest {
                    tls: env.tls.clone(),
                    connect,
                    read,
                    retry: retry.cloned().or_else(|| pool.def.retries.clone()),
                    pool,
                })
            };
            let proxy = if let Some(s) = split_cfg {
                // Each upstream the split names, once, in first-named order.
                let mut uniq: Vec<&str> = Vec::new();
                let named = s.header_match.iter().map(|m| m.upstream.as_str());
                for n in named.chain(s.to.iter().map(|w| w.upstream.as_str())) {
                    if !uniq.contains(&n) {
                        uniq.push(n);
                    }
                }
                let dests: Option<Vec<Dest>> = uniq.iter().map(|n| dest(n)).collect();
                match (
                    dests,
                    Split::new(s, |n| uniq.iter().position(|u| *u == n).unwrap_or(0)),
                ) {
                    (Some(dests), Ok(split)) => Some(ProxyPlan {
                        dests,
                        split: Some(split),
                    }),
                    (None, _) => {
                        errors.push(format!(
                            "route {}: traffic-split names an unknown upstream",
                            route.id
                        ));
                        None
                    }
                    (_, Err(e)) => {
                        errors.push(format!("route {}: {e}", route.id));
                        None
                    }
                }
            } else {
                match route.upstream.as_ref() {
                    Some(name) => match dest(name.as_str()) {
                        Some(d) => Some(ProxyPlan {
                            dests: vec![d],
                            split: None,
                        }),
                        None => {
                            errors.push(format!("route {}: unknown upstream `{name}`", route.id));
                            None
                        }
                    },
                    None => None,
                }
            };
            routes.push(RouteRt {
                id,
                policies,
                after_body,
                max_body: request_size_limit::effective_max(route, baseline.max_body.0),
                has_cors,
                cache,
                proxy,
                metrics,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Runtime {
            router: Router::new(ir.routes.iter().map(|r| &r.matcher)),
            routes,
            pools,
            request_id: baseline.request_id,
            server_header: baseline.server_header,
            loaded_at: env.clock.now(),
            no_route: env.metrics.route(super::metrics::NO_ROUTE),
            tls,
            limiters,
            ir: Arc::new(ir),
        })
    }

    /// Every target's health, for metrics and status.
    pub fn health(&self) -> Vec<TargetHealth> {
        self.pools
            .iter()
            .flat_map(|(name, p)| {
                p.targets.iter().map(move |t| TargetHealth {
                    upstream: name.clone(),
                    target: t.label.to_string(),
                    healthy: t.is_healthy(),
                    inflight: t.inflight(),
                })
            })
            .collect()
    }
}
