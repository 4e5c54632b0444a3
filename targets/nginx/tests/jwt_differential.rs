//! `jwt` on nginx decides exactly as the reference gateway: the same
//! crafted HS256 tokens (odd headers, duplicate and mistyped claims, JSON
//! edge cases, base64 edge cases, claim values of every JSON type) sent to
//! both, over real sockets, get the same status, and when admitted the
//! upstream gets the same claim headers.

use crate::common;

use common::*;
use gatefold_compiler::target::{Options, Target};
use gatefold_runtime::launch::{Launch, Launched};
use std::collections::BTreeMap;

const SECRET: &str = "differential-secret";

/// A token of these exact header and payload bytes, signed with SECRET.
fn token(header: &[u8], payload: &[u8]) -> String {
    hs256_token(SECRET, header, payload)
}

const GOOD_HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;
const GOOD_CLAIMS: &str = r#""iss":"https://issuer.test/","aud":"orders","exp":4102444800"#;

/// A payload with the good claims and `extra` (JSON members, or empty).
fn claims(extra: &str) -> Vec<u8> {
    if extra.is_empty() {
        format!("{{{GOOD_CLAIMS}}}").into_bytes()
    } else {
        format!("{{{GOOD_CLAIMS},{extra}}}").into_bytes()
    }
}

