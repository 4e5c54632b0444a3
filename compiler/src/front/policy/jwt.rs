//! `jwt`: issuer, audiences, the algorithm and the key that verifies it
//! (a shared secret, or a public key checked to fit the algorithm).

use super::*;

/// Decodes `jwt` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node) -> Option<Policy> {
    let kind = PolicyKind::Jwt;
    let f = fields(
        cx,
        kind,
        node,
        &[
            "issuer",
            "audiences",
            "algorithms",
            "secret",
            "public-key",
            "consumer-claim",
            "claims-to-headers",
            "leeway",
        ],
        "jwt: { algorithms: [HS256], secret: { env: JWT_SECRET } }",
    )?;
    let alg_node = cx.required(&f, "algorithms", "`jwt`", "algorithms: [RS256]")?;
    let mut listed = Vec::new();
    for item in cx.list(alg_node, "`algorithms`", "[RS256]").unwrap_or(&[]) {
        match cx.str(item, "an algorithm", "RS256")? {
            "HS256" => listed.push((JwtAlgorithm::HS256, item)),
            "RS256" => listed.push((JwtAlgorithm::RS256, item)),
            "ES256" => listed.push((JwtAlgorithm::ES256, item)),
            other => {
                cx.error(
                    "invalid-option",
                    item.span,
                    format!("`{other}` is not a supported JWT algorithm"),
                    "use HS256, RS256 or ES256",
                );
                return None;
            }
        };
    }
    let algorithms = cx.set("`algorithms`", listed);
    if algorithms.is_empty() {
        cx.error(
            "empty-list",
            alg_node.span,
            "`algorithms` is empty",
            "algorithms: [RS256]",
        );
        return None;
    }
    let hmac = algorithms.contains(&JwtAlgorithm::HS256);
    if algorithms.len() > 1 {
        let help = if f.get("secret").is_some() {
            "a `secret` is for HS256 only: `algorithms: [HS256]`"
        } else {
            "keep the one that fits the key: `algorithms: [RS256]` for an RSA key, `[ES256]` for a P-256 key"
        };
        cx.error(
            "jwt-key-mismatch",
            alg_node.span,
            format!(
                "`algorithms` lists {} algorithms, but one key verifies one algorithm",
                algorithms.len()
            ),
            help,
        );
    }
    let key = match (f.get("secret"), f.get("public-key")) {
        (Some(s), None) => {
            if !hmac {
                cx.error(
                    "jwt-key-mismatch",
                    s.span,
                    "a shared `secret` verifies HS256 only",
                    "with RS256/ES256 give `public-key: { file: keys/jwt.pub }`",
                );
                return None;
            }
            JwtKey::Hs256 {
                secret: decode_secret(cx, s, "`secret`")?,
            }
        }
        (None, Some(p)) => {
            if hmac {
                cx.error(
                    "jwt-key-mismatch",
                    p.span,
                    "a `public-key` cannot verify HS256",
                    "use `secret: { env: JWT_SECRET }` for HS256, in its own jwt policy",
                );
                return None;
            }
            let pf = cx.fields(
                p,
                "`public-key`",
                &["file", "env"],
                "public-key: { file: keys/jwt.pub }",
            )?;
            let alg = *algorithms.first().expect("checked non-empty");
            let public = match (pf.get("file"), pf.get("env")) {
                (Some(file), None) => public_key_file(cx, file, alg)?,
                (None, Some(_)) => match decode_secret(cx, p, "`public-key`")? {
                    Secret::Env(v) => PublicKey::Env(v),
                },
                _ => {
                    cx.error(
                        "invalid-option",
                        p.span,
                        "`public-key` takes `file` or `env`, exactly one",
                        "public-key: { file: keys/jwt.pub }",
                    );
                    return None;
                }
            };
            match alg {
                JwtAlgorithm::RS256 => JwtKey::Rs256(public),
                _ => JwtKey::Es256(public),
            }
        }
        (Some(_), Some(p)) => {
            cx.error(
                "conflicting-options",
                p.span,
                "`jwt` takes `secret` or `public-key`, not both",
                "HS256 uses `secret`; RS256/ES256 use `public-key`",
            );
            return None;
        }
        (None, None) => {
            // A misspelt key is already reported as unknown, with the key suggested.
            let misspelt = f
                .entries
                .iter()
                .any(|e| crate::front::decode::suggest(&e.key, ["secret", "public-key"]).is_some());
            if !misspelt {
                cx.error(
                    "missing-key",
                    f.span,
                    "`jwt` needs a key to verify signatures with: `secret` or `public-key`",
                    "add `secret: { env: JWT_SECRET }` for HS256, or `public-key: { file: keys/jwt.pub }` for RS256/ES256",
                );
            }
            return None;
        }
    };
    let mut claims_to_headers = BTreeMap::new();
    if let Some(n) = f.get("claims-to-headers") {
        for e in cx
            .map(n, "`claims-to-headers`", "{ sub: x-user }")
            .unwrap_or(&[])
        {
            if let Some(h) =
                cx.parse::<HeaderName>(&e.value, "a header", "invalid-header", "x-user")
            {
                claims_to_headers.insert(e.key.to_string(), h);
            }
        }
    }
    Some(Policy::Jwt(Jwt {
        issuer: opt_string(cx, &f, "issuer", "https://issuer.example.com"),
        audiences: f
            .get("audiences")
            .map(|n| {
                let items = cx.list(n, "`audiences`", "[pets-api]").unwrap_or(&[]);
                let listed: Vec<_> = items
                    .iter()
                    .filter_map(|i| Some((cx.str(i, "an audience", "pets-api")?.to_string(), i)))
                    .collect();
                cx.set("`audiences`", listed)
            })
            .unwrap_or_default(),
        key,
        consumer_claim: opt_string(cx, &f, "consumer-claim", "sub").unwrap_or_else(|| "sub".into()),
        claims_to_headers,
        leeway: opt_duration(cx, &f, "leeway").unwrap_or(Duration { millis: 0 }),
    }))
}

