//! The integration tests of this crate, one test binary: each file here is
//! a module of it. One binary instead of one per file keeps a fresh build
//! small and quick to link (each binary links every dependency again).
//! A new `tests/NAME.rs` is added as `mod NAME;` below; the workspace test
//! `every_test_file_is_compiled` fails if it is not.

mod common;

mod body_path;
mod client_address;
mod conditions;
mod cors_and_retry;
mod dispatch;
mod documented;
mod fuzz_loads;
mod hardening;
mod mirror;
mod operations;
mod redirect_parts;
mod routing;
mod scripts;
mod security;
mod tls;
mod upstream_pool;
mod upstreams;
