//! Reading typed values out of [`Node`]s, reporting every mismatch with its
//! place, what was expected and what to write instead.

use super::yaml::{Entry, Node, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::values::{ByteSize, Duration, Method};
use crate::ir::PathPattern;
use crate::source::{Pos, Span};
use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::ops::Range;
use std::str::FromStr;

/// The decoding context: where diagnostics go.
pub struct Cx<'d> {
    pub diags: &'d mut Diagnostics,
    /// Folder of the file being decoded: files a spec names are relative to it.
    pub base_dir: &'d std::path::Path,
    /// The file being decoded, for places inside scalars (a script's line
    /// and column inside its block scalar).
    pub file: &'d crate::source::SourceFile,
}

/// The keys of one mapping, checked against what the mapping allows.
pub struct Fields<'n> {
    pub span: Span,
    pub entries: &'n [Entry],
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.key_span)
    }
}

/// The closest allowed word to a misspelt one, if close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The place of `text[range]` (byte offsets) inside the scalar `node` whose
/// value is `text`, so a diagnostic can point at the offending part; the
/// whole node when the scalar is not written on one line as-is (escapes,
/// folding).
pub fn span_within(node: &Node, text: &str, range: Range<usize>) -> Span {
    let s = node.span;
    let chars = text.chars().count() as u32;
    let width = s.end.col.saturating_sub(s.start.col);
    // Plain scalars span exactly their text; quoted ones also their quotes
    // and any blanks up to the next token.
    let lead = match width {
        _ if s.start.line != s.end.line => return s,
        w if w == chars => 0,
        w if w >= chars + 2 => 1,
        _ => return s,
    };
    // A range that does not fall on character boundaries cannot be placed.
    let (Some(before), Some(part)) = (text.get(..range.start), text.get(range)) else {
        return s;
    };
    let col = s.start.col + lead + before.chars().count() as u32;
    let len = part.chars().count() as u32;
    Span {
        file: s.file,
        start: Pos {
            line: s.start.line,
            col,
        },
        end: Pos {
            line: s.start.line,
            col: col + len,
        },
    }
}

/// What to write instead of a path that the grammar refuses for its
/// parameters: a repeated name gets a second name, a prefix route with
/// parameters its literal prefix.
fn path_fix(text: &str) -> Option<String> {
    let segments: Vec<&str> = text.split('/').collect();
    let param = |s: &str| {
        s.strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(str::to_string)
    };
    let mut seen = BTreeSet::new();
    for (i, s) in segments.iter().enumerate() {
        let Some(name) = param(s) else { continue };
        if !seen.insert(name.clone()) {
            let mut fixed = segments.clone();
            let renamed = format!("{{{name}_2}}");
            fixed[i] = &renamed;
            return Some(format!(
                "give each parameter its own name: `{}`",
                fixed.join("/")
            ));
        }
    }
    if text.ends_with("/*") && !seen.is_empty() {
        let literal: Vec<&str> = segments
            .iter()
            .copied()
            .take_while(|s| param(s).is_none())
            .collect();
        return Some(format!(
            "a prefix route matches a literal prefix: write `{}/*`, or a templated path without `/*`",
            literal.join("/")
        ));
    }
    None
}

/// `did you mean `x`?` when there is a close candidate, else the list of choices.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    match suggest(word, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if candidates.is_empty() => "remove it".to_string(),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

