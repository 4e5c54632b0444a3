//! `ir::diff`: each kind of change is reported once, on the entity that
//! changed; what is not meaning (formatting, order of apis, files, names of
//! named policies) gives no change.

use gatefold_compiler::compile_str;
use gatefold_compiler::ir::diff::{diff, render, Change, Op, Subject};
use gatefold_compiler::ir::ValidIr;
use gatefold_compiler::source::{SourceFile, Sources};

const BASE: &str = r#"gatefold: 1
upstreams:
  u: { targets: [{ url: "http://127.0.0.1:9001" }] }
  v: { targets: [{ url: "http://127.0.0.1:9002" }] }
consumers:
  c: { credentials: { key: { env: C_KEY } } }
policies:
  limit: { rate-limit: { requests: 100, per: 1m } }
gateway:
  baseline: { timeouts: { connect: 5s, read: 30s } }
  policies: [limit, { key-auth: { in: header, name: x-key } }]
apis:
  a:
    upstream: u
    routes:
      one: { path: "/x/{id}", methods: [GET] }
      two: { path: "/{kind}/y", methods: [GET] }
  b:
    upstream: v
    routes:
      three: { path: /z, methods: [GET] }
"#;

fn ir(text: &str) -> ValidIr {
    let c = compile_str("s.yaml", text);
    c.ir.clone().unwrap_or_else(|| panic!("{}", c.render()))
}

fn changes(new: &str) -> Vec<Change> {
    diff(&ir(BASE), &ir(new))
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn the_same_spec_has_no_changes() {
    assert!(changes(BASE).is_empty());
    assert_eq!(render(&[]), "no changes\n");
}

/// Reformatting, reordering sections and apis, splitting the spec into
/// files and renaming a named policy are not meaning.
#[test]
fn formatting_order_files_and_names_are_not_changes() {
    let renamed = BASE
        .replace("  limit:", "  per-client:")
        .replace("[limit,", "[per-client,");
    assert!(renamed.contains("[per-client,") && !renamed.contains("  limit:"));
    assert!(changes(&renamed).is_empty(), "{:?}", changes(&renamed));
    let mut value: serde_yaml::Value = serde_yaml::from_str(BASE).unwrap();
    if let serde_yaml::Value::Mapping(m) = &mut value {
        let mut entries: Vec<_> = std::mem::take(m).into_iter().collect();
        entries.reverse();
        m.extend(entries);
    }
    let reordered = serde_yaml::to_string(&value).unwrap();
    assert_ne!(reordered, BASE);
    assert!(changes(&reordered).is_empty());
    // Api `b` moved to a file of its own.
    let (head, api_b) = BASE.split_at(BASE.find("  b:\n").unwrap());
    let mut sources = Sources::new();
    sources.add(SourceFile::new("main.yaml", head));
    sources.add(SourceFile::new(
        "b.yaml",
        format!("gatefold: 1\napis:\n{api_b}"),
    ));
    let split = gatefold_compiler::compile_sources(sources, |_| ".".into());
    let split = split
        .ir
        .clone()
        .unwrap_or_else(|| panic!("{}", split.render()));
    assert!(diff(&ir(BASE), &split).is_empty());
}

/// A gateway-level policy inherited by every route changes once.
#[test]
fn a_gateway_policy_change_is_one_change() {
    let c = changes(&edit("requests: 100", "requests: 200"));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].op, Op::Changed);
    assert_eq!(
        c[0].subject,
        Subject::Policy {
            id: "gateway/rate-limit".parse().unwrap()
        }
    );
    assert_eq!(c[0].fields.len(), 1);
    assert_eq!(c[0].fields[0].path, "policy.requests");
    assert_eq!(c[0].fields[0].old, Some(100.into()));
    assert_eq!(c[0].fields[0].new, Some(200.into()));
}

