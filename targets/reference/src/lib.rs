//! The reference target: the IR itself, as `gatefold.ir.json`, which the
//! reference gateway ([`gateway`], `gatefold serve`) executes natively.

#![forbid(unsafe_code)]

/// A line on stderr for the operator. Unlike `eprintln!`, a closed or
/// broken stderr (a supervisor that stopped reading it) never panics: the
/// line is lost and the gateway keeps serving. A panic there would have
/// left a config swapped in without its history or fleet manifest.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod gateway;
pub mod script;

use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::{Feature, Options, Output, OutputFile, RelPath, Support, Target};

/// File name of the compiled IR.
pub const IR_FILE: &str = "gatefold.ir.json";

/// The reference back end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reference;

impl Target for Reference {
    fn kind(&self) -> TargetKind {
        TargetKind::Reference
    }

    fn support(&self, _kind: PolicyKind) -> Support {
        // Scripts included: the gateway evaluates the script IR natively.
        Support::Builtin
    }

    fn feature(&self, _feature: Feature) -> Support {
        Support::Builtin
    }

    fn emit(&self, ir: &ValidIr, _options: &Options) -> Output {
        let file = OutputFile {
            path: RelPath::new(IR_FILE).expect("a relative path"),
            bytes: ir.to_json().into_bytes(),
            description: "the compiled IR, which `gatefold serve` runs".to_string(),
        };
        Output::new(TargetKind::Reference, ir, vec![file])
    }
}
