//! The scenario x target matrix, as the text of `docs/conformance.md`.

use crate::run::Outcome;
use gatefold_compiler::ir::TargetKind;

/// One scenario's results, a cell per target.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub about: String,
    pub requests: usize,
    pub cells: Vec<Outcome>,
}

/// What the suite does not cover yet, and why (listed in the document).
const NOT_YET: &str = "\
## Language 1.1

Its forms have their scenarios: header and query `match` conditions and
`preserve-host` (`routing/match-conditions`, `routing/preserve-host`),
redirects built from the request (`redirects/built-from-the-request`),
cors wildcards (`cors/wildcards-and-credentials`) and request mirroring
(`upstreams/mirror`).

## Not covered, and why

- `408 request timeout`: it depends on the target's client-body timeout,
  which is runtime configuration (30 s in the reference gateway), not the
  spec: too slow for the suite.
- `script` on Kong: Kong cannot run here; it runs the Lua emitter's
  output, checked under luajit against the reference evaluator
  (`targets/lua-script/tests`) and against a Kong-PDK stand-in
  (`targets/kong/tests/script.rs`). The `scripts/` scenarios run on every
  other target.
- `native`: not portable by definition; each target's own tests hold it.
- What an *invalid* `host` gets (empty, with userinfo `a@b`, with quotes
  or spaces, a trailing dot): the language does not say (the reference
  gateway routes it as any unknown host, 404, or forwards it as data when
  an api answers any host); runtimes differ (nginx refuses some with 400).
  The suite only asserts that such hosts never match another api's
  `hosts`.
- `balance` (round-robin, least-request, hash-header): which target comes
  first differs by runtime and is not part of the language; the suite
  asserts what is fixed (retries moving to another target, weight 0).
- jwt `leeway`, the `connect` timeout: they need a clock or an address
  that does not answer, which the suite's fixed tokens and loopback
  upstreams cannot give; the reference gateway's own tests hold them.
";

/// The text before the matrix.
const INTRO: &str = r#"# Conformance

A spec means the same on every target. The conformance suite holds that:
each scenario in `tests/conformance/scenarios/` is a small spec, the
requests to send, the responses expected (status, chosen headers, body or
a part of it) and what the echo upstream must have received (method, path,
query, headers). The runner compiles each scenario for every target in
`tests/conformance/src/targets.rs`, starts the target's real runtime on
free loopback ports with the launcher that `gatefold up` uses
(`gatefold-runtime`'s `launch`), replays the requests and compares.

```sh
cargo test -p gatefold-conformance
```

runs it (CI runs it through `scripts/test.sh`, which installs nginx,
Envoy and workerd first, see `docs/runtimes.md`). `GATEFOLD_CONFORMANCE_ONLY=WORD`
runs the scenarios whose id contains WORD;
`GATEFOLD_CONFORMANCE_TARGETS=reference,nginx` runs only those targets
(both skip the check of this file). `GATEFOLD_CONFORMANCE_JOBS=N` runs N
scenarios at once (default 4). `GATEFOLD_BLESS=1` rewrites this file from
the results.

This file is generated: a test fails when it differs from what the suite
finds, and when the targets the suite runs differ from the capability
matrix of `gatefold capabilities` (`docs/capabilities.md`).

Cells:

- **pass**: every expectation held.
- **declared deviation (kind field)**: the target declares this kind or
  field, or this part of the request model (`baseline.path`),
  `approximate` (`gatefold capabilities`), and the scenario's
  expectations for that target describe the difference; they held. A
  deviation that the target does not declare fails the suite.
- **refused at compile (kind)**: `gatefold compile` refuses the spec for
  this target (a kind it cannot carry out exactly; security kinds fail
  closed), or leaves an advisory kind out with a warning (`kind left
  out`; `--strict` refuses it): the scenario is not run there.

**Every target built into the CLI that runs here is run by the suite**
(reference, nginx, Envoy, and Cloudflare in workerd). Kong cannot run on this machine: it is listed
as `pending` in `tests/conformance/src/targets.rs`, and its output is
checked against Kong's published schemas in `targets/kong/tests` instead;
there the specs of the `routing`, `redirects`, `upstreams` and `tls`
scenarios compile to configs that pass those schemas, whose Lua compiles,
and whose entities are reviewed snapshots (or are refused, the snapshot
saying why) (`targets/kong/tests/validate.rs`). A runnable target that
does not pass the suite yet would be listed there too.

A new target is one line in `tests/conformance/src/targets.rs` (and its
crate in `tests/conformance/Cargo.toml`), if `gatefold-runtime`'s launcher
can run its output. A new scenario is one YAML file (the format is
documented in `tests/conformance/src/scenario.rs`):

```yaml
about: what it checks, one line
env: { ACME_KEY: k1 }                 # secrets given to the runtime
spec: |                               # {{echo}}, {{echo2}}: echo upstreams; {{closed}}: nothing listens
  gatefold: 1
  upstreams:
    a: { targets: [{ url: "{{echo}}" }] }
  consumers:
    acme: { credentials: { key: { env: ACME_KEY } } }
  apis:
    main: { upstream: a, policies: [{ key-auth: {} }], routes: { all: { path: /* } } }
requests:
  - path: /x?y=1                      # sent byte for byte; method, host, headers, body, chunked, raw, sni
    headers: ["x-api-key: k1"]
    expect:
      status: 200
      headers: { x-echo: a }          # also present, absent, body, body-contains, body-size
      upstream: { path: /x, query: y=1, absent: [x-api-key] }   # or `upstream: none`
deviations:                           # only for what the target declares approximate
  nginx: { kind: retry, expect: { 0: { status: 200 } } }
```

"#;

/// The whole of `docs/conformance.md`.
pub fn document(targets: &[TargetKind], rows: &[Row]) -> String {
    let requests: usize = rows.iter().map(|r| r.requests).sum();
    let mut out = String::new();
    out.push_str(INTRO);
    out.push_str(&format!(
        "{} scenarios, {} requests, each on every target.\n\n",
        rows.len(),
        requests
    ));
    out.push_str("| scenario | what it checks | requests |");
    for t in targets {
        out.push_str(&format!(" {t} |"));
    }
    out.push_str("\n|---|---|---|");
    for _ in targets {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} |",
            row.id,
            row.about.replace('|', "\\|"),
            row.requests
        ));
        for cell in &row.cells {
            out.push_str(&format!(" {} |", cell.cell()));
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(NOT_YET);
    out
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Placeholders, ScenarioFile};

    #[test]
    fn the_example_in_the_document_is_a_valid_scenario_with_a_valid_spec() {
        let (_, rest) = super::INTRO.split_once("```yaml\n").unwrap();
        let (example, _) = rest.split_once("```").unwrap();
        let file = ScenarioFile {
            id: "doc/example".into(),
            path: "docs/conformance.md".into(),
            text: example.into(),
        };
        let scenario = file.parse(&Placeholders::dummy()).unwrap();
        let compiled = gatefold_compiler::compile_str("example.yaml", &scenario.spec);
        assert!(compiled.ir.is_some(), "{}", compiled.render());
        assert!(scenario.deviations.contains_key("nginx"));
    }
}
