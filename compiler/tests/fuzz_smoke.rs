//! The fuzz targets' property (`harness::check`), run by plain `cargo test`:
//! no input panics the compiler, a second compilation gives the same IR,
//! hash and diagnostics, and every diagnostic has a place and a help. Checks every seed of `fuzz/seeds/` as it is (each must compile
//! cleanly, so mutations start from valid specs), then a few thousand
//! deterministic mutations of them, made by the same YAML-aware mutator the
//! `compile_mutated` fuzz target uses, with a fixed xorshift PRNG instead of
//! libFuzzer's bytes. A failure prints the mutated spec: add it to
//! `fuzz_regressions.rs`.

#[path = "../../fuzz/src/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{check, check_bytes, mutate, Choose, XorShift, SEEDS};

/// Runs `check` on `count` mutations drawn from `state`, reporting the first
/// input that breaks the property.
fn mutations(mut state: u64, count: usize) {
    for n in 0..count {
        let mut c = XorShift(state);
        let seed = SEEDS[c.below(SEEDS.len())];
        let other = SEEDS[c.below(SEEDS.len())].1;
        let text = mutate(seed.1, other, &mut c);
        state = c.0;
        let result = std::panic::catch_unwind(|| check(&text));
        if result.is_err() {
            panic!(
                "mutation {n} of seed `{}` breaks the property; input:\n{text:?}",
                seed.0
            );
        }
    }
}

#[test]
fn seeds_compile_cleanly() {
    for (name, text) in SEEDS {
        let c = gatefold_compiler::compile_str(name, text);
        assert!(c.ir.is_some(), "seed `{name}`:\n{}", c.render());
        check(text);
    }
}

// Split in two so that the test harness runs them on two threads.
#[test]
fn mutated_seeds_do_not_panic_a() {
    mutations(0x9E37_79B9_7F4A_7C15, 1500);
}

#[test]
fn mutated_seeds_do_not_panic_b() {
    mutations(0xD1B5_4A32_D192_ED03, 1500);
}

#[test]
fn random_bytes_do_not_panic() {
    let mut c = XorShift(0x2545_F491_4F6C_DD1D);
    let alphabet = b"gatefold: 1\n -:[]{},&*!|>'\"#%@?`\t\\x0/{}.";
    for _ in 0..1000 {
        let len = c.below(200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| match c.below(8) {
                0 => c.below(256) as u8,
                _ => alphabet[c.below(alphabet.len())],
            })
            .collect();
        check_bytes(&bytes);
    }
}
