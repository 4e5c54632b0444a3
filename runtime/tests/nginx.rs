//! nginx through gatefold-runtime: start, proxy, check, reload, stop, on a
//! private prefix and free loopback ports. nginx must be installed (the
//! test command runs scripts/install-runtimes.sh): a missing nginx fails.

use crate::common;

use std::net::SocketAddr;
use std::time::Instant;

use common::{alive, free_addr, get, group_members, scratch, upstream};
use gatefold_runtime::{Error, Nginx};

/// A complete config for a private prefix: `listen` proxied to `upstream`.
fn conf(listen: SocketAddr, upstream: SocketAddr, extra: &str) -> String {
    format!(
        "daemon off;
pid logs/nginx.pid;
error_log logs/error.log warn;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log logs/access.log;
    client_body_temp_path temp-body;
    proxy_temp_path temp-proxy;
    fastcgi_temp_path temp-fastcgi;
    uwsgi_temp_path temp-uwsgi;
    scgi_temp_path temp-scgi;
    server {{
        listen {listen};
        location / {{
            proxy_pass http://{upstream};
            {extra}
        }}
    }}
}}
"
    )
}

#[test]
fn proxies_reloads_and_leaves_nothing_behind() {
    let nginx = Nginx::locate().expect("nginx is installed (scripts/install-runtimes.sh)");
    let prefix = scratch("nginx-proxy");
    let (a, b) = (upstream("from-a"), upstream("from-b"));
    let listen = free_addr();

    let started = Instant::now();
    let mut instance = nginx
        .start(&prefix, &conf(listen, a, ""), &[listen])
        .unwrap();
    eprintln!(
        "nginx start (check + spawn + port accepts): {:?}",
        started.elapsed()
    );
    let (status, _, body) = get(listen);
    assert_eq!(
        (status, body.as_str()),
        (200, "from-a"),
        "the request passes through to the upstream"
    );

    let master = instance.pid();
    let started = Instant::now();
    instance
        .reload(&conf(listen, b, "add_header X-Config v2 always;"))
        .unwrap();
    eprintln!("nginx reload: {:?}", started.elapsed());
    let (status, head, body) = get(listen);
    assert_eq!(
        (status, body.as_str()),
        (200, "from-b"),
        "the new config serves once reload returns"
    );
    assert!(head.contains("x-config: v2"), "{head}");
    assert_eq!(instance.pid(), master, "a reload keeps the master");
    assert!(alive(master));

    // `proxy_pas` is no directive: -t fails, nothing changes.
    let err = instance
        .reload(&conf(listen, a, "proxy_pas http://127.0.0.1:1;"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { message, .. } if message.contains("unknown directive \"proxy_pas\"")),
        "{err}"
    );
    let (status, _, body) = get(listen);
    assert_eq!(
        (status, body.as_str()),
        (200, "from-b"),
        "the old config keeps serving"
    );
    assert_eq!(instance.pid(), master);

    let mut processes = instance.workers();
    assert!(!processes.is_empty(), "nginx runs workers");
    processes.push(master);
    drop(instance);
    for pid in processes {
        assert!(!alive(pid), "process {pid} outlived the instance");
    }
    assert_eq!(
        group_members(master),
        Vec::<u32>::new(),
        "nothing left in nginx's process group"
    );
}

#[test]
fn check_reports_nginx_own_message() {
    let nginx = Nginx::locate().unwrap();
    let prefix = scratch("nginx-check");
    let listen = free_addr();
    nginx
        .check(&prefix, &conf(listen, listen, ""))
        .expect("a good config passes -t");
    let err = nginx
        .check(&prefix, &conf(listen, listen, "proxy_read_timeout;"))
        .unwrap_err();
    let Error::Rejected { message, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        message.contains("invalid number of arguments in \"proxy_read_timeout\" directive"),
        "{message}"
    );
}

#[test]
fn start_refuses_a_daemonizing_config() {
    let nginx = Nginx::locate().unwrap();
    let prefix = scratch("nginx-daemon");
    let listen = free_addr();
    let daemonizing = conf(listen, listen, "").replace("daemon off;", "");
    let err = nginx.start(&prefix, &daemonizing, &[listen]).unwrap_err();
    assert!(err.to_string().contains("daemon off;"), "{err}");
    assert!(
        !prefix.join("logs/nginx.pid").exists(),
        "nothing was started"
    );
}

#[test]
fn stop_quits_gracefully() {
    let nginx = Nginx::locate().unwrap();
    let prefix = scratch("nginx-stop");
    let listen = free_addr();
    let instance = nginx
        .start(&prefix, &conf(listen, upstream("up"), ""), &[listen])
        .unwrap();
    let master = instance.pid();
    instance
        .stop(std::time::Duration::from_secs(20))
        .expect("nginx quits on SIGQUIT");
    assert!(!alive(master));
    assert!(
        std::net::TcpStream::connect(listen).is_err(),
        "the port is closed"
    );
}

#[test]
fn start_on_a_taken_port_fails_with_nginx_own_message() {
    let nginx = Nginx::locate().unwrap();
    let prefix = scratch("nginx-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap();
    let err = nginx
        .start(&prefix, &conf(listen, upstream("up"), ""), &[listen])
        .unwrap_err();
    assert!(
        matches!(&err, Error::Failed { tail, .. } if tail.contains("Address already in use")),
        "{err}"
    );
}
