//! The registered back ends and the capability matrix generated from them.

use gatefold_compiler::ir::TargetKind;
use gatefold_compiler::target::{Support, Target};
use gatefold_target_reference::Reference;

/// Every back end this build carries.
pub fn registered() -> Vec<Box<dyn Target>> {
    vec![Box::new(Reference)]
}

/// The targets `--target NAME` asks for.
pub fn select(name: &str) -> Result<Vec<Box<dyn Target>>, String> {
    if name == "all" {
        return Ok(registered());
    }
    let Some(kind) = TargetKind::parse(name) else {
        return Err(format!(
            "`{name}` is not a target: use kong, nginx, envoy, cloudflare, reference or all"
        ));
    };
    let found: Vec<_> = registered()
        .into_iter()
        .filter(|t| t.kind() == kind)
        .collect();
    if found.is_empty() {
        let have: Vec<_> = registered().iter().map(|t| t.kind().as_str()).collect();
        return Err(format!(
            "target `{name}` is not built yet; this gatefold has: {}",
            have.join(", ")
        ));
    }
    Ok(found)
}

fn cell(s: Support) -> &'static str {
    match s {
        Support::Native => "native",
        Support::Emulated => "emulated",
        Support::Unsupported => "-",
    }
}

/// The matrix as a Markdown table (rows: policy kinds in phase order).
pub fn matrix_markdown() -> String {
    let targets = registered();
    let mut out = String::from("| policy |");
    for t in &targets {
        out.push_str(&format!(" {} |", t.kind()));
    }
    out.push_str("\n|---|");
    for _ in &targets {
        out.push_str("---|");
    }
    out.push('\n');
    for kind in super::all_kinds() {
        out.push_str(&format!("| `{kind}` |"));
        for t in &targets {
            out.push_str(&format!(" {} |", cell(t.support(kind))));
        }
        out.push('\n');
    }
    out
}

/// The matrix as JSON: `{ target: { kind: support } }`.
pub fn matrix_json() -> String {
    let mut map = serde_json::Map::new();
    for t in registered() {
        let row: serde_json::Map<_, _> = super::all_kinds()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    serde_json::to_value(t.support(k)).expect("json"),
                )
            })
            .collect();
        map.insert(t.kind().as_str().to_string(), row.into());
    }
    serde_json::to_string_pretty(&map).expect("json")
}
