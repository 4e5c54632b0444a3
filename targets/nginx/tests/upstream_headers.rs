//! An upstream's response headers are passed through, never acted on:
//! nginx would follow `X-Accel-Redirect` into any location of the config
//! (a mock, or a route's internal location past its checks).

use crate::common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// An upstream that answers every request with `X-Accel-Redirect: /secret`.
fn steering_upstream() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            // Read the head (no body: the test sends GETs).
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let body = "from upstream";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nx-accel-redirect: /secret\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn x_accel_redirect_from_an_upstream_is_not_followed() {
    let up = steering_upstream();
    let spec = format!(
        r#"gatefold: 1
upstreams: {{ u: {{ targets: [{{ url: "http://{up}" }}] }} }}
apis:
  a:
    routes:
      proxied: {{ path: /proxied, upstream: u }}
      secret:
        path: /secret
        policies:
          - mock: {{ status: 200, body: "internal only" }}
"#
    );
    let ng = run(&compile(&spec), &[]);
    let r = get(ng.addr, "/proxied", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "from upstream", "nginx followed X-Accel-Redirect");
}
