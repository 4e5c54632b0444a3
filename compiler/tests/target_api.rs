//! Target API v2: the check step fails closed for security kinds, warns
//! only for advisory ones, reports per field, and output comes with a
//! manifest.

use gatefold_compiler::compile_str;
use gatefold_compiler::ir::policy::Policy;
use gatefold_compiler::ir::{PolicyKind, TargetKind, ValidIr};
use gatefold_compiler::target::{
    check, gap_diagnostics, matrix_json, matrix_markdown, FieldSupport, Options, Output,
    OutputFile, RelPath, Support, Target,
};

/// A made-up back end: every kind native except those listed.
struct TestTarget {
    unsupported: Vec<PolicyKind>,
    /// `rate-limit` windows other than a second or a minute are approximated.
    approximates_odd_windows: bool,
    /// Kinds carried out only approximately.
    approximated: Vec<PolicyKind>,
}

const ODD_WINDOW: FieldSupport = FieldSupport {
    kind: PolicyKind::RateLimit,
    field: "per",
    value: Some("other than 1s or 1m"),
    support: Support::Approximate {
        note: "counted per second, scaled",
    },
};

impl Target for TestTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Nginx
    }
    fn support(&self, kind: PolicyKind) -> Support {
        if self.unsupported.contains(&kind) {
            Support::Unsupported
        } else if self.approximated.contains(&kind) {
            Support::Approximate {
                note: "entries expire early",
            }
        } else {
            Support::Builtin
        }
    }
    fn fields(&self) -> Vec<FieldSupport> {
        vec![ODD_WINDOW]
    }
    fn policy_fields(&self, policy: &Policy) -> Vec<FieldSupport> {
        match policy {
            Policy::RateLimit(l)
                if self.approximates_odd_windows && ![1_000, 60_000].contains(&l.per.millis) =>
            {
                vec![ODD_WINDOW]
            }
            _ => Vec::new(),
        }
    }
    fn emit(&self, ir: &ValidIr, _: &Options) -> Output {
        let file = OutputFile {
            path: RelPath::new("nginx.conf").unwrap(),
            bytes: Vec::new(),
            description: "main config".into(),
        };
        Output::new(TargetKind::Nginx, ir, vec![file])
    }
}

const SPEC: &str = r#"gatefold: 1
upstreams: { u: { targets: [{ url: "http://127.0.0.1:9001" }] } }
consumers:
  c: { credentials: { key: { env: C_KEY } } }
gateway:
  policies:
    - key-auth: { in: header, name: x-key }
    - rate-limit: { requests: 10, per: 10s }
apis:
  a:
    upstream: u
    routes:
      x: { path: /x, policies: [{ cache: { ttl: 1m } }] }
      y: { path: /y }
"#;

fn ir() -> ValidIr {
    let c = compile_str("s.yaml", SPEC);
    c.ir.clone().unwrap_or_else(|| panic!("{}", c.render()))
}

fn target(unsupported: &[PolicyKind]) -> TestTarget {
    TestTarget {
        unsupported: unsupported.to_vec(),
        approximates_odd_windows: false,
        approximated: Vec::new(),
    }
}

/// A security kind the target cannot carry out is an error even without
/// `--strict`, reported once for the gateway-level instance, naming the
/// target, the instance and the routes.
#[test]
fn an_unsupported_security_kind_fails_without_strict() {
    let ir = ir();
    let gaps = check(&target(&[PolicyKind::KeyAuth]), &ir, &Options::default());
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let g = &gaps[0];
    assert!(g.error);
    assert_eq!(g.target, TargetKind::Nginx);
    assert_eq!(g.policy.to_string(), "gateway/key-auth");
    assert_eq!(g.field, None);
    let routes: Vec<String> = g.routes.iter().map(ToString::to_string).collect();
    assert_eq!(routes, ["a.x", "a.y"]);
    let diags = gap_diagnostics(&gaps, &ir);
    assert!(diags.has_errors());
    let text = format!("{diags:?}");
    assert!(text.contains("gateway/key-auth"), "{text}");
    assert!(text.contains("never left out"), "{text}");
}

/// Advisory kinds may be left out with a warning; `--strict` makes it an error.
#[test]
fn an_unsupported_advisory_kind_warns_unless_strict() {
    let ir = ir();
    let t = target(&[PolicyKind::Cache]);
    let gaps = check(&t, &ir, &Options::default());
    assert_eq!(gaps.len(), 1);
    assert!(!gaps[0].error);
    assert_eq!(gaps[0].policy.to_string(), "route/a.x/cache");
    assert!(!gap_diagnostics(&gaps, &ir).has_errors());
    let strict = check(
        &t,
        &ir,
        &Options {
            strict: true,
            ..Options::default()
        },
    );
    assert!(strict[0].error);
}

