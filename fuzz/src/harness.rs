//! The fuzz harness body and the YAML-aware mutator, shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/`) and by the plain test
//! `compiler/tests/fuzz_smoke.rs`, which includes this file with `#[path]`.
//! It therefore depends on nothing but std and `gatefold_compiler`.

use gatefold_compiler::ir::ValidIr;

/// The seed specs, committed under `fuzz/seeds/`: every example, one with the
/// YAML features the loader handles, and a small synthetic spec.
pub const SEEDS: &[(&str, &str)] = &[
    ("quickstart", include_str!("../seeds/quickstart.yaml")),
    ("petstore", include_str!("../seeds/petstore.yaml")),
    ("kitchen-sink", include_str!("../seeds/kitchen-sink.yaml")),
    ("yaml-features", include_str!("../seeds/yaml-features.yaml")),
    ("synth", include_str!("../seeds/synth.yaml")),
];

/// The property every input must have: compiling it, rendering its
/// diagnostics (text and JSON) and, when it compiles, writing the IR and
/// reading it back, never panics; the IR read back is the IR written.
/// Also: compiling it again gives the same IR (hash included) and the same
/// diagnostics, and every diagnostic has a place in the file and a help.
pub fn check(text: &str) {
    let compiled = gatefold_compiler::compile_str("fuzz.yaml", text);
    let rendered = compiled.render();
    let _ = compiled.diagnostics.to_json(&compiled.sources);
    if compiled.ir.is_none() {
        assert!(
            compiled.diagnostics.has_errors(),
            "no IR and no error to say why"
        );
    }
    for d in compiled.diagnostics.iter() {
        assert!(d.span.is_some(), "[{}] {} has no place", d.code, d.message);
        assert!(d.help.is_some(), "[{}] {} has no help", d.code, d.message);
    }
    if let Some(ir) = &compiled.ir {
        let json = ir.to_json();
        let back = ValidIr::from_json(&json)
            .unwrap_or_else(|e| panic!("the IR does not read back: {e}\n{json}"));
        assert!(back == *ir, "the IR read back differs from the one written");
    }
    let again = gatefold_compiler::compile_str("fuzz.yaml", text);
    match (&compiled.ir, &again.ir) {
        (Some(a), Some(b)) => {
            assert_eq!(a.hash, b.hash, "a second compilation gives another hash");
            assert!(a == b, "a second compilation gives another IR");
        }
        (None, None) => {}
        _ => panic!("one compilation gives an IR, the other does not"),
    }
    assert_eq!(
        rendered,
        again.render(),
        "a second compilation gives other diagnostics"
    );
}

/// Bytes as a spec file: invalid UTF-8 is replaced, as an editor would show it.
pub fn check_bytes(data: &[u8]) {
    check(&String::from_utf8_lossy(data));
}

/// Where the mutator's choices come from: libFuzzer's bytes in the fuzz
/// target, a fixed PRNG in the smoke test.
pub trait Choose {
    /// A number in `0..n`; `n` is never 0.
    fn below(&mut self, n: usize) -> usize;

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// xorshift64: the smoke test's source of choices (no dependencies).
pub struct XorShift(pub u64);

impl Choose for XorShift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n as u64) as usize
    }
}

/// Keys the language knows, to put where other keys were.
const KEYS: &[&str] = &[
    "gatefold",
    "gateway",
    "upstreams",
    "consumers",
    "policies",
    "apis",
    "name",
    "listen",
    "baseline",
    "request-id",
    "max-body",
    "timeouts",
    "server-header",
    "connect",
    "read",
    "targets",
    "url",
    "weight",
    "balance",
    "health",
    "path",
    "interval",
    "timeout",
    "unhealthy-after",
    "healthy-after",
    "retries",
    "attempts",
    "on",
    "groups",
    "credentials",
    "key",
    "keys",
    "basic",
    "user",
    "password",
    "env",
    "file",
    "hosts",
    "base-path",
    "strip-base-path",
    "upstream",
    "disable",
    "routes",
    "methods",
    "key-auth",
    "basic-auth",
    "jwt",
    "acl",
    "ip-filter",
    "cors",
    "rate-limit",
    "request-size-limit",
    "request-headers",
    "response-headers",
    "rewrite",
    "redirect",
    "mock",
    "retry",
    "traffic-split",
    "mirror",
    "deprecation",
    "cache",
    "script",
    "native",
    "in",
    "realm",
    "algorithms",
    "secret",
    "public-key",
    "issuer",
    "audiences",
    "consumer-claim",
    "claims-to-headers",
    "leeway",
    "allow",
    "deny",
    "origins",
    "headers",
    "expose",
    "max-age",
    "requests",
    "per",
    "max",
    "set",
    "add",
    "remove",
    "strip-prefix",
    "add-prefix",
    "to",
    "status",
    "scheme",
    "replace-prefix",
    "percent",
    "body",
    "json",
    "header-match",
    "value",
    "since",
    "sunset",
    "link",
    "ttl",
    "vary",
    "request",
    "response",
    "kong",
    "nginx",
    "envoy",
    "cloudflare",
    "reference",
    "<<",
    "? complex",
    "\"quoted\"",
    "''",
    "x",
    "",
];

