//! YAML to a tree of nodes that remember where they came from.
//!
//! serde-style deserialisation loses positions, and every diagnostic needs
//! `file:line:col`, so the front end reads parser events (saphyr-parser) into
//! its own small tree. Anchors, aliases and merge keys (`<<`) are expanded
//! here, under a budget: an alias bomb ("billion laughs") is refused as soon
//! as its expansion passes [`ALIAS_BUDGET`] nodes, long before it costs memory,
//! and an alias may not nest the tree deeper than [`MAX_DEPTH`] either.
//! Keys are checked for duplicates through a hash index once a mapping is
//! long, so huge mappings load in linear time.

use crate::diag::{Diagnostic, Diagnostics};
use crate::source::{FileId, Pos, Span};
use compact_str::{CompactString, ToCompactString};
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// Most nodes that alias expansion may add to one file.
pub const ALIAS_BUDGET: usize = 1_000_000;
/// Most nodes (scalars, lists, mappings) one file may write out; with the
/// file size limit, this bounds the tree's memory. A large real spec has
/// a few hundred thousand.
pub const MAX_NODES: usize = 2_000_000;
/// Deepest nesting accepted, aliases expanded; real specs stay far below it.
pub const MAX_DEPTH: usize = 64;
/// Mappings with more keys than this look keys up through a hash index.
const INDEX_AFTER: usize = 16;

/// A YAML value with its place in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// The value of a node, typed by the YAML 1.2 core schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, whether quoted or plain.
    Str(CompactString),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping, in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: CompactString,
    pub key_span: Span,
    pub value: Node,
}

impl Value {
    /// What the value is, in words, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// How many nodes the tree holds (keys count as one each) and how deep
    /// it is (a scalar is 0 deep, `[x]` 1). The loader keeps trees at most
    /// [`MAX_DEPTH`] deep, so the recursion is bounded.
    fn measure(&self) -> (usize, usize) {
        let (mut size, mut depth) = (1, 0);
        let mut add = |n: &Node, extra: usize| {
            let (s, d) = n.measure();
            size += s + extra;
            depth = depth.max(d + 1);
        };
        match &self.value {
            Value::Seq(items) => items.iter().for_each(|n| add(n, 0)),
            Value::Map(entries) => entries.iter().for_each(|e| add(&e.value, 1)),
            _ => {}
        }
        (size, depth)
    }
}

/// The keys of a mapping being built. Its entries sit in a list shared by
/// every open mapping, from `first` on (an inner mapping's entries are moved
/// out before the outer one takes its next), and are moved into a vector of
/// exactly their number when the mapping ends: vectors grown one push at a
/// time held a fifth of the compiler's peak memory at 100,000 routes in
/// unused capacity. Past [`INDEX_AFTER`] keys, a hash index finds them.
#[derive(Default)]
struct Keys {
    first: usize,
    index: Option<HashMap<CompactString, usize>>,
}

impl Keys {
    fn at(first: usize) -> Keys {
        Keys { first, index: None }
    }

    fn find<'a>(&self, list: &'a [Entry], key: &str) -> Option<&'a Entry> {
        let own = &list[self.first..];
        match &self.index {
            Some(index) => index.get(key).map(|&i| &own[i]),
            None => own.iter().find(|e| e.key == key),
        }
    }

    fn push(&mut self, list: &mut Vec<Entry>, entry: Entry) {
        let own = list.len() - self.first;
        match &mut self.index {
            Some(index) => {
                index.insert(entry.key.clone(), own);
            }
            None if own >= INDEX_AFTER => {
                let index = list[self.first..]
                    .iter()
                    .chain(std::iter::once(&entry))
                    .enumerate()
                    .map(|(i, e)| (e.key.clone(), i))
                    .collect();
                self.index = Some(index);
            }
            None => {}
        }
        list.push(entry);
    }
}

enum Frame {
    Seq {
        /// Where its items start in [`Loader::open_items`].
        first: usize,
        start: Pos,
        anchor: usize,
    },
    Map {
        /// Its entries, in [`Loader::open_entries`].
        keys: Keys,
        /// Entries merged in through `<<`, applied when the mapping ends so
        /// that explicit keys win wherever they appear.
        merged: Vec<Entry>,
        merged_keys: Keys,
        key: Option<(CompactString, Span)>,
        start: Pos,
        anchor: usize,
    },
}

