//! `native: { nginx: { directives: [...] } }`: a checked subset of nginx
//! directives, written into the locations of the routes the policy covers.
//!
//! Verbatim nginx text would bypass every escaping rule and could undo what
//! the compiled configuration enforces (a `return`, an `allow`, a second
//! `proxy_pass`, a Lua block). So only directives that tune how a proxied
//! exchange is buffered, compressed and sent are accepted, each with its
//! arguments checked against the forms nginx documents for it. The words
//! that pass can neither quote, nor end a directive, nor open a block, nor
//! name a variable: the check is their escaping.

use gatefold_compiler::diag::{Diagnostic, Diagnostics};
use gatefold_compiler::ir::{Ir, Loc, Policy, PolicyId, PolicyKind, Route, TargetKind, ValidIr};
use gatefold_compiler::target::span_of;

use crate::model::{raw, Item};

/// The forms of arguments a directive takes.
#[derive(Clone, Copy, Debug)]
enum Args {
    /// `on` or `off`.
    OnOff,
    /// One size: `8k`, `1m`, `4096`.
    Size,
    /// A count and a size: `proxy_buffers 8 16k`.
    CountSize,
    /// `gzip_comp_level`: 1 to 9.
    Level,
    /// MIME types (`text/css`, `application/vnd.api+json`) or `*`.
    MimeTypes,
    /// `gzip_proxied`'s keywords.
    Proxied,
}

/// Every directive accepted, with its arguments. All are valid in a
/// `location` and change how bytes move, never which request is answered,
/// by whom, or with what status.
const ALLOWED: &[(&str, Args)] = &[
    ("chunked_transfer_encoding", Args::OnOff),
    ("gzip", Args::OnOff),
    ("gzip_buffers", Args::CountSize),
    ("gzip_comp_level", Args::Level),
    ("gzip_min_length", Args::Size),
    ("gzip_proxied", Args::Proxied),
    ("gzip_types", Args::MimeTypes),
    ("gzip_vary", Args::OnOff),
    ("limit_rate", Args::Size),
    ("limit_rate_after", Args::Size),
    ("postpone_output", Args::Size),
    ("proxy_buffer_size", Args::Size),
    ("proxy_buffering", Args::OnOff),
    ("proxy_buffers", Args::CountSize),
    ("proxy_busy_buffers_size", Args::Size),
    ("proxy_max_temp_file_size", Args::Size),
    ("proxy_request_buffering", Args::OnOff),
    ("proxy_socket_keepalive", Args::OnOff),
    ("proxy_temp_file_write_size", Args::Size),
    ("sendfile", Args::OnOff),
    ("tcp_nodelay", Args::OnOff),
    ("tcp_nopush", Args::OnOff),
];

const PROXIED: &[&str] = &[
    "off",
    "expired",
    "no-cache",
    "no-store",
    "private",
    "no_last_modified",
    "no_etag",
    "auth",
    "any",
];

/// One checked directive: its name and arguments, each a bare nginx word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    name: &'static str,
    args: Vec<String>,
}

impl Directive {
    fn item(&self) -> Item {
        let mut words = vec![raw(self.name)];
        words.extend(self.args.iter().map(raw));
        Item::d(words)
    }
}

/// Why an entry was refused, and what to write instead.
#[derive(Debug)]
struct Refusal {
    message: String,
    help: String,
}

fn refuse(message: impl Into<String>, help: impl Into<String>) -> Refusal {
    Refusal {
        message: message.into(),
        help: help.into(),
    }
}

