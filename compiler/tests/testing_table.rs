//! `docs/testing.md` keeps a table of the sections of
//! `policy-spec/README.md` and the tests that hold each. This keeps it from
//! going stale: every section (a `##` or deeper heading) has a row, every
//! row names a section that exists, and every test and bad spec the table
//! names exists (a renamed or deleted test would leave a row that only looks
//! covered).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `##`-and-deeper headings of a Markdown text, outside code blocks
/// (where `#` starts a YAML comment).
fn headings(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let level = line.bytes().take_while(|b| *b == b'#').count();
        if level >= 2 && line.as_bytes().get(level) == Some(&b' ') {
            out.push(line[level..].trim().to_string());
        }
    }
    out
}

/// The first cell of each row of the table whose header starts `| Section |`.
fn rows(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .skip_while(|l| !l.starts_with("| Section |"))
        .skip(2) // the header and the `|---|` line
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .map(|cell| cell.trim().to_string())
        .collect()
}

#[test]
fn every_section_of_the_spec_has_a_row_in_the_testing_table() {
    let spec = std::fs::read_to_string(repo().join("policy-spec/README.md")).unwrap();
    let table = std::fs::read_to_string(repo().join("docs/testing.md")).unwrap();
    let sections: BTreeSet<String> = headings(&spec).into_iter().collect();
    let listed: BTreeSet<String> = rows(&table).into_iter().collect();
    assert!(sections.len() >= 30, "found only {sections:?}");
    let missing: Vec<_> = sections.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&sections).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/testing.md is out of date with policy-spec/README.md:\n\
         sections with no row: {missing:?}\nrows for no section: {stale:?}"
    );
}

/// Every `.rs` file of the repository, outside build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !matches!(&*name, "target" | ".git" | ".tools" | "node_modules") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The `a::b` names in backticks of a table cell, each with the bare
/// `` `c` `` names that follow it in the same comma list (`a::b`, `c` means
/// `a::b` and `a::c`).
fn test_names(cell: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut module: Option<String> = None;
    for (i, piece) in cell.split('`').enumerate() {
        if i % 2 == 0 {
            // Text between names: a list goes on only over ", ".
            if piece != ", " {
                module = None;
            }
            continue;
        }
        if let Some((m, name)) = piece.split_once("::") {
            let plain = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            };
            if plain(m) && plain(name) {
                out.push((m.to_string(), name.to_string()));
                module = Some(m.to_string());
                continue;
            }
            module = None;
        } else if let Some(m) = &module {
            if piece
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                out.push((m.clone(), piece.to_string()));
            } else {
                module = None;
            }
        }
    }
    out
}

/// The numbers after each `bad-specs ` (lists like `07, 23, 91-98`).
fn bad_spec_numbers(text: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("bad-specs ") {
        for item in text[at + "bad-specs ".len()..].split(", ") {
            let lead: String = item
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            let bounds: Vec<u32> = lead.split('-').filter_map(|n| n.parse().ok()).collect();
            match bounds[..] {
                [n] => {
                    out.insert(n);
                }
                [a, b] => out.extend(a..=b),
                _ => break,
            }
            // Anything after the number ends the list.
            if lead.len() != item.len() {
                break;
            }
        }
    }
    out
}

#[test]
fn every_test_and_bad_spec_the_table_names_exists() {
    let table = std::fs::read_to_string(repo().join("docs/testing.md")).unwrap();
    let mut files = Vec::new();
    rust_files(&repo(), &mut files);
    // `module::test`: a test file `module.rs` (under some `tests/`) with
    // `fn test`, or a module path of the sources (`ir::request`).
    let mut missing = Vec::new();
    for line in table.lines().filter(|l| l.starts_with('|')) {
        for (module, name) in test_names(line) {
            let in_test_file = files.iter().any(|f| {
                f.file_name()
                    .is_some_and(|n| n == format!("{module}.rs").as_str())
                    && std::fs::read_to_string(f)
                        .unwrap()
                        .contains(&format!("fn {name}("))
            });
            let module_path = format!("/{module}/{name}.rs");
            let is_module = files
                .iter()
                .any(|f| f.to_string_lossy().ends_with(&module_path));
            if !in_test_file && !is_module {
                missing.push(format!("{module}::{name}"));
            }
        }
    }
    assert!(
        test_names(&table).len() >= 50,
        "the table names too few tests"
    );
    let specs: BTreeSet<u32> = std::fs::read_dir(repo().join("compiler/tests/bad-specs"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.split('-').next()?.parse().ok()
        })
        .collect();
    let numbers = bad_spec_numbers(&table);
    assert!(numbers.len() >= 50, "found only {numbers:?}");
    let no_spec: Vec<_> = numbers.difference(&specs).collect();
    assert!(
        missing.is_empty() && no_spec.is_empty(),
        "docs/testing.md names tests that do not exist: {missing:?}\n\
         and bad specs that do not exist: {no_spec:?}"
    );
}

#[test]
fn names_are_read_from_cells_and_lists() {
    let cell = "bad-specs 07, 23, 91-93; `a::b`, `c`; `d` (x); `e::f` and `g`; `x.y::z`";
    assert_eq!(
        test_names(cell),
        [("a", "b"), ("a", "c"), ("e", "f")].map(|(m, n)| (m.to_string(), n.to_string()))
    );
    assert_eq!(
        bad_spec_numbers(cell).into_iter().collect::<Vec<_>>(),
        [7, 23, 91, 92, 93]
    );
}

#[test]
fn headings_in_code_blocks_are_not_sections() {
    let md = "## A\n```yaml\n# comment\n## not a heading\n```\n### B\n#nospace\n";
    assert_eq!(headings(md), ["A", "B"]);
}
