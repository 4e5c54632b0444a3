//! gatefold's compiler: spec files in, a validated [`ir::ValidIr`] out.
//!
//! The pipeline is `front` (YAML to a decoded spec, with spans) ->
//! `resolve` (names, inheritance, chains) -> `valid` (graph and route
//! table checks) -> [`ir`]. Back ends implement [`target::Target`] and read
//! only the IR.

#![forbid(unsafe_code)]

pub mod diag;
pub mod front;
pub mod ir;
mod resolve;
pub mod source;
pub mod synth;
pub mod target;
mod valid;

use diag::{Diagnostic, Diagnostics};
use ir::{ContentHash, Ir, SourceMap, ValidIr, IR_FORMAT};
use source::{SourceFile, Sources};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The outcome of compiling a spec: the IR when there were no errors, and
/// every diagnostic (warnings included) either way.
pub struct Compiled {
    pub ir: Option<ValidIr>,
    pub diagnostics: Diagnostics,
    pub sources: Sources,
}

impl Compiled {
    /// Diagnostics rendered as text, with source excerpts.
    pub fn render(&self) -> String {
        self.diagnostics.render(&self.sources)
    }
}

/// Compiles a spec file, or a folder whose `*.yaml` files are merged.
pub fn compile_path(path: &Path) -> Compiled {
    let mut sources = Sources::new();
    let mut dirs = Vec::new();
    let files = match source::spec_files(path) {
        Ok(f) => f,
        Err(e) => return unreadable(sources, path, &e),
    };
    if files.is_empty() {
        let mut diagnostics = Diagnostics::new();
        diagnostics.push(
            Diagnostic::global(
                "no-spec-files",
                format!("`{}` holds no `*.yaml` files", path.display()),
            )
            .with_help("point at a spec file, or a folder of them"),
        );
        return Compiled {
            ir: None,
            diagnostics,
            sources,
        };
    }
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => {
                let file = SourceFile::new(f.display().to_string(), text)
                    .with_spec_path(source::spec_path(path, &f));
                sources.add(file);
                dirs.push(f.parent().map(Path::to_path_buf).unwrap_or_default());
            }
            Err(e) => return unreadable(sources, &f, &e),
        }
    }
    compile_sources(sources, |id| dirs[id.0 as usize].clone())
}

/// Compiles one in-memory file (tests, fuzzing, benchmarks). Files it names
/// (JWT public keys) are looked up relative to the current directory.
pub fn compile_str(name: &str, text: &str) -> Compiled {
    let mut sources = Sources::new();
    sources.add(SourceFile::new(name, text));
    compile_sources(sources, |_| PathBuf::from("."))
}

fn unreadable(sources: Sources, path: &Path, e: &std::io::Error) -> Compiled {
    let mut diagnostics = Diagnostics::new();
    diagnostics.push(
        Diagnostic::global(
            "unreadable-spec",
            format!("cannot read `{}`: {e}", path.display()),
        )
        .with_help("check the path"),
    );
    Compiled {
        ir: None,
        diagnostics,
        sources,
    }
}

/// Runs the whole pipeline over loaded sources.
pub fn compile_sources(sources: Sources, base_dir: impl Fn(source::FileId) -> PathBuf) -> Compiled {
    let (spec, mut diagnostics) = front::load(&sources, base_dir);
    if spec.unparsed_file {
        diagnostics.sort();
        return Compiled {
            ir: None,
            diagnostics,
            sources,
        };
    }
    let (gateway, mut routes, resolve_diags) = resolve::resolve(&spec);
    diagnostics.extend(resolve_diags);
    valid::canonical_order(&mut routes);
    valid::check_routes(&routes, &mut diagnostics);
    valid::check_graph(&spec, &routes, &mut diagnostics);
    diagnostics.sort();
    if diagnostics.has_errors() {
        return Compiled {
            ir: None,
            diagnostics,
            sources,
        };
    }

    let mut source_map = SourceMap {
        files: sources.iter().map(|(_, f)| f.spec_path.clone()).collect(),
        ..SourceMap::default()
    };
    for d in &spec.upstreams {
        source_map
            .upstreams
            .insert(d.name.clone(), resolve::loc(d.span));
    }
    for d in &spec.consumers {
        source_map
            .consumers
            .insert(d.name.clone(), resolve::loc(d.span));
    }
    let mut ir_routes = Vec::with_capacity(routes.len());
    let mut policies = BTreeMap::new();
    for r in routes {
        source_map
            .routes
            .insert(r.route.id.clone(), resolve::loc(r.span));
        // Every route inheriting a policy names the same instance: the
        // first one met defines it.
        for (id, step) in r.route.chain.iter().zip(&r.steps) {
            if policies.contains_key(id) {
                continue;
            }
            source_map.policies.insert(id.clone(), step.source.at);
            policies.insert(
                id.clone(),
                ir::PolicyInstance {
                    attachment: id.attachment.clone(),
                    origin: ir::Origin {
                        via: step.source.via.clone(),
                    },
                    policy: step.policy.policy.clone(),
                },
            );
        }
        ir_routes.push((r.route, r.strip_base));
    }
    let upstreams: BTreeMap<_, _> = spec
        .upstreams
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect();
    let consumers: BTreeMap<_, _> = spec
        .consumers
        .into_iter()
        .map(|d| {
            (
                d.name,
                ir::Consumer {
                    groups: d.value.groups,
                    keys: d.value.keys,
                    basic: d.value.basic,
                },
            )
        })
        .collect();
    let lower = ir::lowered::LowerInput {
        gateway: &gateway,
        upstreams: &upstreams,
        policies: &policies,
    };
    let ir_routes: Vec<ir::Route> = ir_routes
        .into_iter()
        .map(|(mut route, strip_base)| {
            route.lowered =
                lower.lower(&route.chain, route.upstream.as_ref(), strip_base.as_deref());
            route
        })
        .collect();
    let hash = ContentHash::compute(&gateway, &upstreams, &consumers, &policies, &ir_routes);
    let ir = Ir {
        format: IR_FORMAT,
        hash,
        gateway,
        upstreams,
        consumers,
        policies,
        routes: ir_routes,
        sources: source_map,
    };
    Compiled {
        ir: Some(ValidIr::new(ir)),
        diagnostics,
        sources,
    }
}
