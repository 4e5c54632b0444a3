//! `gatefold explain` with `gateway.tls`: which certificate each host of a
//! route is served with over TLS, and hosts no certificate covers.

use gatefold_compiler::ir::tls::{Tls, TlsCertificate};
use gatefold_compiler::ir::{HostPattern, Route};

/// For each host of the route: the certificate (index) a client asking for
/// it gets, and whether that certificate covers it. `None` for a route that
/// answers any host.
fn served(tls: &Tls, r: &Route) -> Option<Vec<(String, usize, bool)>> {
    if r.matcher.hosts.is_empty() {
        return None;
    }
    let rows = r.matcher.hosts.iter().filter_map(|h| {
        let (text, covered_by) = match h {
            HostPattern::Exact(h) => (h.clone(), tls.pick(Some(h))),
            HostPattern::Wildcard(s) => {
                let text = format!("*{s}");
                let by = tls
                    .certificates
                    .iter()
                    .position(|c| c.names.contains(&text));
                (text, by.or(tls.pick(None)))
            }
        };
        let i = covered_by?;
        let cert = &tls.certificates[i];
        let covered = match h {
            HostPattern::Exact(h) => cert.covers(h),
            HostPattern::Wildcard(_) => cert.names.contains(&text),
        };
        Some((text, i, covered))
    });
    Some(rows.collect())
}

fn label(c: &TlsCertificate) -> String {
    c.names.join(", ")
}

/// Lines for the text output.
pub fn text(tls: &Tls, r: &Route) -> String {
    let mut out = format!("  over TLS (port {}):\n", tls.listen);
    match served(tls, r) {
        None => out.push_str(&format!(
            "    any host: the certificate whose names cover the client's SNI; default #1 ({})\n",
            tls.certificates.first().map(label).unwrap_or_default()
        )),
        Some(rows) => {
            for (host, i, covered) in rows {
                let c = &tls.certificates[i];
                if covered {
                    out.push_str(&format!(
                        "    {host}: certificate #{} ({})\n",
                        i + 1,
                        label(c)
                    ));
                } else {
                    out.push_str(&format!(
                        "    {host}: no certificate covers it; clients get #{} ({}) and refuse it\n",
                        i + 1,
                        label(c)
                    ));
                }
            }
        }
    }
    out
}

/// The `tls` key of the JSON output.
pub fn json(tls: &Tls, r: &Route) -> serde_json::Value {
    let hosts = served(tls, r).map(|rows| {
        rows.into_iter()
            .map(|(host, i, covered)| {
                serde_json::json!({ "host": host, "certificate": i + 1, "covered": covered })
            })
            .collect::<Vec<_>>()
    });
    serde_json::json!({ "listen": tls.listen, "hosts": hosts })
}
