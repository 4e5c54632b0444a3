//! A reference gateway whose stderr is closed (a supervisor that stopped
//! reading it) keeps working: its status lines are lost, never a panic
//! half-way through a config swap. Before, the second apply's "serving
//! config" line panicked after the new config was in, so the gateway ran it
//! without having recorded it: no rollback history, the fleet manifest of
//! the apply before (a false drift).

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::reference::Guard;
use support::{both, gatefold, json, repo, scratch};

#[test]
fn config_swaps_work_with_stderr_closed() {
    let dir = scratch("stderr-closed");
    let spec = dir.join("spec.yaml");
    let example =
        std::fs::read_to_string(repo().join("examples/fleet/spec/gatefold.yaml")).unwrap();
    std::fs::write(&spec, &example).unwrap();
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_gatefold"))
            .args([
                "serve",
                repo().join("examples/quickstart").to_str().unwrap(),
            ])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--workers",
                "1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read up to where the admin API is, then close the pipe.
    let admin = {
        let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("serve says where its admin API is")
                .unwrap();
            if let Some(a) = line.strip_prefix("gatefold: admin API on ") {
                break a.trim().to_string();
            }
        }
    };
    let fleet = dir.join("fleet.yaml");
    std::fs::write(
        &fleet,
        format!(
            "gatefold: 1\nfleet:\n  spec: {}\n  gateways:\n    gw: {{ provider: reference, admin: \"{admin}\" }}\n",
            spec.display()
        ),
    )
    .unwrap();
    let fleet = fleet.to_str().unwrap();
    for pets in ["[rex, tom, kit]", "[rex, tom, kit, max]"] {
        std::fs::write(&spec, example.replace("[rex, tom]", pets)).unwrap();
        let out = gatefold(&["apply", fleet, "--yes"], &[], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", both(&out));
        // What was applied is recorded with it: no drift.
        let out = gatefold(&["drift", fleet, "--format", "json"], &[], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", both(&out));
        assert_eq!(json(&out)["gateways"][0]["state"], "no-drift");
    }
    // The last apply is in the history: the gateway goes back to the
    // first one, and that is recorded too.
    let out = gatefold(&["rollback", fleet, "--yes"], &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = gatefold(&["drift", fleet, "--format", "json"], &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        matches!(child.0.try_wait(), Ok(None)),
        "the gateway is still running"
    );
}
