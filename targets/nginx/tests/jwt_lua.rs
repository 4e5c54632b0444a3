//! The jwt core (`gatefold_lua_script::JWT`, NGINX's
//! `lua/gatefold/jwt_core.lua`) reads tokens exactly as the reference gateway does: its
//! base64url decoder against the `base64` crate's URL_SAFE_NO_PAD, its JSON
//! reader and writer against serde_json (which jsonwebtoken uses), both over
//! the same inputs, run by LuaJIT.

use base64::Engine;
use std::process::Command;

include!("../../../tests/data/json_cases.rs");

/// Runs `body` (Lua, with `jwt` required) over `inputs` and returns each
/// line it writes, hex-decoded (`nil` stays `None`).
fn run_lua(inputs: &[&[u8]], body: &str) -> Vec<Option<Vec<u8>>> {
    let dir = tempfile::tempdir().unwrap();
    // The JSON and base64url readers live in the shared jwt core.
    std::fs::write(dir.path().join("jwt.lua"), gatefold_lua_script::JWT).unwrap();
    let lua_dir = dir.path();
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
    let nesting = json_nesting_cases();
    let mut all: Vec<&[u8]> = JSON_CASES.to_vec();
    all.extend(nesting.iter().map(Vec::as_slice));
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
