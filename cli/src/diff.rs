//! `gatefold diff OLD NEW`: the semantic difference between two specs (or
//! compiled IR files), see [`gatefold_compiler::ir::diff`].

use super::Format;
use gatefold_compiler::compile_path;
use gatefold_compiler::diag::Diagnostics;
use gatefold_compiler::ir::{diff, ValidIr};
use std::path::Path;
use std::process::ExitCode;

/// Exit code when the two differ.
const DIFFERENT: u8 = 2;

pub fn run(old: &Path, new: &Path, format: Format) -> ExitCode {
    let Some(a) = load(old, format) else {
        return ExitCode::from(super::USER_ERROR);
    };
    let Some(b) = load(new, format) else {
        return ExitCode::from(super::USER_ERROR);
    };
    let changes = diff::diff(&a, &b);
    match format {
        Format::Text => crate::stdout::out!("{}", diff::render(&changes)),
        Format::Json => {
            let out = serde_json::json!({
                "ok": true,
                "equal": changes.is_empty(),
                "old-hash": a.hash,
                "new-hash": b.hash,
                "changes": changes,
            });
            crate::stdout::outln!("{}", serde_json::to_string_pretty(&out).expect("json"));
        }
    }
    if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DIFFERENT)
    }
}

/// A compiled IR file (`*.json`), or a spec compiled now; `None` after
/// reporting why not.
fn load(path: &Path, format: Format) -> Option<ValidIr> {
    if path.is_file() && path.extension().is_some_and(|e| e == "json") {
        let loaded = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| ValidIr::from_json(&text));
        return match loaded {
            Ok(ir) => Some(ir),
            Err(e) => {
                super::report_global(
                    format,
                    "bad-ir-file",
                    format!("`{}`: {e}", path.display()),
                    "give a spec, or a gatefold.ir.json written by `gatefold compile`",
                );
                None
            }
        };
    }
    let compiled = compile_path(path);
    if compiled.ir.is_none() {
        super::report(
            &compiled,
            &Diagnostics::new(),
            format,
            serde_json::json!({}),
        );
    }
    compiled.ir
}