/// Reads a `public-key: { file }` and checks that it is a PEM public key
/// that fits `alg`: RSA for RS256, P-256 for ES256.
fn public_key_file(cx: &mut Cx<'_>, file: &Node, alg: JwtAlgorithm) -> Option<PublicKey> {
    let rel = cx.str(file, "`file`", "keys/jwt.pub")?;
    let Some(path) = inside_folder(cx.base_dir, rel) else {
        // One text whatever is there: a spec sent to a running gateway must
        // not learn whether some file outside its folder exists.
        cx.error(
            "file-outside-spec",
            file.span,
            format!("`{rel}` is not inside the spec's folder"),
            "put the key file in the folder of this spec file (or a folder below it) and name it relative to it, like `keys/jwt.pub`",
        );
        return None;
    };
    let pem = match std::fs::read_to_string(path) {
        Ok(pem) => pem,
        Err(e) => {
            cx.error(
                "unreadable-file",
                file.span,
                format!("cannot read `{rel}`: {e}"),
                "the path is relative to the folder of this spec file",
            );
            return None;
        }
    };
    let problem = match pem_key_type(&pem) {
        Ok(found) if found == alg => match pem_der(&pem).and_then(|der| jwk_of(&der, alg)) {
            Some(jwk) => return Some(PublicKey::File { pem, jwk }),
            None => (
                format!("`{rel}` holds a public key whose structure cannot be read"),
                "export it again: `openssl pkey -pubin -in key.pub -out key.pub`".to_string(),
            ),
        },
        Ok(found) => {
            let (kind, fits) = match found {
                JwtAlgorithm::ES256 => ("a P-256 (EC)", "ES256"),
                _ => ("an RSA", "RS256"),
            };
            (
                format!("`{rel}` holds {kind} public key, which cannot verify {alg:?}"),
                format!("write `algorithms: [{fits}]`, or point at the issuer's {alg:?} key"),
            )
        }
        Err((msg, help)) => (format!("`{rel}` {msg}"), help),
    };
    cx.error("invalid-public-key", file.span, problem.0, problem.1);
    None
}

/// The algorithm a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) serves, read from
/// its algorithm identifier; or what is wrong with the text, as (message, help).
fn pem_key_type(pem: &str) -> Result<JwtAlgorithm, (String, String)> {
    const RSA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    const EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let export = "export the public half: `openssl pkey -in key.pem -pubout -out key.pub`";
    if pem.contains("PRIVATE KEY-----") {
        return Err((
            "holds a private key; the gateway needs only the public key, and the private one must not be shared".into(),
            export.into(),
        ));
    }
    if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
        return Err((
            "holds a PKCS#1 `RSA PUBLIC KEY`; a `PUBLIC KEY` (SubjectPublicKeyInfo) is needed"
                .into(),
            "convert it: `openssl rsa -RSAPublicKey_in -in key.pem -pubout -out key.pub`".into(),
        ));
    }
    let der = pem_der(pem).ok_or_else(|| {
        (
            "holds no PEM public key (`-----BEGIN PUBLIC KEY-----`)".to_string(),
            export.to_string(),
        )
    })?;
    let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
    if has(RSA) {
        Ok(JwtAlgorithm::RS256)
    } else if has(EC) && has(P256) {
        Ok(JwtAlgorithm::ES256)
    } else if has(EC) {
        Err((
            "holds an EC key on a curve other than P-256, which ES256 requires".into(),
            "use a P-256 (prime256v1) key".into(),
        ))
    } else {
        Err((
            "holds a public key that is neither RSA nor EC P-256".into(),
            "use an RSA key (RS256) or a P-256 key (ES256)".into(),
        ))
    }
}

