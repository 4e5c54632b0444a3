//! gatefold's compiler: spec files in, a validated [`ir::ValidIr`] out.
//!
//! The pipeline is `front` (YAML to a decoded spec, with spans) ->
//! `resolve` (names, inheritance, chains) -> `valid` (graph and route
//! table checks) -> [`ir`]. Back ends implement [`target::Target`] and read
//! only the IR.

#![forbid(unsafe_code)]

pub mod diag;
pub mod dispatch;
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
use std::sync::Arc;

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

/// Limits that keep a spec, mistaken or hostile, from taking unbounded time
/// and memory (see "Limits" in `policy-spec/README.md`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest spec file, in bytes; a larger one is refused before it is read.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: Limits::DEFAULT_MAX_FILE_BYTES,
        }
    }
}

impl Limits {
    /// 32 MiB: a thousand times a large real spec.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 32 << 20;
    /// The environment variable that raises (or lowers) the file size limit
    /// for every compilation of this process: a size such as `64MiB`.
    pub const ENV: &'static str = "GATEFOLD_MAX_SPEC_SIZE";

    /// The defaults, with [`Limits::ENV`] applied when it is set.
    pub fn from_env() -> Result<Limits, Diagnostic> {
        let Some(raw) = std::env::var_os(Limits::ENV) else {
            return Ok(Limits::default());
        };
        let text = raw.to_string_lossy();
        match text.trim().parse::<ir::values::ByteSize>() {
            Ok(size) if size.0 > 0 => Ok(Limits {
                max_file_bytes: size.0,
            }),
            Ok(_) => Err(bad_limit(format!("{} is 0", Limits::ENV))),
            Err(msg) => Err(bad_limit(format!("{}: {msg}", Limits::ENV))),
        }
    }
}

fn bad_limit(message: String) -> Diagnostic {
    Diagnostic::global("invalid-limit", message).with_help(format!(
        "set {} to a size such as `64MiB`, or unset it",
        Limits::ENV
    ))
}

/// Compiles a spec file, or a folder whose `*.yaml` files are merged, under
/// [`Limits::from_env`].
pub fn compile_path(path: &Path) -> Compiled {
    match Limits::from_env() {
        Ok(limits) => compile_path_with(path, &limits),
        Err(d) => refused(Sources::new(), d),
    }
}

/// Compiles a spec file or folder under the given limits.
pub fn compile_path_with(path: &Path, limits: &Limits) -> Compiled {
    let mut sources = Sources::new();
    let mut dirs = Vec::new();
    let files = match source::spec_files(path) {
        Ok(f) => f,
        Err(e) => return unreadable(sources, path, &e),
    };
    if files.is_empty() {
        let d = Diagnostic::global(
            "no-spec-files",
            format!("`{}` holds no `*.yaml` files", path.display()),
        )
        .with_help("point at a spec file, or a folder of them");
        return refused(sources, d);
    }
    for f in files {
        // Checked before reading, so a huge file costs no memory.
        if let Ok(meta) = std::fs::metadata(&f) {
            if meta.len() > limits.max_file_bytes {
                return refused(
                    sources,
                    too_large(&f.display().to_string(), meta.len(), limits),
                );
            }
        }
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
    compile_sources_with(sources, |id| dirs[id.0 as usize].clone(), limits)
}

/// A spec that must compile, for this crate's tests: its IR, or a panic
/// with the rendered diagnostics.
#[cfg(test)]
pub(crate) fn compile_valid(yaml: &str) -> ValidIr {
    let c = compile_str("spec.yaml", yaml);
    match c.ir {
        Some(ir) => ir,
        None => panic!("{}", c.render()),
    }
}

/// Compiles one in-memory file (tests, fuzzing, benchmarks, a config sent
/// to a running gateway) under [`Limits::from_env`]. Files it names (JWT
/// public keys) are looked up relative to the current directory, and must
/// be inside it.
pub fn compile_str(name: &str, text: &str) -> Compiled {
    let limits = Limits::from_env();
    let mut sources = Sources::new();
    sources.add(SourceFile::new(name, text));
    match limits {
        Ok(limits) => compile_sources_with(sources, |_| PathBuf::from("."), &limits),
        Err(d) => refused(sources, d),
    }
}

fn too_large(name: &str, len: u64, limits: &Limits) -> Diagnostic {
    Diagnostic::global(
        "spec-too-large",
        format!(
            "`{name}` is {}; a spec file may be at most {}",
            size_text(len),
            size_text(limits.max_file_bytes)
        ),
    )
    .with_help(format!(
        "split it into several files of a spec folder, or raise the limit with {}=64MiB",
        Limits::ENV
    ))
}

/// A size as people read it: bytes below 1 MiB, else MiB with one decimal.
fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes < MIB {
        format!("{bytes} bytes")
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    }
}

