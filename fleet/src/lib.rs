//! gatefold's fleet sync: one spec in git, many gateways kept in step.
//!
//! [`file`] reads a fleet file; [`plan`] compiles the spec per gateway and
//! asks each gateway (through its [`provider`]) what it runs, giving a
//! semantic diff; [`apply`] changes gateways wave by wave, each change a
//! compare-and-swap against what the plan saw, rolling back on failure;
//! [`drift`] compares what runs with each gateway's [`manifest`];
//! [`rollback`] returns gateways to the version before their last apply.
//! [`lock`] keeps two applies off one fleet; [`saved`] is a plan saved
//! for a later apply. There is no central state:
//! git holds what is wanted, each gateway what it runs and its manifest.

#![forbid(unsafe_code)]

pub mod apply;
pub mod drift;
pub mod file;
pub mod lock;
pub mod manifest;
mod parallel;
pub mod plan;
pub mod provider;
pub mod rollback;
pub mod saved;
