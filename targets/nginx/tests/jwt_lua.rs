//! `lua/jwt.lua` reads tokens exactly as the reference gateway does: its
//! base64url decoder against the `base64` crate's URL_SAFE_NO_PAD, its JSON
//! reader and writer against serde_json (which jsonwebtoken uses), both over
//! the same inputs, run by LuaJIT.

use base64::Engine;
use std::process::Command;

/// Runs `body` (Lua, with `jwt` required) over `inputs` and returns each
/// line it writes, hex-decoded (`nil` stays `None`).
fn run_lua(inputs: &[&[u8]], body: &str) -> Vec<Option<Vec<u8>>> {
    let lua_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
    let dir = tempfile::tempdir().unwrap();
    let list: String = inputs
        .iter()
        .map(|p| {
            let s: String = p.iter().map(|b| format!("\\{b:03}")).collect();
            format!("\"{s}\",\n")
        })
        .collect();
    let script = format!(
        "package.path = {} .. package.path\nlocal jwt = require \"jwt\"\n\
         local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end\n\
         for _, s in ipairs({{\n{list}}}) do\n  local out = (function(s) {body} end)(s)\n  io.write(out and ('=' .. hex(out)) or 'nil', \"\\n\")\nend\n",
        gatefold_target_nginx::escape::lua(&format!("{}/?.lua;", lua_dir.display()))
    );
    let file = dir.path().join("t.lua");
    std::fs::write(&file, script).unwrap();
    let luajit = gatefold_runtime::Luajit::locate().unwrap();
    let out = Command::new(luajit.binary()).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<Option<Vec<u8>>> = text
        .lines()
        .map(|l| {
            l.strip_prefix('=').map(|h| {
                (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect()
            })
        })
        .collect();
    assert_eq!(got.len(), inputs.len(), "{text}");
    got
}

#[test]
fn json_reads_and_writes_as_serde_json() {
    let inputs: &[&[u8]] = &[
        br#"{"a":1}"#,
        br#" { "b" : [1, 2.5, -3, true, false, null, "x"] , "a": {"z":1,"y":{}} } "#,
        br#"{"a":1,"a":2}"#,
        br#"[]"#,
        br#""\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r\u0001\u007f""#,
        br#""\ud800""#,
        br#""\udc00x""#,
        br#""\ud800\u0041""#,
        b"\"\xc3\xa9\"",
        b"\"\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xf4\x90\x80\x80\"",
        b"\"\xe0\x80\xaf\"",
        b"\"a\x01b\"",
        b"\"a\x7fb\"",
        br#"0"#,
        br#"-0"#,
        br#"-0.0"#,
        br#"01"#,
        br#"1."#,
        br#".5"#,
        br#"1e5"#,
        br#"1E+2"#,
        br#"1.5e-7"#,
        br#"123456789012345678"#,
        br#"18446744073709551615"#,
        br#"18446744073709551616"#,
        br#"-9223372036854775808"#,
        br#"-9223372036854775809"#,
        br#"1e21"#,
        br#"1e16"#,
        br#"1e15"#,
        br#"123456789012345.6"#,
        br#"0.000001"#,
        br#"0.00001"#,
        br#"0.1"#,
        br#"1e400"#,
        br#"1e-400"#,
        br#"5e-324"#,
        br#"1.7976931348623157e308"#,
        br#"4102444800"#,
        // serde_json's own (not correctly rounded) float parsing.
        br#"123456789012345678901"#,
        br#"1.00000000000000000001"#,
        br#"0.1e1"#,
        br#"9007199254740993"#,
        br#"9007199254740993.0"#,
        br#"1e-2147483648"#,
        br#"1e2147483648"#,
        br#"0e2147483648"#,
        br#"1e-2147483647"#,
        br#"123.456e-300"#,
        br#"4.9e-324"#,
        br#"2.2250738585072011e-308"#,
        br#"17976931348623157e292"#,
        br#"17976931348623159e292"#,
        br#"0.3"#,
        br#"2.675"#,
        br#"1.7976931348623157e308"#,
        br#"-1e-400"#,
        br#"12345678901234567890123456789e-10"#,
        br#"0.000000000000000000000000000001234567890123456789012345"#,
        br#"[1,]"#,
        br#"{"a":1,}"#,
        br#"{"a" 1}"#,
        br#"{"a":1} x"#,
        br#"tru"#,
        br#"nul"#,
        br#"{'a':1}"#,
        br#"[1 2]"#,
        br#""abc"#,
        br#""\x""#,
        br#""\u12""#,
        br#""#,
        b"{\"a\":1}\x00",
        br#"{"a":1}"#,
        br#"{"k\u0000":"v"}"#,
        br#"{"b":1,"a":2,"B":3,"\u00e9":4}"#,
    ];
    // Nesting: 127 levels parse, 128 do not (serde_json's recursion limit).
    let deep_ok = format!("{}{}", "[".repeat(127), "]".repeat(127));
    let deep_bad = format!("{}{}", "[".repeat(128), "]".repeat(128));
    let mut all: Vec<&[u8]> = inputs.to_vec();
    all.push(deep_ok.as_bytes());
    all.push(deep_bad.as_bytes());
    let got = run_lua(
        &all,
        "local v = jwt.decode(s); return v ~= nil and jwt.encode(v) or nil",
    );
    for (input, lua) in all.iter().zip(got) {
        let want = serde_json::from_slice::<serde_json::Value>(input)
            .ok()
            .map(|v| serde_json::to_string(&v).unwrap().into_bytes());
        assert_eq!(
            lua.as_deref().map(String::from_utf8_lossy),
            want.as_deref().map(String::from_utf8_lossy),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn base64url_decodes_as_the_base64_crate() {
    let inputs: &[&[u8]] = &[
        b"",
        b"QQ",
        b"QR",
        b"QUI",
        b"QUJ",
        b"QUJD",
        b"QUJDRA",
        b"Q",
        b"QQ==",
        b"QUI=",
        b"-_-_",
        b"+/+/",
        b"QU JD",
        b"eyJhbGciOiJIUzI1NiJ9",
    ];
    let got = run_lua(inputs, "return jwt.b64url(s)");
    for (input, lua) in inputs.iter().zip(got) {
        let want = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(input)
            .ok();
        assert_eq!(lua, want, "{:?}", String::from_utf8_lossy(input));
    }
}