fn allowed_names() -> String {
    ALLOWED
        .iter()
        .map(|(n, _)| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The directives of a `native` policy's `nginx` entry, or why not.
fn parse(value: &serde_json::Value) -> Result<Vec<Directive>, Refusal> {
    const SHAPE: &str = "write `nginx: { directives: [\"proxy_buffering off;\"] }`";
    let obj = value
        .as_object()
        .ok_or_else(|| refuse("the `nginx` entry of `native` is not a mapping", SHAPE))?;
    if let Some(key) = obj.keys().find(|k| *k != "directives") {
        return Err(refuse(
            format!("the `nginx` entry of `native` has an unknown key `{key}`"),
            SHAPE,
        ));
    }
    let list = obj
        .get("directives")
        .and_then(|d| d.as_array())
        .ok_or_else(|| refuse("`native` `nginx` needs a list `directives`", SHAPE))?;
    list.iter()
        .map(|d| {
            d.as_str()
                .ok_or_else(|| refuse("a `native` nginx directive is not a string", SHAPE))
                .and_then(directive)
        })
        .collect()
}

/// One directive as written: `name arg ...;`.
fn directive(text: &str) -> Result<Directive, Refusal> {
    const ONE: &str = "write one directive per list entry, as `name argument ...;`";
    let body = text.trim().strip_suffix(';').ok_or_else(|| {
        refuse(
            format!("nginx directive `{text}` does not end with `;`"),
            ONE,
        )
    })?;
    let mut words = body.split_ascii_whitespace();
    let name = words
        .next()
        .ok_or_else(|| refuse("an empty nginx directive", ONE))?;
    let args: Vec<String> = words.map(str::to_string).collect();
    let Some(&(name, form)) = ALLOWED.iter().find(|(n, _)| *n == name) else {
        return Err(refuse(
            format!(
                "nginx directive `{name}` is not in the subset gatefold writes verbatim (a directive outside it could change who is answered and how, past the compiled policies)"
            ),
            format!(
                "use a gatefold policy for it, or one of {}",
                allowed_names()
            ),
        ));
    };
    let bad = |what: &str| {
        refuse(
            format!("nginx directive `{}` has {what}", text.trim()),
            format!("`{name}` takes {}", form_text(form)),
        )
    };
    let size = |s: &str| {
        let digits = s.strip_suffix(['k', 'K', 'm', 'M']).unwrap_or(s);
        !digits.is_empty() && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit())
    };
    let ok = match form {
        Args::OnOff => matches!(args.as_slice(), [a] if a == "on" || a == "off"),
        Args::Size => matches!(args.as_slice(), [a] if size(a)),
        Args::CountSize => matches!(args.as_slice(),
            [n, s] if n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()) && n != "0" && size(s)),
        Args::Level => {
            matches!(args.as_slice(), [a] if matches!(a.as_str(), "1"|"2"|"3"|"4"|"5"|"6"|"7"|"8"|"9"))
        }
        Args::MimeTypes => !args.is_empty() && args.iter().all(|a| a == "*" || mime(a)),
        Args::Proxied => !args.is_empty() && args.iter().all(|a| PROXIED.contains(&a.as_str())),
    };
    if !ok {
        return Err(bad(
            "arguments nginx would not take or gatefold cannot check",
        ));
    }
    Ok(Directive { name, args })
}

/// `type/subtype` of RFC 6838's restricted-name characters.
fn mime(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 127
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#&-^_.+".contains(&b))
    };
    matches!(s.split_once('/'), Some((t, st)) if part(t) && part(st))
}

fn form_text(form: Args) -> &'static str {
    match form {
        Args::OnOff => "`on` or `off`",
        Args::Size => "one size, such as `16k`, `1m` or `4096`",
        Args::CountSize => "a count and a size, such as `8 16k`",
        Args::Level => "a level from 1 to 9",
        Args::MimeTypes => "MIME types such as `text/css application/json`, or `*`",
        Args::Proxied => "keywords among `off expired no-cache no-store private no_last_modified no_etag auth any`",
    }
}

fn nginx_entry(policy: &Policy) -> Option<&serde_json::Value> {
    match policy {
        Policy::Native(n) => n.per_target.get(&TargetKind::Nginx),
        _ => None,
    }
}

