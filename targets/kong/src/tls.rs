//! `gateway.tls`: Kong `certificates` with their `snis`, and the global
//! pre-function's first rewrite chunk for what Kong does not do itself
//! (421 for a misdirected request, the plain listener's 308).
//!
//! **Which certificate.** Kong looks a connection's SNI name up as sent:
//! the exact name, then `*.REST` (the name without its first label, when
//! two or more labels are left), then the SNI `*`, then kong.conf's
//! `ssl_cert` (kong/runloop/certificate.lua, `find_certificate`). The spec
//! gives the first certificate in list order covering the name. So each
//! certificate's SNIs are its names no earlier certificate covers
//! ([`Tls::sni_owners`]): an exact name covered by an earlier wildcard is
//! the wildcard's, found by the second lookup. The first certificate also
//! gets the SNI `*` (a name no certificate covers); a client without SNI
//! gets kong.conf's `ssl_cert`, which must be the first certificate
//! (docs/kong.md; the file's header says so).
//!
//! **Keys.** A key is a secret: `key: { env: NAME }` is the vault reference
//! `{vault://env/NAME}` (certificate keys are referenceable in Kong). Kong
//! OSS has no vault reading a file and a key may not be copied into the
//! config, so `key: { file }` is refused ([`refusals`]).
//!
//! **421 and 308.** Kong serves any host on a connection whatever
//! certificate it set up, and its route `https_redirect_status_code`
//! builds `https://HOST/...` without the TLS listener's port. The global
//! pre-function's `rewrite` runs on every request before Kong routes
//! (see `crate::script`), so its first chunk ([`rewrite_chunk`]) answers a
//! plain request 308 with `redirect-http`, and a TLS request whose host
//! the connection's certificate (found as Kong finds it, from
//! `ngx.var.ssl_server_name`) does not cover 421.

use crate::model::{Certificate, Sni};
use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::tls::{Tls, TlsKey};
use gatefold_compiler::ir::{Loc, Secret, ValidIr};
use gatefold_compiler::target::span_of;
use gatefold_lua_script::lua::string as s;

/// The SNI Kong serves a certificate for when no other SNI takes the name.
const ANY: &str = "*";

/// The `certificates` of `gateway.tls` (none without it). A key read from
/// a file has no entity ([`refusals`] refuses the spec).
pub fn certificates(ir: &ValidIr) -> Vec<Certificate> {
    let Some(tls) = &ir.gateway.tls else {
        return Vec::new();
    };
    let owners = tls.sni_owners();
    tls.certificates
        .iter()
        .zip(owners)
        .enumerate()
        .filter_map(|(i, (c, own))| {
            let TlsKey::Env(name) = &c.key else {
                return None;
            };
            let mut snis: Vec<Sni> = own
                .into_iter()
                .map(|n| Sni {
                    name: n.to_string(),
                })
                .collect();
            if i == 0 {
                snis.push(Sni {
                    name: ANY.to_string(),
                });
            }
            Some(Certificate {
                id: id(ir.gateway.name.as_str(), i, &c.chain),
                cert: c.chain.clone(),
                key: crate::vault(&Secret::Env(name.clone())),
                snis,
                tags: vec![crate::tag(format!("tls/certificate-{i}"))],
            })
        })
        .collect()
}

/// A UUID (version 8, RFC 9562: custom) from the SHA-256 of the gateway's
/// name, the certificate's place and its chain.
fn id(gateway: &str, i: usize, chain: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("gatefold:{gateway}:certificate:{i}:{chain}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The global pre-function's first `rewrite` chunk with `gateway.tls`:
/// the plain listener's 308 (`redirect-http`) and the TLS listener's 421.
pub fn rewrite_chunk(ir: &ValidIr) -> Option<String> {
    let tls = ir.gateway.tls.as_ref()?;
    Some(chunk(tls))
}

fn chunk(tls: &Tls) -> String {
    let mut owners = Vec::new();
    for (i, own) in tls.sni_owners().into_iter().enumerate() {
        for n in own {
            owners.push(format!("[{}] = {}", s(n), i + 1));
        }
    }
    let names: Vec<String> = tls
        .certificates
        .iter()
        .map(|c| {
            let list: Vec<String> = c.names.iter().map(|n| s(n)).collect();
            format!("{{ {} }}", list.join(", "))
        })
        .collect();
    let redirect = if tls.redirect_http {
        let port = if tls.listen == 443 {
            String::new()
        } else {
            format!(":{}", tls.listen)
        };
        s(&port)
    } else {
        "nil".to_string()
    };
    format!(
        r#"-- gatefold: gateway.tls: 308 to https from the plain listener (redirect-http),
-- 421 for a host the TLS connection's certificate does not cover
-- The SNI names Kong looks up and their certificate (1: the first, also
-- Kong's SNI `*` and kong.conf's ssl_cert); each certificate's names.
local OWNER = {{ {owners} }}
local NAMES = {{ {names} }}
local REDIRECT = {redirect}
-- Whether certificate name `name` covers `host` (both lower case): `*.x`
-- takes exactly one label.
local function covers(name, host)
  if name:sub(1, 2) == "*." then
    local rest = host:match("^[^.]+%.(.+)$")
    return rest == name:sub(3)
  end
  return name == host
end
return function()
  if ngx.var.https ~= "on" then
    if REDIRECT then
      return kong.response.exit(308, nil, {{ ["location"] = "https://" .. ngx.var.host .. REDIRECT .. ngx.var.request_uri }})
    end
    return
  end
  -- The certificate as Kong found it: the exact SNI, then `*.` and the
  -- SNI without its first label (two or more labels left), else the first.
  local i = 1
  local sni = ngx.var.ssl_server_name
  if sni then
    local rest = sni:match("^[^.]+(%.[^.]+%.%S+)")
    i = OWNER[sni] or (rest and OWNER["*" .. rest]) or 1
  end
  local host = (ngx.var.host or ""):lower()
  for _, n in ipairs(NAMES[i]) do
    if covers(n, host) then return end
  end
  {misdirected}
end
"#,
        owners = owners.join(", "),
        names = names.join(", "),
        misdirected = crate::functions::exit(421, "misdirected request"),
    )
}

/// What Kong cannot carry out of `gateway.tls`: a key read from a file,
/// one error per certificate. (Kong looks `*.REST` up only when REST has
/// two labels or more; a certificate name `*.x` of one label after `*.`
/// never reaches the IR, which keeps only names webpki accepts.)
pub fn refusals(ir: &ValidIr, out: &mut Diagnostics, origin: Loc) {
    let Some(tls) = &ir.gateway.tls else { return };
    let at = |i: usize| span_of(ir.sources.tls_keys.get(i).copied().unwrap_or(origin));
    for (i, c) in tls.certificates.iter().enumerate() {
        if let TlsKey::File(_) = c.key {
            out.push(
                Diagnostic::error(
                    "unsupported-tls",
                    at(i),
                    format!("target `kong` cannot read the private key of TLS certificate {} from a file: Kong reads TLS keys through a vault, and a key is never copied into the config", i + 1),
                )
                .with_help("Kong reads TLS keys through a vault: write `key: { env: NAME }` and put the PEM key in NAME"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_that_follow_the_chain() {
        let a = id("g", 0, "A");
        assert_eq!(a, id("g", 0, "A"));
        assert_ne!(a, id("g", 0, "B"));
        assert_ne!(a, id("g", 1, "A"));
        let parts: Vec<&str> = a.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12], "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert!(parts[2].starts_with('8'), "version 8: {a}");
        assert!(
            matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
            "variant: {a}"
        );
    }
}
