//! The front end: spec files to a decoded [`ast::SpecAst`], every problem
//! reported with its place.

pub mod ast;
mod client_address;
mod conditions;
pub mod decode;
mod policy;
pub mod script;
mod spec;
pub mod tls;
mod values;
pub mod yaml;

use crate::diag::Diagnostics;
use crate::source::{FileId, Sources};
use std::path::Path;

/// Parses and decodes every file of a spec, merging their sections.
pub fn load(
    sources: &Sources,
    base_dir: impl Fn(FileId) -> std::path::PathBuf,
) -> (ast::SpecAst, Diagnostics) {
    let mut spec = ast::SpecAst::default();
    let mut diags = Diagnostics::new();
    for (id, file) in sources.iter() {
        match yaml::parse(id, &file.text) {
            Ok(root) => {
                let dir = base_dir(id);
                let mut cx = decode::Cx {
                    diags: &mut diags,
                    base_dir: Path::new(&dir),
                    file,
                };
                spec::decode_file(&mut cx, &root, &mut spec);
            }
            Err(d) => {
                spec.unparsed_file = true;
                diags.extend(d);
            }
        }
    }
    (spec, diags)
}
