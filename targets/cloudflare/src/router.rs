//! The router: the IR's dispatch view compiled to JS. A request's host
//! picks a host class through two `Map`s (exact names, then wildcard
//! suffixes, longest first, as [`DispatchView::class_for`] does); the
//! class's function `switch`es on the path's first segment to the path
//! groups that can take it, tried in the view's precedence order, and
//! returns the first group whose pattern takes the path: its method
//! groups (`[mask, route]`, or `[mask, route, 1]` for a route with
//! `match` conditions; the first that admits the request) and its 405
//! `allow`. No route list is scanned.

use gatefold_compiler::dispatch::{DispatchView, HostClass, MethodSet, PathGroup};
use gatefold_compiler::ir::{HostPattern, Method, PathPattern, Segment, ValidIr};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A JS string literal of `s` (serde_json's string encoding is one).
pub fn js_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// The bits of a method set, numbered as the Worker's `methodBit`.
fn mask(set: MethodSet) -> u32 {
    set.slots()
        .map(|m| match m {
            Some(m) => 1 << Method::ALL.iter().position(|x| *x == m).unwrap_or(0),
            None => 256,
        })
        .fold(0, |a, b| a | b)
}

/// The condition under which `pattern` takes the split path `s`.
fn condition(pattern: &PathPattern) -> String {
    let n = pattern.segments.len();
    let mut parts = vec![if pattern.prefix {
        format!("s.length >= {n}")
    } else {
        format!("s.length === {n}")
    }];
    for (i, seg) in pattern.segments.iter().enumerate() {
        match seg {
            Segment::Literal(l) => parts.push(format!("s[{i}] === {}", js_str(l))),
            Segment::Param(_) => parts.push(format!("s[{i}] !== \"\"")),
        }
    }
    parts.join(" && ")
}

fn first_literal(p: &PathPattern) -> Option<&str> {
    match p.segments.first() {
        Some(Segment::Literal(l)) => Some(l),
        _ => None,
    }
}

/// `{m: [[mask, route], ...], allow}` for one path group.
fn group_data(g: &PathGroup) -> String {
    let methods: Vec<String> = g
        .methods
        .iter()
        .map(|mg| {
            // A third element marks a route with `match` conditions.
            let cond = if mg.conditional { ", 1" } else { "" };
            format!("[{}, {}{cond}]", mask(mg.methods), mg.route)
        })
        .collect();
    let allow = match g.allow {
        Some(a) => js_str(&a.to_string()),
        None => "null".to_string(),
    };
    format!("{{ m: [{}], allow: {allow} }}", methods.join(", "))
}

/// One class's function, its groups appended to `groups`.
fn class_fn(out: &mut String, index: usize, class: &HostClass, groups: &mut Vec<String>) {
    let base = groups.len();
    groups.extend(class.paths.iter().map(group_data));
    let mut buckets: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut any: Vec<usize> = Vec::new();
    for (i, g) in class.paths.iter().enumerate() {
        match first_literal(&g.pattern) {
            Some(l) => buckets.entry(l).or_default().push(i),
            None => any.push(i),
        }
    }
    let check = |out: &mut String, i: usize, indent: &str| {
        let _ = writeln!(
            out,
            "{indent}if ({}) return G[{}];",
            condition(&class.paths[i].pattern),
            base + i
        );
    };
    let _ = writeln!(out, "function c{index}(s) {{");
    if !buckets.is_empty() {
        out.push_str("  switch (s[0]) {\n");
        for (literal, list) in &buckets {
            let _ = writeln!(out, "    case {}:", js_str(literal));
            // Both lists are in precedence order: merge them.
            let mut merged: Vec<usize> = list.iter().chain(&any).copied().collect();
            merged.sort_unstable();
            for i in merged {
                check(out, i, "      ");
            }
            out.push_str("      return null;\n");
        }
        out.push_str("  }\n");
    }
    for &i in &any {
        check(out, i, "  ");
    }
    out.push_str("  return null;\n}\n");
}

/// The router's JS: `route(host, path)` gives the path group or null.
pub fn router(ir: &ValidIr) -> String {
    let view = DispatchView::new(ir);
    let mut out = String::from("// ---- router: compiled from the dispatch view ----\n\n");
    let mut groups = Vec::new();
    let mut exact = Vec::new();
    let mut wild = Vec::new();
    for (i, class) in view.classes().iter().enumerate() {
        match &class.host {
            Some(HostPattern::Exact(h)) => exact.push(format!("[{}, {i}]", js_str(h))),
            Some(HostPattern::Wildcard(s)) => wild.push(format!("[{}, {i}]", js_str(s))),
            None => {}
        }
        class_fn(&mut out, i, class, &mut groups);
    }
    let classes: Vec<String> = (0..view.classes().len()).map(|i| format!("c{i}")).collect();
    let _ = writeln!(out, "const G = [\n  {}\n];", groups.join(",\n  "));
    let _ = writeln!(out, "const CLASSES = [{}];", classes.join(", "));
    let _ = writeln!(out, "const EXACT = new Map([{}]);", exact.join(", "));
    let _ = writeln!(out, "const WILD = new Map([{}]);", wild.join(", "));
    let default = view.classes().len() - 1;
    let _ = write!(
        out,
        r#"
// `host`: lower case, without port. The exact class, else the wildcard
// class of the longest suffix (at least one label before it), else the
// default class.
function hostClass(host) {{
  let c = EXACT.get(host);
  if (c !== undefined) return c;
  if (WILD.size > 0) {{
    for (let at = host.indexOf(".", 1); at > 0; at = host.indexOf(".", at + 1)) {{
      c = WILD.get(host.slice(at));
      if (c !== undefined) return c;
    }}
  }}
  return {default};
}}

function route(host, path) {{
  const s = path === "/" ? [] : path.slice(1).split("/");
  return CLASSES[hostClass(host)](s);
}}
"#
    );
    out
}
