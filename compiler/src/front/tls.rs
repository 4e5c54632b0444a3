//! `gateway.tls`: decoding, and the checks made on the certificates at
//! compile time (their chains parse, have not expired, and fit their key
//! when the key is a file; their names and the apis' hosts agree).
//!
//! The chains are read here and embedded in the IR as PEM (public). A key
//! file is read only to check that it fits its certificate; its text goes
//! nowhere: the IR holds its path ([`TlsKey::File`]).

use super::decode::{Cx, Fields};
use super::yaml::Node;
use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::SpecAst;
use crate::ir::matcher::HostPattern;
use crate::ir::tls::{name_covers, Tls, TlsCertificate, TlsKey};
use crate::source::Span;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// `gateway.tls` decoded, with where each certificate is written.
#[derive(Clone, Debug)]
pub struct TlsAst {
    pub tls: Tls,
    /// The `cert` value of each certificate, same order.
    pub cert_spans: Vec<Span>,
    /// The `key` value of each certificate, same order.
    pub key_spans: Vec<Span>,
}

const EXAMPLE: &str = "tls: { listen: 8443, certificates: [{ cert: { file: certs/api.pem }, key: { env: API_TLS_KEY } }] }";

/// Decodes `gateway.tls` of a gateway whose plain listener is on `plain`;
/// `None` (with errors reported) when it is unusable.
pub fn decode(cx: &mut Cx<'_>, node: &Node, plain: u16) -> Option<TlsAst> {
    let f = cx.fields(
        node,
        "gateway `tls`",
        &["listen", "certificates", "redirect-http"],
        EXAMPLE,
    )?;
    let listen = cx.required(&f, "listen", "gateway `tls`", "listen: 8443");
    let listen_span = listen.map_or(node.span, |n| n.span);
    let listen = listen.and_then(|n| cx.int(n, "tls `listen`", 1, 65535));
    if listen == Some(i64::from(plain)) {
        cx.error(
            "tls-port-taken",
            listen_span,
            format!("tls `listen` is {plain}, the port of the plain listener (gateway `listen`)"),
            format!("give the TLS listener a port of its own, not {plain}"),
        );
    }
    let redirect_http = match f.get("redirect-http") {
        Some(n) => cx.bool(n, "`redirect-http`"),
        None => Some(false),
    };
    let certs = cx.required(
        &f,
        "certificates",
        "gateway `tls`",
        "certificates: [{ cert: { file: certs/api.pem }, key: { env: API_TLS_KEY } }]",
    );
    let items = certs.and_then(|n| {
        let items = cx.list(
            n,
            "tls `certificates`",
            "[{ cert: { file: certs/api.pem }, key: { env: API_TLS_KEY } }]",
        )?;
        cx.non_empty(
            n,
            "tls `certificates`",
            "a TLS listener cannot answer without a certificate",
            "list at least one `{ cert: { file: ... }, key: { ... } }`",
        )
        .then_some(items)
    });
    let mut certificates = Vec::new();
    let mut cert_spans = Vec::new();
    let mut key_spans = Vec::new();
    let mut all_ok = items.is_some();
    for item in items.unwrap_or_default() {
        match certificate(cx, item) {
            Some((c, span, key_span)) => {
                certificates.push(c);
                cert_spans.push(span);
                key_spans.push(key_span);
            }
            None => all_ok = false,
        }
    }
    if !all_ok {
        return None;
    }
    Some(TlsAst {
        tls: Tls {
            listen: listen? as u16,
            certificates,
            redirect_http: redirect_http?,
        },
        cert_spans,
        key_spans,
    })
}

/// One `{ cert: { file }, key: { env } | { file } }`, with where its
/// `cert` file and its `key` are written.
fn certificate(cx: &mut Cx<'_>, node: &Node) -> Option<(TlsCertificate, Span, Span)> {
    let example = "{ cert: { file: certs/api.pem }, key: { env: API_TLS_KEY } }";
    let f = cx.fields(node, "a tls certificate", &["cert", "key"], example)?;
    let cert = cx.required(
        &f,
        "cert",
        "a tls certificate",
        "cert: { file: certs/api.pem }",
    );
    let key = cx.required(&f, "key", "a tls certificate", "key: { env: API_TLS_KEY }");
    let (cert, key) = (cert?, key?);
    let key_span = key.span;
    let chain = cert_chain(cx, cert);
    let key = private_key(cx, key);
    let ((pem, ders, file_span), (key, key_pem)) = (chain?, key?);
    let leaf = &ders[0];
    let names = match webpki::EndEntityCert::try_from(leaf) {
        Ok(ee) => ee
            .valid_dns_names()
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>(),
        Err(e) => {
            cx.error(
                "invalid-certificate",
                file_span,
                format!("the first certificate of the chain cannot be read: {e:?}"),
                "give a PEM chain, the server's certificate first, like `openssl x509 -in cert.pem -text` shows",
            );
            return None;
        }
    };
    if names.is_empty() {
        cx.error(
            "invalid-certificate",
            file_span,
            "the certificate names no DNS name (subjectAltName); clients check the host against those",
            "issue it with `subjectAltName=DNS:api.example.com` (the common name alone is not checked by clients)",
        );
        return None;
    }
    if let Some(not_after) = not_after(leaf) {
        if not_after < now() {
            cx.error(
                "expired-certificate",
                file_span,
                format!("the certificate expired on {}", date_text(not_after)),
                "renew it; clients refuse an expired certificate",
            );
        }
    }
    if let Some(key_pem) = key_pem {
        check_pair(
            cx,
            &ders,
            &key_pem,
            f.get("key").map_or(file_span, |n| n.span),
        );
    }
    Some((
        TlsCertificate {
            chain: pem,
            names,
            key,
        },
        file_span,
        key_span,
    ))
}

