//! `src/lua/case.lua` (the Unicode case mappings of `toLowerCase` and
//! `toUpperCase` in Lua) is generated from Rust's `char::to_lowercase` /
//! `to_uppercase`, the mappings the reference evaluator uses. This test
//! regenerates it and fails when the committed file differs; run with
//! `GATEFOLD_BLESS=1` to write it.

use std::fmt::Write;

/// Runs of code points mapping to one code point at the same distance:
/// `first, last, step, delta`; a step of 2 only skips unmapped code points,
/// so no mapped code point lies inside another run.
fn runs(single: &dyn Fn(u32) -> Option<u32>, mapped: &dyn Fn(u32) -> bool) -> Vec<[i64; 4]> {
    let mut out: Vec<[i64; 4]> = Vec::new();
    let mut count_in_run = 0;
    for cp in 0..=0x10FFFFu32 {
        let Some(to) = single(cp) else { continue };
        let (cp64, delta) = (i64::from(cp), i64::from(to) - i64::from(cp));
        if let Some(last) = out.last_mut() {
            let gap = cp64 - last[1];
            let fits = last[3] == delta
                && if count_in_run == 1 {
                    gap == 1 || (gap == 2 && !mapped(cp - 1))
                } else {
                    gap == last[2] && (gap == 1 || !mapped(cp - 1))
                };
            if fits {
                if count_in_run == 1 {
                    last[2] = gap;
                }
                last[1] = cp64;
                count_in_run += 1;
                continue;
            }
        }
        out.push([cp64, cp64, 1, delta]);
        count_in_run = 1;
    }
    out
}

fn mapping(lower: bool) -> (Vec<[i64; 4]>, Vec<(u32, String)>) {
    let map = move |cp: u32| -> Option<Vec<char>> {
        let c = char::from_u32(cp)?;
        let m: Vec<char> = if lower {
            c.to_lowercase().collect()
        } else {
            c.to_uppercase().collect()
        };
        (m != [c]).then_some(m)
    };
    let single = |cp: u32| map(cp).filter(|m| m.len() == 1).map(|m| m[0] as u32);
    let mapped = |cp: u32| map(cp).is_some();
    let specials = (0..=0x10FFFFu32)
        .filter_map(|cp| {
            map(cp)
                .filter(|m| m.len() > 1)
                .map(|m| (cp, m.into_iter().collect()))
        })
        .collect();
    (runs(&single, &mapped), specials)
}

/// Code points that are cased (Lowercase, Uppercase or Titlecase), as
/// ranges, for the final-sigma rule.
fn cased() -> Vec<(u32, u32)> {
    let titlecase = |c: char| matches!(c as u32, 0x1C5 | 0x1C8 | 0x1CB | 0x1F2 | 0x1F88..=0x1F8F | 0x1F98..=0x1F9F | 0x1FA8..=0x1FAF | 0x1FBC | 0x1FCC | 0x1FFC);
    let mut out: Vec<(u32, u32)> = Vec::new();
    for cp in 0..=0x10FFFFu32 {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        if c.is_lowercase() || c.is_uppercase() || titlecase(c) {
            match out.last_mut() {
                Some(last) if last.1 + 1 == cp => last.1 = cp,
                _ => out.push((cp, cp)),
            }
        }
    }
    out
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\{b:03}");
        }
    }
    out.push('"');
    out
}

fn generate() -> String {
    let mut out = String::from(
        "-- Unicode case mappings of toLowerCase/toUpperCase, generated from Rust's\n\
         -- char::to_lowercase/to_uppercase by tests/case_tables.rs (GATEFOLD_BLESS=1);\n\
         -- do not edit. Runs are `first, last, step, delta`.\n",
    );
    for (name, lower) in [("LOWER", true), ("UPPER", false)] {
        let (runs, specials) = mapping(lower);
        let flat: Vec<String> = runs.iter().flatten().map(|n| n.to_string()).collect();
        let _ = writeln!(out, "local {name} = {{{}}}", flat.join(","));
        let sp: Vec<String> = specials
            .iter()
            .map(|(cp, s)| format!("[{cp}]={}", lua_string(s)))
            .collect();
        let _ = writeln!(out, "local {name}_SPECIAL = {{{}}}", sp.join(","));
    }
    let cased: Vec<String> = cased()
        .iter()
        .flat_map(|(a, b)| [a.to_string(), b.to_string()])
        .collect();
    let _ = writeln!(out, "local CASED = {{{}}}", cased.join(","));
    out.push_str(include_str!("../src/lua/case_lookup.lua"));
    out
}

#[test]
fn the_case_tables_are_generated_from_rusts_mappings() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lua/case.lua");
    let want = generate();
    let mut have = std::fs::read_to_string(&path).unwrap_or_default();
    // Written only when it differs: the file is compiled in, and a fresh
    // modification time alone rebuilt every crate above it on the next run.
    if have != want && std::env::var_os("GATEFOLD_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        have = want.clone();
    }
    assert!(
        have == want,
        "src/lua/case.lua is stale: run GATEFOLD_BLESS=1 cargo test -p gatefold-lua-script --test case_tables"
    );
}
