//! `gateway.tls`: the TLS listener's settings.
//!
//! Certificates are public, so each chain is embedded as PEM: the IR needs
//! no file beside it (like a `jwt` `public-key`). Private keys are secrets:
//! the IR holds only where the gateway reads one ([`TlsKey`]), never a key.

use serde::{Deserialize, Serialize};

/// The TLS listener: where, with which certificates, and what the plain
/// listener does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Tls {
    /// The port the TLS listener serves on.
    pub listen: u16,
    /// In spec order; the first is the default when no name fits the SNI.
    pub certificates: Vec<TlsCertificate>,
    /// The plain listener answers every request with 308 to https.
    pub redirect_http: bool,
}

/// One certificate chain and where its private key is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsCertificate {
    /// The chain as PEM, leaf first, as read from the spec's `cert` file.
    pub chain: String,
    /// The leaf's DNS names (subjectAltName), lower case, in certificate
    /// order; `*.example.com` covers exactly one label.
    pub names: Vec<String>,
    pub key: TlsKey,
}

/// Where the gateway reads a certificate's private key when it loads the
/// config. Never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsKey {
    /// An environment variable holding the PEM key.
    Env(String),
    /// A PEM key file: the absolute path the compiler found it at (the spec
    /// file's folder joined with the path the spec gives).
    File(String),
}

impl TlsCertificate {
    /// Whether one of the certificate's names covers `host` (port ignored).
    pub fn covers(&self, host: &str) -> bool {
        let host = super::matcher::host_without_port(host);
        self.names.iter().any(|n| name_covers(n, host))
    }
}

impl Tls {
    /// The certificate a TLS client asking for `sni` gets: the first whose
    /// names cover it, else the first (the default).
    pub fn pick(&self, sni: Option<&str>) -> Option<usize> {
        let by_name = sni.and_then(|s| self.certificates.iter().position(|c| c.covers(s)));
        by_name.or((!self.certificates.is_empty()).then_some(0))
    }

    /// The names each certificate is picked for by a lookup of the SNI
    /// name (exact, then `*.rest`), in certificate order: its names that no
    /// earlier certificate's name already covers, without repeats. For
    /// back ends that map SNI names to certificates (a name an earlier
    /// certificate covers is that certificate's, as [`Tls::pick`] says).
    pub fn sni_owners(&self) -> Vec<Vec<&str>> {
        let mut earlier: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for cert in &self.certificates {
            let mut own: Vec<&str> = Vec::new();
            for n in &cert.names {
                let taken = earlier.iter().any(|e| name_covers_name(e, n))
                    || own.iter().any(|o| o.eq_ignore_ascii_case(n));
                if !taken {
                    own.push(n);
                }
            }
            earlier.extend(cert.names.iter().map(String::as_str));
            out.push(own);
        }
        out
    }
}

/// Whether certificate name `name` covers every host certificate name
/// `other` covers: the same name, or `*.x` and a name one label below x.
pub fn name_covers_name(name: &str, other: &str) -> bool {
    match (name.strip_prefix("*."), other.strip_prefix("*.")) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, Some(_)) => false,
        (_, None) => name_covers(name, other),
    }
}

/// A certificate name covers a host as TLS clients check it (RFC 6125):
/// equal ignoring case, or `*.suffix` and the host is one more label.
pub fn name_covers(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(suffix)),
        None => name.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate naming `names` (no chain: only its names matter here).
    fn cert(names: &[&str]) -> TlsCertificate {
        TlsCertificate {
            chain: String::new(),
            names: names.iter().map(|n| n.to_string()).collect(),
            key: TlsKey::Env("K".into()),
        }
    }

    #[test]
    fn a_wildcard_name_covers_exactly_one_label() {
        assert!(name_covers("*.example.com", "api.example.com"));
        assert!(name_covers("*.example.com", "API.Example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(!name_covers("*.example.com", ".example.com"));
        assert!(name_covers("api.example.com", "api.example.com"));
        assert!(!name_covers("api.example.com", "www.example.com"));
    }

    #[test]
    fn the_first_certificate_is_the_default() {
        let tls = Tls {
            listen: 8443,
            certificates: vec![cert(&["a.example.com"]), cert(&["*.example.org"])],
            redirect_http: false,
        };
        assert_eq!(tls.pick(Some("x.example.org")), Some(1));
        assert_eq!(tls.pick(Some("other.test")), Some(0));
        assert_eq!(tls.pick(None), Some(0));
        assert!(tls.certificates[0].covers("a.example.com:8443"));
    }

    #[test]
    fn an_sni_name_belongs_to_the_first_certificate_covering_it() {
        let tls = Tls {
            listen: 8443,
            certificates: vec![
                cert(&["*.example.com", "a.example.org", "a.example.org"]),
                cert(&[
                    "api.example.com",
                    "*.example.com",
                    "b.example.org",
                    "x.a.example.org",
                ]),
                cert(&["*.example.org", "a.example.org"]),
            ],
            redirect_http: false,
        };
        assert_eq!(
            tls.sni_owners(),
            vec![
                vec!["*.example.com", "a.example.org"],
                vec!["b.example.org", "x.a.example.org"],
                vec!["*.example.org"],
            ]
        );
    }
}