/// A new gateway-level policy is one added instance, not a change per route.
#[test]
fn an_added_gateway_policy_is_one_change() {
    let c = changes(&edit(
        "{ key-auth: { in: header, name: x-key } }]",
        "{ key-auth: { in: header, name: x-key } }, { cors: { origins: [\"*\"] } }]",
    ));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].op, Op::Added);
    assert_eq!(
        c[0].subject,
        Subject::Policy {
            id: "gateway/cors".parse().unwrap()
        }
    );
}

/// A route that stops inheriting a policy changed its chain: one route change.
#[test]
fn disabling_on_a_route_is_a_route_change() {
    let c = changes(&edit(
        "three: { path: /z, methods: [GET] }",
        "three: { path: /z, methods: [GET], disable: [rate-limit] }",
    ));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        c[0].subject,
        Subject::Route {
            id: "b.three".parse().unwrap()
        }
    );
    assert_eq!(c[0].fields[0].path, "chain");
}

/// Language 1.1 route keys are route changes: `match` (as the matcher's
/// conditions) and `preserve-host` (which is not derived from the chain).
#[test]
fn match_and_preserve_host_are_route_changes() {
    let c = changes(&edit(
        "three: { path: /z, methods: [GET] }",
        "three: { path: /z, methods: [GET], preserve-host: true }",
    ));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].subject.to_string(), "route b.three");
    assert_eq!(c[0].fields[0].path, "preserve-host");
    let c = changes(&edit(
        "three: { path: /z, methods: [GET] }",
        "three: { path: /z, methods: [GET], match: { query: { v: \"2\" } } }",
    ));
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].fields[0].path.starts_with("matcher"), "{c:?}");
}

#[test]
fn added_and_removed_routes_are_one_change_each() {
    let c = changes(&edit(
        "      three: { path: /z, methods: [GET] }\n",
        "      four: { path: /w, methods: [GET] }\n",
    ));
    let ops: Vec<(Op, String)> = c.iter().map(|c| (c.op, c.subject.to_string())).collect();
    assert_eq!(
        ops,
        [
            (Op::Added, "route b.four".to_string()),
            (Op::Removed, "route b.three".to_string())
        ]
    );
}

/// Upstreams and consumers by name, with field paths; secrets are shown as
/// their references.
#[test]
fn upstream_and_consumer_changes_name_their_fields() {
    let c = changes(&edit("127.0.0.1:9002", "127.0.0.1:9003"));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].subject, Subject::Upstream { name: "v".into() });
    assert_eq!(c[0].fields[0].path, "targets");
    let c = changes(&edit("env: C_KEY", "env: C_KEY_NEW"));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].subject, Subject::Consumer { name: "c".into() });
    assert_eq!(
        c[0].fields[0].new,
        Some(serde_json::json!([{ "env": "C_KEY_NEW" }]))
    );
}

/// A baseline change is one gateway change, though every route's lowered
/// timeouts follow it.
#[test]
fn a_baseline_change_is_one_gateway_change() {
    let c = changes(&edit("read: 30s", "read: 40s"));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].subject, Subject::Gateway);
    assert_eq!(c[0].fields[0].path, "baseline.timeouts.read");
}

/// Swapping two overlapping routes changes which wins `GET /x/y`: one
/// precedence change, naming the new winner.
#[test]
fn swapped_overlapping_routes_are_one_precedence_change() {
    let swapped = BASE
        .replace("      one: { path: \"/x/{id}\", methods: [GET] }\n", "")
        .replace(
            "      two: { path: \"/{kind}/y\", methods: [GET] }\n",
            "      two: { path: \"/{kind}/y\", methods: [GET] }\n      one: { path: \"/x/{id}\", methods: [GET] }\n",
        );
    let c = changes(&swapped);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        c[0].subject,
        Subject::Precedence {
            winner: "a.two".parse().unwrap(),
            loser: "a.one".parse().unwrap()
        }
    );
    assert!(render(&c).contains("a.two now wins over a.one"));
}
