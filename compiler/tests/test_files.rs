//! Every integration test file of the workspace is compiled into a test
//! binary. The crates gather their test files into one binary each
//! (`tests/suite.rs`, `autotests = false`), so a file that is neither a
//! module of the suite nor a `[[test]]` of its own would never run, and
//! nothing else would say so.

use std::fs;
use std::path::Path;

#[test]
fn every_test_file_is_compiled() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest = fs::read_to_string(workspace.join("Cargo.toml")).unwrap();
    let members_line = manifest
        .lines()
        .find(|l| l.starts_with("members = ["))
        .expect("the workspace lists its members on one line");
    let members: Vec<&str> = members_line.split('"').skip(1).step_by(2).collect();
    assert!(members.contains(&"compiler"), "{members:?}");

    let mut unrun = Vec::new();
    let mut checked = 0;
    for member in members {
        let dir = workspace.join(member);
        let cargo = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let Ok(entries) = fs::read_dir(dir.join("tests")) else {
            continue;
        };
        if !cargo.contains("autotests = false") {
            continue; // Cargo makes a binary of every tests/*.rs.
        }
        let suite = fs::read_to_string(dir.join("tests/suite.rs")).unwrap_or_default();
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            // `tests/NAME/main.rs` is a binary only where Cargo finds tests
            // itself, which these crates turned off.
            if entry.path().join("main.rs").is_file()
                && !cargo.contains(&format!("path = \"tests/{name}/main.rs\""))
            {
                unrun.push(format!("{member}/tests/{name}/main.rs"));
            }
            let Some(stem) = name.strip_suffix(".rs") else {
                continue;
            };
            checked += 1;
            let in_suite = suite.lines().any(|l| l == format!("mod {stem};"));
            let own_binary = cargo.contains(&format!("path = \"tests/{name}\""));
            if !in_suite && !own_binary {
                unrun.push(format!("{member}/tests/{name}"));
            }
        }
    }
    assert!(checked > 50, "only {checked} test files found");
    assert!(
        unrun.is_empty(),
        "test files that no test binary compiles (add `mod NAME;` to the crate's \
         tests/suite.rs): {unrun:?}"
    );
}
