//! The registered back ends and the capability matrix generated from them.

use gatefold_compiler::ir::TargetKind;
use gatefold_compiler::target::Target;
use gatefold_target_cloudflare::Cloudflare;
use gatefold_target_envoy::Envoy;
use gatefold_target_kong::Kong;
use gatefold_target_nginx::Nginx;
use gatefold_target_reference::Reference;

/// Every back end this build carries.
pub fn registered() -> Vec<Box<dyn Target>> {
    vec![
        Box::new(Nginx::default()),
        Box::new(Envoy::default()),
        Box::new(Kong),
        Box::new(Cloudflare),
        Box::new(Reference),
    ]
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

/// The matrix as a Markdown table, see [`gatefold_compiler::target::matrix_markdown`].
pub fn matrix_markdown() -> String {
    let targets = registered();
    let refs: Vec<&dyn Target> = targets.iter().map(|t| t.as_ref()).collect();
    gatefold_compiler::target::matrix_markdown(&refs)
}

/// The matrix as JSON, see [`gatefold_compiler::target::matrix_json`].
pub fn matrix_json() -> String {
    let targets = registered();
    let refs: Vec<&dyn Target> = targets.iter().map(|t| t.as_ref()).collect();
    serde_json::to_string_pretty(&gatefold_compiler::target::matrix_json(&refs)).expect("json")
}
