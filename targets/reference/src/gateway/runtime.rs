//! A config at run time: built once from a [`ValidIr`] (its dispatch view,
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
use super::phases::PhaseHooks;
use super::policies::script::ScriptPolicy;
use super::policies::{
    acl::AclPolicy, auth::Authentication, auth::Authenticator, basic_auth::BasicAuthMethod,
    cache::ResponseCache, cors::CorsPolicy, deprecation::DeprecationPolicy, headers,
    ip_filter::IpFilterPolicy, jwt::JwtMethod, key_auth::KeyAuthMethod, mirror::MirrorPlan,
    mock::MockPolicy, rate_limit::FixedWindow, rate_limit::RateLimitPolicy,
    redirect::RedirectPolicy, rewrite::RewritePolicy, traffic_split::Split,
};
use super::secrets::SecretSource;
use super::upstream::pool::Pool;
use gatefold_compiler::dispatch::DispatchView;
use gatefold_compiler::ir::policy::Retry;
use gatefold_compiler::ir::{
    Destination, Phase, Policy as IrPolicy, PolicyId, PolicyIndex, ProxyPlan as LoweredPlan,
    RouteMeanings, ValidIr,
};
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
    /// Where copies go (`mirror`), if anywhere.
    pub mirror: Option<MirrorPlan>,
}

/// A route ready to serve.
pub struct RouteRt {
    pub id: Arc<str>,
    /// The chain's policies in phase order.
    pub policies: Vec<Box<dyn PhaseHooks>>,
    /// Index of the first policy at phase 3 or later (the body check runs there).
    pub after_body: usize,
    pub max_body: u64,
    pub cache: Option<Arc<ResponseCache>>,
    /// `None` for routes that always answer themselves (mock, redirect).
    /// Shared with the previous runtime's route when nothing it is made
    /// of changed ([`Runtime::build`]).
    pub proxy: Option<Arc<ProxyPlan>>,
    pub metrics: Arc<RouteMetrics>,
    /// `preserve-host`: the upstream gets the client's host.
    pub preserve_host: bool,
}

