//! The evaluator against a stand-in host: JavaScript semantics case by case
//! (the traps a Lua or hand-rolled port gets wrong), the API's effects, and
//! every run-time failure path.

use super::*;
use gatefold_compiler::front::script::compile_text;

#[derive(Default)]
struct FakeHost {
    headers: Vec<(String, String)>,
    res_headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    path: Option<String>,
    logs: Vec<String>,
    status: u16,
}

impl Host for FakeHost {
    fn req_field(&self, field: ReqField) -> Option<String> {
        match field {
            ReqField::Method => Some("GET".into()),
            ReqField::Path => Some("/t/acme/items".into()),
            ReqField::Ip => Some("127.0.0.1".into()),
            ReqField::Consumer => None,
        }
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, side: Side, name: &str) -> Option<String> {
        let list = match side {
            Side::Request => &self.headers,
            Side::Response => &self.res_headers,
        };
        let vals: Vec<&str> = list
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!vals.is_empty()).then(|| vals.join(", "))
    }
    fn query(&self, name: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    fn set_header(&mut self, side: Side, name: &str, value: &str) {
        self.remove_header(side, name);
        let list = match side {
            Side::Request => &mut self.headers,
            Side::Response => &mut self.res_headers,
        };
        list.push((name.into(), value.into()));
    }
    fn remove_header(&mut self, side: Side, name: &str) {
        let list = match side {
            Side::Request => &mut self.headers,
            Side::Response => &mut self.res_headers,
        };
        list.retain(|(n, _)| n != name);
    }
    fn set_path(&mut self, path: &str) {
        self.path = Some(path.into());
    }
    fn log(&mut self, message: &str) {
        self.logs.push(message.into());
    }
}

fn compile(src: &str) -> Program {
    compile_text(src, Side::Request).unwrap_or_else(|e| panic!("{src}: {e:?}"))
}

/// Runs a request script; returns the host after it and the outcome.
fn run_on(src: &str, host: &mut FakeHost) -> Result<Outcome, Failure> {
    run(&compile(src), host, &mut Vars::new())
}

/// The value a script stores with `log(...)`, as a string.
fn show(expr: &str) -> String {
    let mut host = FakeHost::default();
    let src = format!("log({expr});");
    run_on(&src, &mut host).unwrap_or_else(|f| panic!("{src}: {f:?}"));
    host.logs.pop().unwrap()
}

