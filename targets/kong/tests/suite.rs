//! The integration tests of this crate, one test binary: each file here is
//! a module of it. One binary instead of one per file keeps a fresh build
//! small and quick to link (each binary links every dependency again).
//! A new `tests/NAME.rs` is added as `mod NAME;` below; the workspace test
//! `every_test_file_is_compiled` fails if it is not.

mod common;

mod conditions;
mod dispatch;
mod functions;
mod jwt;
mod native;
mod redirect;
mod refusals;
mod retry;
mod script;
mod snapshot;
mod tls;
mod validate;
mod yaml_strings;
