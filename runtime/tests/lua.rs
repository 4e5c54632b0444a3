//! LuaJIT as the checker of generated Lua (nginx -t does not look inside
//! `*_by_lua_block`).

use crate::common;

use gatefold_runtime::{Error, Luajit};

#[test]
fn luajit_accepts_good_lua_and_names_the_line_of_bad_lua() {
    let luajit = Luajit::locate().expect("luajit2 is installed (scripts/install-runtimes.sh)");
    let dir = common::scratch("lua");
    let good = dir.join("good.lua");
    std::fs::write(
        &good,
        "local key = ngx and ngx.var.http_apikey\nreturn key\n",
    )
    .unwrap();
    luajit.check(&good).unwrap();

    let bad = dir.join("bad.lua");
    std::fs::write(&bad, "local ok = true\nif ok then\n  return 1\n").unwrap();
    let err = luajit.check(&bad).unwrap_err();
    let Error::Rejected { message, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        message.contains("bad.lua:") && message.contains("'end' expected"),
        "{message}"
    );
}
