//! Redirects built from the request (language 1.1) answer on nginx exactly
//! as on the reference gateway: the same requests (odd hosts and ports,
//! paths that would point at another host, queries) sent to both over real
//! sockets get the same status and `location`.

use crate::common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use gatefold_runtime::launch::{Launch, Launched};

const SPEC: &str = r#"
gatefold: 1
consumers:
  c: { credentials: { key: { env: RD_KEY } } }
apis:
  k:
    base-path: /k
    policies: [{ key-auth: { in: query, name: api_key } }]
    routes:
      to: { path: /to/*, policies: [{ redirect: { to: /dest } }] }
      to-query: { path: /tq/*, policies: [{ redirect: { to: "/dest?a=1#frag" } }] }
      parts: { path: /parts/*, policies: [{ redirect: { scheme: https } }] }
  moved:
    routes:
      keep: { path: /keep/*, policies: [{ redirect: { scheme: https } }] }
      host: { path: /host/*, policies: [{ redirect: { host: new.example.com } }] }
      port: { path: /port/*, policies: [{ redirect: { port: 8443, status: 308 } }] }
      default: { path: /default/*, policies: [{ redirect: { scheme: http, port: 80 } }] }
      strip: { path: /strip/*, policies: [{ redirect: { replace-prefix: /, status: 301 } }] }
      v1: { path: /api/v1/*, policies: [{ redirect: { replace-prefix: /api/v2/, status: 303 } }] }
      item: { path: "/items/{id}", policies: [{ redirect: { path: "/things/{id}/x" } }] }
"#;

#[test]
fn part_wise_redirects_answer_as_the_reference_does() {
    let ir = compile(SPEC);
    let env = [("RD_KEY", "the-key")];
    let ng = run(&ir, &env);
    let work = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let output = gatefold_target_reference::Reference.emit(
        &ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    let mut launch = Launch::new(
        gatefold_compiler::ir::TargetKind::Reference,
        work.path(),
        listen,
    );
    launch.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let reference = Launched::start(launch, &output).unwrap();
    let hosts = [
        "example.com",
        "Example.COM",
        "example.com:8080",
        "example.com:80",
        "example.com:0080",
        "example.com:+81",
        "example.com:",
        "example.com:99999",
        "127.0.0.1:9",
        "[::1]",
        "[::1]:8443",
        "[::ffff:1.2.3.4]:1",
        "[1:2]",
        "under_score.example",
    ];
    let paths = [
        "/keep/a?x=1&y",
        "/keep",
        "/keep/",
        "/host/a/b?q",
        "/port/a",
        "/default/a",
        "/strip/docs/x",
        "/strip",
        "/strip//evil.example",
        "/strip/%5Cevil.example",
        "/api/v1/a/b?c=d",
        "/api/v1",
        "/items/7",
        "/items/%2F%2Fevil",
        "/items/a%20b?",
        "/items/a?",
        // A query key is removed first: a query it leaves empty is gone.
        "/k/to/a?api_key=the-key",
        "/k/to/a?api_key=the-key&",
        "/k/to/a?x=1&api_key=the-key&y=2",
        "/k/tq/a?api_key=the-key",
        "/k/tq/a?b=2&api_key=the-key",
        "/k/parts/a?api_key=the-key",
        "/k/parts/a?api_key=the-key&api_key=x",
        "/k/parts/a?z&api_key=the-key",
        "/k/parts/a?x=1",
        // Absolute form: the request line's authority is the host.
        "http://line.example:8080/keep/a?x=1",
        "http://line.example/host/a",
        "http://LINE.example:81/port/a",
    ];
    let mut differ = Vec::new();
    let mut redirected = 0;
    for host in hosts {
        for path in paths {
            let ask = |addr| {
                let r = get(addr, path, &[("host", host)]);
                (r.status, r.header("location").map(str::to_string))
            };
            let want = ask(reference.listen());
            let got = ask(ng.addr);
            redirected += usize::from((300..400).contains(&want.0));
            if want != got {
                differ.push(format!(
                    "host {host:?} path {path:?}: reference {want:?}, nginx {got:?}"
                ));
            }
        }
    }
    reference.stop().unwrap();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(redirected > 50, "{redirected}");
}
