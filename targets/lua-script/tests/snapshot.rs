//! The Lua a typical script compiles to, for review: registers, one fuel
//! step per node, failure sites passed as numbers, strings escaped.

use gatefold_compiler::front::script::compile_text;
use gatefold_compiler::ir::script::Side;

const TENANT_ROUTING: &str = r#"const v = req.header("x-version");
if (v === "2") { req.setHeader("x-upstream-version", "2"); }
const tenant = req.query("tenant");
if (!tenant) { return respond(400, { error: "tenant required" }); }
ctx.tenant = tenant.toLowerCase();
"#;

#[test]
fn the_tenant_routing_request_script() {
    let p = compile_text(TENANT_ROUTING, Side::Request).unwrap();
    let lua = gatefold_lua_script::program(&p);
    // The same program gives the same text.
    assert_eq!(lua, gatefold_lua_script::program(&p));
    insta::assert_snapshot!(lua);
}