/// The running config.
pub struct Runtime {
    pub ir: Arc<ValidIr>,
    /// Host, path and method to a route, 405 allow sets and preflights:
    /// the compiler's projection, so the gateway computes none of it.
    /// Shared with the next config when that routes the same
    /// ([`DispatchView::same_input`]).
    pub view: Arc<DispatchView>,
    pub routes: Vec<RouteRt>,
    pub pools: BTreeMap<String, Arc<Pool>>,
    pub request_id: bool,
    pub server_header: bool,
    /// When it was loaded (since the epoch).
    pub loaded_at: Duration,
    pub no_route: Arc<RouteMetrics>,
    /// `gateway.tls`'s certificates with their keys, when the config has it.
    pub tls: Option<Arc<super::tls_listener::CertSet>>,
    /// Rate-limit counters by policy instance, for the next config to keep.
    limiters: HashMap<PolicyId, Arc<FixedWindow>>,
    /// The IR as `GET /config` answers it ([`Runtime::json`]).
    json: std::sync::OnceLock<bytes::Bytes>,
    /// [`Runtime::meanings`].
    meanings: std::sync::OnceLock<Arc<RouteMeanings>>,
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

/// Whether `text` is route id `id` written out (`api.route`).
fn names(text: &str, id: &gatefold_compiler::ir::RouteId) -> bool {
    text.strip_prefix(id.api.as_str())
        .and_then(|rest| rest.strip_prefix('.'))
        == Some(id.route.as_str())
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
        let mut limiters: HashMap<PolicyId, Arc<FixedWindow>> = HashMap::new();
        let mut caches: HashMap<PolicyId, Arc<ResponseCache>> = HashMap::new();
        let mut transforms = headers::Shared::default();
        let index = PolicyIndex::of(&ir);
        let mut routes = Vec::with_capacity(ir.routes.len());
        for (at, route) in ir.routes.iter().enumerate() {
            // A reload mostly keeps its routes where they were: the
            // previous runtime's route in this place, and its IR route.
            let before = env
                .previous
                .and_then(|p| Some((p.routes.get(at)?, p.ir.routes.get(at)?)));
            // The id and counters of the route there, when it is this one,
            // without a new string or a lookup by name.
            let kept = before.map(|(r, _)| r).filter(|r| names(&r.id, &route.id));
            let (id, metrics) = match kept {
                Some(r) => (r.id.clone(), r.metrics.clone()),
                None => {
                    let id: Arc<str> = route.id.to_string().into();
                    let metrics = env.metrics.route(&id);
                    (id, metrics)
                }
            };
            let mut policies: Vec<Box<dyn PhaseHooks>> = Vec::new();
            let mut after_body = None;
            let mut cache = None;
            let mut mirror = None;
            let mut response_script = None;
            let lowered = &route.lowered;
            let mut fail = |e: String| errors.push(format!("route {}: {e}", route.id));
            for (pid, instance) in index.chain(route) {
                let p = &instance.policy;
                if after_body.is_none() && p.kind().phase() >= Phase::RequestSizeLimit {
                    after_body = Some(policies.len());
                }
                match p {
                    IrPolicy::IpFilter(c) => policies.push(Box::new(IpFilterPolicy::new(c))),
                    IrPolicy::Cors(c) => policies.push(Box::new(CorsPolicy::new(c))),
                    // Enforced by the body check with the lowered limit,
                    // see `request_size_limit`.
                    IrPolicy::RequestSizeLimit(_) => {}
                    // The lowered authentication group is one phase-4
                    // policy, placed where the first of its methods sits.
                    IrPolicy::KeyAuth(_) | IrPolicy::BasicAuth(_) | IrPolicy::Jwt(_) => {
                        let Some(group) = &lowered.auth else { continue };
                        if group.methods.first() != Some(pid) {
                            continue;
                        }
                        let mut methods: Vec<Box<dyn Authenticator>> = Vec::new();
                        for m in &group.methods {
                            match index.get(m).map(|i| &i.policy) {
                                Some(IrPolicy::KeyAuth(c)) => {
                                    match KeyAuthMethod::new(c, consumers.clone()) {
                                        Ok(m) => methods.push(Box::new(m)),
                                        Err(e) => fail(e),
                                    }
                                }
                                Some(IrPolicy::BasicAuth(_)) => {
                                    methods.push(Box::new(BasicAuthMethod::new(consumers.clone())))
                                }
                                Some(IrPolicy::Jwt(c)) => match JwtMethod::new(
                                    c,
                                    env.secrets,
                                    env.clock.clone(),
                                    consumers.clone(),
                                ) {
                                    Ok(m) => methods.push(Box::new(m)),
                                    Err(e) => fail(e),
                                },
                                _ => fail(format!("`{m}` is not an authentication policy")),
                            }
                        }
                        policies.push(Box::new(Authentication::new(
                            methods,
                            group.realm.as_deref(),
                        )));
                    }
                    IrPolicy::Acl(c) => policies.push(Box::new(AclPolicy::new(c))),
                    IrPolicy::RateLimit(c) => {
                        // Counters by policy instance; the previous config's
                        // are kept unless the instance's options changed.
                        let counters = limiters
                            .entry(pid.clone())
                            .or_insert_with(|| {
                                env.previous
                                    .filter(|prev| {
                                        prev.ir.policies.get(pid).map(|i| &i.policy) == Some(p)
                                    })
                                    .and_then(|prev| prev.limiters.get(pid).cloned())
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
                    // The request side at phase 8; the response side after
                    // `response-headers` (pushed last, below).
                    IrPolicy::Script(s) => {
                        let (request, response) = ScriptPolicy::new(
                            pid,
                            s,
                            ir.sources.scripts.get(pid).map_or(&[][..], Vec::as_slice),
                            ir.sources.policies.get(pid).copied(),
                            |l| ir.sources.describe(l),
                        );
                        if let Some(r) = request {
                            policies.push(Box::new(r));
                        }
                        response_script = response;
                    }
                    IrPolicy::Mock(c) => match MockPolicy::new(c) {
                        Ok(m) => policies.push(Box::new(m)),
                        Err(e) => fail(e),
                    },
                    IrPolicy::Redirect(c) => match RedirectPolicy::new(c, &route.matcher.path) {
                        Ok(r) => policies.push(Box::new(r)),
                        Err(e) => fail(e),
                    },
                    IrPolicy::RequestHeaders(c) => {
                        policies.push(Box::new(headers::RequestHeaders(transforms.shared(c))))
                    }
                    // The lowered upstream path, below.
                    IrPolicy::Rewrite(_) => {}
                    IrPolicy::Cache(c) => {
                        if let Some(existing) = caches.get(pid) {
                            cache = Some(existing.clone());
                        } else {
                            match ResponseCache::new(c, env.clock.clone()) {
                                Ok(rc) => {
                                    let rc = Arc::new(rc);
                                    caches.insert(pid.clone(), rc.clone());
                                    cache = Some(rc);
                                }
                                Err(e) => fail(e),
                            }
                        }
                    }
                    // Folded into the lowered proxy plan.
                    IrPolicy::Timeout(_) | IrPolicy::Retry(_) | IrPolicy::TrafficSplit(_) => {}
                    // Phase 12, beside the proxy plan (below), with the
                    // mirror upstream's own timeouts.
                    IrPolicy::Mirror(c) => match (
                        pools.get(c.upstream.as_str()),
                        ir.upstreams.get(&c.upstream),
                    ) {
                        (Some(pool), Some(def)) => {
                            let own = def.timeouts.as_ref();
                            mirror = Some(MirrorPlan::new(
                                c,
                                pool.clone(),
                                env.tls.clone(),
                                own.and_then(|t| t.connect)
                                    .unwrap_or(baseline.timeouts.connect)
                                    .as_std(),
                                own.and_then(|t| t.read)
                                    .unwrap_or(baseline.timeouts.read)
                                    .as_std(),
                            ));
                        }
                        _ => fail(format!("mirror upstream `{}` is unknown", c.upstream)),
                    },
                    IrPolicy::ResponseHeaders(c) => {
                        policies.push(Box::new(headers::ResponseHeaders(transforms.shared(c))))
                    }
                    // Configuration for other targets; nothing here for this one.
                    IrPolicy::Native(_) => {}
                }
            }
            if let Some(rewrite) =
                RewritePolicy::lowered(&lowered.upstream_path, &route.matcher.path)
            {
                // Phase 10; phase-10 policies sit before cache/proxy/response
                // ones, and order within phase 10 does not matter (only one
                // policy changes the path).
                policies.push(Box::new(rewrite));
            }
            // Phase 13 runs `response-headers`, then the response script.
            if let Some(s) = response_script {
                policies.push(Box::new(s));
            }
            let after_body = after_body.unwrap_or(policies.len()).min(policies.len());

            // Phase 12: the destinations, as lowered.
            let dest = |d: &Destination| -> Option<Dest> {
                Some(Dest {
                    pool: pools.get(d.upstream.as_str())?.clone(),
                    tls: env.tls.clone(),
                    connect: d.connect_timeout.as_std(),
                    read: d.read_timeout.as_std(),
                    retry: d.retry.clone(),
                })
            };
            // The same route in the same place (its chain and lowered plan
            // as they were), sent to one upstream (no split) whose pool is
            // the previous one (a changed upstream gets a new pool), with
            // no mirror: the plan it had is the plan it gets. Most routes
            // of a reload; building them anew was a quarter of it.
            let kept_plan = before
                .filter(|(_, r)| Arc::ptr_eq(r, route))
                .and_then(|(old, _)| old.proxy.as_ref())
                .filter(|old| {
                    let (Some(LoweredPlan::Single(d)), [dest], None) =
                        (&lowered.proxy, old.dests.as_slice(), &mirror)
                    else {
                        return false;
                    };
                    Arc::ptr_eq(&dest.tls, &env.tls)
                        && pools
                            .get(d.upstream.as_str())
                            .is_some_and(|pool| Arc::ptr_eq(pool, &dest.pool))
                });
            let proxy = match &lowered.proxy {
                None => None,
                Some(_) if kept_plan.is_some() => kept_plan.cloned(),
                Some(plan) => {
                    let dests: Option<Vec<Dest>> = plan.destinations().iter().map(dest).collect();
                    let split = match plan {
                        LoweredPlan::Single(_) => Ok(None),
                        LoweredPlan::Split { policy, to } => {
                            match index.get(policy).map(|i| &i.policy) {
                                Some(IrPolicy::TrafficSplit(s)) => Split::new(s, |n| {
                                    to.iter()
                                        .position(|d| d.upstream.as_str() == n)
                                        .unwrap_or(0)
                                })
                                .map(Some),
                                _ => Err(format!("`{policy}` is not a traffic split")),
                            }
                        }
                    };
                    match (dests, split) {
                        (Some(dests), Ok(split)) => Some(Arc::new(ProxyPlan {
                            dests,
                            split,
                            mirror: mirror.take(),
                        })),
                        (None, _) => {
                            errors.push(format!("route {}: unknown upstream", route.id));
                            None
                        }
                        (_, Err(e)) => {
                            errors.push(format!("route {}: {e}", route.id));
                            None
                        }
                    }
                }
            };
            routes.push(RouteRt {
                id,
                policies,
                after_body,
                max_body: lowered.max_body.0,
                cache,
                proxy,
                metrics,
                preserve_host: lowered.preserve_host,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let view = match env.previous {
            Some(p) if DispatchView::same_input(&p.ir, &ir) => p.view.clone(),
            _ => Arc::new(DispatchView::new(&ir)),
        };
        Ok(Runtime {
            view,
            routes,
            pools,
            request_id: baseline.request_id,
            server_header: baseline.server_header,
            loaded_at: env.clock.now(),
            no_route: env.metrics.route(&Arc::from(super::metrics::NO_ROUTE)),
            tls,
            limiters,
            ir: Arc::new(ir),
            json: std::sync::OnceLock::new(),
            meanings: std::sync::OnceLock::new(),
        })
    }

    /// The IR's JSON text: the text it was pushed as ([`Runtime::keep_json`]),
    /// else serialized once, on the first ask. A fleet's plan asks for it
    /// (the semantic diff) once per running hash; serializing a 5,000-route
    /// IR again was a sixth of the gateway's CPU in a single-gateway apply.
    pub fn json(&self) -> bytes::Bytes {
        self.json
            .get_or_init(|| bytes::Bytes::from(self.ir.to_json()))
            .clone()
    }

    /// Keeps `text`, the JSON this runtime's IR was parsed from (and its
    /// hash checked against), as what [`Runtime::json`] answers; nothing
    /// when it already has one.
    pub fn keep_json(&self, text: bytes::Bytes) {
        let _ = self.json.set(text);
    }

    /// Each route's JSON as the content hash read it when this runtime's
    /// IR was checked, when kept ([`Runtime::keep_meanings`]): changes to
    /// this config (`PATCH /config`) hash the routes they keep from it.
    pub fn meanings(&self) -> Option<&RouteMeanings> {
        self.meanings.get().map(|m| &**m)
    }

    /// Keeps the routes' JSON the content hash read for this runtime's IR;
    /// nothing when it already has them.
    pub fn keep_meanings(&self, meanings: RouteMeanings) {
        let _ = self.meanings.set(Arc::new(meanings));
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