/// Every authorization header value tried, with what it shows.
fn cases() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |what: &str, auth: String| out.push((what.to_string(), auth));
    let bearer = |t: String| format!("Bearer {t}");
    add(
        "good",
        bearer(token(GOOD_HEADER, &claims(r#""sub":"acme""#))),
    );
    // Headers.
    for h in [
        br#"{"alg":"HS256"}"#.as_slice(),
        br#"{"alg":"HS256","alg":"HS256"}"#,
        br#"{"alg":"HS256","typ":5}"#,
        br#"{"alg":"HS256","typ":null}"#,
        br#"{"alg":"HS256","kid":"k","x5c":["a"],"crit":[]}"#,
        br#"{"alg":"HS256","x5c":[1]}"#,
        br#"{"alg":"HS256","foo":{"bar":[1,2]},"foo":3}"#,
        br#"{"alg":"HS384"}"#,
        br#"{"alg":"hs256"}"#,
        br#"{"alg":"none"}"#,
        br#"["HS256"]"#,
        br#"{"typ":"JWT"}"#,
        br#"{"alg":"HS256","jwk":null}"#,
        br#"{"alg":"HS256","jwk":{"kty":"oct","k":"AA"}}"#,
        br#"{"alg":"HS256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}"#,
        br#"{"alg":"HS256","jwk":5}"#,
        br#"{"alg":"HS256","jwk":{"alg":"whatever","use":"sig","key_ops":["verify"]}}"#,
        br#"{"alg":"HS256","jwk":{"alg":5}}"#,
        br#"{"alg":"HS256","jwk":{"kid":"a","kid":"b"}}"#,
        br#"{"alg":"HS256","jwk":{"key_ops":[1]}}"#,
        br#"{"alg":"HS256","jwk":{"x":1,"x":2}}"#,
        br#"{"alg":"HS256","jwk":[]}"#,
        br#"{"alg":"HS256"} "#,
        br#"{"alg":"HS256"}x"#,
        b"\xef\xbb\xbf{\"alg\":\"HS256\"}",
    ] {
        add(
            &format!("header {}", String::from_utf8_lossy(h)),
            bearer(token(h, &claims(""))),
        );
    }
    // Claims jsonwebtoken's own validation reads, and the spec's checks.
    for extra in [
        r#""exp":"4102444800""#,
        r#""exp":4102444800.5"#,
        r#""exp":1e10"#,
        r#""exp":null"#,
        r#""exp":-1"#,
        r#""exp":[1]"#,
        r#""exp":1e400"#,
        r#""nbf":4000000000"#,
        r#""nbf":1000000000"#,
        r#""nbf":"1""#,
        r#""sub":["a"]"#,
        r#""sub":{"a":1}"#,
        r#""sub":5"#,
        r#""sub":"a","sub":"b""#,
        r#""iss":"https://issuer.test/""#,
        r#""iss":["https://issuer.test/"]"#,
        r#""aud":[1,"orders"]"#,
        r#""aud":["x","y"]"#,
        r#""aud":{"orders":1}"#,
        r#""n":1,"n":2"#,
        r#""n":1,"w":"two""#,
        r#""s":"\ud800""#,
        r#""s":"\ud83d\ude00""#,
        r#""s":"a\u0000b""#,
    ] {
        add(
            &format!("claims +{extra}"),
            bearer(token(GOOD_HEADER, &claims(extra))),
        );
    }
    // (A later duplicate of exp replaces an earlier one in the claims.)
    add(
        "claims without iss",
        bearer(token(
            GOOD_HEADER,
            br#"{"aud":"orders","exp":4102444800,"sub":"x"}"#,
        )),
    );
    add(
        "claims not an object",
        bearer(token(GOOD_HEADER, br#"["iss"]"#)),
    );
    add(
        "claims with invalid UTF-8",
        bearer(token(
            GOOD_HEADER,
            b"{\"iss\":\"https://issuer.test/\",\"aud\":\"orders\",\"s\":\"\xc3\"}",
        )),
    );
    // Claim values of every JSON type, copied into headers.
    for value in [
        r#""plain""#,
        r#""""#,
        r#""tab\there""#,
        r#""ctl\u0001""#,
        r#""caf\u00e9""#,
        r#"1.5"#,
        r#"1e21"#,
        r#"0.000001"#,
        r#"-0"#,
        r#"12345678901234567890"#,
        r#"123456789012345678901"#,
        r#"-9223372036854775809"#,
        r#"true"#,
        r#"null"#,
        r#"{"b":1,"a":[1,"x\"y",{"z":null}]}"#,
    ] {
        add(
            &format!("claim value {value}"),
            bearer(token(GOOD_HEADER, &claims(&format!(r#""v":{value}"#)))),
        );
    }
    // The token's shape and the scheme.
    let good = token(GOOD_HEADER, &claims(r#""sub":"acme""#));
    add("padded signature", bearer(format!("{good}=")));
    add("four parts", bearer(format!("{good}.x")));
    add(
        "two parts",
        bearer(good.rsplit_once('.').unwrap().0.to_string()),
    );
    add(
        "empty signature",
        bearer(format!("{}.", good.rsplit_once('.').unwrap().0)),
    );
    let mut bits = good.clone();
    let last = bits.pop().unwrap();
    // The last character of a 32-byte signature carries 4 unused bits.
    let flipped = if last == 'A' { 'B' } else { 'A' };
    bits.push(flipped);
    add("stray bits or another signature", bearer(bits));
    add(
        "standard alphabet",
        bearer(good.replace('-', "+").replace('_', "/")),
    );
    add("scheme case", format!("bEaReR {good}"));
    add("two spaces", format!("Bearer  {good}"));
    add("tab", format!("Bearer\t{good}"));
    add("no scheme", good.clone());
    add("basic", format!("Basic {good}"));
    out
}

fn spec(echo: &Echo) -> String {
    format!(
        r#"
gatefold: 1
upstreams: {{ u: {{ targets: [ {{ url: "http://{}" }} ] }} }}
consumers:
  acme: {{ groups: [gold] }}
apis:
  a:
    upstream: u
    policies:
      - jwt:
          algorithms: [HS256]
          secret: {{ env: JWT_DIFF_SECRET }}
          issuer: https://issuer.test/
          audiences: [orders, other]
          claims-to-headers: {{ sub: x-sub, v: x-v, n: x-n, w: x-n, s: x-s }}
    routes: {{ r: {{ path: /* }} }}
  c:
    base-path: /c
    upstream: u
    policies:
      - jwt: {{ algorithms: [HS256], secret: {{ env: JWT_DIFF_SECRET }}, consumer-claim: cid }}
      - acl: {{ allow: [gold] }}
    routes: {{ r: {{ path: /* }} }}
"#,
        echo.addr
    )
}

/// What a gateway did with one request: its status, and for an admitted
/// one the claim headers the upstream got.
fn observe(
    addr: std::net::SocketAddr,
    path: &str,
    echo: &Echo,
    auth: &str,
) -> (u16, Option<BTreeMap<String, Vec<String>>>) {
    let before = echo.count();
    let r = get(
        addr,
        path,
        &[
            ("authorization", auth),
            ("x-sub", "spoofed"),
            ("x-v", "spoofed"),
        ],
    );
    let upstream = (echo.count() > before).then(|| {
        let got = echo.last();
        ["x-sub", "x-v", "x-n", "x-s"]
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    got.all(h).into_iter().map(str::to_string).collect(),
                )
            })
            .collect()
    });
    (r.status, upstream)
}

/// The reference gateway serving `ir` with `env`.
fn reference(
    ir: &gatefold_compiler::ir::ValidIr,
    env: &[(&str, &str)],
    work: &std::path::Path,
) -> Launched {
    let listen = free_addr();
    let output = gatefold_target_reference::Reference.emit(
        ir,
        &Options {
            listen: Some(listen),
            ..Options::default()
        },
    );
    let mut launch = Launch::new(gatefold_compiler::ir::TargetKind::Reference, work, listen);
    launch.env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Launched::start(launch, &output).unwrap()
}

/// The P-256 group order, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// A DER ECDSA signature as JWS's fixed r||s (32 bytes each).
fn fixed(der: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    let mut at = 2;
    for half in 0..2 {
        assert_eq!(der[at], 2, "an INTEGER");
        let len = der[at + 1] as usize;
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out[half * 32 + 32 - int.len()..half * 32 + 32].copy_from_slice(int);
        at += 2 + len;
    }
    out
}

/// n - s: the other valid s of an ECDSA signature.
fn negate(s: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = P256_N[i] as i16 - s[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        out[i] = d.rem_euclid(256) as u8;
    }
    out
}

/// ES256 signatures are converted for OpenSSL exactly: many real ones
/// (half with r or s's top bit set, which DER must prefix with a zero),
/// their high-s twins, and tampered ones, decided alike by both gateways.
#[test]
fn es256_signatures_are_decided_as_the_reference_does() {
    use rcgen::SigningKey;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = key.public_key_pem();
    let echo = Echo::start();
    let ir = compile(&format!(
        r#"
gatefold: 1
upstreams: {{ u: {{ targets: [ {{ url: "http://{}" }} ] }} }}
apis:
  a:
    upstream: u
    policies: [ {{ jwt: {{ algorithms: [ES256], public-key: {{ env: ES_DIFF_KEY }} }} }} ]
    routes: {{ r: {{ path: /* }} }}
"#,
        echo.addr
    ));
    let env = [("ES_DIFF_KEY", pem.as_str())];
    let ng = run(&ir, &env);
    let work = tempfile::tempdir().unwrap();
    let reference = reference(&ir, &env, work.path());
    let mut differ = Vec::new();
    let mut admitted = 0;
    for i in 0..48 {
        let message = format!(
            "{}.{}",
            b64url(br#"{"alg":"ES256"}"#),
            b64url(format!(r#"{{"sub":"s{i}"}}"#).as_bytes())
        );
        let sig = fixed(&key.sign(message.as_bytes()).unwrap());
        let mut high = sig.to_vec();
        high[32..].copy_from_slice(&negate(&sig[32..]));
        let mut tampered = sig.to_vec();
        tampered[63] ^= 1;
        for (what, sig) in [
            ("real", sig.to_vec()),
            ("high s", high),
            ("tampered", tampered),
        ] {
            let auth = format!("Bearer {message}.{}", b64url(&sig));
            let want = observe(reference.listen(), "/x", &echo, &auth);
            let got = observe(ng.addr, "/x", &echo, &auth);
            admitted += usize::from(want.0 == 200);
            if want != got {
                differ.push(format!("{what} {i}: reference {want:?}, nginx {got:?}"));
            }
        }
    }
    reference.stop().unwrap();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // The real ones and their high-s twins (neither gateway requires a low
    // s), never a tampered one.
    assert_eq!(admitted, 96);
}

#[test]
fn jwt_on_nginx_decides_as_the_reference_does() {
    let echo = Echo::start();
    let ir = compile(&spec(&echo));
    let env = [("JWT_DIFF_SECRET", SECRET)];
    let ng = run(&ir, &env);
    let work = tempfile::tempdir().unwrap();
    let reference = reference(&ir, &env, work.path());
    let mut differ = Vec::new();
    let mut admitted = 0;
    let all = cases();
    // The consumer claim (cid) names the consumer acl checks.
    let consumers: Vec<(String, String)> = [
        r#""cid":"acme""#,
        r#""cid":"nobody""#,
        r#""cid":5"#,
        r#""cid":["acme"]"#,
        r#""cid":"ACME""#,
    ]
    .iter()
    .map(|c| {
        (
            format!("consumer {c}"),
            format!("Bearer {}", token(GOOD_HEADER, &claims(c))),
        )
    })
    .collect();
    let runs = all
        .iter()
        .map(|c| ("/x", c))
        .chain(consumers.iter().map(|c| ("/c/x", c)));
    for (path, (what, auth)) in runs {
        let want = observe(reference.listen(), path, &echo, auth);
        let got = observe(ng.addr, path, &echo, auth);
        if want.0 == 200 {
            admitted += 1;
        }
        if want != got {
            differ.push(format!(
                "{what} on {path}: reference {want:?}, nginx {got:?}\n  {auth}"
            ));
        }
    }
    reference.stop().unwrap();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // The corpus holds both verdicts.
    assert!(admitted > 20 && admitted < all.len() - 20, "{admitted}");
}
