//! The rate limit's loans in workerd itself: what the Node tests of
//! `worker.rs` cannot show is that workerd runs the watch that gives idle
//! counts back (a timer under `ctx.waitUntil`, after the response) and
//! lets it call the object.

use gatefold_compiler::target::{Options, Target};
use gatefold_target_cloudflare::Cloudflare;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The workerd process, killed when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The body of `GET path`, or None while nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{text}");
    Some(body.to_string())
}

/// The Worker's handler behind a harness: `/?n=N` answers N requests of
/// the rate-limited route inside one request (so they come fast, as from a
/// busy isolate), `/?count` reads the key's count at the object (a loan of
/// none).
const HARNESS: &str = r#"
export default {
  async fetch(req, env, ctx) {
    const q = new URL(req.url).searchParams;
    const ns = env.GATEFOLD_RATE_LIMIT;
    if (q.has("count")) {
      const answer = await ns.get(ns.idFromName("api/main/rate-limit\n1000000/60000/global")).lease("g", 60000, 1000000, 0);
      return new Response(answer.split(" ")[1]);
    }
    let ok = 0;
    for (let i = 0; i < Number(q.get("n")); i++) {
      const resp = await handle(new Request("http://localhost/hello", { headers: { host: "localhost" } }), env, ctx);
      if (resp.status === 200) ok++;
      else return new Response(resp.status + " " + (await resp.text()));
      await resp.arrayBuffer();
    }
    return new Response(String(ok));
  },
};
"#;

/// 20 requests in a row borrow growing loans (more counts than they
/// spend); once the isolate has spent none for a moment, the unspent
/// counts are back at the object and the key's count is what was admitted.
#[test]
fn workerd_gives_idle_lent_counts_back_to_the_object() {
    let c = gatefold_compiler::compile_str(
        "spec.yaml",
        "gatefold: 1\napis:\n  main:\n    policies: [{ rate-limit: { requests: 1000000, per: 1m, key: global } }]\n    routes:\n      hello: { path: /hello, policies: [{ mock: { body: ok } }] }\n",
    );
    let Some(ir) = c.ir else {
        panic!("the spec compiles:\n{}", c.render())
    };
    let addr = free_port();
    let out = Cloudflare.emit(
        &ir,
        &Options {
            listen: Some(addr),
            ..Options::default()
        },
    );
    let dir = std::env::temp_dir().join(format!("gatefold-cf-workerd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in &out.files {
        let mut bytes = f.bytes.clone();
        if f.path.as_str() == gatefold_target_cloudflare::WORKER {
            let js = String::from_utf8(bytes).unwrap();
            let start = js.find("export default {").expect("the default export");
            let end = start + js[start..].find("\n};\n").expect("its end") + 4;
            bytes = format!("{}{}{HARNESS}", &js[..start], &js[end..]).into_bytes();
        }
        std::fs::write(dir.join(f.path.as_str()), bytes).unwrap();
    }
    let log = std::fs::File::create(dir.join("workerd.log")).unwrap();
    let _running = Running(
        Command::new(crate::tool("workerd", "GATEFOLD_WORKERD"))
            .args(["serve", "config.capnp"])
            .current_dir(&dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("workerd starts"),
    );
    let started = Instant::now();
    while get(addr, "/?count").is_none() {
        let log = std::fs::read_to_string(dir.join("workerd.log")).unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "workerd does not answer: {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(addr, "/?n=20").as_deref(), Some("20"));
    let lent: u32 = get(addr, "/?count").unwrap().parse().unwrap();
    assert!(
        lent > 20,
        "20 fast requests borrowed more than they spent: {lent}"
    );
    // The watch gives counts back after 200 ms without a spend.
    let started = Instant::now();
    loop {
        let count = get(addr, "/?count").unwrap();
        if count == "20" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the unspent counts were not given back: {count} lent, 20 spent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
