//! Fuzzing gatefold's front end: see `fuzz/README.md`.

pub mod harness;
