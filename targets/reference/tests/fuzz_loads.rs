//! The fuzz property's last clause, which the compiler crate cannot check
//! (it cannot depend on the gateway): **an IR the compiler accepts loads in
//! the reference gateway.** The seeds and two thousand deterministic
//! mutations of them (the `compile_mutated` fuzz target's mutator, with a
//! fixed PRNG) are compiled; each accepted IR is built into a gateway
//! runtime, with every secret variable set to a value of its own.
//!
//! The only refusals allowed are the ones the environment decides, not the
//! IR: two consumers whose keys read the same variable (so the same value),
//! and a jwt public key given as `{ env }` (the fuzz seeds use one, having no
//! files), whose value here is not a key. Anything else (a key file the compiler let through but
//! the gateway cannot use, an upstream the IR names but the runtime cannot
//! find, a panic) breaks the property.

#[path = "../../../fuzz/src/harness.rs"]
#[allow(dead_code)]
mod harness;

use gatefold_compiler::ir::ValidIr;
use gatefold_target_reference::gateway::clock::SystemClock;
use gatefold_target_reference::gateway::metrics::Metrics;
use gatefold_target_reference::gateway::runtime::{BuildEnv, Runtime};
use gatefold_target_reference::gateway::secrets::SecretSource;
use gatefold_target_reference::gateway::upstream::tls::client_config;
use harness::{mutate, Choose, XorShift, SEEDS};
use std::sync::Arc;

/// Every variable is set, each to a value derived from its name (so two
/// variables never share a value).
struct EveryVariable;

impl SecretSource for EveryVariable {
    fn get(&self, name: &str) -> Option<String> {
        Some(format!("value-of-{name}-0123456789abcdef"))
    }
}

/// Builds `ir` into a runtime; the errors it gives, if any.
fn load(ir: ValidIr) -> Result<(), Vec<String>> {
    let metrics = Metrics::new(1);
    let env = BuildEnv {
        secrets: &EveryVariable,
        clock: Arc::new(SystemClock),
        metrics: &metrics,
        tls: client_config(None).expect("the system trust store loads"),
        previous: None,
    };
    Runtime::build(ir, &env).map(|_| ())
}

/// Compiles `text`; when it is accepted, it must load.
fn check(label: &str, text: &str) -> bool {
    let compiled = gatefold_compiler::compile_str("spec.yaml", text);
    let Some(ir) = compiled.ir else {
        return false;
    };
    if let Err(errors) = load(ir) {
        let allowed = |e: &String| {
            e.contains("have the same key value")
                || e.contains("jwt: the public key is not a usable")
        };
        assert!(
            errors.iter().all(allowed),
            "{label}: the compiler accepted a spec the gateway refuses: {errors:?}\ninput:\n{text}"
        );
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn accepted_irs_load_in_the_gateway() {
    for (name, text) in SEEDS {
        assert!(check(name, text), "seed `{name}` must compile");
    }
    let mut state = 0x5DEE_CE66_D1CE_4E5B_u64;
    let mut accepted = 0;
    for n in 0..2000 {
        let mut c = XorShift(state);
        let seed = SEEDS[c.below(SEEDS.len())];
        let other = SEEDS[c.below(SEEDS.len())].1;
        let text = mutate(seed.1, other, &mut c);
        state = c.0;
        if check(&format!("mutation {n} of `{}`", seed.0), &text) {
            accepted += 1;
        }
    }
    // Mutations that still compile are what this test is about: make sure
    // the mutator leaves enough of them to mean something.
    assert!(
        accepted >= 100,
        "only {accepted} of 2000 mutations compiled"
    );
}