/// A compilation refused before the pipeline ran, for one reason.
fn refused(sources: Sources, d: Diagnostic) -> Compiled {
    let mut diagnostics = Diagnostics::new();
    diagnostics.push(d);
    Compiled {
        ir: None,
        diagnostics,
        sources,
    }
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

/// Runs the whole pipeline over loaded sources, with the default limits.
pub fn compile_sources(sources: Sources, base_dir: impl Fn(source::FileId) -> PathBuf) -> Compiled {
    compile_sources_with(sources, base_dir, &Limits::default())
}

/// Runs the whole pipeline over loaded sources. A file over the size limit
/// is refused as a whole (at its first line), like one that does not parse.
pub fn compile_sources_with(
    sources: Sources,
    base_dir: impl Fn(source::FileId) -> PathBuf,
    limits: &Limits,
) -> Compiled {
    let too_big = sources.iter().find_map(|(id, f)| {
        let len = f.text.len() as u64;
        (len > limits.max_file_bytes).then(|| {
            let at = source::Span::point(id, source::Pos { line: 1, col: 1 });
            Diagnostic {
                span: Some(at),
                ..too_large(&f.name, len, limits)
            }
        })
    });
    if let Some(d) = too_big {
        return refused(sources, d);
    }
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
    valid::check_consumers(&spec, &mut diagnostics);
    valid::check_credentials_exist(&spec, &routes, &mut diagnostics);
    valid::check_chains(&spec, &routes, &mut diagnostics);
    front::tls::check(&spec, &mut diagnostics);
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

    let detached = detach(&sources, &spec, routes);
    // The front end's definitions are not needed past this point.
    drop(spec);
    let ir = build_ir(gateway, detached);
    Compiled {
        ir: Some(ValidIr::new(ir)),
        diagnostics,
        sources,
    }
}

/// Everything of the IR that is read from the spec, owned, so the spec can
/// be freed before the routes are lowered (at 100,000 routes the front end's
/// definitions are a third of the compiler's peak memory).
struct Detached {
    source_map: SourceMap,
    upstreams: BTreeMap<ir::Name, ir::Upstream>,
    consumers: BTreeMap<ir::Name, ir::Consumer>,
    policies: BTreeMap<ir::PolicyId, ir::PolicyInstance>,
    routes: Vec<Unlowered>,
}

/// A route not yet lowered, with what its lowering needs from the spec.
struct Unlowered {
    route: resolve::RouteParts,
    /// The base path `strip-base-path` removes.
    strip_base: Option<String>,
    /// Whether it sends the client's host upstream.
    preserve_host: bool,
}

/// Takes from the spec what the IR keeps: the policy instances (the first
/// route naming one defines it), upstreams, consumers and source map.
fn detach(
    sources: &Sources,
    spec: &front::ast::SpecAst,
    routes: Vec<resolve::ResolvedRoute<'_>>,
) -> Detached {
    let mut source_map = SourceMap {
        files: sources.iter().map(|(_, f)| f.spec_path.clone()).collect(),
        tls_keys: spec
            .gateway
            .iter()
            .flat_map(|g| g.tls.iter())
            .flat_map(|t| t.key_spans.iter().map(|s| resolve::loc(*s)))
            .collect(),
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
    let upstreams = spec
        .upstreams
        .iter()
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    let consumers = spec
        .consumers
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                ir::Consumer {
                    groups: d.value.groups.clone(),
                    keys: d.value.keys.clone(),
                    basic: d.value.basic.clone(),
                },
            )
        })
        .collect();
    let mut policies = BTreeMap::new();
    for r in &routes {
        source_map
            .routes
            .insert(r.route.id.clone(), resolve::loc(r.span));
        for (id, step) in r.route.chain.iter().zip(&r.steps) {
            if policies.contains_key(id) {
                continue;
            }
            source_map.policies.insert(id.clone(), step.source.at);
            if !step.policy.sites.is_empty() {
                let sites = step.policy.sites.iter().map(|s| resolve::loc(*s)).collect();
                source_map.scripts.insert(id.clone(), sites);
            }
            policies.insert(
                id.clone(),
                ir::PolicyInstance {
                    attachment: id.attachment.clone(),
                    origin: ir::Provenance {
                        via: step.source.via.clone(),
                    },
                    policy: step.policy.policy.clone(),
                },
            );
        }
    }
    // `into_iter().map().collect()` reuses the resolved routes' buffer (the
    // output is smaller), so no second buffer of routes is alive at the peak.
    let routes = routes
        .into_iter()
        .map(|r| Unlowered {
            route: r.route,
            strip_base: r.strip_base,
            preserve_host: r.preserve_host,
        })
        .collect();
    Detached {
        source_map,
        upstreams,
        consumers,
        policies,
        routes,
    }
}

/// Lowers each route and seals the IR. Each route is an allocation of its
/// own (`Arc`: an IR made from changes shares the running one's routes),
/// so the buffer of the routes being lowered is alive until the last is
/// lowered, and is then given back.
fn build_ir(gateway: ir::Gateway, d: Detached) -> Ir {
    let index = ir::PolicyIndex::new(&d.policies);
    let lower = ir::lowered::LowerInput {
        gateway: &gateway,
        upstreams: &d.upstreams,
        policies: &index,
    };
    let mut routes: Vec<Arc<ir::Route>> = d
        .routes
        .into_iter()
        .map(|u| {
            let mut lowered = lower.lower(
                &u.route.chain,
                u.route.upstream.as_ref(),
                u.strip_base.as_deref(),
            );
            lowered.preserve_host = u.preserve_host;
            Arc::new(u.route.lowered(lowered))
        })
        .collect();
    // The collect reused the old buffer, many times larger than the
    // pointers it now holds: without this it stays with the IR.
    routes.shrink_to_fit();
    let hash = ContentHash::compute(&gateway, &d.upstreams, &d.consumers, &d.policies, &routes);
    Ir {
        format: IR_FORMAT,
        hash,
        gateway,
        upstreams: d.upstreams,
        consumers: d.consumers,
        policies: d.policies,
        routes,
        sources: d.source_map,
    }
}
