//! The integration tests of this crate, one test binary: each file here is
//! a module of it. One binary instead of one per file keeps a fresh build
//! small and quick to link (each binary links every dependency again).
//! A new `tests/NAME.rs` is added as `mod NAME;` below; the workspace test
//! `every_test_file_is_compiled` fails if it is not.

mod common;

mod cache;
mod compile;
mod conditions_differential;
mod cors_differential;
mod dns;
mod host_differential;
mod jwt_differential;
mod jwt_lua;
mod language_1_1;
mod native;
mod path_lua;
mod redirect_differential;
mod route_features;
mod scale;
mod serve;
mod snapshot;
mod tls;
mod upstream_headers;