impl Cx<'_> {
    pub fn error(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(code, span, msg).with_help(help));
    }

    /// A warning: the spec still compiles.
    pub fn warning(
        &mut self,
        code: &'static str,
        span: Span,
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::warning(code, span, msg).with_help(help));
    }

    fn expected(&mut self, node: &Node, what: &str, expected: &str, example: &str) {
        self.error(
            "wrong-type",
            node.span,
            format!("{what} must be {expected}, found {}", node.value.describe()),
            format!("write it like `{example}`"),
        );
    }

    /// A mapping whose keys must be among `allowed`; unknown keys are reported.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
        example: &str,
    ) -> Option<Fields<'n>> {
        let entries = self.map(node, what, example)?;
        for e in entries {
            if !allowed.contains(&e.key.as_str()) {
                self.error(
                    "unknown-key",
                    e.key_span,
                    format!("unknown key `{}` in {what}", e.key),
                    did_you_mean(&e.key, allowed),
                );
            }
        }
        Some(Fields {
            span: node.span,
            entries,
        })
    }

    /// A mapping with any keys (names chosen by the user).
    pub fn map<'n>(&mut self, node: &'n Node, what: &str, example: &str) -> Option<&'n [Entry]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            _ => {
                self.expected(node, what, "a mapping", example);
                None
            }
        }
    }

    pub fn list<'n>(&mut self, node: &'n Node, what: &str, example: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.expected(node, what, "a list", example);
                None
            }
        }
    }

    pub fn str<'n>(&mut self, node: &'n Node, what: &str, example: &str) -> Option<&'n str> {
        match &node.value {
            Value::Str(s) => Some(s),
            _ => {
                self.expected(node, what, "a string", example);
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if yaml11_bool(s).is_some() => {
                let b = yaml11_bool(s).expect("checked");
                self.error(
                    "wrong-type",
                    node.span,
                    format!("{what} must be `true` or `false`; `{s}` is a string in YAML 1.2, which specs are read as"),
                    format!("write `{b}`"),
                );
                None
            }
            _ => {
                self.expected(node, what, "`true` or `false`", "true");
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    pub fn int(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<i64> {
        match node.value {
            Value::Int(i) if (min..=max).contains(&i) => Some(i),
            Value::Int(i) => {
                self.error(
                    "out-of-range",
                    node.span,
                    format!("{what} is {i}, outside {min}..{max}"),
                    format!("use a whole number from {min} to {max}"),
                );
                None
            }
            _ => {
                self.expected(node, what, "a whole number", &min.max(1).to_string());
                None
            }
        }
    }

    /// A string parsed by `T::from_str`, whose error text says what to write.
    pub fn parse<T: FromStr<Err = String>>(
        &mut self,
        node: &Node,
        what: &str,
        code: &'static str,
        example: &str,
    ) -> Option<T> {
        let text = self.str(node, what, example)?;
        match text.parse::<T>() {
            Ok(v) => Some(v),
            Err(msg) => {
                self.error(
                    code,
                    node.span,
                    format!("{what}: {msg}"),
                    format!("for example `{example}`"),
                );
                None
            }
        }
    }

    /// A list that is a set of strings each parsed by `T::from_str`; see
    /// [`Cx::set`].
    pub fn parse_set<T: FromStr<Err = String> + Ord>(
        &mut self,
        node: &Node,
        what: &str,
        code: &'static str,
        example: &str,
    ) -> BTreeSet<T> {
        let Some(items) = self.list(node, what, &format!("[{example}]")) else {
            return BTreeSet::new();
        };
        let parsed: Vec<(T, &Node)> = items
            .iter()
            .filter_map(|item| Some((self.parse(item, what, code, example)?, item)))
            .collect();
        self.set(what, parsed)
    }

    /// A `methods` list. A method in the wrong case gets the help to write
    /// it in capitals, not a generic example.
    pub fn methods(&mut self, node: &Node, what: &str) -> BTreeSet<Method> {
        let Some(items) = self.list(node, what, "[GET]") else {
            return BTreeSet::new();
        };
        let mut parsed = Vec::new();
        for item in items {
            let Some(text) = self.str(item, what, "GET") else {
                continue;
            };
            match text.parse::<Method>() {
                Ok(m) => parsed.push((m, item)),
                Err(msg) => {
                    let upper = text.to_ascii_uppercase();
                    let help = match upper.parse::<Method>() {
                        Ok(_) => format!("write `{upper}`"),
                        Err(_) => "for example `GET`".to_string(),
                    };
                    self.error("invalid-method", item.span, format!("{what}: {msg}"), help);
                }
            }
        }
        self.set(what, parsed)
    }

    /// The entries of a list that is a set, each decoded with the node it
    /// came from. Order means nothing, and an entry equal to an earlier one
    /// (as decoded, so `X-Id` repeats `x-id`) counts once: it changes no
    /// meaning (nor the hash), but is likely a slip, so a warning names both
    /// places.
    pub fn set<'n, T: Ord>(
        &mut self,
        what: &str,
        items: impl IntoIterator<Item = (T, &'n Node)>,
    ) -> BTreeSet<T> {
        let mut seen: BTreeMap<T, &Node> = BTreeMap::new();
        for (value, node) in items {
            match seen.entry(value) {
                btree_map::Entry::Vacant(v) => {
                    v.insert(node);
                }
                btree_map::Entry::Occupied(first) => {
                    let (text, first) = (short_text(node), *first.get());
                    let first_text = short_text(first);
                    let message = if text == first_text {
                        format!("{text} is listed twice in {what}")
                    } else {
                        format!("{text} repeats {first_text} in {what}")
                    };
                    self.diags.push(
                        Diagnostic::warning("duplicate-entry", node.span, message)
                            .with_related(first.span, "first listed here")
                            .with_help(format!(
                                "remove one of them: {what} is a set, so the repeat changes nothing"
                            )),
                    );
                }
            }
        }
        seen.into_keys().collect()
    }

    /// A path as routes, base paths and rewrites write it: the grammar of
    /// [`PathPattern`], after the checks only the written text allows
    /// (dot segments, escapes, partial parameters), reported at the segment.
    pub fn path(&mut self, node: &Node, what: &str, example: &str) -> Option<PathPattern> {
        let text = self.str(node, what, example)?;
        if let Some((range, msg, help)) = path_text_problem(text) {
            self.error(
                "invalid-path",
                span_within(node, text, range),
                format!("{what} `{text}`: {msg}"),
                help,
            );
            return None;
        }
        match text.parse::<PathPattern>() {
            Ok(p) => Some(p),
            Err(msg) => {
                let help = path_fix(text).unwrap_or_else(|| format!("for example `{example}`"));
                self.error("invalid-path", node.span, format!("{what}: {msg}"), help);
                None
            }
        }
    }

    /// A duration; an invalid one is reported with the spelling that means
    /// what was probably meant (`1.5s` -> `1500ms`).
    pub fn duration(&mut self, node: &Node, what: &str, example: &str) -> Option<Duration> {
        let text = self.str(node, what, example)?;
        match text.parse::<Duration>() {
            Ok(d) => Some(d),
            Err(msg) => {
                let help = match duration_fix(text) {
                    Some(fix) => format!("write `{fix}`"),
                    None => format!("for example `{example}`"),
                };
                self.error(
                    "invalid-duration",
                    node.span,
                    format!("{what}: {msg}"),
                    help,
                );
                None
            }
        }
    }

    /// A duration that must be above zero (time limits, windows, intervals, TTLs).
    pub fn positive_duration(
        &mut self,
        node: &Node,
        what: &str,
        example: &str,
    ) -> Option<Duration> {
        let d = self.duration(node, what, example)?;
        if d.millis == 0 {
            self.error(
                "invalid-duration",
                node.span,
                format!("{what} is `0s`, but it must be above zero"),
                format!("give a time above zero, like `{example}`"),
            );
            return None;
        }
        Some(d)
    }

    /// A size that must be above zero.
    pub fn positive_size(&mut self, node: &Node, what: &str, example: &str) -> Option<ByteSize> {
        let text = self.str(node, what, example)?;
        let s = match text.parse::<ByteSize>() {
            Ok(s) => s,
            Err(msg) => {
                let help = match size_fix(text) {
                    Some(fix) => format!("write `{fix}`"),
                    None => format!("for example `{example}`"),
                };
                self.error("invalid-size", node.span, format!("{what}: {msg}"), help);
                return None;
            }
        };
        if s.0 == 0 {
            self.error(
                "invalid-size",
                node.span,
                format!("{what} is zero, which would refuse every request with a body"),
                format!("give a size above zero, like `{example}`"),
            );
            return None;
        }
        Some(s)
    }

    /// Reports an empty list or mapping where at least one entry is needed;
    /// `why` says what the empty value would mean.
    pub fn non_empty(&mut self, node: &Node, what: &str, why: &str, help: &str) -> bool {
        let empty = match &node.value {
            Value::Seq(items) => items.is_empty(),
            Value::Map(entries) => entries.is_empty(),
            _ => false,
        };
        if empty {
            self.error(
                "empty-list",
                node.span,
                format!("{what} is empty: {why}"),
                help,
            );
        }
        !empty
    }

    /// Reports a required key that is missing.
    pub fn missing(&mut self, fields: &Fields<'_>, key: &str, what: &str, example: &str) {
        // A misspelt `key` is already reported as unknown, with `key` suggested.
        let misspelt = fields
            .entries
            .iter()
            .any(|e| suggest(&e.key, [key]).is_some());
        if misspelt {
            return;
        }
        self.error(
            "missing-key",
            fields.span,
            format!("{what} needs `{key}`"),
            format!("add `{example}`"),
        );
    }

    /// Gets a required key, reporting it when missing.
    pub fn required<'n>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        what: &str,
        example: &str,
    ) -> Option<&'n Node> {
        let node = fields.get(key);
        if node.is_none() {
            self.missing(fields, key, what, example);
        }
        node
    }
}

/// A scalar (or a one-line mapping of scalars, like a secret) as written,
/// in backticks, for messages.
fn short_text(node: &Node) -> String {
    fn scalar(v: &Value) -> Option<String> {
        Some(match v {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Float(f) => f.to_string(),
            _ => return None,
        })
    }
    let text = match &node.value {
        Value::Map(entries) => entries
            .iter()
            .map(|e| Some(format!("{}: {}", e.key, scalar(&e.value.value)?)))
            .collect::<Option<Vec<_>>>()
            .map(|parts| format!("{{ {} }}", parts.join(", "))),
        v => scalar(v),
    };
    match text {
        Some(t) => format!("`{t}`"),
        None => "this entry".to_string(),
    }
}

/// The valid spelling of a duration written with fractions, several units
/// or long unit names (`1.5s`, `1m30s`, `10sec`), if it is a whole number
/// of milliseconds.
fn duration_fix(text: &str) -> Option<String> {
    let mut rest = text.trim();
    let mut millis = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let factor = match rest[..unit_len].to_ascii_lowercase().as_str() {
            "ms" | "msec" | "millis" | "milliseconds" => 1.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
            _ => return None,
        };
        millis += value * factor;
        rest = rest[unit_len..].trim_start();
    }
    let whole = millis.round();
    if (millis - whole).abs() > 1e-6 || whole < 0.0 {
        return None;
    }
    let fixed = Duration {
        millis: whole as u64,
    };
    Some(fixed.to_string()).filter(|f| f != text)
}

