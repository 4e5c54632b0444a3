//! Clusters: one per upstream and connect timeout (Envoy sets the connect
//! timeout on the cluster, the spec per route), named from the upstream.

use crate::model::*;
use gatefold_compiler::ir::policy::{Mirror, Policy};
use gatefold_compiler::ir::{Balance, Destination, Ir, Name, OriginHost, Upstream};
use std::collections::{BTreeMap, BTreeSet};

/// Trusted roots for `https://` upstreams (Debian's bundle).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The cluster metadata namespace of gatefold's own keys.
pub const METADATA: &str = "gatefold";

/// The key under [`METADATA`] that is `true` on a cluster with active
/// health checks. A request its load balancer finds no host for (response
/// flag UH) is then the spec's 503 `no healthy upstream`; on any other
/// cluster no host means none was resolved (a host name that does not
/// resolve), which the spec answers as an unreachable upstream, 502.
pub const HEALTH_CHECKED: &str = "health_checked";

/// The cluster a destination calls: the upstream's name, with the connect
/// timeout when it is not the upstream's own.
pub fn cluster_name(d: &Destination) -> String {
    format!("{}~connect-{}ms", d.upstream, d.connect_timeout.millis)
}

/// The cluster a `mirror` copies to: the upstream with its own connect
/// timeout (else the baseline's), as the reference gateway's copy uses.
pub fn mirror_cluster(ir: &Ir, m: &Mirror) -> (Name, u64) {
    let own = ir
        .upstreams
        .get(&m.upstream)
        .and_then(|u| u.timeouts.as_ref())
        .and_then(|t| t.connect);
    let connect = own.unwrap_or(ir.gateway.baseline.timeouts.connect);
    (m.upstream.clone(), connect.millis)
}

/// [`mirror_cluster`]'s name.
pub fn mirror_cluster_name(ir: &Ir, m: &Mirror) -> String {
    let (name, connect) = mirror_cluster(ir, m);
    format!("{name}~connect-{connect}ms")
}

/// Every cluster the routes call, sorted by name.
pub fn clusters(ir: &Ir) -> Vec<Cluster> {
    let used: BTreeSet<(Name, u64)> = ir
        .routes
        .iter()
        .filter_map(|r| r.lowered.proxy.as_ref())
        .flat_map(|p| p.destinations())
        .map(|d| (d.upstream.clone(), d.connect_timeout.millis))
        .chain(ir.policies.values().filter_map(|i| match &i.policy {
            Policy::Mirror(m) => Some(mirror_cluster(ir, m)),
            _ => None,
        }))
        .collect();
    used.into_iter()
        .filter_map(|(name, connect)| {
            let up = ir.upstreams.get(&name)?;
            Some(cluster(&name, connect, up))
        })
        .collect()
}

fn cluster(name: &Name, connect_ms: u64, up: &Upstream) -> Cluster {
    let cluster_name = format!("{name}~connect-{connect_ms}ms");
    let all_ips = up
        .targets
        .iter()
        .all(|t| matches!(t.url.host, OriginHost::Ip(_)));
    let endpoints = up
        .targets
        .iter()
        .map(|t| LbEndpoint {
            endpoint: Endpoint {
                address: Address {
                    socket_address: SocketAddress {
                        address: match &t.url.host {
                            OriginHost::Dns(name) => name.clone(),
                            OriginHost::Ip(ip) => ip.to_string(),
                        },
                        port_value: t.url.port,
                    },
                },
                hostname: format!("{}:{}", t.url.host, t.url.port),
            },
            load_balancing_weight: t.weight.max(1),
        })
        .collect();
    let tls = up.targets.first().is_some_and(|t| t.url.tls);
    Cluster {
        name: cluster_name.clone(),
        kind: if all_ips { "STATIC" } else { "STRICT_DNS" },
        connect_timeout: duration(connect_ms),
        lb_policy: match up.balance {
            Balance::RoundRobin => "ROUND_ROBIN",
            Balance::LeastRequest => "LEAST_REQUEST",
            Balance::HashHeader(_) => "RING_HASH",
        },
        // With no healthy target, answer 503 rather than send to all.
        common_lb_config: CommonLbConfig {
            healthy_panic_threshold: Percent { value: 0.0 },
        },
        load_assignment: LoadAssignment {
            cluster_name,
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: endpoints,
            }],
        },
        health_checks: up
            .health
            .iter()
            .map(|h| HealthCheck {
                timeout: duration(h.timeout.millis),
                interval: duration(h.interval.millis),
                unhealthy_threshold: h.unhealthy_after,
                healthy_threshold: h.healthy_after,
                http_health_check: HttpHealthCheck {
                    path: h.path.clone(),
                    expected_statuses: vec![Int64Range {
                        start: 200,
                        end: 400,
                    }],
                },
            })
            .collect(),
        transport_socket: tls.then(|| NamedConfig {
            name: "envoy.transport_sockets.tls".into(),
            typed_config: Any::UpstreamTls(Box::new(TlsContext {
                common_tls_context: CommonTlsContext {
                    validation_context: Some(ValidationContext {
                        trusted_ca: DataSource::Filename(SYSTEM_ROOTS.into()),
                    }),
                    ..CommonTlsContext::default()
                },
                sni: up.targets.first().and_then(|t| match &t.url.host {
                    OriginHost::Dns(name) => Some(name.clone()),
                    OriginHost::Ip(_) => None,
                }),
            })),
        }),
        metadata: up.health.is_some().then(|| Metadata {
            filter_metadata: BTreeMap::from([(
                METADATA.to_string(),
                serde_json::json!({ HEALTH_CHECKED: true }),
            )]),
        }),
    }
}
