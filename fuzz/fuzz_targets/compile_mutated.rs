//! Structure-aware: a seed spec with a few YAML-aware edits, every choice
//! (which seed, which edits, where) read from libFuzzer's bytes. Reaches the
//! decoder, resolver and validator far more often than raw bytes do.
#![no_main]

use arbitrary::Unstructured;
use gatefold_fuzz::harness::{check, mutate, Choose, SEEDS};
use libfuzzer_sys::fuzz_target;

struct Bytes<'a>(Unstructured<'a>);

impl Choose for Bytes<'_> {
    fn below(&mut self, n: usize) -> usize {
        // Exhausted input reads as zeros: still a valid choice.
        self.0.choose_index(n).unwrap_or(0)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Bytes(Unstructured::new(data));
    let seed = SEEDS[c.below(SEEDS.len())].1;
    let other = SEEDS[c.below(SEEDS.len())].1;
    let text = mutate(seed, other, &mut c);
    check(&text);
});
