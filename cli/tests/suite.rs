//! The integration tests of this crate, one test binary: each file here is
//! a module of it. One binary instead of one per file keeps a fresh build
//! small and quick to link (each binary links every dependency again).
//! A new `tests/NAME.rs` is added as `mod NAME;` below; the workspace test
//! `every_test_file_is_compiled` fails if it is not.
//!
//! Shared by every file here: `serve_admin_port` holds 127.0.0.1:9901 (the
//! admin API's default) once it runs, so every other `gatefold serve` in
//! these tests names its own `--admin` port.

mod support;

mod cli;
mod fleet;
mod fleet_cloudflare;
mod fleet_envoy;
mod fleet_example;
mod fleet_faults;
mod fleet_kong;
mod fleet_nginx;
mod fleet_nginx_ssh;
mod fleet_saved_plan;
mod serve;
mod serve_accept_backoff;
mod serve_access_log;
mod serve_admin_port;
mod serve_stderr;
mod serve_tls;
mod up;
