//! Quoting for every user string that reaches nginx.conf or Lua.
//!
//! nginx reads a double-quoted token up to the next unescaped `"`; inside
//! it `\"` and `\\` stand for themselves and `\n`, `\r`, `\t` for control
//! characters, so braces and semicolons in a quoted token are plain data.
//! Where a directive takes a *complex value* (header values, `return`
//! bodies, `proxy_set_header`, map values), `$` starts a variable and has no
//! escape: it is written `${gf_dollar}`, a variable the config defines as
//! `$` with `geo` (whose values are never interpolated).

/// A double-quoted nginx token whose content is taken literally: no
/// variables are expanded where it is used (map keys, `server_name`, file
/// names, `geo` values).
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A double-quoted nginx token for a place that expands variables: every
/// `$` of `s` stays a literal dollar.
pub fn value(s: &str) -> String {
    literal(s).replace('$', "${gf_dollar}")
}

/// `s` as a PCRE pattern matching exactly `s` (not yet quoted for nginx).
pub fn regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\^$.|?*+()[]{}/-# ".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Lua string literal holding exactly the bytes of `s`: printable ASCII
/// as is (with `\\` and `\"`), everything else as `\ddd`.
pub fn lua(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            b => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A bare nginx token when `s` is plainly safe (letters, digits, `_ . : / -`
/// and `,`), else [`literal`]. The templates' default escape: `{{x}}` can
/// never open or close a block whatever `x` holds.
pub fn token(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/-[],=@".contains(&b));
    if plain {
        s.to_string()
    } else {
        literal(s)
    }
}

/// A PCRE pattern matching decimal integers (leading zeros allowed) greater
/// than `n`: nginx cannot compare numbers, but a `map` can match this.
pub fn greater_than(n: u64) -> String {
    let digits: Vec<u8> = n.to_string().bytes().map(|b| b - b'0').collect();
    let k = digits.len();
    let mut alts = vec![format!("[1-9][0-9]{{{k},}}")];
    for i in 0..k {
        let d = digits[i];
        if d == 9 {
            continue;
        }
        let prefix: String = digits[..i].iter().map(|d| (b'0' + d) as char).collect();
        if i == 0 && d + 1 > 9 {
            continue;
        }
        let rest = k - i - 1;
        let tail = if rest > 0 {
            format!("[0-9]{{{rest}}}")
        } else {
            String::new()
        };
        alts.push(format!("{prefix}[{}-9]{tail}", d + 1));
    }
    format!("^0*(?:{})$", alts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_keeps_hostile_text_inside_one_token() {
        assert_eq!(literal(r#"a"; } x {"#), r#""a\"; } x {""#);
        assert_eq!(literal("a\\b\nc"), r#""a\\b\nc""#);
    }

    #[test]
    fn values_keep_dollars_literal() {
        assert_eq!(value("$host"), "\"${gf_dollar}host\"");
    }

    #[test]
    fn lua_strings_escape_every_non_printable_byte() {
        assert_eq!(lua("a\"]]\n\u{e9}"), "\"a\\\"]]\\010\\195\\169\"");
    }

    #[test]
    fn greater_than_matches_exactly_the_larger_numbers() {
        for n in [0u64, 1, 9, 10, 99, 100, 1024, 1048576, 999] {
            let re = greater_than(n);
            // A tiny matcher for the shapes `greater_than` writes is too
            // much; check by the alternatives against candidates instead.
            for candidate in [
                0u64, 1, 2, 9, 10, 11, 99, 100, 101, 999, 1000, 1023, 1024, 1025, 1048575, 1048576,
                1048577, 99999999,
            ] {
                let text = candidate.to_string();
                assert_eq!(
                    matches_gt(&re, &text),
                    candidate > n,
                    "{n} vs {candidate}: {re}"
                );
            }
        }
    }

    /// Interprets the `^0*(?:A|B|...)$` patterns [`greater_than`] writes.
    fn matches_gt(re: &str, text: &str) -> bool {
        let body = re
            .strip_prefix("^0*(?:")
            .unwrap()
            .strip_suffix(")$")
            .unwrap();
        let text = text.trim_start_matches('0');
        body.split('|').any(|alt| alt_matches(alt, text))
    }

    fn alt_matches(alt: &str, text: &str) -> bool {
        // prefix digits, then `[a-9]` or `[1-9]`, then `[0-9]{n}` or `[0-9]{n,}`.
        let open = alt.find('[').unwrap();
        let prefix = &alt[..open];
        let Some(rest) = text.strip_prefix(prefix) else {
            return false;
        };
        let close = alt[open..].find(']').unwrap() + open;
        let class = &alt[open + 1..close];
        let lo = class.as_bytes()[0];
        let Some(first) = rest.bytes().next() else {
            return false;
        };
        if first < lo {
            return false;
        }
        let tail = &alt[close + 1..];
        let left = rest.len() - 1;
        if tail.is_empty() {
            return left == 0;
        }
        let count = tail.trim_start_matches("[0-9]{").trim_end_matches('}');
        match count.strip_suffix(',') {
            Some(min) => left >= min.parse::<usize>().unwrap(),
            None => left == count.parse::<usize>().unwrap(),
        }
    }
}
