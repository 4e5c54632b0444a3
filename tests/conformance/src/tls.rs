//! TLS for scenarios with `tls: true`: two certificates made at run time
//! (rcgen; no key is committed) and a rustls client that reports which one
//! the gateway presented, as the pseudo-header `:tls-certificate` (`a` or
//! `b`) of the response.

use crate::client::{exchange, Response, Timed};
use crate::scenario::Request;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// The names certificate `a` covers.
pub const NAMES_A: [&str; 2] = ["tls.example.test", "*.wild.example.test"];
/// The names certificate `b` covers.
pub const NAMES_B: [&str; 1] = ["other.example.test"];

/// The two certificates and their keys, PEM.
pub struct Certs {
    /// `(name, cert PEM, key PEM)`: `a`, then `b`.
    pub pairs: Vec<(&'static str, String, String)>,
}

impl Certs {
    pub fn make() -> Result<Certs, String> {
        let one = |names: &[&str]| -> Result<(String, String), String> {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let c = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
            Ok((c.cert.pem(), c.signing_key.serialize_pem()))
        };
        let (ca, ka) = one(&NAMES_A)?;
        let (cb, kb) = one(&NAMES_B)?;
        Ok(Certs {
            pairs: vec![("a", ca, ka), ("b", cb, kb)],
        })
    }

    /// Writes `certs/NAME.pem` and `certs/NAME.key` under `dir`.
    pub fn write(&self, dir: &std::path::Path) -> Result<(), String> {
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).map_err(|e| e.to_string())?;
        for (name, cert, key) in &self.pairs {
            std::fs::write(certs.join(format!("{name}.pem")), cert).map_err(|e| e.to_string())?;
            std::fs::write(certs.join(format!("{name}.key")), key).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Sends `request` over TLS to `addr` asking for `sni` (trusting both
/// certificates), and names the certificate presented.
pub fn send(
    addr: SocketAddr,
    sni: &str,
    request: &Request,
    certs: &Certs,
) -> Result<Response, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut ders = Vec::new();
    for (name, pem, _) in &certs.pairs {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| e.to_string())?;
        roots.add(der.clone()).map_err(|e| e.to_string())?;
        ders.push((*name, der));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut response = exchange(&mut stream, request)?;
    let presented = stream
        .conn
        .peer_certificates()
        .and_then(|c| c.first().cloned())
        .ok_or("no certificate presented")?;
    let which = ders
        .iter()
        .find(|(_, d)| *d == presented)
        .map_or("unknown", |(n, _)| n);
    response
        .headers
        .push((":tls-certificate".into(), which.to_string()));
    Ok(response)
}

impl Timed for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn limit_reads(&self, limit: Duration) {
        let _ = self.sock.set_read_timeout(Some(limit));
    }
}