struct Loader {
    file: FileId,
    stack: Vec<Frame>,
    /// The items of every open sequence, innermost last (see [`Keys`]).
    open_items: Vec<Node>,
    /// The entries of every open mapping, innermost last (see [`Keys`]).
    open_entries: Vec<Entry>,
    /// Each anchored node with its size and depth (see [`Node::measure`]).
    anchors: HashMap<usize, (Node, usize, usize)>,
    budget: usize,
    root: Option<Node>,
    documents: usize,
    /// Nodes written out so far (aliases count against `budget` instead).
    nodes: usize,
}

fn pos(m: &saphyr_parser::Marker) -> Pos {
    Pos {
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

/// Parses one YAML document. An empty file gives `Value::Null`.
pub fn parse(file: FileId, text: &str) -> Result<Node, Diagnostics> {
    let mut loader = Loader {
        file,
        stack: Vec::new(),
        open_items: Vec::new(),
        open_entries: Vec::new(),
        anchors: HashMap::new(),
        budget: ALIAS_BUDGET,
        root: None,
        documents: 0,
        nodes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    let mut diags = Diagnostics::new();
    while let Some(item) = parser.next_event() {
        match item {
            Ok((event, span)) => {
                let at = Span {
                    file,
                    start: pos(&span.start),
                    end: pos(&span.end),
                };
                if let Err(d) = loader.event(event, at) {
                    diags.push(d);
                    return Err(diags);
                }
            }
            Err(e) => {
                diags.push(syntax_error(file, text, &loader.stack, &e));
                return Err(diags);
            }
        }
    }
    Ok(loader.root.unwrap_or(Node {
        value: Value::Null,
        span: Span::point(file, Pos { line: 1, col: 1 }),
    }))
}

impl Loader {
    fn event(&mut self, event: Event<'_>, at: Span) -> Result<(), Diagnostic> {
        if matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) {
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                return Err(Diagnostic::error(
                    "yaml-too-many-nodes",
                    at,
                    format!("this file holds more than {MAX_NODES} values"),
                )
                .with_help("a gatefold spec needs far fewer; split generated specs into several files of a spec folder"));
            }
        }
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::error(
                        "yaml-multiple-documents",
                        at,
                        "a spec file holds one YAML document; found a second one",
                    )
                    .with_help("remove the `---` line, or put the second document in its own file of the spec folder"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let force_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !force_str {
                    plain_scalar(&text)
                } else {
                    Value::Str(CompactString::from(text))
                };
                let node = Node { value, span: at };
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), 1, 0));
                }
                self.value(node)?;
            }
            Event::Alias(id) => {
                let Some((node, size, depth)) = self.anchors.get(&id) else {
                    return Err(Diagnostic::error(
                        "yaml-unknown-alias",
                        at,
                        "this alias names no anchor defined before it",
                    )
                    .with_help("define the anchor (`&name`) before using `*name`"));
                };
                if *size > self.budget {
                    return Err(Diagnostic::error(
                        "yaml-alias-bomb",
                        at,
                        format!("aliases in this file expand to more than {ALIAS_BUDGET} nodes"),
                    )
                    .with_help("this looks like an alias bomb; write the repeated parts out, or reuse them with named policies and bundles"));
                }
                if self.stack.len() + depth > MAX_DEPTH {
                    return Err(too_deep(at));
                }
                self.budget -= size;
                let mut node = node.clone();
                node.span = at;
                self.value(node)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.check_depth(at)?;
                self.stack.push(Frame::Seq {
                    first: self.open_items.len(),
                    start: at.start,
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                self.check_depth(at)?;
                self.stack.push(Frame::Map {
                    keys: Keys::at(self.open_entries.len()),
                    merged: Vec::new(),
                    merged_keys: Keys::default(),
                    key: None,
                    start: at.start,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self
                    .stack
                    .pop()
                    .expect("parser balances start and end events");
                let (value, start, anchor) = match frame {
                    Frame::Seq {
                        first,
                        start,
                        anchor,
                    } => (
                        Value::Seq(self.open_items.drain(first..).collect()),
                        start,
                        anchor,
                    ),
                    Frame::Map {
                        mut keys,
                        merged,
                        start,
                        anchor,
                        ..
                    } => {
                        for m in merged {
                            if keys.find(&self.open_entries, &m.key).is_none() {
                                keys.push(&mut self.open_entries, m);
                            }
                        }
                        let first = keys.first;
                        (
                            Value::Map(self.open_entries.drain(first..).collect()),
                            start,
                            anchor,
                        )
                    }
                };
                let node = Node {
                    value,
                    span: Span {
                        file: self.file,
                        start,
                        end: at.end,
                    },
                };
                if anchor != 0 {
                    let (size, depth) = node.measure();
                    self.anchors.insert(anchor, (node.clone(), size, depth));
                }
                self.value(node)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn check_depth(&self, at: Span) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(at));
        }
        Ok(())
    }

    /// Places a finished node into whatever contains it.
    fn value(&mut self, node: Node) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { .. }) => self.open_items.push(node),
            Some(Frame::Map {
                keys,
                merged,
                merged_keys,
                key,
                ..
            }) => match key.take() {
                None => {
                    let text = match node.value {
                        Value::Str(s) => s,
                        Value::Int(i) => i.to_compact_string(),
                        Value::Bool(b) => b.to_compact_string(),
                        Value::Null => CompactString::default(),
                        Value::Float(f) => f.to_compact_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(Diagnostic::error(
                                "yaml-complex-key",
                                node.span,
                                "a mapping key must be a plain name, not a list or mapping",
                            )
                            .with_help("write `name: value`"))
                        }
                    };
                    if text != "<<" {
                        if let Some(first) = keys.find(&self.open_entries, &text) {
                            return Err(Diagnostic::error(
                                "duplicate-key",
                                node.span,
                                format!("`{text}` is given twice in this mapping"),
                            )
                            .with_related(first.key_span, "first given here")
                            .with_help("keep one of them"));
                        }
                    }
                    *key = Some((text, node.span));
                }
                Some((k, key_span)) if k == "<<" => {
                    merge_into(merged, merged_keys, node, key_span)?
                }
                Some((k, key_span)) => keys.push(
                    &mut self.open_entries,
                    Entry {
                        key: k,
                        key_span,
                        value: node,
                    },
                ),
            },
        }
        Ok(())
    }
}

