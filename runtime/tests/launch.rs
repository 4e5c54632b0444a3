//! The launcher over real sockets: a compiled reference output run in
//! process, and hand-written nginx and Envoy outputs (the shape their
//! targets emit: an nginx prefix with `conf/nginx.conf` and `lua/`; an
//! Envoy bootstrap with `dynamic/lds.json` and `dynamic/cds.json`) started,
//! reloaded (a bad output keeps the old one serving), and stopped with no
//! process left. nginx and Envoy must be installed (scripts/install-runtimes.sh).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use common::{alive, free_addr, get, group_members, scratch, upstream};
use gatefold_compiler::ir::TargetKind;
use gatefold_compiler::target::{Manifest, Options, Output, OutputFile, RelPath, Target};
use gatefold_runtime::launch::{Launch, Launched};
use gatefold_runtime::Error;

/// An output of `target` holding `files` (the first is the entry).
fn output(target: TargetKind, files: &[(&str, String)]) -> Output {
    let files: Vec<OutputFile> = files
        .iter()
        .map(|(path, text)| OutputFile {
            path: RelPath::new(path).unwrap(),
            bytes: text.clone().into_bytes(),
            description: format!("test file {path}"),
        })
        .collect();
    Output {
        manifest: Manifest {
            target,
            entry: files[0].path.clone(),
            secrets: BTreeSet::new(),
            public_key_env: BTreeSet::new(),
            files: files
                .iter()
                .map(|f| (f.path.clone(), f.description.clone()))
                .collect(),
        },
        files,
    }
}

