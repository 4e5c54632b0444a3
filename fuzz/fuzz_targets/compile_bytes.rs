//! Arbitrary bytes as a spec file: the compiler must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gatefold_fuzz::harness::check_bytes(data);
});