/// One error per `native` nginx entry that is not in the subset, and per
/// route where an accepted one would undo another policy.
pub fn refusals(ir: &ValidIr) -> Diagnostics {
    let mut out = Diagnostics::new();
    let mut error = |id: &PolicyId, r: Refusal| {
        let loc = ir.sources.policies.get(id).copied().unwrap_or(Loc::START);
        out.push(
            Diagnostic::error(
                "unsupported-feature",
                span_of(loc),
                format!("target `nginx`, policy `{id}`: {}", r.message),
            )
            .with_help(r.help),
        );
    };
    for (id, instance) in &ir.policies {
        if let Some(Err(r)) = nginx_entry(&instance.policy).map(parse) {
            error(id, r);
        }
    }
    // nginx stores nothing in proxy_cache from an unbuffered response: the
    // route's `cache` would silently never hit.
    for route in &ir.routes {
        if ir.policy(route, PolicyKind::Cache).is_none() {
            continue;
        }
        for (id, d) in of_route_with_ids(ir, route) {
            if d.name == "proxy_buffering" && d.args == ["off"] {
                error(
                    id,
                    refuse(
                        format!(
                            "`proxy_buffering off` on route `{}` would stop its `cache` from storing anything (nginx caches only buffered responses)",
                            route.id
                        ),
                        "leave `proxy_buffering` on for routes with `cache`, or take `cache` off the route",
                    ),
                );
            }
        }
    }
    out
}

fn of_route_with_ids<'a>(
    ir: &'a Ir,
    route: &'a Route,
) -> impl Iterator<Item = (&'a PolicyId, Directive)> + 'a {
    route
        .chain
        .iter()
        .filter(|id| id.kind == PolicyKind::Native)
        .filter_map(|id| Some((id, nginx_entry(&ir.policies.get(id)?.policy)?)))
        .flat_map(|(id, v)| {
            parse(v)
                .unwrap_or_default()
                .into_iter()
                .map(move |d| (id, d))
        })
}

/// The directives a route's location carries, in chain order. Entries that
/// do not parse were refused by [`refusals`] before emit.
pub fn items(ir: &Ir, route: &Route) -> Vec<Item> {
    of_route_with_ids(ir, route)
        .map(|(_, d)| d.item())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        let d = directive(s).unwrap_or_else(|r| panic!("{s}: {}", r.message));
        std::iter::once(d.name.to_string()).chain(d.args).collect()
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(ok("proxy_buffering off;"), ["proxy_buffering", "off"]);
        assert_eq!(
            ok("  proxy_buffers   8 16k ; "),
            ["proxy_buffers", "8", "16k"]
        );
        assert_eq!(ok("gzip_comp_level 5;"), ["gzip_comp_level", "5"]);
        assert_eq!(
            ok("gzip_types text/css application/vnd.api+json;"),
            ["gzip_types", "text/css", "application/vnd.api+json"]
        );
        assert_eq!(ok("gzip_proxied expired no-cache any;").len(), 4);
        assert_eq!(ok("limit_rate 100k;"), ["limit_rate", "100k"]);
    }

    #[test]
    fn refuses_what_could_escape_or_change_the_answer() {
        for bad in [
            "proxy_buffering off",              // no `;`
            "proxy_buffering off; return 200;", // two directives
            "proxy_buffering \"off\";",
            "proxy_buffering $var;",
            "proxy_buffering on off;",
            "proxy_buffers 0 16k;",
            "proxy_buffer_size 16g;",
            "gzip_comp_level 10;",
            "gzip_types text/css}; location / {;",
            "gzip_proxied sometimes;",
            "return 200;",
            "allow all;",
            "proxy_pass http://evil;",
            "access_by_lua_block { ngx.exit(200) };",
            "add_header x-a 1;",
            "include /etc/passwd;",
            ";",
            "",
        ] {
            assert!(directive(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn refuses_other_shapes_of_the_entry() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert!(parse(&v(r#"{"directives": ["gzip on;"]}"#)).is_ok());
        for bad in [
            r#"["gzip on;"]"#,
            r#"{"directives": "gzip on;"}"#,
            r#"{"directives": [1]}"#,
            r#"{"directives": [], "raw": "x"}"#,
        ] {
            assert!(parse(&v(bad)).is_err(), "{bad} was accepted");
        }
    }
}