/// The valid spelling of a size whose unit is in the wrong case (`10mb`).
fn size_fix(text: &str) -> Option<String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = text.split_at(digits);
    let unit = unit.trim();
    let fixed = ["B", "KB", "KiB", "MB", "MiB", "GB", "GiB"]
        .into_iter()
        .find(|u| u.eq_ignore_ascii_case(unit))?;
    (!num.is_empty()).then(|| format!("{num}{fixed}"))
}

/// The boolean a YAML 1.1 reader would make of `yes`, `off` and the like.
fn yaml11_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "y" | "on" => Some(true),
        "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// The first problem in a path's segments that [`PathPattern`]'s grammar
/// does not name precisely: where it is, what is wrong, what to write.
fn path_text_problem(text: &str) -> Option<(Range<usize>, String, String)> {
    let body = text.strip_prefix('/')?;
    let mut offset = 1;
    for seg in body.split('/') {
        let here = offset..offset + seg.len();
        offset += seg.len() + 1;
        if seg == "." || seg == ".." {
            // Requests are normalized before matching, so such a route never matches.
            return Some((
                here,
                format!("a `{seg}` segment can never match: the gateway resolves `.` and `..` in request paths before matching"),
                format!("remove the `{seg}` segment and write the path it stands for"),
            ));
        }
        let whole_param = seg.starts_with('{') && seg.ends_with('}') && seg.len() > 2;
        if seg.contains(['{', '}']) && !whole_param {
            return Some((
                here,
                format!("the parameter in `{seg}` must fill a whole segment"),
                "give the parameter its own segment, like `/files/{name}`; v1 has no partial-segment parameters".to_string(),
            ));
        }
        if let Some((at, msg, help)) = escape_problem(seg) {
            return Some((here.start + at.start..here.start + at.end, msg, help));
        }
    }
    None
}

