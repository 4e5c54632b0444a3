//! `gateway.tls`: certificates picked by SNI as the spec says, keys never
//! compiled in, and the plain listener's redirect to https.

use crate::common;

use common::*;
use gatefold_compiler::target::Options;
use std::path::Path;
use std::process::Command;

fn make_cert(dir: &Path, name: &str, cn: &str, sans: &str) {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
        ])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={sans}"),
        ])
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl made a test certificate");
}

/// The CN of the certificate served for `sni` and the status of `GET /hello`.
fn served(port: u16, sni: &str) -> (String, String) {
    let (cn, code, _) = served_with(port, sni, &[]);
    (cn, code)
}

/// [`served`] with more curl arguments, and the TLS version negotiated.
fn served_with(port: u16, sni: &str, args: &[&str]) -> (String, String, String) {
    let out = Command::new("curl")
        .args([
            "-sk",
            "-v",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--resolve",
        ])
        .arg(format!("{sni}:{port}:127.0.0.1"))
        .args(args)
        .arg(format!("https://{sni}:{port}/hello"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let cn = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("*  subject: CN=")
                .or_else(|| l.trim().strip_prefix("* subject: CN="))
        })
        .unwrap_or("?")
        .to_string();
    // "* SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384"
    let version = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("* SSL connection using "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    (
        cn,
        String::from_utf8_lossy(&out.stdout).to_string(),
        version,
    )
}

#[test]
fn sni_picks_the_first_covering_certificate() {
    let certs = tempfile::tempdir().unwrap();
    make_cert(certs.path(), "a", "first", "DNS:a.test,DNS:*.w.test");
    make_cert(certs.path(), "b", "second", "DNS:b.test,DNS:x.w.test");
    let spec = r#"
gatefold: 1
gateway:
  name: t
  listen: 8080
  tls:
    listen: 8443
    certificates:
      - { cert: { file: a.pem }, key: { file: a.key } }
      - { cert: { file: b.pem }, key: { env: T_B_KEY } }
    redirect-http: true
apis:
  hello:
    routes:
      hello: { path: /hello, methods: [GET], policies: [ { mock: { body: hi } } ] }
"#;
    let spec_path = certs.path().join("gatefold.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let compiled = gatefold_compiler::compile_path(&spec_path);
    let ir = compiled
        .ir
        .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    let (plain, tls) = (free_addr(), free_addr());
    let options = Options {
        listen: Some(plain),
        listen_tls: Some(tls),
        ..Options::default()
    };
    let out = emit(&ir, &options);
    // The private key from the environment is not in any output file.
    let key = std::fs::read_to_string(certs.path().join("b.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(out
        .files
        .iter()
        .all(|f| !String::from_utf8_lossy(&f.bytes).contains(body)));
    let ng = run_with(&ir, &options, &[], |prefix| {
        let keys = prefix.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(prefix.join(gatefold_target_nginx::tls_key_file(1)), &key).unwrap();
    });
    assert_eq!(served(tls.port(), "a.test"), ("first".into(), "200".into()));
    assert_eq!(
        served(tls.port(), "b.test"),
        ("second".into(), "200".into())
    );
    // x.w.test: both cover it, the first listed wins (nginx alone would
    // pick the exact name of the second).
    assert_eq!(served(tls.port(), "x.w.test").0, "first");
    // a.b.w.test: no name covers it (`*.` is one label): the default.
    assert_eq!(served(tls.port(), "a.b.w.test").0, "first");
    assert_eq!(served(tls.port(), "other.test").0, "first");
    // TLS 1.3 by every certificate's server (nginx 1.22 alone offers at
    // most 1.2), and 1.2 still for a client that goes no higher.
    for sni in ["a.test", "b.test"] {
        assert_eq!(served_with(tls.port(), sni, &[]).2, "TLSv1.3", "{sni}");
        assert_eq!(
            served_with(tls.port(), sni, &["--tls-max", "1.2"]),
            (
                if sni == "a.test" { "first" } else { "second" }.into(),
                "200".into(),
                "TLSv1.2".into()
            ),
            "{sni}"
        );
    }
    let r = get(ng.addr, "/hello?x=1", &[("host", "b.test")]);
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://b.test:{}/hello?x=1", tls.port()).as_str())
    );
}