/// The parser's syntax error, placed where the mistake is and explained
/// for the common ones.
fn syntax_error(
    file: FileId,
    text: &str,
    stack: &[Frame],
    e: &saphyr_parser::ScanError,
) -> Diagnostic {
    let at = Span::point(file, pos(e.marker()));
    let info = e.info();
    let generic = "check the indentation and quoting around this place";
    // An unclosed `{` or `[` is noticed only at the end of the file: point
    // at the bracket that is never closed instead.
    let at_end = e.marker().index() >= text.trim_end().chars().count();
    if at_end && info.contains("flow") {
        let open = stack.iter().rev().find_map(|f| {
            let start = match f {
                Frame::Seq { start, .. } | Frame::Map { start, .. } => *start,
            };
            char_at(text, start)
                .filter(|c| matches!(c, '{' | '['))
                .map(|c| (c, start))
        });
        if let Some((open, start)) = open {
            let close = if open == '{' { '}' } else { ']' };
            return Diagnostic::error(
                "yaml-syntax",
                Span::point(file, start),
                format!("invalid YAML: this `{open}` is never closed"),
            )
            .with_help(format!("add the `{close}` that ends it"));
        }
    }
    if info.contains("anchor or alias") {
        let star = Pos {
            col: at.start.col.saturating_sub(1).max(1),
            ..at.start
        };
        if [at.start, star]
            .iter()
            .any(|&p| char_at(text, p) == Some('*'))
        {
            return Diagnostic::error(
                "yaml-syntax",
                at,
                "invalid YAML: a plain `*` starts an alias (`*name`, a reference to an `&name` anchor)",
            )
            .with_help("to mean the text `*` (any origin, any value), quote it: `\"*\"`");
        }
    }
    Diagnostic::error("yaml-syntax", at, format!("invalid YAML: {info}")).with_help(generic)
}

/// The character at a position of `text`, if there is one.
fn char_at(text: &str, at: Pos) -> Option<char> {
    let line = text.split('\n').nth((at.line as usize).checked_sub(1)?)?;
    line.chars().nth((at.col as usize).checked_sub(1)?)
}

fn too_deep(at: Span) -> Diagnostic {
    Diagnostic::error(
        "yaml-too-deep",
        at,
        format!("nesting is deeper than {MAX_DEPTH} levels"),
    )
    .with_help("a gatefold spec needs only a few levels of nesting")
}

