//! The targets the suite runs. Adding one is one line here (and its crate
//! in Cargo.toml): the launcher already knows how to run nginx and Envoy
//! outputs.

use gatefold_compiler::target::Target;

/// Every target the suite compiles and runs each scenario on.
pub fn all() -> Vec<Box<dyn Target>> {
    vec![
        Box::new(gatefold_target_reference::Reference),
        // Box::new(gatefold_target_nginx::Nginx::default()),
        // Box::new(gatefold_target_envoy::Envoy::default()),
    ]
}
