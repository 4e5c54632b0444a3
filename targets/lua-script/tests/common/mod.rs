//! Running emitted Lua under `luajit`, and the reference evaluator on the
//! same programs, for the differential tests.

use gatefold_compiler::front::script::compile_text;
use gatefold_compiler::ir::script::{Program, ReqField, Side};
use gatefold_lua_script::{emit_chunk_with, lua, prelude_with, Places};
use gatefold_target_reference::script::{run, Host, Outcome, Vars};
use std::io::Write;
use std::process::{Command, Stdio};

pub const TEST_HOST: &str = include_str!("../lua/test_host.lua");
pub const DUMP: &str = include_str!("../lua/dump.lua");

/// The `luajit` binary, found as the launcher finds it
/// (scripts/install-runtimes.sh installs it).
pub fn luajit() -> std::path::PathBuf {
    gatefold_runtime::lua::Luajit::locate()
        .unwrap_or_else(|e| panic!("{e}"))
        .binary()
        .to_path_buf()
}

/// Runs a Lua program under luajit; its stdout, or a panic with stderr.
pub fn run_lua(source: &str) -> String {
    let mut child = Command::new(luajit())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("luajit runs (scripts/install-runtimes.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "luajit failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        numbered(source)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks Lua source with `luajit -bl` (parse and list bytecode).
pub fn check_bytecode(source: &str) {
    let dir = std::env::temp_dir().join(format!("gatefold-lua-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("chunk-{}.lua", fxhash(source)));
    std::fs::write(&path, source).unwrap();
    let out = Command::new(luajit())
        .arg("-bl")
        .arg(&path)
        .output()
        .expect("luajit runs");
    assert!(
        out.status.success(),
        "luajit -bl refuses the chunk: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        numbered(source)
    );
    let _ = std::fs::remove_file(&path);
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn numbered(source: &str) -> String {
    source
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{:4} {l}\n", i + 1))
        .collect()
}

pub fn compile(src: &str, side: Side) -> Program {
    compile_text(src, side).unwrap_or_else(|e| panic!("{src}: {e:?}"))
}

/// The request (and response) a case runs against.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: &'static str,
    pub path: &'static str,
    pub ip: &'static str,
    pub consumer: Option<&'static str>,
    pub query: Option<&'static str>,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    pub res_headers: Vec<(String, String)>,
}

impl Default for Req {
    fn default() -> Req {
        let h = |n: &str, v: &str| (n.to_string(), v.to_string());
        Req {
            method: "GET",
            path: "/t/acme/items",
            ip: "127.0.0.1",
            consumer: None,
            query: Some("tenant=Acme+Corp&x=%41%2&e=%C3%A9&empty=&flag&tenant=second"),
            headers: vec![
                h("x-version", "2"),
                h("x-tags", "a, b ,c"),
                h("x-multi", "1"),
                h("x-multi", "2"),
                h("x-num", " 42 "),
            ],
            status: 502,
            res_headers: vec![h("content-type", "text/html"), h("x-up", "yes")],
        }
    }
}

/// The reference evaluator's host over a [`Req`].
struct RefHost {
    req: Req,
    path: Option<String>,
    logs: Vec<String>,
}

impl Host for RefHost {
    fn req_field(&self, field: ReqField) -> Option<String> {
        match field {
            ReqField::Method => Some(self.req.method.into()),
            ReqField::Path => Some(self.path.clone().unwrap_or(self.req.path.into())),
            ReqField::Ip => Some(self.req.ip.into()),
            ReqField::Consumer => self.req.consumer.map(String::from),
        }
    }
    fn status(&self) -> u16 {
        self.req.status
    }
    fn header(&self, side: Side, name: &str) -> Option<String> {
        let list = match side {
            Side::Request => &self.req.headers,
            Side::Response => &self.req.res_headers,
        };
        let vals: Vec<&str> = list
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!vals.is_empty()).then(|| vals.join(", "))
    }
    fn query(&self, name: &str) -> Option<String> {
        gatefold_target_reference::gateway::policies::script::query_param(self.req.query?, name)
    }
    fn set_header(&mut self, side: Side, name: &str, value: &str) {
        self.remove_header(side, name);
        let list = match side {
            Side::Request => &mut self.req.headers,
            Side::Response => &mut self.req.res_headers,
        };
        list.push((name.into(), value.into()));
    }
    fn remove_header(&mut self, side: Side, name: &str) {
        let list = match side {
            Side::Request => &mut self.req.headers,
            Side::Response => &mut self.req.res_headers,
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

fn site_name(site: Option<gatefold_compiler::ir::script::Site>) -> String {
    site.map_or("policy".to_string(), |s| format!("site{}", s.0))
}

/// One phase's facts from the reference evaluator, as dump.lua prints them.
fn ref_phase(
    phase: &str,
    p: &Program,
    host: &mut RefHost,
    vars: &mut Vars,
    out: &mut Vec<String>,
) -> bool {
    host.logs.clear();
    let before = host.req.clone();
    let result = run(p, host, vars);
    let go_on = matches!(result, Ok(Outcome::Continue));
    match result {
        Err(f) => out.push(format!("{phase} fail {}", site_name(f.site))),
        Ok(Outcome::Respond(a)) => {
            out.push(format!("{phase} respond {}", a.status));
            out.push(format!("body {}", String::from_utf8_lossy(&a.body)));
            let mut hs: Vec<String> = a.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            if let Some(ct) = a.content_type {
                if !a.headers.iter().any(|(n, _)| n == "content-type") {
                    hs.push(format!("content-type: {ct}"));
                }
            }
            hs.sort();
            out.extend(hs.into_iter().map(|h| format!("answer-header {h}")));
        }
        Ok(Outcome::Continue) => {
            out.push(format!("{phase} continue"));
            for (n, v) in &host.req.headers {
                out.push(format!("req-header {n}: {v}"));
            }
            for (n, v) in &host.req.res_headers {
                out.push(format!("res-header {n}: {v}"));
            }
            if let Some(p) = &host.path {
                out.push(format!("path {p}"));
            }
        }
    }
    if !go_on {
        // The gateway discards a stopped script's header changes.
        host.req = before;
    }
    out.extend(host.logs.iter().map(|l| format!("log {l}")));
    go_on
}

fn ctx_lines(vars: &Vars, out: &mut Vec<String>) {
    out.extend(vars.iter().map(|(k, v)| format!("ctx {k}={v}")));
}

/// The reference's facts for a request program, then (when the request
/// goes on) a response program.
pub fn reference(req: &Req, request: Option<&Program>, response: Option<&Program>) -> String {
    let mut host = RefHost {
        req: req.clone(),
        path: None,
        logs: Vec::new(),
    };
    let mut vars = Vars::new();
    let mut out = Vec::new();
    let mut go_on = true;
    if let Some(p) = request {
        go_on = ref_phase("request", p, &mut host, &mut vars, &mut out);
        ctx_lines(&vars, &mut out);
    }
    if let (true, Some(p)) = (go_on, response) {
        // The gateway keeps ctx as the request script left it.
        let mut copy = vars.clone();
        ref_phase("response", p, &mut host, &mut copy, &mut out);
        ctx_lines(&vars, &mut out);
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

fn places() -> Places {
    Places {
        id: "script:test".into(),
        policy: "policy".into(),
        sites: (0..SITES).map(|i| format!("site{i}")).collect(),
    }
}

/// More site names than any test program has sites.
const SITES: usize = 256;

fn lua_pairs(list: &[(String, String)]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|(n, v)| format!("{{{}, {}}}", lua::string(n), lua::string(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// The chunk a side compiles to, with the test host.
pub fn chunk(p: &Program, side: Side) -> String {
    emit_chunk_with(&prelude_with(TEST_HOST), p, side, &places())
}

/// The same facts from the emitted Lua run under luajit.
pub fn lua_run(req: &Req, request: Option<&Program>, response: Option<&Program>) -> String {
    let opt = |s: Option<&str>| s.map_or("nil".to_string(), lua::string);
    let mut src = format!(
        "REQ = {{ method = {}, path = {}, ip = {}, consumer = {}, query = {}, headers = {}, status = {}, res_headers = {} }}\n",
        lua::string(req.method),
        lua::string(req.path),
        lua::string(req.ip),
        opt(req.consumer),
        opt(req.query),
        lua_pairs(&req.headers),
        req.status,
        lua_pairs(&req.res_headers),
    );
    src.push_str("OUT = { ctx = {}, logs = {}, errors = {} }\n");
    src.push_str(&format!("local dump = (function()\n{DUMP}end)()\n"));
    let mut go = "true".to_string();
    if let Some(p) = request {
        src.push_str(&format!(
            "local request = (function()\n{}end)()\nrequest()\ndump(\"request\")\n",
            chunk(p, Side::Request)
        ));
        go = "not OUT.failed and not OUT.respond".into();
    } else {
        src.push_str("OUT.passed = true\n");
    }
    if let Some(p) = response {
        src.push_str(&format!(
            "if {go} then\nOUT.logs = {{}}\nlocal response = (function()\n{}end)()\nresponse()\ndump(\"response\")\nend\n",
            chunk(p, Side::Response)
        ));
    }
    run_lua(&src)
}
