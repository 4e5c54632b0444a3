//! `baseline.client-address` over real sockets: which address ip-filter,
//! rate-limit by ip and the access log see. Clients connect from distinct
//! loopback addresses (127.0.0.2 is the trusted proxy, 127.0.0.3 a client
//! that talks to the gateway directly).

use crate::common;

use common::*;
use std::net::Ipv4Addr;

const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const DIRECT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

fn spec(client_address: &str, upstream: &Upstream) -> String {
    format!(
        "gatefold: 1
gateway:
  baseline:
    client-address: {client_address}
upstreams:
  up: {{ targets: [{{ url: {url} }}] }}
apis:
  a:
    upstream: up
    routes:
      banned: {{ path: /banned, policies: [{{ ip-filter: {{ deny: [198.51.100.0/24] }} }}] }}
      limited: {{ path: /limited, policies: [{{ rate-limit: {{ requests: 1, per: 1m, key: ip }} }}] }}
      open: {{ path: /open }}
",
        url = upstream.url()
    )
}

fn last_client(gw: &Gw) -> String {
    let lines = gw.log_lines();
    let last = lines.last().expect("an access log line");
    last["client"].as_str().expect("a client").to_string()
}

/// A client that sends its own `x-forwarded-for` straight to the gateway
/// is not believed: ip-filter, the rate limit and the log see its TCP
/// address. The same header from the trusted proxy is believed.
#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let up = Upstream::start("up").await;
    let gw = gateway(&spec("{ trusted-proxies: [127.0.0.2] }", &up)).await;
    let spoof = [("x-forwarded-for", "198.51.100.7")];

    // Spoofed from an untrusted peer: ignored.
    let r = send_from(DIRECT, gw.addr, "GET", "/banned", &spoof).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(last_client(&gw), "127.0.0.3");
    // From the trusted proxy: the client it names is refused.
    let r = send_from(PROXY, gw.addr, "GET", "/banned", &spoof).await;
    r.assert_error(403, "forbidden");
    assert_eq!(last_client(&gw), "198.51.100.7");
    // The proxy without the header: the proxy itself.
    let r = send_from(PROXY, gw.addr, "GET", "/banned", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(last_client(&gw), "127.0.0.2");
    // A chain through the proxy: the right-most untrusted address.
    let chain = [("x-forwarded-for", "198.51.100.7, 203.0.113.5")];
    let r = send_from(PROXY, gw.addr, "GET", "/banned", &chain).await;
    assert_eq!(r.status, 200);
    assert_eq!(last_client(&gw), "203.0.113.5");
    // Upstream, x-forwarded-for lists the hops: what came in, then the peer.
    let r = send_from(PROXY, gw.addr, "GET", "/open", &spoof).await;
    assert_eq!(
        r.upstream_header("x-forwarded-for").as_deref(),
        Some("198.51.100.7, 127.0.0.2")
    );
}

/// rate-limit by ip counts the computed client: two clients behind the
/// trusted proxy each get their own window, while a direct client cannot
/// escape its window by changing the header it sends.
#[tokio::test]
async fn rate_limit_by_ip_counts_the_computed_client() {
    let up = Upstream::start("up").await;
    let gw = gateway(&spec("{ trusted-proxies: [127.0.0.2] }", &up)).await;
    let from = |a: &'static str| [("x-forwarded-for", a)];
    for client in ["198.51.100.1", "198.51.100.2"] {
        let r = send_from(PROXY, gw.addr, "GET", "/limited", &from(client)).await;
        assert_eq!(r.status, 200, "first request of {client}");
    }
    let r = send_from(PROXY, gw.addr, "GET", "/limited", &from("198.51.100.1")).await;
    assert_eq!(r.status, 429, "second request of 198.51.100.1");

    let r = send_from(DIRECT, gw.addr, "GET", "/limited", &from("203.0.113.1")).await;
    assert_eq!(r.status, 200);
    let r = send_from(DIRECT, gw.addr, "GET", "/limited", &from("203.0.113.2")).await;
    assert_eq!(
        r.status, 429,
        "a new x-forwarded-for does not make a new client"
    );
}

/// Without `client-address` (the default, the TCP peer), no header is
/// believed, even from 127.0.0.2.
#[tokio::test]
async fn by_default_no_header_is_believed() {
    let up = Upstream::start("up").await;
    let gw = gateway(&spec("peer", &up)).await;
    for (name, value) in [
        ("x-forwarded-for", "198.51.100.7"),
        ("forwarded", "for=198.51.100.7"),
        ("cf-connecting-ip", "198.51.100.7"),
    ] {
        let r = send_from(PROXY, gw.addr, "GET", "/banned", &[(name, value)]).await;
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(last_client(&gw), "127.0.0.2", "{name}");
    }
}

/// `header: forwarded` reads RFC 7239 `for=`, from the trusted proxy only.
#[tokio::test]
async fn forwarded_for_from_trusted_proxies() {
    let up = Upstream::start("up").await;
    let gw = gateway(&spec(
        "{ trusted-proxies: [127.0.0.0/30], header: forwarded }",
        &up,
    ))
    .await;
    let fwd = [("forwarded", "for=198.51.100.7;proto=https")];
    let r = send_from(PROXY, gw.addr, "GET", "/banned", &fwd).await;
    r.assert_error(403, "forbidden");
    // From a peer outside the trusted block, the header is ignored.
    let outside = Ipv4Addr::new(127, 0, 0, 9);
    let r = send_from(outside, gw.addr, "GET", "/banned", &fwd).await;
    assert_eq!(r.status, 200);
    assert_eq!(last_client(&gw), "127.0.0.9");
}

/// A platform header is believed from any peer.
#[tokio::test]
async fn platform_header_names_the_client() {
    let up = Upstream::start("up").await;
    let gw = gateway(&spec("{ platform-header: cf-connecting-ip }", &up)).await;
    let r = send_from(
        DIRECT,
        gw.addr,
        "GET",
        "/banned",
        &[("cf-connecting-ip", "198.51.100.7")],
    )
    .await;
    r.assert_error(403, "forbidden");
    assert_eq!(last_client(&gw), "198.51.100.7");
    let r = send_from(DIRECT, gw.addr, "GET", "/banned", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(last_client(&gw), "127.0.0.3");
}
