//! Lua literals: every user string reaches Lua source through [`string`]
//! (a quoted string with every byte outside printable ASCII, the quote and
//! the backslash escaped), never through a long string (`[[...]]`), which a
//! string holding `]]` would end.

/// A Lua string literal for `s`: double-quoted, printable ASCII kept,
/// everything else as a three-digit decimal escape (`\010`), so the source
/// stays ASCII and no following digit can extend an escape.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A Lua number literal for a finite `n` (the compiler refuses others),
/// in parentheses when negative so `-` never meets another operator.
pub fn number(n: f64) -> String {
    debug_assert!(n.is_finite());
    // `{:?}` prints the shortest digits that read back as the same f64.
    let s = format!("{n:?}");
    if n.is_sign_negative() {
        format!("({s})")
    } else {
        s
    }
}

/// A Lua pattern matching what `path` matches (a prefix's tail left
/// unchecked: the route matched already), each `{param}` a capture, its
/// literals with Lua's magic characters escaped. The redirect code of the
/// Envoy and Kong targets binds route parameters with it.
pub fn path_pattern(path: &gatefold_compiler::ir::PathPattern) -> String {
    use gatefold_compiler::ir::Segment;
    let mut out = String::from("^");
    for seg in &path.segments {
        out.push('/');
        match seg {
            Segment::Literal(l) => {
                for c in l.chars() {
                    if "^$()%.[]*+-?".contains(c) {
                        out.push('%');
                    }
                    out.push(c);
                }
            }
            Segment::Param(_) => out.push_str("([^/]+)"),
        }
    }
    if !path.prefix {
        if path.segments.is_empty() {
            out.push('/');
        }
        out.push('$');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_every_byte_that_could_break_out() {
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(string("]]\n\r\0"), r#""]]\010\013\000""#);
        // A digit after an escape cannot join it.
        assert_eq!(string("\u{1}2"), r#""\0012""#);
        assert_eq!(string("é"), r#""\195\169""#);
    }

    #[test]
    fn numbers_read_back_exactly() {
        assert_eq!(number(1.0), "1.0");
        assert_eq!(number(-2.5), "(-2.5)");
        assert_eq!(number(1e21), "1e21");
        assert_eq!(number(0.1), "0.1");
    }
}