/// `cert: { file }`: the PEM text, its certificates (at least one) and where
/// the file is named.
fn cert_chain(
    cx: &mut Cx<'_>,
    node: &Node,
) -> Option<(String, Vec<CertificateDer<'static>>, Span)> {
    let f = cx.fields(node, "`cert`", &["file"], "cert: { file: certs/api.pem }")?;
    let file = cx.required(&f, "file", "`cert`", "file: certs/api.pem")?;
    let (rel, text) = read_file(cx, file, "certs/api.pem")?;
    let ders: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(text.as_bytes()).collect();
    match ders {
        Ok(ders) if !ders.is_empty() => Some((text, ders, file.span)),
        Ok(_) => {
            let what = if text.contains("PRIVATE KEY-----") {
                "holds a private key, not a certificate"
            } else {
                "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
            };
            cx.error(
                "invalid-certificate",
                file.span,
                format!("`{rel}` {what}"),
                "point `cert` at the certificate chain (PEM, the server's certificate first); the key goes in `key`",
            );
            None
        }
        Err(e) => {
            cx.error(
                "invalid-certificate",
                file.span,
                format!("`{rel}` is not valid PEM: {e}"),
                "give a PEM chain, the server's certificate first",
            );
            None
        }
    }
}

/// `key: { env } | { file }`: the reference, and for a file its text (to
/// check the pair; it is not kept).
fn private_key(cx: &mut Cx<'_>, node: &Node) -> Option<(TlsKey, Option<String>)> {
    if let super::yaml::Value::Str(_) = node.value {
        cx.error(
            "literal-secret",
            node.span,
            "a private key is a secret and may not be written in the spec",
            "reference it: `key: { env: API_TLS_KEY }` (the variable holds the PEM key) or `key: { file: certs/api.key }`",
        );
        return None;
    }
    let f: Fields<'_> = cx.fields(node, "`key`", &["env", "file"], "key: { env: API_TLS_KEY }")?;
    match (f.get("env"), f.get("file")) {
        (Some(_), None) => match super::values::decode_secret(cx, node, "`key`")? {
            crate::ir::Secret::Env(name) => Some((TlsKey::Env(name), None)),
        },
        (None, Some(file)) => {
            let (rel, text) = read_file(cx, file, "certs/api.key")?;
            let path = super::values::inside_folder(cx.base_dir, rel)?;
            // Absolute, so the gateway finds it whatever its working folder.
            let abs = path.canonicalize().unwrap_or(path);
            Some((TlsKey::File(abs.display().to_string()), Some(text)))
        }
        _ => {
            cx.error(
                "invalid-key-reference",
                node.span,
                "`key` takes `env` or `file`, exactly one",
                "write `key: { env: API_TLS_KEY }` or `key: { file: certs/api.key }`",
            );
            None
        }
    }
}

/// Reads a `file:` named relative to the spec file's folder (and inside it).
fn read_file<'n>(cx: &mut Cx<'_>, file: &'n Node, example: &str) -> Option<(&'n str, String)> {
    let rel = cx.str(file, "`file`", example)?;
    let Some(path) = super::values::inside_folder(cx.base_dir, rel) else {
        cx.error(
            "file-outside-spec",
            file.span,
            format!("`{rel}` is not inside the spec's folder"),
            format!("put the file in the folder of this spec file (or a folder below it) and name it relative to it, like `{example}`"),
        );
        return None;
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Some((rel, text)),
        Err(e) => {
            cx.error(
                "unreadable-file",
                file.span,
                format!("cannot read `{rel}`: {e}"),
                "the path is relative to the folder of this spec file",
            );
            None
        }
    }
}

