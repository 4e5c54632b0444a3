//! gatefold's cross-target conformance suite: each scenario (a small spec,
//! requests, expected responses and what the upstream must receive) is
//! compiled for every target in [`targets::all`], run on its real runtime
//! through `gatefold-runtime`'s launcher on free loopback ports, replayed
//! and compared. The scenario x target matrix is generated into
//! `docs/conformance.md`.
//!
//! Run it with `cargo test -p gatefold-conformance` (see
//! `docs/conformance.md`).

pub mod client;
pub mod echo;
pub mod matrix;
pub mod run;
pub mod scenario;
pub mod targets;
pub mod tls;