#[test]
fn javascript_values_convert_as_in_javascript() {
    for (expr, want) in [
        ("\"a\" + 1", "a1"),
        ("1 + 2 + \"3\"", "33"),
        ("\"3\" - 1", "2"),
        ("null + 1", "1"),
        ("undefined + 1", "NaN"),
        ("true + 1", "2"),
        ("[1, 2] + \"\"", "1,2"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("7 % 3", "1"),
        ("-7 % 3", "-1"),
        ("1 / 0", "Infinity"),
        ("`${1}-${null}-${undefined}`", "1-null-undefined"),
        ("\"b\" > \"a\"", "true"),
        ("\"10\" < \"9\"", "true"),
        ("\"10\" < 9", "false"),
        ("1 === 1.0", "true"),
        ("\"1\" === 1", "false"),
        ("null === undefined", "false"),
        ("[] === []", "false"),
        ("0 ?? \"d\"", "0"),
        ("\"\" ?? \"d\"", ""),
        ("null ?? \"d\"", "d"),
        ("0 || \"d\"", "d"),
        ("\"\" || \"d\"", "d"),
        ("\"0\" || \"d\"", "0"),
        ("\"x\" && 0", "0"),
        ("!\"\"", "true"),
        ("!\"0\"", "false"),
        ("parseInt(\"42px\")", "42"),
        ("parseInt(\"0x1f\")", "31"),
        ("parseInt(\"08\")", "8"),
        ("parseInt(\"ff\", 16)", "255"),
        ("parseInt(\"\")", "NaN"),
        ("parseInt(\" -3.9\")", "-3"),
    ] {
        assert_eq!(show(expr), want, "{expr}");
    }
}

#[test]
fn strings_index_and_slice_in_utf16_code_units() {
    for (expr, want) in [
        ("\"héllo\".length", "5"),
        ("\"😀\".length", "2"),
        ("\"abc\"[0]", "a"),
        ("\"abc\"[3]", "undefined"),
        ("\"abc\".slice(1)", "bc"),
        ("\"abc\".slice(-2, -1)", "b"),
        ("\"é😀x\".slice(1, 3)", "😀"),
        ("\"  a b \".trim()", "a b"),
        ("\"ÀB\".toLowerCase()", "àb"),
        ("\"straße\".toUpperCase()", "STRASSE"),
        ("\"a,b,,c\".split(\",\").length", "4"),
        ("\"a,b,c\".split(\",\", 2)", "a,b"),
        ("\"abc\".split(\"\")", "a,b,c"),
        ("\"\".split(\",\").length", "1"),
        ("\"/t/acme\".split(\"/\")[2]", "acme"),
        ("[\"a\", \"b\"].includes(\"b\")", "true"),
        ("\"abc\".includes(\"bc\")", "true"),
        ("\"abc\".startsWith(\"ab\")", "true"),
        ("\"abc\".endsWith(\"b\")", "false"),
    ] {
        assert_eq!(show(expr), want, "{expr}");
    }
}

#[test]
fn the_api_reads_and_changes_the_request() {
    let mut host = FakeHost {
        headers: vec![("x-version".into(), "2".into())],
        query: vec![("tenant".into(), "ACME".into())],
        ..FakeHost::default()
    };
    let src = r#"
        const v = req.header("X-Version");
        if (v === "2") { req.setHeader("x-upstream-version", "2"); }
        const tenant = req.query("tenant");
        if (!tenant) { return respond(400, { error: "tenant required" }); }
        ctx.tenant = tenant.toLowerCase();
        req.setPath("/" + ctx.tenant + req.path);
        req.removeHeader("x-version");
        log(`${req.method} ${req.consumer}`);
    "#;
    let mut vars = Vars::new();
    let out = run(&compile(src), &mut host, &mut vars).unwrap();
    assert_eq!(out, Outcome::Continue);
    assert_eq!(vars.get("tenant").map(String::as_str), Some("acme"));
    assert_eq!(host.path.as_deref(), Some("/acme/t/acme/items"));
    assert_eq!(
        host.headers,
        vec![("x-upstream-version".into(), "2".into())]
    );
    assert_eq!(host.logs, vec!["GET null".to_string()]);
}

#[test]
fn respond_makes_the_answer_and_ends_the_script() {
    let mut host = FakeHost::default();
    let src = r#"
        if (!req.query("tenant")) {
            return respond(400, { error: "tenant required", n: 1.5, no: undefined }, { "Retry-After": 60 });
        }
        log("not reached");
    "#;
    let out = run_on(src, &mut host).unwrap();
    let Outcome::Respond(a) = out else { panic!() };
    assert_eq!(a.status, 400);
    assert_eq!(
        String::from_utf8(a.body).unwrap(),
        r#"{"error":"tenant required","n":1.5}"#
    );
    assert_eq!(a.content_type, Some("application/json"));
    assert_eq!(a.headers, vec![("retry-after".into(), "60".into())]);
    assert!(host.logs.is_empty());
    // A text body is text.
    let Outcome::Respond(a) = run_on("respond(503, `down`);", &mut host).unwrap() else {
        panic!()
    };
    assert_eq!((a.status, a.body.as_slice()), (503, &b"down"[..]));
    assert_eq!(a.content_type, Some("text/plain; charset=utf-8"));
}

#[test]
fn for_of_iterates_a_split_list() {
    let mut host = FakeHost {
        headers: vec![("x-tags".into(), "a, b ,c".into())],
        ..FakeHost::default()
    };
    let src = r#"
        let seen = "";
        for (const t of (req.header("x-tags") ?? "").split(",")) { seen = seen + "[" + t.trim() + "]"; }
        log(seen);
    "#;
    run_on(src, &mut host).unwrap();
    assert_eq!(host.logs, vec!["[a][b][c]".to_string()]);
}

/// Each failure path: a failure, with the site of the failing operation.
#[test]
fn runtime_failures_are_failures_with_their_site() {
    for (src, reason) in [
        ("req.header(\"x-missing\").toLowerCase();", "string method, called on null"),
        ("req.setHeader(\"x-a\", \"a\\r\\nb\" + req.path);", "printable ASCII"),
        ("req.setHeader(\"bad name\" + req.path, \"v\");", "not a header name"),
        ("respond(parseInt(\"700\"), \"x\");", "from 100 to 599"),
        ("respond(parseInt(req.path), \"x\");", "got NaN"),
        ("for (const x of \",\".repeat) {}", ""),
        ("req.setPath(\"no-slash\" + req.path);", "starts with `/`"),
        ("const l = req.header(\"x-missing\"); log(l.length);", "cannot read `length` of null"),
        ("const s = \",\" + req.path; let t = s; for (const a of [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]) { t = t + t; }", "grew past"),
        ("const parts = \",\".padEnd;", ""),
    ] {
        if reason.is_empty() {
            // Not in the subset: refused at compile time instead.
            assert!(compile_text(src, Side::Request).is_err(), "{src}");
            continue;
        }
        let err = run_on(src, &mut FakeHost::default()).unwrap_err();
        assert!(err.reason.contains(reason), "{src}: {}", err.reason);
        assert!(err.site.is_some(), "{src}: no site");
    }
    // split() past the list bound.
    let mut host = FakeHost {
        headers: vec![("x-many".into(), ",".repeat(200))],
        ..FakeHost::default()
    };
    let err = run_on("req.header(\"x-many\").split(\",\");", &mut host).unwrap_err();
    assert!(err.reason.contains("more than 100"), "{}", err.reason);
}

#[test]
fn the_cost_bound_is_never_exceeded_by_a_program_that_compiled() {
    // The deepest nesting the bound allows runs within it.
    let src = r#"
        const l = req.path.split("");
        let n = 0;
        for (const a of l) { for (const b of l) { n = n + 1; } }
        log(n);
    "#;
    let p = compile(src);
    let mut host = FakeHost::default();
    run(&p, &mut host, &mut Vars::new()).unwrap();
    assert_eq!(host.logs, vec![(13 * 13).to_string()]);
    // And a program given less fuel than it needs stops with a failure.
    let mut starved = p.clone();
    starved.cost = 10;
    let err = run(&starved, &mut FakeHost::default(), &mut Vars::new()).unwrap_err();
    assert!(err.reason.contains("cost bound"), "{}", err.reason);
}

#[test]
fn a_canonical_index_string_indexes_lists_and_strings_as_in_javascript() {
    // The compiler refuses a string index it can see; one from a mixed
    // list is only known at run time, where JavaScript reads `l["1"]` as
    // `l[1]` and any other string (`"01"`, `"1.0"`, `" 1"`, `"-0"`) as a
    // missing property.
    for (key, want) in [
        ("\"1\"", "b|y"),
        ("\"0\"", "a|x"),
        ("\"01\"", "undefined|undefined"),
        ("\"1.0\"", "undefined|undefined"),
        ("\" 1\"", "undefined|undefined"),
        ("\"-0\"", "undefined|undefined"),
        ("\"x\"", "undefined|undefined"),
    ] {
        let expr = format!("`${{[\"a\", \"b\"][[{key}, 1][0]]}}|${{\"xy\"[[{key}, 1][0]]}}`");
        assert_eq!(show(&expr), want, "{expr}");
    }
}

#[test]
fn a_json_body_lists_array_index_keys_first_as_javascript_does() {
    let mut host = FakeHost::default();
    let src = r#"return respond(200, { b: 1, "10": 2, a: 3, "2": 4, "01": 5, "0": 6, b: 7, "4294967295": 8 });"#;
    let Ok(Outcome::Respond(answer)) = run_on(src, &mut host) else {
        panic!("{src}: no answer");
    };
    // JSON.stringify's order: "0", "2", "10" ascending, then the rest where
    // first written ("4294967295" is past the last array index).
    assert_eq!(
        String::from_utf8(answer.body).unwrap(),
        r#"{"0":6,"2":4,"10":2,"b":7,"a":3,"01":5,"4294967295":8}"#
    );
}
