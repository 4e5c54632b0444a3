//! Scripts in a spec: parsed by a real JavaScript parser (oxc), checked
//! against the portable subset and lowered to the script IR. Diagnostics
//! point into the spec file: a script's byte offsets are mapped back through
//! the YAML scalar it was written in (a block scalar's indentation, quotes).

mod lower;
mod place;

use super::decode::Cx;
use super::yaml::Node;
use crate::ir::script::{Program, Side};
use crate::source::Span;
use oxc_allocator::Allocator;
use oxc_parser::{ParseOptions, Parser};
use oxc_span::SourceType;

pub use place::ScalarPlaces;

/// A compiled script with the spec place of each run-time failure site.
pub struct Compiled {
    pub program: Program,
    pub sites: Vec<Span>,
}

/// Parses, checks and lowers the script written in the scalar `node`
/// (whose decoded text is `source`); its sites are numbered from
/// `first_site`. Problems are reported through `cx`.
pub fn compile(
    cx: &mut Cx<'_>,
    node: &Node,
    source: &str,
    side: Side,
    first_site: u32,
) -> Option<Compiled> {
    let places = ScalarPlaces::new(cx.file, node, source);
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::cjs())
        .with_options(ParseOptions {
            allow_return_outside_function: true,
            ..ParseOptions::default()
        })
        .parse();
    if !parsed.errors.is_empty() || parsed.panicked {
        // The parser's first error is the one to fix; later ones often follow from it.
        if let Some(e) = parsed.errors.first() {
            let at = e
                .labels
                .as_ref()
                .and_then(|l| l.first())
                .map_or(0..0, |l| l.offset()..l.offset() + l.len());
            let help = if e.message.contains("await") {
                // Scripts parse as classic scripts, where `await` is a syntax error.
                "scripts are synchronous: the API answers at once, so remove `await`".to_string()
            } else {
                e.help.as_deref().map_or_else(
                    || {
                        "scripts are JavaScript: check the brackets, quotes and semicolons here"
                            .to_string()
                    },
                    str::to_string,
                )
            };
            cx.error(
                "script-syntax",
                places.span(at),
                format!("invalid script: {}", e.message),
                help,
            );
        }
        return None;
    }
    match lower::lower(&parsed.program, side, first_site) {
        Ok(l) => Some(Compiled {
            program: l.program,
            sites: l.sites.into_iter().map(|r| places.span(r)).collect(),
        }),
        Err(errors) => {
            for e in errors {
                cx.error(e.code, places.span(e.range), e.message, e.help);
            }
            None
        }
    }
}

/// Compiles a script given as bare text (no spec around it), for tests and
/// benchmarks of back ends: the messages of its diagnostics on failure.
pub fn compile_text(source: &str, side: Side) -> Result<Program, Vec<String>> {
    use crate::source::{FileId, Pos};
    let mut diags = crate::diag::Diagnostics::new();
    let node = Node {
        value: super::yaml::Value::Str(source.into()),
        span: Span::point(FileId(0), Pos { line: 1, col: 1 }),
    };
    let file = crate::source::SourceFile::new("script", source);
    let mut cx = Cx {
        diags: &mut diags,
        base_dir: std::path::Path::new("."),
        file: &file,
    };
    match compile(&mut cx, &node, source, side, 0) {
        Some(c) => Ok(c.program),
        None => Err(diags.iter().map(|d| d.message.clone()).collect()),
    }
}