/// Standard base64 with padding, whitespace ignored; `None` if malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let chars: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let data = chars
        .strip_suffix(b"==")
        .or_else(|| chars.strip_suffix(b"="))
        .unwrap_or(&chars);
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in data {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The DER bytes of a PEM `PUBLIC KEY`.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    pem.split_once("-----BEGIN PUBLIC KEY-----")
        .and_then(|(_, rest)| rest.split_once("-----END PUBLIC KEY-----"))
        .and_then(|(body, _)| base64_decode(body))
}

/// One DER element: (tag, contents, what follows).
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
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The JWK members of a SubjectPublicKeyInfo whose algorithm
/// [`pem_key_type`] found to be `alg`: RSA `n` and `e`, or the P-256 point's
/// `x` and `y`.
fn jwk_of(der: &[u8], alg: JwtAlgorithm) -> Option<Jwk> {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    const INTEGER: u8 = 0x02;
    let (SEQUENCE, spki, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, _, rest) = tlv(spki)? else {
        return None;
    };
    let (BIT_STRING, bits, _) = tlv(rest)? else {
        return None;
    };
    let key = bits.strip_prefix(&[0])?; // no unused bits
    match alg {
        JwtAlgorithm::RS256 => {
            let (SEQUENCE, rsa, _) = tlv(key)? else {
                return None;
            };
            let (INTEGER, n, rest) = tlv(rsa)? else {
                return None;
            };
            let (INTEGER, e, _) = tlv(rest)? else {
                return None;
            };
            // DER integers carry a leading zero when the top bit is set; JWK does not.
            let unsigned = |b: &[u8]| base64url(&b[b.iter().take_while(|x| **x == 0).count()..]);
            Some(Jwk::Rsa {
                n: unsigned(n),
                e: unsigned(e),
            })
        }
        JwtAlgorithm::ES256 => {
            // Uncompressed point: 0x04, then 32 bytes of x and 32 of y.
            let xy = key.strip_prefix(&[4]).filter(|xy| xy.len() == 64)?;
            Some(Jwk::Ec {
                x: base64url(&xy[..32]),
                y: base64url(&xy[32..]),
            })
        }
        JwtAlgorithm::HS256 => None,
    }
}

/// Base64url without padding (RFC 7515 §2).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(path: &str) -> Vec<u8> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        pem_der(&std::fs::read_to_string(root.join(path)).unwrap()).unwrap()
    }

    /// A public key's JWK members are its numbers, base64url without
    /// padding: the modulus without DER's leading zero (openssl prints it
    /// as `00:b2:62:4d:...`) and 65537 as `AQAB`; a P-256 point's x and y
    /// (openssl: `04:56:45:b8:...`), 32 bytes each.
    #[test]
    fn public_keys_become_jwks() {
        let rsa = jwk_of(
            &der("examples/kitchen-sink/keys/jwt-rs256.pub"),
            JwtAlgorithm::RS256,
        );
        let Some(Jwk::Rsa { n, e }) = rsa else {
            panic!("{rsa:?}")
        };
        assert!(n.starts_with("smJN"), "{n}");
        assert_eq!(n.len(), 342); // 256 bytes
        assert_eq!(e, "AQAB");
        let ec = jwk_of(
            &der("compiler/tests/bad-specs/51-jwt-key-wrong-type/keys/issuer.pub"),
            JwtAlgorithm::ES256,
        );
        let Some(Jwk::Ec { x, y }) = ec else {
            panic!("{ec:?}")
        };
        assert!(x.starts_with("VkW4"), "{x}");
        assert_eq!((x.len(), y.len()), (43, 43));
        assert_eq!(base64url(b"\xff\xfe"), "__4");
    }
}
