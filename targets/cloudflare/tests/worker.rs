//! The emitted Worker: its shape for a small spec (snapshot), user strings
//! kept as data, and a syntax check of the JS by Node.

use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::target::{Options, Target};
use gatefold_target_cloudflare::{Cloudflare, CAPNP, WORKER, WRANGLER};
use std::process::Command;

fn compile(text: &str) -> ValidIr {
    let c = gatefold_compiler::compile_str("spec.yaml", text);
    match c.ir {
        Some(ir) => ir,
        None => panic!("the spec compiles:\n{}", c.render()),
    }
}

fn file(ir: &ValidIr, name: &str) -> String {
    let options = Options {
        listen: Some("127.0.0.1:8787".parse().unwrap()),
        ..Options::default()
    };
    let out = Cloudflare.emit(ir, &options);
    let f = out
        .files
        .iter()
        .find(|f| f.path.as_str() == name)
        .unwrap_or_else(|| panic!("no {name} in the output"));
    String::from_utf8(f.bytes.clone()).unwrap()
}

/// `node --check` on the Worker (as an ES module): the generated JS parses.
fn node_check(js: &str) {
    let dir = std::env::temp_dir().join(format!("gatefold-cf-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("w{}.mjs", js.len()));
    std::fs::write(&path, js).unwrap();
    let out = Command::new("node")
        .arg("--check")
        .arg(&path)
        .output()
        .expect("node runs (Node.js is a test dependency of this target)");
    assert!(
        out.status.success(),
        "node --check {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&path);
}

const SMALL: &str = r#"
gatefold: 1
gateway: { name: petstore }
upstreams:
  pets: { targets: [{ url: "http://127.0.0.1:9001" }] }
consumers:
  acme: { groups: [partners], credentials: { key: { env: ACME_KEY } } }
apis:
  store:
    base-path: /store
    upstream: pets
    policies:
      - key-auth: { in: header, name: x-api-key }
      - acl: { allow: [partners] }
    routes:
      list: { path: /pets, methods: [GET] }
      one: { path: "/pets/{id}", methods: [GET, DELETE] }
      health: { path: /health, policies: [{ mock: { status: 200, body: ok } }], disable: [key-auth, acl] }
"#;

#[test]
fn small_spec_worker_snapshot() {
    let ir = compile(SMALL);
    let js = file(&ir, WORKER);
    // Only the pieces this spec uses: no CORS, ip-filter or redirect code.
    assert!(js.contains("function authenticate("));
    assert!(!js.contains("function corsFilter("));
    assert!(!js.contains("function ipAllowed("));
    assert!(!js.contains("function redirectResponse("));
    // No cache or mirror hook either, and no hook tag left in the text.
    assert!(!js.contains("route.cache") && !js.contains("route.mirror"));
    assert!(!js.contains("//@"));
    // The secret is a binding name, never a value.
    assert!(js.contains(r#""keys":["ACME_KEY"]"#));
    node_check(&js);
    // The spec-dependent head (data and router), not the fixed runtime.
    let head = &js[..js.find("// ---- core:").unwrap()];
    insta::assert_snapshot!("small_worker_head", head);
    insta::assert_snapshot!("small_wrangler", file(&ir, WRANGLER));
    insta::assert_snapshot!("small_capnp", file(&ir, CAPNP));
}

/// Hostile strings in a spec (quotes, backslashes, `${}`, `</script>`,
/// line and paragraph separators, a closing comment) end up as JS string
/// data: the module still parses, and each string is there as its JSON
/// encoding, never as raw code.
#[test]
fn hostile_spec_strings_stay_data() {
    let hostile = "x\\\"; throw 1; //${globalThis}</script>*/\u{2028}\u{2029}'`";
    let spec = format!(
        r#"
gatefold: 1
upstreams:
  a: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }}
consumers:
  c: {{ credentials: {{ basic: {{ user: {user}, password: {{ env: PW }} }} }} }}
apis:
  main:
    upstream: a
    policies:
      - basic-auth: {{ realm: {realm} }}
      - response-headers: {{ set: {{ x-note: {value} }} }}
    routes:
      m: {{ path: "/m", policies: [{{ mock: {{ status: 200, body: {body} }} }}] }}
      all: {{ path: /* }}
"#,
        user = serde_json::to_string("u\"ser").unwrap(),
        realm = serde_json::to_string("re'alm </script>").unwrap(),
        value = serde_json::to_string("v'`${x}").unwrap(),
        body = serde_json::to_string(hostile).unwrap(),
    );
    let ir = compile(&spec);
    let js = file(&ir, WORKER);
    node_check(&js);
    // The mock body is one JSON string literal in the data.
    let encoded = serde_json::to_string(hostile).unwrap();
    assert!(js.contains(&encoded[1..encoded.len() - 1]), "{js}");
    // Nothing hostile outside string literals: the only `throw` is inside the body.
    assert_eq!(js.matches("throw 1").count(), 1);
    // The realm reaches the challenge as data.
    assert!(
        js.contains(r#""challenge":"Basic realm=\"re'alm </script>\"""#),
        "{js}"
    );
}

/// Runs `script` in Node after the Worker's text (imports and exports
/// stripped so its functions can be called), returning stdout.
fn node_eval(js: &str, script: &str) -> String {
    let body = js
        .replace(
            "import { DurableObject } from \"cloudflare:workers\";",
            // As the runtime's base class: the object's state and env.
            "class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }",
        )
        .replace("export class", "class");
    let start = body
        .find("export default {")
        .expect("the module's default export");
    let end = start + body[start..].find("\n};\n").expect("its end") + 4;
    let program = format!("{}{}\n{script}\n", &body[..start], &body[end..]);
    let out = Command::new("node")
        .args(["--input-type=commonjs", "-e", &program])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `trusted-proxies` walks x-forwarded-for right to left from a trusted
/// peer only, stops at the first untrusted address or at garbage, and a
/// client cannot forge its address from an untrusted peer (the spec's
/// "The client address"); `platform-header` believes one address.
#[test]
fn client_address_follows_the_request_model() {
    let spec = |client: &str| {
        format!(
            r#"
gatefold: 1
gateway:
  baseline:
    client-address: {client}
upstreams:
  a: {{ targets: [{{ url: "http://127.0.0.1:9001" }}] }}
apis:
  main: {{ upstream: a, policies: [{{ ip-filter: {{ deny: [192.0.2.0/24] }} }}], routes: {{ all: {{ path: /* }} }} }}
"#
        )
    };
    let trusted = file(
        &compile(&spec(
            "{ trusted-proxies: [10.0.0.0/8, \"::1/128\"], header: x-forwarded-for }",
        )),
        WORKER,
    );
    let ask = |xff: Option<&str>, peer: &str| {
        let headers = match xff {
            Some(v) => format!(
                "{{ \"x-forwarded-for\": {} }}",
                serde_json::to_string(v).unwrap()
            ),
            None => "{}".to_string(),
        };
        format!(
            "console.log(clientAddress({{ headers: new Headers({headers}) }}, {}));",
            serde_json::to_string(peer).unwrap()
        )
    };
    let cases = [
        (Some("203.0.113.9, 10.0.0.2"), "10.0.0.1", "203.0.113.9"),
        (Some("203.0.113.9"), "198.51.100.7", "198.51.100.7"),
        (Some("10.0.0.3, 10.0.0.2"), "10.0.0.1", "10.0.0.3"),
        (Some("garbage, 203.0.113.5"), "::1", "203.0.113.5"),
        (Some("203.0.113.9:8080"), "10.0.0.1", "203.0.113.9"),
        (None, "10.0.0.1", "10.0.0.1"),
    ];
    let script: String = cases
        .iter()
        .map(|(x, p, _)| ask(*x, p))
        .collect::<Vec<_>>()
        .join("\n");
    let got = node_eval(&trusted, &script);
    let want: Vec<&str> = cases.iter().map(|c| c.2).collect();
    assert_eq!(got.lines().collect::<Vec<_>>(), want);

    let platform = file(
        &compile(&spec("{ platform-header: cf-connecting-ip }")),
        WORKER,
    );
    let script = [
        "console.log(clientAddress({ headers: new Headers({ 'cf-connecting-ip': '203.0.113.4' }) }, '10.9.9.9'));",
        "console.log(clientAddress({ headers: new Headers({ 'cf-connecting-ip': '1.2.3.4, 5.6.7.8' }) }, '10.9.9.9'));",
        "console.log(clientAddress({ headers: new Headers({ 'cf-connecting-ip': 'nope' }) }, '10.9.9.9'));",
        "console.log(clientAddress({ headers: new Headers({}) }, '10.9.9.9'));",
    ]
    .join("\n");
    let got = node_eval(&platform, &script);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["203.0.113.4", "10.9.9.9", "10.9.9.9", "10.9.9.9"]
    );
}

/// A script's strings (a literal with quotes, `${}`, a backtick, `</script>`
/// and a line separator; object keys such as `__proto__`) are emitted from
/// the IR as JS string literals: the module parses, nothing runs outside a
/// string, and `respond()` sends the values back as JSON data, keys in the
/// order written.
#[test]
fn hostile_script_strings_stay_data() {
    let spec = r#"
gatefold: 1
upstreams:
  a: { targets: [{ url: "http://127.0.0.1:9001" }] }
apis:
  main:
    upstream: a
    routes:
      s:
        path: /s
        policies:
          - script:
              request: |
                const s = "x\\\"; throw 1; //${globalThis}</script>*/\u2028'`";
                ctx.note = s;
                return respond(200, { "</script>": s, "__proto__": `${s}!`, "n": ctx.note.length });
"#;
    let ir = compile(spec);
    let js = file(&ir, WORKER);
    node_check(&js);
    let value = "x\\\"; throw 1; //${globalThis}</script>*/\u{2028}'`";
    let got = node_eval(
        &js,
        r#"const S = { path: "/s", query: null, client: "127.0.0.1", consumer: null };
const r = P0q(new Headers(), S, "GET");
r.text().then((t) => console.log(r.status + " " + t));"#,
    );
    let expected = format!(
        "200 {{\"</script>\":{v},\"__proto__\":{w},\"n\":{n}}}\n",
        v = serde_json::to_string(value).unwrap(),
        w = serde_json::to_string(&format!("{value}!")).unwrap(),
        n = value.encode_utf16().count(),
    );
    assert_eq!(got, expected);
}

/// A spec with upstream `a` and these `apis` (YAML lines under `apis:`).
fn with_upstream_a(apis: &str) -> ValidIr {
    compile(&format!(
        "gatefold: 1\nupstreams:\n  a: {{ targets: [{{ url: \"http://127.0.0.1:9001\" }}] }}\napis:\n{apis}"
    ))
}

/// `script` after the fake storage and objects below.
fn with_fake_objects(script: &str) -> String {
    format!("{FAKE_STORAGE}{FAKE_OBJECTS}{script}")
}

/// A Durable Object's storage for the rate-limit tests, as the object sees
/// it: `store`, a Map, holds what was put.
const FAKE_STORAGE: &str = r#"
const store = new Map();
const storage = {
  get: async (k) => store.get(k),
  put: (k, v) => { store.set(k, v); return Promise.resolve(); },
  deleteAll: async () => { store.clear(); },
};
"#;

/// The rate-limit objects behind a fake namespace (`ns`; the object of a
/// policy: `objects.get(rateLimitObject(r, ns))`), answering after
/// `delayMs` of timer when it is not 0; `calls` counts the loans asked
/// for. `hang = true`: the next loan is never answered (its request
/// cancelled); `gate`, a promise: loans are made at once and answered when
/// it settles. `one(r, client, ctx)` runs the Worker's `rateLimit` for one
/// request: "STATUS:REMAINING:RESET".
const FAKE_OBJECTS: &str = r#"
let calls = 0;
let delayMs = 0;
let hang = false;
let gate = null;
const later = (f) => (delayMs === 0 ? Promise.resolve().then(f) : new Promise((ok) => setTimeout(ok, delayMs)).then(f));
const objects = new Map();
const ns = {
  idFromName: (n) => n,
  get: (id) => {
    if (!objects.has(id)) objects.set(id, new GatefoldRateLimit({ storage }, {}));
    const o = objects.get(id);
    const lease = (...a) => {
      if (hang) {
        hang = false;
        return new Promise(() => {});
      }
      if (gate !== null) {
        calls++;
        const answer = o.lease(...a);
        return gate.then(() => answer);
      }
      return later(() => { calls++; return o.lease(...a); });
    };
    return { lease, giveBack: (...a) => later(() => o.giveBack(...a)) };
  },
};
const one = async (r, client, ctx) => {
  const S = { env: { GATEFOLD_RATE_LIMIT: ns }, ctx, consumer: null, client, promised: [] };
  const refused = await rateLimit(r, { headers: new Headers() }, S);
  const h = Object.fromEntries(S.promised);
  return (refused ? refused.status : 200) + ":" + h["x-ratelimit-remaining"] + ":" + h["x-ratelimit-reset"];
};
"#;

/// The rate limit's Durable Object counts in memory but writes every count
/// to its storage: an object started again mid-window (evicted, moved,
/// restarted) goes on from the stored counts, key by key, instead of from
/// zero, so the limit stays exact; a new window starts every key at zero,
/// in memory and in storage. Storage is a Map here, as the object sees it
/// (gets and the window reset awaited, counts written without awaiting).
/// It lends at most what is left, at most an eighth of it (one when fewer
/// than 16 are left), and nothing once the limit is reached; `hit`, which
/// Workers before leases call, still counts one. Counts given back leave
/// the key's count, in the lending window only. An object whose clock is
/// behind the stored window lends nothing and keeps that window's counts.
#[test]
fn rate_limit_object_keeps_exact_counts_across_a_restart() {
    let ir = with_upstream_a(
        r#"
  main: { upstream: a, policies: [{ rate-limit: { requests: 5, per: 1m } }], routes: { all: { path: /* } } }
"#,
    );
    let script = FAKE_STORAGE.to_string()
        + r#"
let now = 60000 * 20 + 5000;
Date.now = () => now;
(async () => {
  const out = [];
  const lend = async (o, key, limit, want) => {
    const [grant, n, left] = (await o.lease(key, 60000, limit, want)).split(" ");
    out.push(grant + ":" + n + "/" + left);
  };
  const a = new GatefoldRateLimit({ storage }, {});
  await lend(a, "i:1", 5, 1); await lend(a, "i:1", 5, 1); await lend(a, "i:1", 5, 1); await lend(a, "i:2", 5, 1);
  const b = new GatefoldRateLimit({ storage }, {});
  now += 1000;
  await lend(b, "i:1", 5, 1); await lend(b, "i:2", 5, 1); await lend(b, "i:3", 5, 1);
  await lend(b, "i:1", 5, 1); await lend(b, "i:1", 5, 1);
  out.push("|");
  await lend(b, "i:4", 100, 64); await lend(b, "i:4", 100, 64); await lend(b, "i:4", 100, 3);
  await lend(b, "i:5", 10, 5); await lend(b, "i:5", 10, 5);
  out.push("|");
  now += 60000;
  await lend(b, "i:1", 5, 1);
  const c = new GatefoldRateLimit({ storage }, {});
  await lend(c, "i:1", 5, 1); await lend(c, "i:2", 5, 1);
  out.push("hit:" + (await c.hit("i:2", 60000)));
  out.push("back:" + (await c.giveBack("i:1", 60000, 20, 1)) + " back:" + (await c.giveBack("i:1", 60000, 21, 5)));
  await lend(c, "i:1", 5, 1);
  out.push("|");
  const d = new GatefoldRateLimit({ storage }, {});
  now -= 60000;
  await lend(d, "i:1", 5, 1);
  now += 60000;
  await lend(d, "i:1", 5, 1);
  console.log(out.join(" "));
  console.log([...store.keys()].sort().join(" "));
})();
"#;
    let got = node_eval(&file(&ir, WORKER), &script);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "1:1/55000 1:2/55000 1:3/55000 1:1/55000 1:4/54000 1:2/54000 1:1/54000 1:5/54000 0:5/54000 \
             | 12:12/54000 11:23/54000 3:26/54000 1:1/54000 1:2/54000 \
             | 1:1/54000 1:2/54000 1:1/54000 hit:2 54000 back:0 back:2 1:1/54000 \
             | 0:5/54000 1:2/54000",
            "k:i:1 k:i:2 window",
        ]
    );
}

/// The Worker's side of the rate limit: a busy isolate borrows counts in
/// growing loans (one call to the object for many requests) and spends them
/// one per request; the `x-ratelimit-remaining` values run down one by one
/// as the reference's do, exactly `requests` pass, and once the object has
/// none left the refusals need no call for a moment. Concurrent requests
/// each borrow their own counts: exactly the limit passes too. Counts
/// given back are lent again, and an isolate that stops spending gives its
/// unspent counts back. A loan is twice the last when that went within
/// 100 ms, as large within a second, else half. A loan never answered
/// stops counting as under way after 2 s; an answer of a window already
/// over is asked again. Past `keysMax` distinct keys in a window, the
/// object counts new keys together.
#[test]
fn rate_limit_worker_spends_lent_counts_and_admits_exactly_the_limit() {
    let ir = with_upstream_a(
        r#"
  main: { upstream: a, policies: [{ rate-limit: { requests: 200, per: 1m } }], routes: { all: { path: /* } } }
  other: { upstream: a, policies: [{ rate-limit: { requests: 7, per: 1m } }], routes: { all: { path: /o/* } } }
  idle: { upstream: a, policies: [{ rate-limit: { requests: 1000, per: 1m } }], routes: { all: { path: /i/* } } }
"#,
    );
    let script = with_fake_objects(
        r#"
let t = 60000 * 30 + 1000;
Date.now = () => t;
(async () => {
  const r = R.find((x) => x.id === "main.all").rate;
  const seen = [];
  for (let i = 0; i < 230; i++) seen.push(await one(r, "10.0.0.1"));
  const passed = seen.filter((s) => s.startsWith("200:")).length;
  const remaining = seen.slice(0, 200).map((s) => s.split(":")[1]).join(",");
  const expected = Array.from({ length: 200 }, (_, i) => String(199 - i)).join(",");
  console.log("passed " + passed + " in order " + (remaining === expected));
  console.log("refused " + seen.slice(200).filter((s) => s === "429:0:59").length);
  console.log("calls " + calls);
  const before = calls;
  await one(r, "10.0.0.1");
  console.log("refusal calls " + (calls - before));
  const o = R.find((x) => x.id === "other.all").rate;
  const all = await Promise.all(Array.from({ length: 30 }, () => one(o, "10.0.0.2")));
  console.log("concurrent passed " + all.filter((s) => s.startsWith("200:")).length + " remaining " +
    all.filter((s) => s.startsWith("200:")).map((s) => s.split(":")[1]).sort().join(","));
  // Counts another isolate gives back are lent again once the refusals
  // that needed no call are over.
  const refusedAfter = await one(o, "10.0.0.2");
  await objects.get(rateLimitObject(o, ns)).giveBack("i:10.0.0.2", 60000, Math.floor(t / 60000), 2);
  const early = calls;
  const held = await one(o, "10.0.0.2");
  const heldCalls = calls - early;
  t += 600;
  const again = await one(o, "10.0.0.2");
  console.log("given back: " + refusedAfter.split(":")[0] + ", " + held.split(":")[0] + " with " + heldCalls + " calls, then " + again.split(":")[0]);
  // An isolate that stops spending gives its unspent counts back.
  const pending = [];
  const ctx = { waitUntil: (p) => pending.push(p) };
  const i = R.find((x) => x.id === "idle.all").rate;
  for (let k = 0; k < 20; k++) await one(i, "10.0.0.3", ctx);
  const lent = store.get("k:i:10.0.0.3");
  t += 1000;
  await Promise.all(pending);
  console.log("lent " + (lent > 20) + " after idle " + store.get("k:i:10.0.0.3"));
  console.log("next " + (await one(i, "10.0.0.3", ctx)));
  // An isolate that spent its last loan within a second asks for as many
  // again, after longer for one.
  const counted = async () => (await objects.get(rateLimitObject(i, ns)).lease("i:10.0.0.4", 60000, 1000, 0)).split(" ")[1];
  for (let k = 0; k < 3; k++) await one(i, "10.0.0.4");
  t += 500;
  await one(i, "10.0.0.4");
  const steady = await counted();
  t += 1500;
  await one(i, "10.0.0.4");
  await one(i, "10.0.0.4");
  console.log("steady " + steady + " " + (await counted()));
  // A sized loan never answered (its request cancelled) stops holding the
  // others back after a while; the requests that found none meanwhile
  // make the next loan larger.
  const counted6 = async () => (await objects.get(rateLimitObject(i, ns)).lease("i:10.0.0.6", 60000, 1000, 0)).split(" ")[1];
  await one(i, "10.0.0.6");
  hang = true;
  one(i, "10.0.0.6");
  const meanwhile = await one(i, "10.0.0.6");
  t += 2500;
  await one(i, "10.0.0.6");
  await one(i, "10.0.0.6");
  const c0 = calls;
  const fifth = await one(i, "10.0.0.6");
  console.log("lost ask: " + meanwhile.split(":")[0] + " " + fifth.split(":")[0] + " calls " + (calls - c0) + " count " + (await counted6()));
  // An answer of the window before, arriving after this isolate has a
  // lease of the next one with none left, is asked again.
  t = 60000 * 32 - 10;
  let open;
  gate = new Promise((ok) => { open = ok; });
  const a = one(i, "10.0.0.7");
  gate = null;
  t = 60000 * 32 + 10;
  const b = await one(i, "10.0.0.7");
  open();
  console.log("straddle: " + (await a).split(":")[0] + " " + b.split(":")[0]);
  // Past keysMax distinct keys in a window, new keys share one count.
  const e = new GatefoldRateLimit({ storage }, {});
  e.keysMax = 2;
  const loans = [];
  for (const k of ["t:a", "t:b", "t:c", "t:d", "t:a"]) {
    const [grant, n] = (await e.lease(k, 60000, 5, 1)).split(" ");
    loans.push(grant + ":" + n);
  }
  const shared = store.get("k:o");
  const back = await e.giveBack("t:d", 60000, Math.floor(t / 60000), 1);
  console.log("overflow: " + loans.join(" ") + " shared " + shared + " back " + back + " " + store.get("k:o"));
})();
"#,
    );
    let got = node_eval(&file(&ir, WORKER), &script);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "passed 200 in order true", "{got}");
    assert_eq!(lines[1], "refused 30", "{got}");
    let calls: usize = lines[2].strip_prefix("calls ").unwrap().parse().unwrap();
    assert!(
        (2..=60).contains(&calls),
        "230 requests took {calls} calls to the object: {got}"
    );
    assert_eq!(lines[3], "refusal calls 0", "{got}");
    assert_eq!(
        lines[4], "concurrent passed 7 remaining 0,1,2,3,4,5,6",
        "{got}"
    );
    assert_eq!(
        lines[5], "given back: 429, 429 with 0 calls, then 200",
        "{got}"
    );
    assert_eq!(lines[6], "lent true after idle 20", "{got}");
    assert_eq!(lines[7], "next 200:979:58", "{got}");
    assert_eq!(lines[8], "steady 5 6", "{got}");
    assert_eq!(lines[9], "lost ask: 200 200 calls 0 count 5", "{got}");
    assert_eq!(lines[10], "straddle: 200 200", "{got}");
    assert_eq!(
        lines[11], "overflow: 1:1 1:1 1:1 1:2 1:2 shared 2 back 1 1",
        "{got}"
    );
}

/// A busy isolate whose object answers only after a round trip (5 ms
/// here, a request every millisecond) asks for its next loan before it
/// runs out, in the background: its requests seldom wait for the object,
/// and it calls it far less than once per request. What it did not spend
/// goes back once it is idle: the object's count is what was admitted.
#[test]
fn rate_limit_busy_isolate_borrows_ahead_of_need() {
    let ir = with_upstream_a(
        r#"
  main: { upstream: a, policies: [{ rate-limit: { requests: 100000, per: 1h } }], routes: { all: { path: /* } } }
"#,
    );
    let script = with_fake_objects(
        r#"
delayMs = 5;
(async () => {
  const r = R.find((x) => x.id === "main.all").rate;
  const pending = [];
  const ctx = { waitUntil: (p) => pending.push(p) };
  const answers = [];
  for (let i = 0; i < 400; i++) {
    answers.push(one(r, "10.0.0.9", ctx));
    await new Promise((ok) => setTimeout(ok, 1));
  }
  const got = await Promise.all(answers);
  while (pending.length > 0) await pending.shift();
  const o = objects.get(rateLimitObject(r, ns));
  console.log(got.filter((s) => s.startsWith("200:")).length + " " + calls + " " + (await o.lease("i:10.0.0.9", r.per, r.requests, 0)).split(" ")[1]);
})();
"#,
    );
    let got = node_eval(&file(&ir, WORKER), &script);
    let [passed, calls, count] = got
        .split_whitespace()
        .map(|n| n.parse::<u32>().unwrap())
        .collect::<Vec<_>>()[..]
    else {
        panic!("{got}")
    };
    assert_eq!((passed, count), (400, 400), "{got}");
    assert!(
        calls <= 60,
        "400 requests took {calls} calls to the object: {got}"
    );
}

/// A spec with `cache` (and a consumer) for the cache tests below.
const CACHED: &str = r#"
gatefold: 1
upstreams:
  a: { targets: [{ url: "http://127.0.0.1:9001" }] }
apis:
  main:
    upstream: a
    policies: [{ cache: { ttl: 2s, vary: [accept-language] } }]
    routes: { all: { path: /* } }
"#;

/// The Cache API as the Worker uses it, against a stand-in of
/// `caches.default` (a Map keyed by URL): the key holds the method, the
/// host (any case), the path and query as received, the consumer and the
/// `vary` headers; only storable 200s are put, as a copy whose only cache
/// header is the ttl, and a hit gives back the upstream's own headers
/// and body until the ttl ends.
#[test]
fn cache_keys_store_and_serve_as_the_spec_says() {
    let ir = compile(CACHED);
    let js = file(&ir, WORKER);
    assert!(js.contains("function cacheKey(") && !js.contains("function mirrorCopy("));
    assert!(js.contains("if (route.cache) return late(await cached(") && !js.contains("//@"));
    node_check(&js);
    let script = r#"
const store = new Map();
globalThis.caches = { default: {
  put: async (k, r) => { store.set(k.url, { status: r.status, headers: [...r.headers], body: new Uint8Array(await r.arrayBuffer()) }); },
  match: async (k) => { const e = store.get(k.url); return e ? new Response(e.body, { status: e.status, headers: e.headers }) : undefined; },
} };
let now = 1000000;
Date.now = () => now;
const c = P0;
const req = (m, url, h) => new Request(url, { method: m, headers: h || {} });
const S = (host, raw, query, consumer) => ({ host, rawPath: raw, query, consumer: consumer || null, ctx: { waitUntil: (p) => pending.push(p) } });
let pending = [];
(async () => {
  const out = [];
  const key = async (m, url, h, s) => { const k = await cacheKey(c, req(m, url, h), s); return k === null ? "null" : k.url; };
  const base = await key("GET", "http://a.test/x?y=1", {}, S("a.test", "/x", "y=1"));
  out.push(base.startsWith("http://a.test/.gatefold-cache/") && base.length === "http://a.test/.gatefold-cache/".length + 64);
  out.push(base === await key("GET", "http://a.test/x?y=1", {}, S("A.Test", "/x", "y=1")));
  const others = [
    await key("HEAD", "http://a.test/x?y=1", {}, S("a.test", "/x", "y=1")),
    await key("GET", "http://a.test/x?y=2", {}, S("a.test", "/x", "y=2")),
    await key("GET", "http://a.test//x?y=1", {}, S("a.test", "//x", "y=1")),
    await key("GET", "http://b.test/x?y=1", {}, S("b.test", "/x", "y=1")),
    await key("GET", "http://a.test/x?y=1", {}, S("a.test", "/x", "y=1", "acme")),
    await key("GET", "http://a.test/x?y=1", { "accept-language": "fr" }, S("a.test", "/x", "y=1")),
  ];
  out.push(new Set([base, ...others]).size === 7);
  out.push(await key("GET", "http://a.test/x?y=1", { "cache-control": "no-cache", "x-other": "1" }, S("a.test", "/x", "y=1")) === base);
  out.push(await key("POST", "http://a.test/x?y=1", {}, S("a.test", "/x", "y=1")));
  // Stored: a 200 whose own headers say not to keep it at all.
  const s = S("a.test", "/x", "y=1");
  const k = await cacheKey(c, req("GET", "http://a.test/x?y=1"), s);
  out.push(String(await cacheLookup(k)));
  const up = new Response("hello", { status: 200, headers: { "cache-control": "max-age=0", expires: "Thu, 01 Jan 1970 00:00:00 GMT", etag: '"e1"', "x-a": "é1" } });
  const passed = cacheStore(c, k, up, s);
  out.push(await passed.text());
  await Promise.all(pending);
  const [stored] = store.values();
  out.push(stored.headers.map(([n]) => n).sort().join(","));
  out.push(stored.headers.find(([n]) => n === "cache-control")[1]);
  const hit = await cacheLookup(k);
  out.push(hit.status + " " + [...hit.headers].map(([n, v]) => n + "=" + v).join(";") + " " + (await hit.text()));
  now += 1999;
  out.push(String((await cacheLookup(k)) !== null));
  now += 1;
  out.push(String(await cacheLookup(k)));
  // Not stored: set-cookie, no-store, private (in a list, any case), a non-200.
  store.clear();
  pending = [];
  for (const [status, headers] of [[200, { "set-cookie": "a=1" }], [200, { "cache-control": "no-store" }], [200, { "cache-control": "public, Private" }], [500, {}], [404, {}]]) {
    const r = cacheStore(c, k, new Response("x", { status, headers }), s);
    await r.text();
  }
  await Promise.all(pending);
  out.push("stored " + store.size);
  // A body over 1 MiB goes to the client whole and is not stored.
  const big = cacheStore(c, k, new Response(new Uint8Array((1 << 20) + 1)), s);
  out.push((await big.arrayBuffer()).byteLength);
  await Promise.all(pending);
  out.push("stored " + store.size);
  // HEAD: no body, stored with its headers.
  const kh = await cacheKey(c, req("HEAD", "http://a.test/h"), S("a.test", "/h", null));
  cacheStore(c, kh, new Response(null, { status: 200, headers: { "x-h": "1" } }), s);
  await Promise.all(pending);
  const head = await cacheLookup(kh);
  out.push(head.headers.get("x-h"));
  console.log(out.join("\n"));
})();
"#;
    let got = node_eval(&js, script);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "true",
            "true",
            "true",
            "true",
            "null",
            "null",
            "hello",
            "cache-control,x-gatefold-expires,x-gatefold-headers",
            "public, max-age=2",
            // (A Response made from a string gets a content-type.)
            "200 cache-control=max-age=0;content-type=text/plain;charset=UTF-8;etag=\"e1\";expires=Thu, 01 Jan 1970 00:00:00 GMT;x-a=é1 hello",
            "true",
            "null",
            "stored 0",
            "1048577",
            "stored 0",
            "1",
        ]
    );
}

/// The cache service of config.capnp (workerd's `cacheApiOutbound`), as
/// workerd calls it: a PUT of the serialized response (with a length or
/// chunked) is kept for its cache-control lifetime (s-maxage first) and
/// answered to a GET with `cf-cache-status: HIT`, else MISS; set-cookie,
/// no-store, private or no lifetime is not stored (413); namespaces
/// (`caches.open`) are apart; PURGE deletes.
#[test]
fn workerd_cache_service_keeps_entries_for_their_lifetime() {
    use gatefold_target_cloudflare::CACHE_SERVICE;
    let ir = compile(CACHED);
    let capnp = file(&ir, CAPNP);
    assert!(capnp.contains("cacheApiOutbound = \"cache\""), "{capnp}");
    assert!(
        capnp.contains("esModule = embed \"workerd-cache.js\""),
        "{capnp}"
    );
    let module = file(&ir, CACHE_SERVICE);
    node_check(&module);
    let program = module.replace("export default {", "const service = {")
        + r#"
let now = 5000;
Date.now = () => now;
const putIn = (url, text, ns) => service.fetch(new Request(url, { method: "PUT", body: text, headers: ns ? { "cf-cache-namespace": ns } : {} })).then((r) => r.status);
const get = async (url, ns) => {
  const r = await service.fetch(new Request(url, { headers: ns ? { "cf-cache-namespace": ns } : {} }));
  return r.headers.get("cf-cache-status") + " " + r.status + (r.headers.get("cf-cache-status") === "HIT" ? " " + r.headers.get("x-a") + " " + (await r.text()) : "");
};
(async () => {
  const out = [];
  out.push(await putIn("http://k/1", "HTTP/1.1 200 OK\r\ncache-control: public, max-age=2\r\nx-a: 1\r\ncontent-length: 5\r\n\r\nhello"));
  out.push(await get("http://k/1"));
  out.push(await get("http://k/1", "other"));
  out.push(await putIn("http://k/2", "HTTP/1.1 200 OK\r\ncache-control: max-age=100, s-maxage=1\r\ntransfer-encoding: chunked\r\nx-a: 2\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  out.push(await get("http://k/2"));
  for (const h of ["set-cookie: a=1\r\ncache-control: max-age=9", "cache-control: no-store, max-age=9", "cache-control: private, max-age=9", "x-a: 3"]) {
    out.push(await putIn("http://k/3", "HTTP/1.1 200 OK\r\n" + h + "\r\n\r\nx"));
  }
  out.push(await get("http://k/3"));
  now += 1000;
  out.push(await get("http://k/1") + " | " + await get("http://k/2"));
  now += 1000;
  out.push(await get("http://k/1"));
  await putIn("http://k/4", "HTTP/1.1 200 OK\r\ncache-control: max-age=9\r\n\r\n");
  const purge = () => service.fetch(new Request("http://k/4", { method: "PURGE" })).then((r) => r.status);
  out.push((await purge()) + " " + (await purge()) + " " + (await get("http://k/4")));
  console.log(out.join("\n"));
})();
"#;
    let out = Command::new("node")
        .args(["--input-type=module", "-e", &program])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        [
            "204",
            "HIT 200 1 hello",
            "MISS 504",
            "204",
            "HIT 200 2 abcde",
            "413",
            "413",
            "413",
            "413",
            "MISS 504",
            "HIT 200 1 hello | MISS 504",
            "MISS 504",
            "200 404 MISS 504",
        ]
    );
}

/// mirror: a copy of the upstream request (method, path and query after
/// phase 10, headers, body) to a target of the mirror upstream with that
/// target's host, under ctx.waitUntil; percent 0 sends none, and no more
/// than 64 copies per policy are under way (further ones are skipped).
#[test]
fn mirror_copies_the_upstream_request_within_its_bounds() {
    let ir = compile(
        r#"
gatefold: 1
upstreams:
  a: { targets: [{ url: "http://127.0.0.1:9001" }] }
  shadow: { targets: [{ url: "http://127.0.0.1:9002" }], timeouts: { connect: 1s, read: 2s } }
apis:
  main:
    upstream: a
    policies: [{ mirror: { upstream: shadow } }]
    routes: { all: { path: /* } }
"#,
    );
    let js = file(&ir, WORKER);
    assert!(js.contains("function mirrorCopy(") && !js.contains("function cacheKey("));
    assert!(js.contains("if (route.mirror) mirrorCopy(") && !js.contains("route.cache"));
    assert!(
        js.contains(r#""timeout":3000"#),
        "connect + read of the shadow"
    );
    node_check(&js);
    let script = r#"
const sent = [];
let answer = () => new Promise(() => {});
globalThis.fetch = (url, init) => { sent.push([init.method, url, init.headers.get("host"), init.headers.get("x-b"), init.body === null ? "-" : init.body.byteLength]); return answer(); };
const waited = [];
const S = { ctx: { waitUntil: (p) => waited.push(p) } };
const m = P0;
const h = new Headers({ "x-b": "1" });
mirrorCopy(m, "POST", "/p?q=1", h, new Uint8Array(3), S);
h.set("x-b", "changed after");
mirrorCopy({ ...m, percent: 0 }, "GET", "/none", h, null, S);
mirrorCopy(m, "GET", "/g", new Headers({ host: "set.by.phase10" }), null, S);
for (let i = 0; i < 70; i++) mirrorCopy(m, "GET", "/n" + i, new Headers(), null, S);
console.log(sent.slice(0, 2).map((s) => s.join(" ")).join("\n"));
console.log(sent.length + " " + waited.length);
"#;
    let got = node_eval(&js, script);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "POST http://127.0.0.1:9002/p?q=1 127.0.0.1:9002 1 3",
            "GET http://127.0.0.1:9002/g set.by.phase10  -",
            "64 64",
        ]
    );
}
