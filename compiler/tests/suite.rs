//! The integration tests of this crate, one test binary: each file here is
//! a module of it. One binary instead of one per file keeps a fresh build
//! small and quick to link (each binary links every dependency again).
//! A new `tests/NAME.rs` is added as `mod NAME;` below; the workspace test
//! `every_test_file_is_compiled` fails if it is not.

mod bad_specs;
mod determinism;
mod diff;
mod fuzz_regressions;
mod fuzz_smoke;
mod limits;
mod lowered;
mod review_regressions;
mod schema_agreement;
mod scripts;
mod target_api;
mod test_files;
mod testing_table;
mod tls;
