//! `docs/testing.md` keeps a table of the sections of
//! `policy-spec/README.md` and the tests that hold each. This keeps it from
//! going stale: every section (a `##` or deeper heading) has a row, and
//! every row names a section that exists.

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

#[test]
fn headings_in_code_blocks_are_not_sections() {
    let md = "## A\n```yaml\n# comment\n## not a heading\n```\n### B\n#nospace\n";
    assert_eq!(headings(md), ["A", "B"]);
}