/// Values at the edges of what the language accepts, and YAML oddities.
const VALUES: &[&str] = &[
    "",
    "~",
    "null",
    "true",
    "false",
    "yes",
    "on",
    "0",
    "1",
    "-1",
    "65535",
    "65536",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "0x7fffffffffffffff",
    "0o777",
    "1e400",
    "-.inf",
    ".nan",
    "0.1",
    "1.5s",
    "0s",
    "0ms",
    "1ms",
    "999999999999h",
    "18446744073709551615ms",
    "1TiB",
    "1025GiB",
    "0B",
    "1MiB",
    "/",
    "//",
    "/*",
    "/a/*",
    "\"/{id}\"",
    "\"/{id}/{id}\"",
    "\"/{a}/*\"",
    "/a/../b",
    "\"/%zz\"",
    "/é",
    "\"{x}\"",
    "http://[::1]:0",
    "https://a:65535",
    "http://a/b",
    "http://-bad-.com",
    "http://[::1",
    "203.0.113.7/8",
    "::/0",
    "10.0.0.0/33",
    "\"*\"",
    "\"*.\"",
    "\"*.*.x\"",
    "A.EXAMPLE.COM",
    "GET",
    "get",
    "HEAD",
    "[GET, GET]",
    "[]",
    "{}",
    "[[]]",
    "{ a: 1 }",
    "[{}]",
    "[{ a: [] }]",
    "{ env: A }",
    "{ env: 1A }",
    "{ env: '' }",
    "{ file: /dev/null }",
    "{ file: ../../etc }",
    "&a x",
    "*a",
    "*undefined",
    "&a { k: v }",
    "!!str",
    "!!int x",
    "!!map {}",
    "!unknown x",
    "'single'",
    "\"double \\u0000 nul\"",
    "\"\\x85\"",
    "|",
    ">-",
    "|+\n",
    "\"a\nb\"",
    "\"2026-02-29\"",
    "\"2024-02-29\"",
    "\"0000-01-01\"",
    "\"9999-12-31\"",
    "\"2026-13-01\"",
    "header:x-a",
    "header:",
    "hash-header:",
    "hash-header:x y",
    "consumer",
    "global",
    "ip",
    "[connect-failure, timeout, 500, 502, 503, 504]",
    "[HS256, RS256]",
    "[HS256]",
    "[ES256]",
    "\"req.setHeader('a', 'b');\"",
    "{ upstream: nowhere, weight: 0 }",
    "x-api-key",
    "connection",
    "content-length",
    "\"a\\tb\"",
    "\"\\u202e\"",
    "\u{feff}",
    "\u{10ffff}",
];

/// Fragments of YAML to insert as whole lines, indented like a nearby line.
const SNIPPETS: &[&str] = &[
    "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g]",
    "m: &m { k1: 1, k2: 2 }\nn: { <<: [*m, *m], k1: 3 }",
    "<<: { path: /merged }",
    "<<: [1, 2]",
    "<<: *nope",
    "---\ngatefold: 1",
    "? [complex, key]\n: value",
    "? { a: 1 }\n: value",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "k: {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
    "- &x\n- *x",
    "dup: 1\ndup: 2",
    "!!binary aGVsbG8=",
    "%TAG ! tag:example.com,2000:",
    "key: \"unterminated",
    "\t tab: indented",
    "routes: { r: { path: /r } }",
    "policies: [{ mock: {} }, { redirect: { to: / } }]",
    "policies: [missing, { rate-limit: { requests: 1, per: 1s, key: consumer } }, { acl: { allow: [nobody] } }]",
    "disable: [mock, mock, not-a-kind]",
    "upstream: &u nowhere\nhosts: [*u]",
];