/// Checks that a key file's key is the certificate's.
fn check_pair(cx: &mut Cx<'_>, chain: &[CertificateDer<'static>], key_pem: &str, span: Span) {
    let key = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
        Ok(k) => k,
        Err(_) => {
            cx.error(
                "invalid-private-key",
                span,
                "the key file holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, or an RSA or EC one)",
                "point `key: { file }` at the certificate's private key",
            );
            return;
        }
    };
    let provider = rustls::crypto::ring::default_provider();
    let signing = match provider.key_provider.load_private_key(key) {
        Ok(s) => s,
        Err(e) => {
            cx.error(
                "invalid-private-key",
                span,
                format!("the private key cannot be used: {e}"),
                "use an RSA, ECDSA (P-256, P-384) or Ed25519 key",
            );
            return;
        }
    };
    let certified = rustls::sign::CertifiedKey::new(chain.to_vec(), signing);
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        certified.keys_match()
    {
        cx.error(
            "mismatched-key",
            span,
            "the private key does not belong to the certificate",
            "give the key the certificate was issued for (`openssl x509 -noout -pubkey -in CERT` and `openssl pkey -pubout -in KEY` print the same key)",
        );
    }
}

/// Warnings that need the whole spec: a certificate name no api host
/// uses, an api host no certificate covers. Apis without `hosts` answer any
/// host, so with one of them no name is unused.
pub fn check(spec: &SpecAst, diags: &mut Diagnostics) {
    let Some(tls) = spec.gateway.as_ref().and_then(|g| g.tls.as_ref()) else {
        return;
    };
    let any_host = spec.apis.iter().any(|a| a.value.hosts.is_empty());
    for (cert, span) in tls.tls.certificates.iter().zip(&tls.cert_spans) {
        for name in &cert.names {
            let used = any_host
                || spec
                    .apis
                    .iter()
                    .flat_map(|a| &a.value.hosts)
                    .any(|h| host_in_name(h, name));
            if !used {
                diags.push(
                    Diagnostic::warning(
                        "unused-certificate-name",
                        *span,
                        format!("no api answers `{name}`, a name of this certificate"),
                        )
                    .with_help(format!("add `{name}` to an api's `hosts`, or drop the certificate if no api needs it")),
                );
            }
        }
    }
    for api in &spec.apis {
        for host in &api.value.hosts {
            let covered = tls
                .tls
                .certificates
                .iter()
                .any(|c| c.names.iter().any(|n| host_in_name(host, n)));
            if !covered {
                diags.push(
                    Diagnostic::warning(
                        "host-without-certificate",
                        api.span,
                        format!("no certificate of `gateway.tls` covers `{}`, a host of api `{}`", host_text(host), api.name),
                    )
                    .with_help("add a certificate naming it; over TLS, clients will refuse the default certificate for this host"),
                );
            }
        }
    }
}

/// Whether a certificate name covers every host of an api host pattern.
fn host_in_name(host: &HostPattern, name: &str) -> bool {
    match host {
        HostPattern::Exact(h) => name_covers(name, h),
        // `*.example.com` in gatefold is one or more labels; a certificate
        // `*.example.com` covers one: only the same wildcard fits.
        HostPattern::Wildcard(suffix) => name.strip_prefix('*') == Some(suffix.as_str()),
    }
}

fn host_text(host: &HostPattern) -> String {
    match host {
        HostPattern::Exact(h) => h.clone(),
        HostPattern::Wildcard(s) => format!("*{s}"),
    }
}

/// Seconds since the epoch, now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD` (UTC) of a time in seconds since the epoch.
fn date_text(secs: i64) -> String {
    crate::ir::Date::from_days_since_epoch(secs.div_euclid(86_400)).to_string()
}

/// One DER element: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The leaf's `notAfter`, in seconds since the epoch; `None` if the
/// certificate does not read as X.509 (webpki reports that).
fn not_after(cert: &[u8]) -> Option<i64> {
    let (_, cert, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer.
    let (tag, _, r) = tlv(rest)?;
    rest = r;
    if tag == 0xa0 {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2;
    rest = tlv(rest)?.2;
    let (_, validity, _) = tlv(rest)?;
    let (_, _, after) = tlv(validity)?;
    let (tag, time, _) = tlv(after)?;
    let text = std::str::from_utf8(time).ok()?;
    let digits = |s: &str| -> Option<i64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, rest) = match tag {
        // UTCTime: YYMMDDHHMMSSZ; years 50-99 are 19xx.
        0x17 => {
            let yy = digits(text.get(0..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        // GeneralizedTime: YYYYMMDDHHMMSSZ.
        0x18 => (digits(text.get(0..4)?)?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| digits(rest.get(i..i + 2)?);
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let date = crate::ir::Date {
        year: u16::try_from(year).ok()?,
        month: month as u8,
        day: day as u8,
    };
    Some(date.days_since_epoch() * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_utc_days() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(86_400 * 365), "1971-01-01");
        assert_eq!(date_text(1_709_164_800), "2024-02-29");
    }

    #[test]
    fn a_truncated_certificate_has_no_date_rather_than_a_panic() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2],
            &[0x30, 0x03, 0x30, 0x01],
        ] {
            assert_eq!(not_after(bytes), None);
        }
    }
}
