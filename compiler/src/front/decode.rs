//! Reading typed values out of [`Node`]s, reporting every mismatch with its
//! place, what was expected and what to write instead.

use super::yaml::{Entry, Node, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::source::Span;
use std::str::FromStr;

/// The decoding context: where diagnostics go.
pub struct Cx<'d> {
    pub diags: &'d mut Diagnostics,
    /// Folder of the file being decoded: files a spec names are relative to it.
    pub base_dir: &'d std::path::Path,
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
        match node.value {
            Value::Bool(b) => Some(b),
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

    /// A list of strings each parsed by `T::from_str`.
    pub fn parse_list<T: FromStr<Err = String>>(
        &mut self,
        node: &Node,
        what: &str,
        code: &'static str,
        example: &str,
    ) -> Vec<T> {
        let Some(items) = self.list(node, what, &format!("[{example}]")) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.parse(item, what, code, example))
            .collect()
    }

    /// Reports a required key that is missing.
    pub fn missing(&mut self, fields: &Fields<'_>, key: &str, what: &str, example: &str) {
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
