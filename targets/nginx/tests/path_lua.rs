//! `lua/path.lua` normalizes exactly as the compiler's reference
//! implementation (`PathNormalization::Standard`), which the reference
//! gateway runs: both over the same paths, run by LuaJIT.

use gatefold_compiler::ir::request::PathNormalization;
use std::process::Command;

const PATHS: &[&str] = &[
    "/",
    "/a",
    "/a/",
    "/a//b",
    "//a///b//",
    "/a/./b",
    "/a/.",
    "/a/..",
    "/a/x/../b",
    "/a/%2e%2e/b",
    "/a/%2E/b",
    "/a/.%2e/b",
    "/%7Euser",
    "/%41%42c",
    "/files/a%2Fb",
    "/files/a%2fb/../c",
    "/public/..%2Fadmin/users",
    "/public/%252e%252e/admin",
    "/items/%22%27%3B",
    "/items/%00",
    "/items/a;b=c",
    "/items/$host",
    "/u/%E2%9C%93",
    "/\u{e9}t\u{e9}",
    "/..",
    "/a/../../b",
    "/%2e%2e/etc/passwd",
    "/x%",
    "/x%4",
    "/x%zz",
    "/x%%41",
    "/%C3",
    "/a/b/c/../../..",
    "/a/b/c/../../../..",
    "/...",
    "/.a/..b/",
];

#[test]
fn path_lua_normalizes_as_the_reference_does() {
    let lua_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua");
    let dir = tempfile::tempdir().unwrap();
    // Each path as a Lua string of its bytes; each answer on its own line
    // (`nil` for a path answered 400).
    let list: String = PATHS
        .iter()
        .map(|p| format!("{},\n", gatefold_target_nginx::escape::lua(p)))
        .collect();
    let script = format!(
        "package.path = {} .. package.path\nlocal p = require \"path\"\nfor _, s in ipairs({{\n{list}}}) do\n  io.write(tostring(p.normalize(s)), \"\\n\")\nend\n",
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
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), PATHS.len(), "{text}");
    for (path, lua) in PATHS.iter().zip(got) {
        let want = PathNormalization::Standard
            .normalize(path)
            .map_or("nil".to_string(), |p| p.into_owned());
        assert_eq!(lua, want, "{path:?}");
    }
}
