//! The client's host reaches the upstream as on the reference gateway: as
//! `host` with preserve-host (language 1.1) and as `x-forwarded-host`
//! always, taken from the request line's authority in absolute form, else
//! from the `host` header, as sent (case and port kept).

use crate::common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use gatefold_runtime::launch::{Launch, Launched};

#[test]
fn the_clients_host_reaches_the_upstream_as_on_the_reference() {
    let echo = Echo::start();
    let ir = compile(&format!(
        r#"
gatefold: 1
upstreams: {{ u: {{ targets: [ {{ url: "http://{}" }} ] }} }}
apis:
  a:
    upstream: u
    routes:
      kept: {{ path: /kept, preserve-host: true }}
      own: {{ path: /own }}
"#,
        echo.addr
    ));
    let ng = run(&ir, &[]);
    let work = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let output = gatefold_target_reference::Reference.emit(
        &ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    let reference = Launched::start(
        Launch::new(
            gatefold_compiler::ir::TargetKind::Reference,
            work.path(),
            listen,
        ),
        &output,
    )
    .unwrap();
    let mut differ = Vec::new();
    for host in ["client.example", "Client.Example:8080", "[::1]:9"] {
        for target in [
            "/kept",
            "/own",
            "http://line.example/kept",
            "http://Line.Example:81/kept",
            "http://line.example/own",
        ] {
            let see = |addr| {
                let before = echo.count();
                let r = get(addr, target, &[("host", host)]);
                let up = (echo.count() > before).then(|| {
                    let got = echo.last();
                    let h = |n: &str| got.header(n).map(str::to_string);
                    (
                        h("x-forwarded-host"),
                        target.contains("kept").then(|| h("host")),
                    )
                });
                (r.status, up)
            };
            let want = see(reference.listen());
            let got = see(ng.addr);
            if want != got {
                differ.push(format!(
                    "{host} {target}: reference {want:?}, nginx {got:?}"
                ));
            }
        }
    }
    reference.stop().unwrap();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