/// The reference output of a spec answering `GET /` with a mock `body`,
/// and `/up` from `upstream`.
fn reference_output(body: &str, upstream: SocketAddr, extra: &str) -> Output {
    let spec = format!(
        "gatefold: 1
upstreams:
  up: {{ targets: [{{ url: \"http://{upstream}\" }}] }}
{extra}
apis:
  main:
    routes:
      hello:
        path: /
        policies: [{{ mock: {{ body: \"{body}\" }} }}]
      up: {{ path: /up, upstream: up }}
"
    );
    let compiled = gatefold_compiler::compile_str("spec.yaml", &spec);
    let Some(ir) = &compiled.ir else {
        panic!("the spec compiles:\n{}", compiled.render());
    };
    gatefold_target_reference::Reference.emit(ir, &Options::default())
}

#[test]
fn reference_runs_in_process_reloads_and_keeps_a_good_config() {
    let up = upstream("from-up");
    let listen = free_addr();
    let work = scratch("launch-reference");
    let launch = Launch::new(TargetKind::Reference, &work, listen);
    let mut running = Launched::start(launch, &reference_output("one", up, "")).unwrap();
    assert_eq!(running.listen(), listen);
    assert!(running.pids().is_empty(), "in process: no child");
    assert_eq!(get(listen).2, "one");
    assert!(
        work.join("gatefold.ir.json").exists(),
        "the output is materialized"
    );

    running
        .reload(&reference_output("two", up, ""))
        .expect("a good output reloads");
    assert_eq!(get(listen).2, "two");

    // A config whose secret is missing cannot load: refused, old one serves.
    let secret = "consumers:\n  c: { credentials: { key: { env: GATEFOLD_TEST_SURELY_UNSET_KEY } } }\npolicies:\n  k: { key-auth: {} }\n";
    let bad = reference_output(
        "three",
        up,
        &format!("gateway: {{ policies: [k] }}\n{secret}"),
    );
    let err = running.reload(&bad).unwrap_err();
    assert!(
        err.to_string().contains("GATEFOLD_TEST_SURELY_UNSET_KEY"),
        "{err}"
    );
    assert_eq!(get(listen).2, "two", "the old config keeps serving");
    running.stop().unwrap();
    assert!(
        std::net::TcpStream::connect(listen).is_err(),
        "nothing listens after stop"
    );
}

/// An nginx prefix config on `listen` proxying to `upstream`, answering
/// with `x-config: VERSION`.
fn nginx_conf(listen: SocketAddr, upstream: SocketAddr, version: &str) -> String {
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
    include extra.conf;
    server {{
        listen {listen};
        location / {{
            proxy_pass http://{upstream};
            add_header x-config {version} always;
        }}
    }}
}}
"
    )
}

fn nginx_output(conf: String, include: &str, lua: &str) -> Output {
    output(
        TargetKind::Nginx,
        &[
            ("conf/nginx.conf", conf),
            ("conf/extra.conf", include.to_string()),
            ("lua/gatefold.lua", lua.to_string()),
        ],
    )
}

#[test]
fn nginx_outputs_start_reload_after_checks_and_stop_leaving_nothing() {
    let up = upstream("from-up");
    let listen = free_addr();
    let work = scratch("launch-nginx");
    let lua = "local M = {}\nfunction M.hi() return 1 end\nreturn M\n";
    let first = nginx_output(nginx_conf(listen, up, "v1"), "# nothing\n", lua);
    // A secret file without its variable: refused before nginx starts.
    let mut launch = Launch::new(TargetKind::Nginx, &work, listen);
    launch.secret_files = BTreeMap::from([(
        "keys/cert-0.key".to_string(),
        "GATEFOLD_TEST_SURELY_UNSET_TLS_KEY".to_string(),
    )]);
    let err = Launched::start(launch.clone(), &first).unwrap_err();
    assert!(
        err.to_string()
            .contains("GATEFOLD_TEST_SURELY_UNSET_TLS_KEY"),
        "{err}"
    );
    launch.secret_files = BTreeMap::from([(
        "keys/cert-0.key".to_string(),
        "GATEFOLD_TEST_TLS_KEY".to_string(),
    )]);
    launch.env = BTreeMap::from([(
        "GATEFOLD_TEST_TLS_KEY".to_string(),
        "-----BEGIN PRIVATE KEY-----\n".to_string(),
    )]);
    let mut running = Launched::start(launch, &first).unwrap();
    let key = work.join("keys/cert-0.key");
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "-----BEGIN PRIVATE KEY-----\n"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "a key is readable by its owner only");
    }
    let (status, head, body) = get(listen);
    assert_eq!((status, body.as_str()), (200, "from-up"));
    assert!(head.contains("x-config: v1"), "{head}");
    assert!(work.join("lua/gatefold.lua").exists());
    let master = running.pids()[0];
    assert!(running.logs().iter().any(|l| l.ends_with("logs/error.log")));

    // Broken Lua passes `nginx -t`; the launcher's luajit check refuses it.
    let broken_lua = nginx_output(nginx_conf(listen, up, "v2"), "# nothing\n", "return (\n");
    let err = running.reload(&broken_lua).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Rejected {
                runtime: "luajit",
                ..
            }
        ),
        "{err}"
    );
    // A broken included file: `nginx -t` in the staging prefix refuses it
    // before anything in the live prefix changes.
    let broken_include = nginx_output(nginx_conf(listen, up, "v2"), "bogus_directive 1;\n", lua);
    let err = running.reload(&broken_include).unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { runtime: "nginx", message } if message.contains("bogus_directive")),
        "{err}"
    );
    assert!(get(listen).1.contains("x-config: v1"), "the old one serves");
    assert_eq!(
        std::fs::read_to_string(work.join("lua/gatefold.lua")).unwrap(),
        lua,
        "a refused output leaves the live prefix alone"
    );

    let second = nginx_output(nginx_conf(listen, up, "v2"), "# still nothing\n", lua);
    running.reload(&second).unwrap();
    assert!(get(listen).1.contains("x-config: v2"));
    assert_eq!(running.pids()[0], master, "a reload keeps the master");

    running.stop().unwrap();
    assert!(!alive(master));
    assert!(group_members(master).is_empty(), "no worker is left");
}

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

fn envoy_output(bootstrap: &str, lds: String, cds: String) -> Output {
    output(
        TargetKind::Envoy,
        &[
            ("bootstrap.yaml", bootstrap.to_string()),
            ("dynamic/lds.json", lds),
            ("dynamic/cds.json", cds),
        ],
    )
}

#[test]
fn envoy_outputs_hot_reload_by_rename_restart_on_a_new_bootstrap_and_stop() {
    let up = upstream("from-up");
    let listen = free_addr();
    let work = scratch("launch-envoy");
    let mut launch = Launch::new(TargetKind::Envoy, &work, listen);
    launch.env = BTreeMap::from([("GATEFOLD_TEST_VAR".to_string(), "x".to_string())]);
    let mut running =
        Launched::start(launch, &envoy_output(BOOTSTRAP, lds(listen, "v1"), cds(up))).unwrap();
    let (status, head, body) = get(listen);
    assert_eq!((status, body.as_str()), (200, "from-up"));
    assert!(head.contains("x-config: v1"), "{head}");
    let pid = running.pids()[0];
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"GATEFOLD_TEST_VAR=x"),
        "Launch::env reaches the runtime's environment"
    );

    running
        .reload(&envoy_output(BOOTSTRAP, lds(listen, "v2"), cds(up)))
        .unwrap();
    assert!(get(listen).1.contains("x-config: v2"));
    assert_eq!(running.pids()[0], pid, "hot reload: same process");

    let broken = lds(listen, "v3").replace(
        r#""stat_prefix":"main""#,
        r#""stat_prefix":"main","bogus_field":1"#,
    );
    let err = running
        .reload(&envoy_output(BOOTSTRAP, broken, cds(up)))
        .unwrap_err();
    assert!(matches!(&err, Error::Rejected { .. }), "{err}");
    assert!(get(listen).1.contains("x-config: v2"), "the old one serves");

    // A changed bootstrap cannot be applied by rename: Envoy restarts on it.
    let other = BOOTSTRAP.replace("id: gatefold-test", "id: gatefold-test-2");
    running
        .reload(&envoy_output(&other, lds(listen, "v4"), cds(up)))
        .unwrap();
    assert!(get(listen).1.contains("x-config: v4"));
    let restarted = running.pids()[0];
    assert_ne!(restarted, pid);
    assert!(!alive(pid), "the old Envoy is gone");

    running.stop().unwrap();
    assert!(!alive(restarted));
    assert!(group_members(restarted).is_empty());
}

#[test]
fn an_output_for_another_target_or_an_unrunnable_one_is_refused() {
    let listen = free_addr();
    let work = scratch("launch-mismatch");
    let out = output(
        TargetKind::Kong,
        &[("kong.yaml", "_format_version: '3.0'\n".into())],
    );
    let err = Launched::start(Launch::new(TargetKind::Kong, &work, listen), &out).unwrap_err();
    assert!(
        err.to_string()
            .contains("runnable targets are reference, nginx, envoy"),
        "{err}"
    );
    let err = Launched::start(Launch::new(TargetKind::Nginx, &work, listen), &out).unwrap_err();
    assert!(err.to_string().contains("not `nginx`"), "{err}");
}
