//! Envoy through gatefold-runtime: start, proxy, check, hot reload of
//! LDS/CDS, stop, in a private work directory on free loopback ports.
//! Envoy must be installed (the test command runs
//! scripts/install-runtimes.sh): a missing Envoy fails.

use crate::common;

use std::net::SocketAddr;
use std::time::Instant;

use common::{alive, free_addr, get, group_members, scratch, upstream};
use gatefold_runtime::{Envoy, EnvoyConfig, Error};

const BOOTSTRAP: &str = "\
node: {id: gatefold-test, cluster: gatefold-test}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
dynamic_resources:
  lds_config:
    path_config_source: {path: dynamic/lds.json, watched_directory: {path: dynamic}}
  cds_config:
    path_config_source: {path: dynamic/cds.json, watched_directory: {path: dynamic}}
";

/// Resources written as YAML here, as the JSON Envoy reads from `.json`.
fn json(yaml: String) -> String {
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    serde_json::to_string(&value).unwrap()
}

/// A listener on `listen` routing everything to cluster `upstream`, adding
/// `x-config: VERSION` to responses.
fn lds(listen: SocketAddr, version: &str) -> String {
    json(format!(
        r#"resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: main
  address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: main
        http_filters:
        - name: envoy.filters.http.router
          typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
        route_config:
          name: main
          response_headers_to_add:
          - header: {{key: x-config, value: "{version}"}}
          virtual_hosts:
          - name: all
            domains: ["*"]
            routes:
            - match: {{prefix: /}}
              route: {{cluster: upstream}}
"#,
        port = listen.port()
    ))
}

/// The cluster `upstream`, at `at`.
fn cds(at: SocketAddr) -> String {
    json(format!(
        r#"resources:
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: upstream
  type: STATIC
  connect_timeout: 2s
  load_assignment:
    cluster_name: upstream
    endpoints:
    - lb_endpoints:
      - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}
"#,
        port = at.port()
    ))
}

fn config(listen: SocketAddr, at: SocketAddr) -> EnvoyConfig {
    EnvoyConfig {
        bootstrap: BOOTSTRAP.into(),
        lds: Some(lds(listen, "v1")),
        cds: Some(cds(at)),
    }
}

#[test]
fn proxies_reloads_and_leaves_nothing_behind() {
    let envoy = Envoy::locate().expect("Envoy is installed (scripts/install-runtimes.sh)");
    let work = scratch("envoy-proxy");
    let (a, b) = (upstream("from-a"), upstream("from-b"));
    let listen = free_addr();

    let started = Instant::now();
    envoy.check(&work, &config(listen, a)).unwrap();
    eprintln!(
        "envoy check (bootstrap + static copy): {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let mut instance = envoy.start(&work, &config(listen, a), &[listen]).unwrap();
    eprintln!(
        "envoy start (validate x2 + spawn + /ready + port accepts): {:?}",
        started.elapsed()
    );
    let (status, head, body) = get(listen);
    assert_eq!(
        (status, body.as_str()),
        (200, "from-a"),
        "the request passes through to the upstream"
    );
    assert!(head.contains("x-config: v1"), "{head}");
    assert!(
        instance.base_id().is_some(),
        "Envoy wrote the base ID it chose"
    );

    let pid = instance.pid();
    let started = Instant::now();
    instance
        .reload(Some(&lds(listen, "v2")), Some(&cds(b)))
        .unwrap();
    eprintln!("envoy reload (LDS + CDS): {:?}", started.elapsed());
    let (status, head, body) = get(listen);
    assert_eq!(
        (status, body.as_str()),
        (200, "from-b"),
        "the new clusters serve once reload returns"
    );
    assert!(
        head.contains("x-config: v2"),
        "the new listener serves: {head}"
    );
    assert_eq!(instance.pid(), pid, "a reload keeps the process");
    assert!(alive(pid));

    // An unknown field: the check fails, the files are not touched.
    let broken = lds(listen, "v3").replace(
        r#""stat_prefix":"main""#,
        r#""stat_prefix":"main","bogus_field":1"#,
    );
    let err = instance.reload(Some(&broken), None).unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { message, .. } if message.contains("bogus_field")),
        "{err}"
    );
    let (status, head, body) = get(listen);
    assert_eq!(
        (status, body.as_str()),
        (200, "from-b"),
        "the old config keeps serving"
    );
    assert!(head.contains("x-config: v2"), "{head}");
    assert_eq!(instance.pid(), pid);

    drop(instance);
    assert!(!alive(pid), "Envoy outlived the instance");
    assert_eq!(
        group_members(pid),
        Vec::<u32>::new(),
        "nothing left in Envoy's process group"
    );
}

#[test]
fn check_reports_envoy_own_message() {
    let envoy = Envoy::locate().unwrap();
    let work = scratch("envoy-check");
    let listen = free_addr();
    envoy
        .check(&work, &config(listen, listen))
        .expect("a good config validates");

    let bad_bootstrap = EnvoyConfig {
        bootstrap: BOOTSTRAP.replace("admin:", "admin:\n  bogus_admin: 1"),
        ..config(listen, listen)
    };
    let err = envoy.check(&work, &bad_bootstrap).unwrap_err();
    let Error::Rejected { message, .. } = &err else {
        panic!("{err}")
    };
    assert!(message.contains("bogus_admin"), "{message}");

    // Validate mode does not read LDS/CDS files: a route to an undefined
    // cluster is only caught through the static copy.
    let dangling = EnvoyConfig {
        cds: Some(r#"{"resources":[]}"#.into()),
        ..config(listen, listen)
    };
    let err = envoy.check(&work, &dangling).unwrap_err();
    let Error::Rejected { message, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        message.contains("upstream"),
        "names the unknown cluster: {message}"
    );
}

#[test]
fn instances_get_distinct_base_ids() {
    let envoy = Envoy::locate().unwrap();
    let (one, two) = (free_addr(), free_addr());
    let at = upstream("up");
    let first = envoy
        .start(&scratch("envoy-one"), &config(one, at), &[one])
        .unwrap();
    let second = envoy
        .start(&scratch("envoy-two"), &config(two, at), &[two])
        .unwrap();
    assert_ne!(first.base_id(), second.base_id());
    assert_eq!(get(one).2, "up");
    assert_eq!(get(two).2, "up");
    let pid = first.pid();
    first
        .stop(std::time::Duration::from_secs(20))
        .expect("Envoy exits on SIGTERM");
    assert!(!alive(pid));
    assert_eq!(get(two).2, "up", "stopping one leaves the other serving");
}

#[test]
fn start_on_a_taken_port_fails_with_envoy_own_message() {
    let envoy = Envoy::locate().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap();
    // Envoy stays up with a listener it cannot bind, and the port accepts
    // (the other socket): only who holds the socket tells them apart.
    let err = envoy
        .start(
            &scratch("envoy-taken"),
            &config(listen, upstream("up")),
            &[listen],
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Failed { tail, .. } if tail.contains("Address already in use")),
        "{err}"
    );
}