/// An advisory kind a target only approximates is written, with a warning
/// saying how it differs, never that it is left out; one it cannot carry
/// out at all is left out, and the warning says so.
#[test]
fn an_approximated_kind_is_not_said_to_be_left_out() {
    let ir = ir();
    let approximating = TestTarget {
        approximated: vec![PolicyKind::Cache],
        ..target(&[])
    };
    let text = format!(
        "{:?}",
        gap_diagnostics(&check(&approximating, &ir, &Options::default()), &ir)
    );
    assert!(
        text.contains("only approximates it: entries expire early"),
        "{text}"
    );
    assert!(!text.contains("left out"), "{text}");
    let lacking = target(&[PolicyKind::Cache]);
    let text = format!(
        "{:?}",
        gap_diagnostics(&check(&lacking, &ir, &Options::default()), &ir)
    );
    assert!(text.contains("it is left out"), "{text}");
}

/// Support per field and value: an approximated rate-limit window is a gap
/// naming the field, an error because rate limits are security kinds; an
/// exact window is no gap at all.
#[test]
fn field_gaps_name_the_field_and_fail_closed_for_security_kinds() {
    let ir = ir();
    let t = TestTarget {
        approximates_odd_windows: true,
        ..target(&[])
    };
    let gaps = check(&t, &ir, &Options::default());
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].policy.to_string(), "gateway/rate-limit");
    assert_eq!(gaps[0].field, Some("per"));
    assert!(gaps[0].error);
    let minute = compile_str("m.yaml", &SPEC.replace("per: 10s", "per: 1m"))
        .ir
        .expect("compiles");
    assert!(check(&t, &minute, &Options::default()).is_empty());
}

/// `script` is security stakes: a target that cannot run it refuses it at
/// compile time (fail closed); one that runs it accepts it.
#[test]
fn script_is_refused_by_targets_that_cannot_run_it() {
    let spec = SPEC.replace(
        "y: { path: /y }",
        "y: { path: /y, policies: [{ script: { request: \"req.setHeader('x-a', '1');\" } }] }",
    );
    let c = compile_str("s.yaml", &spec);
    let ir = c.ir.clone().unwrap_or_else(|| panic!("{}", c.render()));
    let gaps = check(&target(&[PolicyKind::Script]), &ir, &Options::default());
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].policy.to_string(), "route/a.y/script");
    assert!(gaps[0].error);
    let text = format!("{:?}", gap_diagnostics(&gaps, &ir));
    assert!(text.contains("cannot run `script` yet"), "{text}");
    assert!(check(&target(&[]), &ir, &Options::default()).is_empty());
}

/// The matrix has a row per declared field, in both formats.
#[test]
fn the_matrix_shows_field_entries() {
    let t = target(&[]);
    let md = matrix_markdown(&[&t]);
    assert!(
        md.contains("| `rate-limit` `per: other than 1s or 1m` | approximate [1] |"),
        "{md}"
    );
    assert!(md.contains("[1]: counted per second, scaled"), "{md}");
    let json = matrix_json(&[&t]);
    assert_eq!(json["nginx"]["kinds"]["cors"], "built-in");
    assert_eq!(json["nginx"]["fields"][0]["field"], "per");
}

/// Output paths stay inside the output folder; the manifest names the
/// entry file and the secrets the runtime needs.
#[test]
fn output_paths_are_relative_and_the_manifest_lists_secrets() {
    for bad in ["", "/etc/x", "../x", "a/../b", "a//b", "./a", "c:x", "a\\b"] {
        assert!(RelPath::new(bad).is_err(), "{bad}");
    }
    assert!(RelPath::new("conf.d/routes.conf").is_ok());
    let out = target(&[]).emit(&ir(), &Options::default());
    assert_eq!(out.manifest.entry.as_str(), "nginx.conf");
    let secrets = serde_json::to_string(&out.manifest.secrets).unwrap();
    assert_eq!(secrets, r#"[{"env":"C_KEY"}]"#);
    assert_eq!(out.manifest.files.len(), 1);
}

/// A target declaring a part of the request model approximate.
struct ModelTarget;

impl Target for ModelTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Envoy
    }
    fn support(&self, _: PolicyKind) -> Support {
        Support::Builtin
    }
    fn request_model(&self) -> Vec<gatefold_compiler::target::ModelSupport> {
        vec![gatefold_compiler::target::ModelSupport {
            part: "baseline.path",
            support: Support::Approximate {
                note: "a test declaration",
            },
        }]
    }
    fn emit(&self, ir: &gatefold_compiler::ir::ValidIr, options: &Options) -> Output {
        target(&[]).emit(ir, options)
    }
}

/// A request-model row appears once some target declares the part, with
/// the others built in; without a declaration there is no such row.
#[test]
fn the_matrix_shows_request_model_rows_only_when_declared() {
    let (a, b) = (target(&[]), ModelTarget);
    let md = matrix_markdown(&[&a, &b]);
    assert!(
        md.contains("| request model `baseline.path` | built-in | approximate [2] |"),
        "{md}"
    );
    assert!(md.contains("[2]: a test declaration"), "{md}");
    assert!(!matrix_markdown(&[&a]).contains("request model"));
    let json = matrix_json(&[&b]);
    assert_eq!(json["envoy"]["request-model"][0]["part"], "baseline.path");
}
