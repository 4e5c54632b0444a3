//! Diagnostics: every problem the compiler finds, with where it is, what is
//! wrong and what to write instead. All of them are collected; none stops the
//! front end early except an unreadable file.

use crate::source::{Sources, Span};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;
use serde::Serialize;

/// How bad a diagnostic is. Errors fail `validate`/`compile`; warnings do not
/// (unless `--strict` turns target warnings into errors).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A secondary place a diagnostic refers to ("first defined here").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Related {
    pub span: Span,
    pub message: String,
}

/// One problem found in a spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable kebab-case code, e.g. `unknown-key`, `shadowed-route`.
    pub code: &'static str,
    pub message: String,
    /// Where it is; absent only for problems with no place (an unreadable path).
    pub span: Option<Span>,
    /// What to write instead.
    pub help: Option<String>,
    pub related: Vec<Related>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: Some(span),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// An error that has no place in a spec file.
    pub fn global(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_related(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.related.push(Related {
            span,
            message: message.into(),
        });
        self
    }
}

/// The diagnostics of one compilation, in the order found.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Sorts by file and position so output does not depend on check order.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            let key = |d: &Diagnostic| d.span.map(|s| (s.file, s.start));
            key(a).cmp(&key(b))
        });
    }

    /// Renders every diagnostic as text: `error[code]: message`, then
    /// `┌─ file:line:col`, the source line with the place marked, and `= help:`.
    pub fn render(&self, sources: &Sources) -> String {
        let mut files = SimpleFiles::new();
        for (_, f) in sources.iter() {
            files.add(f.name.as_str(), f.text.as_str());
        }
        let config = term::Config::default();
        let mut out = String::new();
        for d in &self.items {
            let cs_diag = to_codespan(d, sources);
            match term::emit_into_string(&config, &files, &cs_diag) {
                Ok(text) => out.push_str(&text),
                Err(_) => out.push_str(&format!("{}[{}]: {}\n", sev(d), d.code, d.message)),
            }
        }
        out
    }

    /// JSON array: severity, code, message, file, line, column, help.
    pub fn to_json(&self, sources: &Sources) -> serde_json::Value {
        let items: Vec<_> = self
            .items
            .iter()
            .map(|d| {
                let (file, line, col) = match d.span {
                    Some(s) => (
                        Some(sources.get(s.file).name.clone()),
                        Some(s.start.line),
                        Some(s.start.col),
                    ),
                    None => (None, None, None),
                };
                serde_json::json!({
                    "severity": d.severity,
                    "code": d.code,
                    "message": d.message,
                    "file": file,
                    "line": line,
                    "column": col,
                    "help": d.help,
                })
            })
            .collect();
        serde_json::Value::Array(items)
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

fn sev(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn to_codespan(d: &Diagnostic, sources: &Sources) -> cs::Diagnostic<usize> {
    let base = match d.severity {
        Severity::Error => cs::Diagnostic::error(),
        Severity::Warning => cs::Diagnostic::warning(),
    };
    let mut labels = Vec::new();
    if let Some(s) = &d.span {
        labels.push(cs::Label::primary(
            s.file.0 as usize,
            byte_range(sources, s),
        ));
    }
    for r in &d.related {
        labels.push(
            cs::Label::secondary(r.span.file.0 as usize, byte_range(sources, &r.span))
                .with_message(&r.message),
        );
    }
    let mut diag = base
        .with_code(d.code)
        .with_message(&d.message)
        .with_labels(labels);
    if let Some(h) = &d.help {
        diag = diag.with_notes(vec![format!("help: {h}")]);
    }
    diag
}

/// Byte range of a span; a zero-width span still marks one character.
fn byte_range(sources: &Sources, span: &Span) -> std::ops::Range<usize> {
    let f = sources.get(span.file);
    let start = f.offset(span.start);
    let end = f.offset(span.end).max(start);
    if end > start {
        return start..end;
    }
    let next = f.text[start..].chars().next().map_or(0, char::len_utf8);
    start..start + next
}
