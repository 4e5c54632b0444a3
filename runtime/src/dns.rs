//! Which DNS servers nginx and Envoy ask for upstream host names.
//!
//! By default the machine's: nginx's `resolver.conf` is written from
//! `/etc/resolv.conf`, and Envoy's c-ares reads it itself. `GATEFOLD_DNS`
//! (`IP:PORT[,IP:PORT...]`) names others instead, for both: a DNS server
//! of the operator's choice, or, in tests, a loopback address, so that a
//! host name in a spec never makes a test send a query off the machine.
//! (`/etc/hosts` still answers first for Envoy; nginx never reads it.)

use crate::{Error, Result};
use std::net::SocketAddr;

/// The variable naming the DNS servers.
pub const DNS_VAR: &str = "GATEFOLD_DNS";

/// The servers `GATEFOLD_DNS` names, `None` when it is unset or empty.
pub fn from_env() -> Result<Option<Vec<SocketAddr>>> {
    match std::env::var(DNS_VAR) {
        Ok(v) if !v.trim().is_empty() => parse(&v).map(Some),
        _ => Ok(None),
    }
}

/// `IP:PORT` entries separated by commas (`[::1]:53` for IPv6).
pub fn parse(text: &str) -> Result<Vec<SocketAddr>> {
    text.split(',')
        .map(|s| {
            s.trim().parse::<SocketAddr>().map_err(|_| Error::Failed {
                runtime: "dns",
                what: format!(
                    "{DNS_VAR}: `{}` is not IP:PORT; write e.g. {DNS_VAR}=127.0.0.1:53,[::1]:53",
                    s.trim()
                ),
                log: None,
                tail: String::new(),
            })
        })
        .collect()
}

/// `text` (an Envoy bootstrap in YAML or JSON, or a CDS file) with every
/// DNS cluster (`STRICT_DNS`, `LOGICAL_DNS`) asking only `servers`, as
/// JSON (which Envoy also reads from a `.yaml` file). Per cluster, since
/// Envoy 1.40's clusters ignore the bootstrap's `typed_dns_resolver_config`
/// (checked: they still asked `/etc/resolv.conf`'s server).
pub fn envoy_clusters_asking(text: &str, servers: &[SocketAddr]) -> Result<String> {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| Error::Failed {
        runtime: "envoy",
        what: format!("reading the configuration to set its DNS servers: {e}"),
        log: None,
        tail: String::new(),
    })?;
    let resolvers: Vec<serde_json::Value> = servers
        .iter()
        .map(|s| {
            serde_json::json!({
                "socket_address": { "address": s.ip().to_string(), "port_value": s.port() }
            })
        })
        .collect();
    let config: serde_yaml::Value = serde_json::from_value(serde_json::json!({
        "name": "envoy.network.dns_resolver.cares",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
            "resolvers": resolvers,
            "use_resolvers_as_fallback": false,
        }
    }))
    .expect("a JSON value is a YAML value");
    set_resolvers(&mut doc, &config);
    Ok(serde_json::to_string(&doc).expect("a YAML value serializes as JSON") + "\n")
}

fn set_resolvers(v: &mut serde_yaml::Value, config: &serde_yaml::Value) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            let dns = matches!(
                m.get("type").and_then(|t| t.as_str()),
                Some("STRICT_DNS" | "LOGICAL_DNS")
            );
            if dns && m.contains_key("load_assignment") {
                m.insert("typed_dns_resolver_config".into(), config.clone());
            }
            for (_, child) in m.iter_mut() {
                set_resolvers(child, config);
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter_mut().for_each(|c| set_resolvers(c, config)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_and_says_what_to_write_for_a_bad_entry() {
        let got = parse("127.0.0.1:53, [::1]:5353").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].port(), 5353);
        let err = parse("127.0.0.1").unwrap_err().to_string();
        assert!(
            err.contains("`127.0.0.1` is not IP:PORT") && err.contains("GATEFOLD_DNS=127.0.0.1:53"),
            "{err}"
        );
    }

    #[test]
    fn every_dns_cluster_asks_the_servers_and_others_are_left_alone() {
        let cds = r#"{"resources": [
            {"@type": "x", "name": "a", "type": "STRICT_DNS", "load_assignment": {}},
            {"@type": "x", "name": "b", "type": "STATIC", "load_assignment": {}}
        ]}"#;
        let out = envoy_clusters_asking(cds, &parse("127.0.0.1:9,[::1]:53").unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let r = &v["resources"][0]["typed_dns_resolver_config"]["typed_config"]["resolvers"];
        assert_eq!(r[0]["socket_address"]["address"], "127.0.0.1");
        assert_eq!(r[1]["socket_address"]["address"], "::1");
        assert_eq!(r[1]["socket_address"]["port_value"], 53);
        assert!(v["resources"][1].get("typed_dns_resolver_config").is_none());
    }
}