/// A few structure-aware edits of `text`; `other` is a second seed to splice
/// lines from.
pub fn mutate(text: &str, other: &str, c: &mut impl Choose) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let donors: Vec<&str> = other.lines().collect();
    let edits = 1 + c.below(4);
    for _ in 0..edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = c.below(lines.len());
        // Edits that keep the YAML well-formed come first and most often, so
        // that most inputs reach the decoder, resolver and validator.
        match c.below(20) {
            0..=3 => {
                let i = value_line(&lines, i);
                set_value(&mut lines[i], c.pick(VALUES));
            }
            4 | 5 => set_key(&mut lines[i], c.pick(KEYS)),
            6 | 7 => {
                // Move a value from one line to another.
                let i = value_line(&lines, i);
                let j = c.below(lines.len());
                if let Some(v) = value_of(&lines[j]).map(str::to_string) {
                    set_value(&mut lines[i], &v);
                }
            }
            8 => {
                lines.remove(i);
            }
            9 => {
                // Copy a line to another place at the same indentation.
                let line = lines[i].clone();
                let j = same_indent(&lines, &lines[i], c.below(lines.len()));
                lines.insert(j, line);
            }
            10 => {
                let j = same_indent(&lines, &lines[i], c.below(lines.len()));
                lines.swap(i, j);
            }
            11 => {
                // A line of the other seed, where this seed has a line
                // indented the same.
                if !donors.is_empty() {
                    let line = donors[c.below(donors.len())];
                    let j = same_indent(&lines, line, c.below(lines.len()));
                    lines.insert(j, line.to_string());
                }
            }
            12 | 13 => {
                // Anchor a value and alias it elsewhere (or merge it in).
                let i = value_line(&lines, i);
                let n = c.below(3);
                if let Some(v) = value_of(&lines[i]).map(str::to_string) {
                    set_value(&mut lines[i], &format!("&r{n} {v}"));
                    // Aliases must come after their anchor.
                    let j = i + 1 + c.below(lines.len() - i);
                    if j < lines.len() && c.below(3) == 0 {
                        let indent = indent_of(&lines[j]);
                        lines.insert(j, format!("{indent}<<: *r{n}"));
                    } else if j < lines.len() {
                        let j = value_line(&lines, j);
                        if j > i {
                            set_value(&mut lines[j], &format!("*r{n}"));
                        }
                    }
                }
            }
            14 => {
                // Repeat a line many times: wide mappings and lists.
                let line = lines[i].clone();
                let times = 1 + c.below(64);
                for k in 0..times {
                    lines.insert(i, line.replacen(':', &format!("{k}:"), 1));
                }
            }
            15 => {
                let indent = indent_of(&lines[i]);
                let snippet = c.pick(SNIPPETS);
                for (k, s) in snippet.lines().enumerate() {
                    lines.insert(i + k, format!("{indent}{s}"));
                }
            }
            16 => {
                let line = &mut lines[i];
                match c.below(4) {
                    0 => line.insert_str(0, "  "),
                    1 => line.insert(0, ' '),
                    2 => line.insert(0, '\t'),
                    _ => {
                        let trimmed = line.trim_start_matches(' ');
                        let cut = (line.len() - trimmed.len()).min(2);
                        line.drain(..cut);
                    }
                }
            }
            17 => {
                let ch = c.pick(&[
                    ":", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!", "|", ">", "'", "\"", "#",
                    "%", "@", "`", "?", "\t", "\\", "\0", "\r", "é", "\u{feff}", "\u{2028}",
                ]);
                let line = &mut lines[i];
                let at = char_boundary(line, c.below(line.len() + 1));
                line.insert_str(at, ch);
            }
            18 => {
                let line = &mut lines[i];
                let at = char_boundary(line, c.below(line.len() + 1));
                line.truncate(at);
            }
            _ => {
                // Turn a block into one flow line, or cut the document short.
                if c.below(2) == 0 {
                    lines.truncate(i + 1);
                } else {
                    let end = (i + 1 + c.below(8)).min(lines.len());
                    let joined = lines[i..end]
                        .iter()
                        .map(|l| l.trim())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let indent = indent_of(&lines[i]);
                    lines.splice(i..end, [format!("{indent}{{ {joined} }}")]);
                }
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The first line from `i` on (wrapping around) indented like `like`.
fn same_indent(lines: &[String], like: &str, i: usize) -> usize {
    let n = lines.len();
    let indent = indent_of(like);
    (0..n)
        .map(|k| (i + k) % n)
        .find(|&k| indent_of(&lines[k]) == indent)
        .unwrap_or(i)
}

/// The first line from `i` on (wrapping around) that holds a scalar value
/// (`key: value` or `- item`), so that replacing it keeps the YAML's shape.
fn value_line(lines: &[String], i: usize) -> usize {
    let n = lines.len();
    (0..n)
        .map(|k| (i + k) % n)
        .find(|&k| {
            let t = lines[k].trim_start();
            value_of(&lines[k]).is_some() || (t.starts_with("- ") && !t.ends_with(':'))
        })
        .unwrap_or(i)
}

fn char_boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn indent_of(line: &str) -> String {
    let body = line.trim_start_matches([' ', '-']);
    " ".repeat(line.len() - body.len())
}

/// Where a line's `key:` ends (after `: ` or a final `:`).
fn colon(line: &str) -> Option<usize> {
    line.find(": ")
        .map(|i| i + 2)
        .or_else(|| line.ends_with(':').then_some(line.len()))
}

fn value_of(line: &str) -> Option<&str> {
    let at = colon(line)?;
    let v = line[at..].trim();
    (!v.is_empty()).then_some(v)
}

fn set_value(line: &mut String, value: &str) {
    match colon(line) {
        Some(at) => {
            line.truncate(at);
            if !line.ends_with(' ') {
                line.push(' ');
            }
            line.push_str(value);
        }
        None => {
            // A list item or a bare scalar: replace what follows the indent.
            let indent = line.len() - line.trim_start_matches([' ', '-']).len();
            line.truncate(indent);
            line.push_str(value);
        }
    }
}

fn set_key(line: &mut String, key: &str) {
    let indent = line.len() - line.trim_start_matches([' ', '-']).len();
    let rest = match line.find(':') {
        Some(i) if i >= indent => line[i..].to_string(),
        _ => ": x".to_string(),
    };
    line.truncate(indent);
    line.push_str(key);
    line.push_str(&rest);
}
