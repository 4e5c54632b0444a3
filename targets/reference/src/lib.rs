//! The reference target: the IR itself, as `gatefold.ir.json`, which the
//! reference gateway ([`gateway`], `gatefold serve`) executes natively.

#![forbid(unsafe_code)]

pub mod gateway;

use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::{
    unsupported_policies, Artifact, Artifacts, Options, Support, Target,
};

/// File name of the compiled IR.
pub const IR_FILE: &str = "gatefold.ir.json";

/// The reference back end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reference;

impl Target for Reference {
    fn kind(&self) -> TargetKind {
        TargetKind::Reference
    }

    fn support(&self, kind: PolicyKind) -> Support {
        match kind {
            // The portable script engine comes with its own issue.
            PolicyKind::Script => Support::Unsupported,
            _ => Support::Native,
        }
    }

    fn emit(&self, ir: &ValidIr, options: &Options) -> Artifacts {
        Artifacts {
            files: vec![Artifact {
                path: IR_FILE.into(),
                contents: ir.to_json(),
            }],
            diagnostics: unsupported_policies(self, ir, options),
        }
    }
}
