//! TLS to `https://` upstream targets: rustls, verifying the target's
//! certificate against the system's trust store (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honored) plus any extra roots the gateway was given.
//! The name checked is the target's host (a DNS name or an IP address).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;

/// The client TLS settings for every upstream connection of a gateway.
pub fn client_config(extra_roots_pem: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    // A missing or partly unreadable system store leaves fewer roots, so
    // fewer upstreams verify: that fails closed.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(pem) = extra_roots_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("the upstream CA bundle is not PEM: {e}"))?;
            roots.add(cert).map_err(|e| {
                format!("the upstream CA bundle holds an unusable certificate: {e}")
            })?;
            added += 1;
        }
        if added == 0 {
            return Err("the upstream CA bundle holds no certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // ALPN (http/1.1) is set by the connector.
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
