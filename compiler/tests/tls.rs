//! `gateway.tls` at compile time, with certificates made by the test (no
//! private key is committed): what the IR holds (chains and names, never a
//! key), the pair check on key files, and what the content hash covers.

use gatefold_compiler::compile_sources;
use gatefold_compiler::ir::tls::TlsKey;
use gatefold_compiler::source::{SourceFile, Sources};
use std::path::{Path, PathBuf};

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "gatefold-tls-{tag}-{}-{}",
            std::process::id(),
            fastish_unique()
        ));
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        Scratch(dir)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.0.join(rel), text).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastish_unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A self-signed certificate for `names`: (cert PEM, key PEM).
fn cert(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// Compiles `text` as `tls.yaml` in `dir` (so messages name `tls.yaml`).
fn compile(dir: &Path, text: &str) -> gatefold_compiler::Compiled {
    let mut sources = Sources::new();
    sources.add(SourceFile::new("tls.yaml", text));
    let dir = dir.to_path_buf();
    compile_sources(sources, move |_| dir.clone())
}

const APIS: &str = "
upstreams:
  pets:
    targets: [{ url: \"http://127.0.0.1:9001\" }]

apis:
  pets:
    hosts: [api.example.com, x.example.org]
    upstream: pets
    routes:
      list: { path: /pets, methods: [GET] }
";

fn spec(tls: &str) -> String {
    format!("gatefold: 1\n\ngateway:\n  listen: 8080\n  tls:\n{tls}\n{APIS}")
}

const TWO_CERTS: &str = "    listen: 8443
    redirect-http: true
    certificates:
      - { cert: { file: certs/api.pem }, key: { env: API_TLS_KEY } }
      - { cert: { file: certs/wild.pem }, key: { file: certs/wild.key } }";

fn two_certs(tag: &str) -> (Scratch, String) {
    let dir = Scratch::new(tag);
    let (api, _) = cert(&["api.example.com"]);
    let (wild, wild_key) = cert(&["*.example.org"]);
    dir.write("certs/api.pem", &api);
    dir.write("certs/wild.pem", &wild);
    dir.write("certs/wild.key", &wild_key);
    (dir, api)
}

#[test]
fn the_ir_holds_chains_names_and_key_references_never_a_key() {
    let (dir, api_pem) = two_certs("ir");
    let compiled = compile(&dir.0, &spec(TWO_CERTS));
    let ir = compiled
        .ir
        .clone()
        .unwrap_or_else(|| panic!("{}", compiled.render()));
    assert_eq!(
        compiled.diagnostics.iter().count(),
        0,
        "{}",
        compiled.render()
    );
    let tls = ir.gateway.tls.as_ref().expect("tls in the IR");
    assert_eq!(tls.listen, 8443);
    assert!(tls.redirect_http);
    assert_eq!(tls.certificates[0].chain, api_pem);
    assert_eq!(tls.certificates[0].names, ["api.example.com"]);
    assert_eq!(tls.certificates[1].names, ["*.example.org"]);
    assert_eq!(tls.certificates[0].key, TlsKey::Env("API_TLS_KEY".into()));
    let key_file = dir.0.join("certs/wild.key").canonicalize().unwrap();
    assert_eq!(
        tls.certificates[1].key,
        TlsKey::File(key_file.display().to_string())
    );
    // The key file was read for the pair check; none of it is in the IR.
    let json = ir.to_json();
    assert!(
        !json.contains("PRIVATE KEY"),
        "a private key leaked into the IR"
    );
}

#[test]
fn a_key_file_of_another_certificate_is_an_error() {
    let dir = Scratch::new("mismatch");
    let (wild, _) = cert(&["*.example.org"]);
    let (_, other_key) = cert(&["*.example.org"]);
    dir.write("certs/wild.pem", &wild);
    dir.write("certs/wild.key", &other_key);
    let text = spec(
        "    listen: 8443
    certificates:
      - { cert: { file: certs/wild.pem }, key: { file: certs/wild.key } }",
    );
    let compiled = compile(&dir.0, &text);
    assert!(compiled.ir.is_none());
    insta::assert_snapshot!(compiled.render());
}

#[test]
fn a_key_file_that_holds_no_key_is_an_error() {
    let dir = Scratch::new("nokey");
    let (wild, _) = cert(&["*.example.org"]);
    dir.write("certs/wild.pem", &wild);
    dir.write("certs/wild.key", &wild);
    let text = spec(
        "    listen: 8443
    certificates:
      - { cert: { file: certs/wild.pem }, key: { file: certs/wild.key } }",
    );
    let compiled = compile(&dir.0, &text);
    let errors: Vec<_> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.severity == gatefold_compiler::diag::Severity::Error)
        .map(|d| d.code)
        .collect();
    assert_eq!(errors, ["invalid-private-key"], "{}", compiled.render());
}

#[test]
fn the_hash_covers_tls_and_ignores_key_order() {
    let (dir, _) = two_certs("hash");
    let hash = |tls: &str| {
        let c = compile(&dir.0, &spec(tls));
        c.ir.clone()
            .unwrap_or_else(|| panic!("{}", c.render()))
            .hash
            .clone()
    };
    let base = hash(TWO_CERTS);
    // The same meaning written in another key order.
    let reordered = "    certificates:
      - { key: { env: API_TLS_KEY }, cert: { file: certs/api.pem } }
      - { key: { file: certs/wild.key }, cert: { file: certs/wild.pem } }
    redirect-http: true
    listen: 8443";
    assert_eq!(hash(reordered), base);
    // Certificate order is meaning: the first is the default.
    let swapped = "    listen: 8443
    redirect-http: true
    certificates:
      - { cert: { file: certs/wild.pem }, key: { file: certs/wild.key } }
      - { cert: { file: certs/api.pem }, key: { env: API_TLS_KEY } }";
    assert_ne!(hash(swapped), base);
    assert_ne!(hash(&TWO_CERTS.replace("8443", "9443")), base);
    assert_ne!(
        hash(&TWO_CERTS.replace("redirect-http: true", "redirect-http: false")),
        base
    );
    assert_ne!(hash(&TWO_CERTS.replace("API_TLS_KEY", "OTHER_KEY")), base);
    // A renewed certificate (same names) is another config.
    let (renewed, _) = cert(&["api.example.com"]);
    dir.write("certs/api.pem", &renewed);
    assert_ne!(hash(TWO_CERTS), base);
}

#[test]
fn a_spec_without_tls_has_no_tls_in_its_ir() {
    let c = gatefold_compiler::compile_str("plain.yaml", &format!("gatefold: 1\n{APIS}"));
    let ir = c.ir.clone().unwrap_or_else(|| panic!("{}", c.render()));
    assert!(ir.gateway.tls.is_none());
    // Left out of the JSON, so hashes of specs without tls did not change.
    assert!(!ir.to_json().contains("\"tls\""));
}
