//! The contract between the IR and a back end.
//!
//! A target says, per policy kind, whether it expresses it natively, emulates
//! it, or cannot express it; and it emits files from a [`ValidIr`]. The
//! capability matrix in the docs is generated from these declarations.

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{Loc, PolicyKind, TargetKind, ValidIr};
use crate::source::{FileId, Pos, Span};
use serde::Serialize;
use std::path::PathBuf;

/// How a target carries out a policy kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Support {
    /// With the target's own feature for it.
    Native,
    /// With generated code or a combination of features, same behaviour.
    Emulated,
    /// Not at all: the compiler warns (`--strict`: fails) and leaves it out.
    Unsupported,
}

/// Options every target accepts.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Treat "cannot express this" warnings as errors.
    pub strict: bool,
}

/// One generated file, path relative to the output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub path: PathBuf,
    pub contents: String,
}

/// What a target emits: files, and what it could not express.
#[derive(Clone, Debug, Default)]
pub struct Artifacts {
    pub files: Vec<Artifact>,
    pub diagnostics: Diagnostics,
}

/// A back end.
pub trait Target {
    fn kind(&self) -> TargetKind;

    /// How this target carries out `kind`.
    fn support(&self, kind: PolicyKind) -> Support;

    /// Generates the target's files. Only reports what the target cannot
    /// express; the spec is already known to be valid.
    fn emit(&self, ir: &ValidIr, options: &Options) -> Artifacts;
}

/// The place in the spec a [`Loc`] names, for target diagnostics.
pub fn span_of(loc: Loc) -> Span {
    Span::point(
        FileId(loc.file),
        Pos {
            line: loc.line,
            col: loc.col,
        },
    )
}

/// One diagnostic for each policy on each route that `target` cannot express:
/// a warning, or an error under `--strict`.
pub fn unsupported_policies(target: &dyn Target, ir: &ValidIr, options: &Options) -> Diagnostics {
    let mut out = Diagnostics::new();
    for route in &ir.routes {
        let sources = ir.sources.routes.get(&route.id);
        for (i, policy) in route.chain.iter().enumerate() {
            let kind = policy.kind();
            if target.support(kind) != Support::Unsupported {
                continue;
            }
            let span = sources
                .and_then(|s| s.chain.get(i))
                .map(|s| span_of(s.at))
                .unwrap_or_else(|| {
                    span_of(Loc {
                        file: 0,
                        line: 1,
                        col: 1,
                    })
                });
            let cannot = format!(
                "target `{}` cannot express `{kind}` on route `{}`",
                target.kind(),
                route.id
            );
            // Under --strict nothing is written, so nothing is "left out".
            let d = if options.strict {
                Diagnostic::error("unsupported-policy", span, cannot).with_help(
                    "see `gatefold capabilities`; remove the policy for this target or use `native`, or compile without `--strict` to leave it out with a warning",
                )
            } else {
                Diagnostic::warning("unsupported-policy", span, format!("{cannot}; it is left out"))
                    .with_help("see `gatefold capabilities`; remove the policy for this target or use `native`")
            };
            out.push(d);
        }
    }
    out
}