/// `<<: *base` or `<<: [*a, *b]`: earlier sources win over later ones.
fn merge_into(
    merged: &mut Vec<Entry>,
    keys: &mut Keys,
    node: Node,
    key_span: Span,
) -> Result<(), Diagnostic> {
    let sources = match node.value {
        Value::Map(entries) => vec![entries],
        Value::Seq(items) => {
            let mut maps = Vec::new();
            for item in items {
                match item.value {
                    Value::Map(entries) => maps.push(entries),
                    other => return Err(merge_error(item.span, other.describe())),
                }
            }
            maps
        }
        other => return Err(merge_error(key_span, other.describe())),
    };
    for entries in sources {
        for e in entries {
            if keys.find(merged, &e.key).is_none() {
                keys.push(merged, e);
            }
        }
    }
    Ok(())
}

fn merge_error(at: Span, found: &str) -> Diagnostic {
    Diagnostic::error(
        "yaml-bad-merge",
        at,
        format!("a merge key `<<` takes a mapping or a list of mappings, found {found}"),
    )
    .with_help("write `<<: *anchor` where `&anchor` marks a mapping")
}

/// Types a plain (unquoted) scalar by the YAML 1.2 core schema. A string
/// is copied on purpose: the parser allocates 32 bytes for every plain
/// scalar, the copy only its length, and the tree holds many short strings.
fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        if let Some(hex) = text.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Value::Int(i);
            }
        }
        if let Some(oct) = text.strip_prefix("0o") {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return Value::Int(i);
            }
        }
        let is_float_shaped = text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
        if is_float_shaped {
            if let Ok(f) = text.parse::<f64>() {
                return Value::Float(f);
            }
        }
    }
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ => Value::Str(CompactString::from(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostics> {
        parse(FileId(0), text)
    }

    #[test]
    fn merge_keys_fill_missing_keys_only() {
        let n = load("base: &b { a: 1, b: 2 }\nx:\n  <<: *b\n  b: 3\n").unwrap();
        let Value::Map(top) = n.value else { panic!() };
        let Value::Map(x) = &top[1].value.value else {
            panic!()
        };
        let pairs: Vec<_> = x
            .iter()
            .map(|e| (e.key.as_str(), e.value.value.clone()))
            .collect();
        assert_eq!(pairs, vec![("b", Value::Int(3)), ("a", Value::Int(1))]);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = load(&text).unwrap_err();
        assert_eq!(err.iter().next().unwrap().code, "yaml-alias-bomb");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        let d = err.iter().next().unwrap();
        assert_eq!(d.code, "duplicate-key");
        assert_eq!(d.span.unwrap().start, Pos { line: 3, col: 1 });
    }

    fn syntax(text: &str) -> (Pos, String, String) {
        let err = load(text).unwrap_err();
        let d = err.iter().next().unwrap();
        assert_eq!(d.code, "yaml-syntax");
        (
            d.span.unwrap().start,
            d.message.clone(),
            d.help.clone().unwrap(),
        )
    }

    #[test]
    fn an_unclosed_bracket_is_reported_at_the_bracket() {
        let (at, msg, help) = syntax(
            "a: 1
b: [1, 2

",
        );
        assert_eq!(at, Pos { line: 2, col: 4 });
        assert_eq!(msg, "invalid YAML: this `[` is never closed");
        assert_eq!(help, "add the `]` that ends it");
        // The innermost bracket still open, not one that was closed.
        let (at, msg, _) = syntax(
            "a: { b: { c: 1 }, d: [x]
",
        );
        assert_eq!(at, Pos { line: 1, col: 4 });
        assert!(msg.contains("`{`"), "{msg}");
    }

    #[test]
    fn a_mistake_inside_a_bracket_is_reported_where_it_is() {
        let (at, msg, _) = syntax(
            "a: { b: 1 c: 2 }
d: 1
",
        );
        assert_eq!(at.line, 1);
        assert!(!msg.contains("never closed"), "{msg}");
    }

    #[test]
    fn a_plain_star_says_to_quote_it() {
        let (at, _, help) = syntax(
            "origins: [*]
",
        );
        assert_eq!(at.line, 1);
        assert!(help.contains("`\"*\"`"), "{help}");
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let n = load("a: \"8080\"\nb: 8080\n").unwrap();
        let Value::Map(m) = n.value else { panic!() };
        assert_eq!(m[0].value.value, Value::Str("8080".into()));
        assert_eq!(m[1].value.value, Value::Int(8080));
    }
}