/// A `%` that is not a `%XX` escape, or an escape of a character the gateway
/// decodes before matching (so the literal could never match). The range is
/// in `seg`, on character boundaries: the `%` and up to two characters after it.
fn escape_problem(seg: &str) -> Option<(Range<usize>, String, String)> {
    for (i, _) in seg.match_indices('%') {
        let after = &seg[i + 1..];
        // `%` and the (at most) two characters that should be its hex digits.
        let end = i + 1 + after.char_indices().nth(2).map_or(after.len(), |(j, _)| j);
        let digits = after
            .as_bytes()
            .get(..2)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit));
        let Some(digits) = digits else {
            return Some((
                i..end,
                "`%` must start a `%XX` escape (two hex digits)".to_string(),
                "write a literal `%` as `%25`".to_string(),
            ));
        };
        let hex = std::str::from_utf8(digits).expect("ASCII hex digits");
        let c = u8::from_str_radix(hex, 16).expect("two hex digits") as char;
        if c.is_ascii_alphanumeric() || "-._~".contains(c) {
            let esc = &seg[i..end];
            return Some((
                i..end,
                format!("`{esc}` is `{c}`, which the gateway decodes in request paths before matching, so this path could never match"),
                format!("write `{c}` instead of `{esc}`"),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_respelled() {
        assert_eq!(duration_fix("1.5s").as_deref(), Some("1500ms"));
        assert_eq!(duration_fix("1m30s").as_deref(), Some("90s"));
        assert_eq!(duration_fix("10sec").as_deref(), Some("10s"));
        assert_eq!(duration_fix("0.5ms"), None);
        assert_eq!(duration_fix("soon"), None);
    }

    #[test]
    fn sizes_are_respelled() {
        assert_eq!(size_fix("10mb").as_deref(), Some("10MB"));
        assert_eq!(size_fix("512kib").as_deref(), Some("512KiB"));
        assert_eq!(size_fix("mb"), None);
    }

    #[test]
    fn path_problems_point_at_the_segment() {
        let (at, ..) = path_text_problem("/a/../b").unwrap();
        assert_eq!(at, 3..5);
        let (at, ..) = path_text_problem("/x/{id}.json").unwrap();
        assert_eq!(at, 3..12);
        let (at, ..) = path_text_problem("/%7Eme").unwrap();
        assert_eq!(at, 1..4);
        assert!(path_text_problem("/a%2Fb").is_none());
        assert!(path_text_problem("/a%zz").is_some());
        // `from_str_radix` alone would take `+1` as a number.
        assert!(path_text_problem("/a%+1").is_some());
        // The marked range ends on a character boundary.
        let (at, ..) = path_text_problem("/%aé").unwrap();
        assert_eq!(at, 1..5);
        let (at, ..) = path_text_problem("/x%é").unwrap();
        assert_eq!(at, 2..5);
        assert!(path_text_problem("/pets/{id}").is_none());
        assert!(path_text_problem("/").is_none());
    }
}
