//! The emitted Lua, run under luajit against a test host, against the
//! reference evaluator on the same programs: the same answers, upstream
//! headers, paths, logs, ctx and failure sites, case by case (the
//! JavaScript-vs-Lua traps and every run-time failure path).

use crate::common;

use common::*;
use gatefold_compiler::ir::script::Side;

struct Case {
    name: &'static str,
    request: Option<&'static str>,
    response: Option<&'static str>,
    /// Changes to the default request, when the case needs them.
    setup: fn(&mut Req),
}

const fn req(name: &'static str, request: &'static str) -> Case {
    Case {
        name,
        request: Some(request),
        response: None,
        setup: |_| {},
    }
}

fn header(r: &mut Req, n: &str, v: &str) {
    r.headers.push((n.to_string(), v.to_string()));
}

const CASES: &[Case] = &[
    // `+` concatenates when either side is a string; numbers print as JS prints them.
    req("plus", r#"log("a" + 1); log(1 + 2 + "3"); log("3" - 1); log(null + 1); log(undefined + 1); log(true + 1); log([1, 2] + ""); log(0.1 + 0.2); const o = { a: 1 }; log(o + "!"); log([1, null, undefined, [2, 3]] + "");"#),
    req("number-format", r#"log(1 / 0); log(-1 / 0); log(0 / 0); log(1e21 * 10); log(123456789 * 1000000000000); log(1 / 3); log(0.000001 * 1); log(0.0000001 * 1); log(-0); log(1.5e-10 * 1); log(100 / 3); log(5e-324 * 1); log(1.7976931348623157e308 * 1); log(2 / 3 * 1e25); log(-42.5);"#),
    req("remainder", r#"log(7 % 3); log(-7 % 3); log(7.5 % 2); log(1 % 0); log(5 % -3);"#),
    req("compare", r#"log("b" > "a"); log("10" < "9"); log("10" < 9); log(null >= 0); log(undefined < 1); log("a" <= "a"); log([2] > 1); log("x" < 1);"#),
    req("compare-utf16", "log(\"\u{ff61}\" < \"\u{1F600}\"); log(\"\u{e9}\" > \"z\");"),
    req("strict-equality", r#"log(1 === 1.0); log("1" === 1); log(null === undefined); log([] === []); log(0 === -0); log(parseInt("x") === parseInt("x")); log(true !== 1); const l = [1]; log(l === l);"#),
    req("falsy", r#"log(!""); log(!"0"); log(!0); log(!parseInt("x")); log(![]); log(!null); log(!undefined); log(!"false"); log(!{});"#),
    req("nullish-and-or", r#"log(0 ?? "d"); log("" ?? "d"); log(null ?? "d"); log(undefined ?? "d"); log(0 || "d"); log("" || "d"); log("0" || "d"); log("x" && 0); log(req.header("x-missing") && req.header("x-missing").trim()); log(req.header("x-missing") ? "y" : "n");"#),
    req("parse-int", r#"log(parseInt("42px")); log(parseInt("0x1f")); log(parseInt("08")); log(parseInt("ff", 16)); log(parseInt("")); log(parseInt(" -3.9")); log(parseInt("101", 2)); log(parseInt("1", 1)); log(parseInt("z", 36)); log(parseInt("0x1F", 10)); log(parseInt("12", "16")); log(parseInt("7", null)); log(parseInt("9", 8)); log(parseInt("+12")); log(parseInt("-0x")); log(parseInt("123456789012345678901234567890"));"#),
    req("parse-int-unicode", "log(parseInt(\"\u{a0}12\")); log(parseInt(\"\u{661}\u{662}\")); log(parseInt(\"\u{2003}7\"));"),
    req("to-number", "log(\"  12  \" - 0); log(\"0x10\" - 0); log(\"12px\" - 0); log(\"\" - 0); log(\"1e3\" - 0); log(\".5\" - 0); log(\"5.\" - 0); log(\"-Infinity\" - 0); log(\"Infinity\" * 1); log(\"inf\" - 0); log(\"1_000\" - 0); log(\"\u{2003} 7 \u{2003}\" - 0); log([5] * 2); log([] - 1); log(true - false); log(\"-0x10\" - 0); log(\"1-2\" - 0); log(\"+.5e1\" - 0);"),
    req("utf16-length-slice", "log(\"h\u{e9}llo\".length); log(\"\u{1F600}\".length); log(\"\u{e9}\u{1F600}x\".slice(1, 3)); log(\"\u{e9}\u{1F600}x\".slice(1, 2)); log(\"\u{e9}\u{1F600}x\"[1]); log(\"\u{e9}\u{1F600}x\"[3]); log(\"abc\"[3]); log(\"abc\"[-1]); log(\"abc\"[1.5]); log(\"abc\".slice(-2, -1)); log(\"abc\".slice(2, 1)); log(\"abc\".slice()); log(\"abc\".slice(parseInt(\"x\"))); log(\"abc\".slice(1, 100));"),
    req("split", "log(\"a,b,,c\".split(\",\").length); log(\"a,b,c\".split(\",\", 2)); log(\"abc\".split(\"\")); log(\"\".split(\",\").length); log(\"\u{1F600}a\".split(\"\")); log(\"a,b\".split(\",\", -1)); log(\"a,b\".split(\",\", 0).length); log(\"a\".split(undefined)); log(\"a--b--\".split(\"--\")); log(\"/t/acme\".split(\"/\")[2]);"),
    req("trim-and-search", "log(\"\u{a0} a b \u{feff}\".trim()); log(\"\u{85}x\".trim().length); log(\"abc\".includes(\"bc\")); log(\"abc\".includes(\"\")); log(\"abc\".startsWith(\"ab\")); log(\"abc\".endsWith(\"b\")); log(\"abc\".endsWith(\"\")); log(\"\u{e9}t\u{e9}\".startsWith(\"\u{e9}\"));"),
    req("case", "log(\"ABC def\".toLowerCase()); log(\"abc\".toUpperCase()); log(\"\u{c0}B\".toLowerCase()); log(\"stra\u{df}e\".toUpperCase()); log(\"\u{130}\".toLowerCase().length); log(\"\u{3a3}\u{391}\u{3a3}\".toLowerCase()); log(\"\u{1f600}A\".toLowerCase());"),
    req("lists-and-objects", r#"log(["a", "b"].includes("b")); log([1, 2].includes("1")); log([parseInt("x")].includes(parseInt("y"))); const o = { "1": "one", k: "v", k: "w" }; log(o.k); log(o.missing); log([1][5]); log([1, 2, 3].length); const u = [o, "s", [1]]; log(u[0][1]); log(u[0]["k"]); log(u[1].foo); log(u[2].foo); log(u[1][0]); const w = [{ length: 7 }, 5, true]; log(w[0].length); log(w[1].length); log(w[2].length);"#),
    // A string known only at run time indexes a list or a string when it is a canonical index.
    req("index-by-string", r#"const ks = ["1", "01", "1.0", " 1", "0", "-0", "x"]; const l = ["a", "b"]; for (const k of ks) { log(`${l[k]}|${"xy"[k]}`); }"#),
    req("templates", r#"log(`${1}-${null}-${undefined}-${[1, [2, 3]]}-${true}-${0.5}`); log(`plain`);"#),
    req("json-body", r#"return respond(200, { a: [1, "x\n\"\u0001/é", null, undefined], b: parseInt("x"), c: { d: true }, e: undefined, a: 2, f: 1 / 0 });"#),
    // JSON.stringify's key order: array indexes ascending, then as written.
    req("json-key-order", r#"return respond(200, { b: 1, "10": 2, a: 3, "2": 4, "01": 5, "0": 6, b: 7, "4294967295": 8, "-1": 9, n: { z: 1, "1": 2 } });"#),
    req("text-body-and-headers", r#"respond(201, 12.5, { "Retry-After": 60, "Content-Type": "text/csv", "x-a": "1", "X-A": "2" });"#),
    req("empty-body", r#"log("before"); respond(parseInt("404")); log("after");"#),
    req("list-body", r#"respond(200, [1, "two", null]);"#),
    req("api-reads", r#"log(req.header("X-VERSION")); log(req.header("x-multi")); log(req.header("x-missing")); log(req.query("tenant")); log(req.query("x")); log(req.query("e")); log(req.query("empty")); log(req.query("flag")); log(req.query("missing")); log(req.method); log(req.path); log(req.ip); log(req.consumer);"#),
    Case {
        name: "consumer-and-no-query",
        request: Some(r#"log(req.consumer); log(req.query("tenant"));"#),
        response: None,
        setup: |r| {
            r.consumer = Some("alice");
            r.query = None;
        },
    },
    Case {
        name: "query-empty-pairs",
        request: Some(r#"log(req.query("")); log(req.query("q")); log(req.query("e"));"#),
        response: None,
        // Empty pairs are skipped (URLSearchParams); `=v` has the empty name.
        setup: |r| r.query = Some("&&q=1&"),
    },
    Case {
        name: "query-empty-name",
        request: Some(r#"log(req.query(""));"#),
        response: None,
        setup: |r| r.query = Some("a&=v"),
    },
    req("api-writes", r#"req.setHeader("X-Upstream-Version", "v" + req.header("x-version")); log(req.header("x-upstream-version")); req.removeHeader("x-tags"); log(req.header("x-tags")); req.setHeader("x-multi", "one"); log(req.header("x-multi")); req.setPath("/v2" + req.path); log(req.path);"#),
    req("ctx", r#"ctx.a = 1; ctx.b = "x"; ctx.b = null; ctx.c = [1, 2]; ctx.d = undefined; ctx.e = { a: 1 }; log(ctx.a === "1"); log(ctx.b); log(ctx.missing);"#),
    req("for-of", r#"let seen = ""; for (const t of (req.header("x-tags") ?? "").split(",")) { seen = seen + "[" + t.trim() + "]"; } log(seen); let n = 0; for (const a of [1, 2, 3]) { for (const b of [1, 2]) { n = n + a * b; } } log(n);"#),
    req("return-in-loop", r#"for (const x of [1, 2, 3]) { if (x === 2) { return; } log(x); } log("not reached");"#),
    req("respond-in-loop", r#"for (const x of [1, 2, 3]) { if (x === 2) { return respond(409, `at ${x}`); } log(x); }"#),
    req("let-and-if-else", r#"let v = req.header("x-num"); if (parseInt(v) > 40) { v = "big"; } else { v = "small"; } log(v); let w = 1; w += 2; log(w);"#),
    Case {
        name: "non-ascii-header",
        request: Some(r#"const v = req.header("x-utf"); log(v.length); log(v.slice(0, 2)); log(v.toUpperCase());"#),
        response: None,
        setup: |r| header(r, "x-utf", "\u{e9}\u{1F600}z"),
    },
    Case {
        name: "response-script",
        request: Some(r#"ctx.tenant = req.query("tenant").toLowerCase(); req.setHeader("x-tenant", ctx.tenant);"#),
        response: Some(r#"res.setHeader("x-tenant", ctx.tenant ?? "none"); if (res.status >= 500) { res.setHeader("cache-control", "no-store"); } res.removeHeader("x-up"); log(res.header("content-type")); log(res.header("X-Up")); ctx.later = "x"; log(ctx.later);"#),
        setup: |_| {},
    },
    Case {
        name: "tenant-routing",
        request: Some(r#"const v = req.header("x-version"); if (v === "2") { req.setHeader("x-upstream-version", "2"); } const tenant = req.query("tenant"); if (!tenant) { return respond(400, { error: "tenant required" }); } ctx.tenant = tenant.toLowerCase();"#),
        response: Some(r#"res.setHeader("x-tenant", ctx.tenant ?? "none");"#),
        setup: |r| r.query = Some("other=1"),
    },
    // Every run-time failure path: 500 and the failing operation's place.
    req("fail-method-on-null", r#"log("before"); req.header("x-missing").toLowerCase();"#),
    req("fail-method-on-undefined", r#"ctx.missing.trim();"#),
    req("fail-crlf-value", r#"req.setHeader("x-a", "a\r\nb" + req.path);"#),
    req("fail-header-name", r#"req.setHeader("bad name" + req.path, "v");"#),
    req("fail-header-name-before-value", r#"req.setHeader("bad name" + req.path, req.header("x-missing").trim());"#),
    req("fail-remove-header-name", r#"req.removeHeader("x:" + req.path);"#),
    req("fail-status-range", r#"respond(parseInt("700"), "x");"#),
    req("fail-status-nan", r#"respond(parseInt(req.path), "x");"#),
    req("fail-status-fraction", r#"respond(parseInt("200") + 0.5, "x");"#),
    req("fail-status-before-body", r#"respond(parseInt("99"), req.header("x-missing").trim());"#),
    req("fail-set-path-slash", r#"req.setPath("no-slash" + req.path);"#),
    req("fail-set-path-query", r#"req.setPath(req.path + "?x=1");"#),
    req("fail-length-of-null", r#"const l = req.header("x-missing"); log(l.length);"#),
    req("fail-prop-of-undefined", r#"const o = { a: 1 }; log(o.b.c);"#),
    req("fail-index-of-null", r#"const n = req.header("x-missing"); log(n[0]);"#),
    req("fail-for-of-null", r#"const l = [null]; for (const c of l[0]) { log(c); }"#),
    req("fail-for-of-string", r#"const l = ["abc"]; for (const c of l[0]) { log(c); }"#),
    req("fail-string-bound", r#"const s = "," + req.path; let t = s; for (const a of [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]) { t = t + t; }"#),
    req("fail-template-bound", r#"let t = "x" + req.path; for (const a of [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]) { t = `${t}${t}`; }"#),
    req("fail-answer-headers-string", r#"const h = [[1], "s"]; respond(200, "x", h[1]);"#),
    req("fail-answer-header-value", r#"respond(200, "x", { "x-a": "a\n" + req.path });"#),
    req("fail-answer-headers-list", r#"const h = [[1], "s"]; respond(200, "x", h[req.path.length - 13]);"#),
    Case {
        name: "fail-split-bound",
        request: Some(r#"req.header("x-many").split(",");"#),
        response: None,
        setup: |r| header(r, "x-many", &",".repeat(200)),
    },
    Case {
        name: "fail-response-side",
        request: Some(r#"ctx.t = "1";"#),
        response: Some(r#"res.setHeader("x-ok", "1"); res.header("x-missing").trim();"#),
        setup: |_| {},
    },
    Case {
        name: "fail-response-header-value",
        request: None,
        response: Some(r#"res.setHeader("x-bad", "a\n" + res.status);"#),
        setup: |_| {},
    },
];

#[test]
fn emitted_lua_matches_the_reference_evaluator() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in CASES {
        let request = case.request.map(|s| compile(s, Side::Request));
        let response = match case.response {
            // A case whose response script is outside the subset is skipped
            // (and counted, so it cannot pass silently).
            Some(s) => match gatefold_compiler::front::script::compile_text(s, Side::Response) {
                Ok(p) => Some(p),
                Err(e) => {
                    failures.push(format!("{}: does not compile: {e:?}", case.name));
                    continue;
                }
            },
            None => None,
        };
        let mut r = Req::default();
        (case.setup)(&mut r);
        let want = reference(&r, request.as_ref(), response.as_ref());
        let got = lua_run(&r, request.as_ref(), response.as_ref());
        ran += 1;
        if want != got {
            failures.push(format!(
                "{}:\n--- reference\n{want}--- lua\n{got}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 30, "only {ran} cases ran");
}

#[test]
fn every_failure_case_fails_on_the_reference_too() {
    // The failure cases test failing: check they really fail, at a site.
    for case in CASES.iter().filter(|c| c.name.starts_with("fail-")) {
        let request = case.request.map(|s| compile(s, Side::Request));
        let response = case
            .response
            .and_then(|s| gatefold_compiler::front::script::compile_text(s, Side::Response).ok());
        let mut r = Req::default();
        (case.setup)(&mut r);
        let out = reference(&r, request.as_ref(), response.as_ref());
        assert!(out.contains(" fail site"), "{}: {out}", case.name);
    }
}

#[test]
fn a_program_past_its_cost_bound_fails_in_lua_as_in_the_reference() {
    let mut p = compile(
        r#"const l = req.path.split(""); let n = 0; for (const a of l) { n = n + 1; } log(n);"#,
        Side::Request,
    );
    let r = Req::default();
    let full = lua_run(&r, Some(&p), None);
    assert_eq!(full, reference(&r, Some(&p), None));
    assert!(full.contains("log 13"), "{full}");
    for cost in [0, 10, 30] {
        p.cost = cost;
        let want = reference(&r, Some(&p), None);
        assert!(want.starts_with("request fail"), "{want}");
        assert_eq!(lua_run(&r, Some(&p), None), want, "cost {cost}");
    }
}

#[test]
fn every_chunk_passes_luajit_bytecode_listing() {
    for case in CASES {
        for (src, side) in [
            (case.request, Side::Request),
            (case.response, Side::Response),
        ] {
            let Some(src) = src else { continue };
            let Ok(p) = gatefold_compiler::front::script::compile_text(src, side) else {
                continue;
            };
            check_bytecode(&chunk(&p, side));
        }
    }
}

#[test]
fn deep_expressions_spill_registers_to_a_table_and_still_agree() {
    // 150 nested right operands need more registers than Lua's 200-local
    // limit leaves room for in locals: the emitter switches to a table.
    let depth = 150;
    let mut e = String::from("req.path.length");
    for i in 0..depth {
        e = format!("({i} + {e})");
    }
    let src = format!("log({e}); log(`${{{e}}}` + \"!\");");
    let p = compile(&src, Side::Request);
    let lua = gatefold_lua_script::program(&p);
    assert!(lua.contains("local T = {}"), "not spilled");
    let r = Req::default();
    assert_eq!(lua_run(&r, Some(&p), None), reference(&r, Some(&p), None));
}

#[test]
fn every_host_chunk_passes_luajit_bytecode_listing() {
    use gatefold_lua_script::{body_filter_chunk, emit_chunk, pass_chunk, Host, Places};
    let p = compile(
        r#"ctx.t = (req.header("x-t") ?? "a").toUpperCase(); if (ctx.t === "B") { return respond(400, "no"); }"#,
        Side::Request,
    );
    let r = compile(r#"res.setHeader("x-t", ctx.t ?? "none");"#, Side::Response);
    let places = Places {
        id: "api/a/script".into(),
        policy: "spec.yaml:3:5".into(),
        sites: vec!["spec.yaml:4:7\"]]--".into()],
    };
    for host in [Host::Kong, Host::Nginx, Host::Envoy] {
        check_bytecode(&emit_chunk(&p, Side::Request, host, &places));
        check_bytecode(&emit_chunk(&r, Side::Response, host, &places));
        check_bytecode(&pass_chunk(host));
        if let Some(b) = body_filter_chunk(host) {
            check_bytecode(&b);
        }
        check_bytecode(gatefold_lua_script::prelude(host));
        check_bytecode(&gatefold_lua_script::runtime_chunk(host, true));
    }
    // A shared runtime's chunks (Kong's).
    let handed = gatefold_lua_script::Handed {
        runtime: "kong.ctx.shared.rt",
        missing: "    return",
    };
    check_bytecode(&gatefold_lua_script::emit_bound_chunk(
        &p,
        Side::Request,
        &places,
        handed,
    ));
    check_bytecode(&gatefold_lua_script::emit_bound_chunk(
        &r,
        Side::Response,
        &places,
        handed,
    ));
    check_bytecode(&gatefold_lua_script::bound_pass_chunk(handed));
    check_bytecode(
        &gatefold_lua_script::bound_body_filter_chunk(Host::Kong, handed.runtime).unwrap(),
    );
}

#[test]
fn invalid_utf8_from_the_host_becomes_replacement_characters_as_in_rust() {
    // Header bytes are not always UTF-8; the reference gateway reads them
    // with from_utf8_lossy, the runtime with its own `lossy`.
    let cases: Vec<Vec<u8>> = vec![
        b"plain".to_vec(),
        vec![0xC3, 0xA9],
        vec![0xC3],
        vec![0xC3, 0x41],
        vec![0xE2, 0x82],
        vec![0xE2, 0x82, 0x41],
        vec![0xED, 0xA0, 0x80],
        vec![0xF0, 0x9F, 0x98],
        vec![0xF0, 0x9F, 0x98, 0x80, 0x80],
        vec![0xF4, 0x90, 0x80, 0x80],
        vec![0xC0, 0xAF],
        vec![0xE0, 0x80, 0xAF],
        vec![0xFF, 0xFE, 0x41],
        vec![0x80, 0xBF],
        vec![0xF1, 0x80, 0x80],
        vec![0xE1, 0x80, 0xC3, 0xA9],
    ];
    let mut src = format!(
        "local R = (function()\n{}end)()\n",
        gatefold_lua_script::prelude_with(TEST_HOST)
    );
    for bytes in &cases {
        let lit: String = bytes.iter().map(|b| format!("\\{b:03}")).collect();
        src.push_str(&format!(
            "io.write((R.lossy(\"{lit}\"):gsub(\".\", function(c) return string.format(\"%02x\", c:byte()) end)), \"\\n\")\n"
        ));
    }
    let got = run_lua(&src);
    let want: String = cases
        .iter()
        .map(|b| {
            let s = String::from_utf8_lossy(b);
            let hex: String = s.bytes().map(|x| format!("{x:02x}")).collect();
            hex + "\n"
        })
        .collect();
    assert_eq!(got, want);
}
