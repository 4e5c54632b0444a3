//! Script values and the JavaScript conversions the subset needs
//! (ToString, ToNumber, truthiness, strict equality, `parseInt`), written
//! to the ECMAScript rules so the reference gateway is the semantics other
//! targets are checked against.

use std::rc::Rc;

/// A value during evaluation.
#[derive(Clone, Debug)]
pub enum Value {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Rc<str>),
    List(Rc<Vec<Value>>),
    /// An object literal's entries, in order (a later duplicate wins).
    Obj(Rc<Vec<(String, Value)>>),
}

impl Value {
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// `undefined`, `null`, `false`, `0`, `NaN` and `""` are falsy.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null => false,
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Str(s) => !s.is_empty(),
            Value::List(_) | Value::Obj(_) => true,
        }
    }

    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    /// ToString.
    pub fn to_js_string(&self) -> Rc<str> {
        match self {
            Value::Str(s) => s.clone(),
            other => other.to_string_owned().into(),
        }
    }

    fn to_string_owned(&self) -> String {
        match self {
            Value::Undefined => "undefined".into(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Num(n) => number_to_string(*n),
            Value::Str(s) => s.to_string(),
            // Array.prototype.join: null and undefined items are empty.
            Value::List(items) => items
                .iter()
                .map(|v| {
                    if v.is_nullish() {
                        String::new()
                    } else {
                        v.to_string_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
            Value::Obj(_) => "[object Object]".into(),
        }
    }

    /// ToNumber.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Undefined | Value::Obj(_) => f64::NAN,
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Num(n) => *n,
            Value::Str(s) => string_to_number(s),
            Value::List(_) => string_to_number(&self.to_string_owned()),
        }
    }

    /// Strict equality (`===`): no conversion; lists and objects by identity.
    pub fn strict_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Num(a), Value::Num(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Obj(a), Value::Obj(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// SameValueZero (`Array.prototype.includes`): `===` but NaN equals NaN.
    pub fn same_value_zero(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Num(a), Value::Num(b)) if a.is_nan() && b.is_nan() => true,
            _ => self.strict_eq(other),
        }
    }

    /// Lists and objects as their primitive (ToPrimitive, hint default).
    pub fn to_primitive(&self) -> Value {
        match self {
            Value::List(_) | Value::Obj(_) => Value::str(self.to_string_owned()),
            other => other.clone(),
        }
    }
}

/// JavaScript's whitespace for `trim` and number parsing: WhiteSpace and
/// LineTerminator (not U+0085, which Rust counts as whitespace).
pub fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}'
            | '\u{c}'
            | ' '
            | '\u{a0}'
            | '\u{feff}'
            | '\n'
            | '\r'
            | '\u{2028}'
            | '\u{2029}'
    ) || (c.is_whitespace() && c != '\u{85}')
}

/// Number::toString(10): the shortest digits that round-trip, placed as
/// ECMAScript says (plain up to 21 digits, exponent below 1e-6).
pub fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n == 0.0 {
        return "0".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if n < 0.0 { "-" } else { "" };
    // `{:e}` gives the shortest round-trip digits: `1.2345e-7`.
    let e = format!("{:e}", n.abs());
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let point = exp.parse::<i32>().expect("exponent") + 1;
    let body = if k <= point && point <= 21 {
        format!("{digits}{}", "0".repeat((point - k) as usize))
    } else if 0 < point && point <= 21 {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    } else if -6 < point && point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else {
        let rest = if k > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let e = point - 1;
        let esign = if e < 0 { "-" } else { "+" };
        format!("{}{rest}e{esign}{}", &digits[..1], e.abs())
    };
    format!("{sign}{body}")
}

/// StringToNumber: decimal (with `Infinity`), or `0x`/`0o`/`0b` integers;
/// blank is 0; anything else NaN.
pub fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_space);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(rest) = t.strip_prefix(prefix) {
            if rest.is_empty() || !rest.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return rest.chars().fold(0.0, |acc, c| {
                acc * f64::from(radix) + f64::from(c.to_digit(radix).expect("checked digit"))
            });
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let shaped = unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && unsigned
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if !shaped {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// `parseInt(string, radix)` (ECMAScript 19.2.5).
pub fn parse_int(s: &str, radix: Option<f64>) -> f64 {
    let t = s.trim_start_matches(is_js_space);
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // ToInt32 of the radix; undefined and NaN are 0.
    let r = radix.map_or(0, |r| {
        if r.is_finite() {
            (r.trunc() as i64 as i32) as i64
        } else {
            0
        }
    });
    let mut strip_prefix = true;
    let mut radix = 10u32;
    if r != 0 {
        if !(2..=36).contains(&r) {
            return f64::NAN;
        }
        radix = r as u32;
        if radix != 16 {
            strip_prefix = false;
        }
    }
    let mut t = t;
    if strip_prefix {
        if let Some(rest) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            t = rest;
            radix = 16;
        }
    }
    let digits: Vec<u32> = t.chars().map_while(|c| c.to_digit(radix)).collect();
    if digits.is_empty() {
        return f64::NAN;
    }
    let n = digits
        .iter()
        .fold(0.0, |acc, d| acc * f64::from(radix) + f64::from(*d));
    if negative {
        -n
    } else {
        n
    }
}

/// The number of UTF-16 code units, JavaScript's `length`.
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// Relative index as `slice` takes it (negative from the end), clamped.
pub fn relative(n: f64, len: usize) -> usize {
    let len_f = len as f64;
    let n = if n.is_nan() { 0.0 } else { n.trunc() };
    let at = if n < 0.0 {
        (len_f + n).max(0.0)
    } else {
        n.min(len_f)
    };
    at as usize
}

/// `s.slice(start, end)` in UTF-16 code units; a surrogate pair cut in
/// half becomes U+FFFD (Rust strings hold no lone surrogates).
pub fn slice_utf16(s: &str, start: usize, end: usize) -> String {
    if s.is_ascii() {
        return s.get(start..end.max(start)).unwrap_or("").to_string();
    }
    let units: Vec<u16> = s.encode_utf16().collect();
    if start >= end {
        return String::new();
    }
    String::from_utf16_lossy(&units[start..end])
}

/// An object's keys in JavaScript's property order: array indexes
/// (`"0"`, `"7"`, not `"07"` or `"-1"`) ascending, then the other keys in
/// the order they were first written.
fn json_key_order(fields: &[(String, Value)]) -> Vec<&String> {
    let mut keys: Vec<&String> = Vec::with_capacity(fields.len());
    for (k, _) in fields {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // A stable sort: the non-index keys keep their written order.
    keys.sort_by_key(|k| array_index(k).map_or(u64::MAX, u64::from));
    keys
}

/// The index a key names when it is a canonical array index (below 2^32 - 1).
fn array_index(k: &str) -> Option<u32> {
    let canonical = k == "0"
        || (k.len() <= 10
            && !k.starts_with('0')
            && k.bytes().all(|b| b.is_ascii_digit())
            && !k.is_empty());
    canonical
        .then(|| k.parse::<u32>().ok())
        .flatten()
        .filter(|n| *n != u32::MAX)
}

/// JSON.stringify of a value (respond bodies): keys in JavaScript's order
/// (array indexes first, ascending, then as written), a later duplicate
/// replacing the earlier in place, `undefined` members left out,
/// non-finite numbers as `null`.
pub fn to_json(v: &Value, out: &mut String) {
    match v {
        Value::Undefined | Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Num(n) if n.is_finite() => out.push_str(&number_to_string(*n)),
        Value::Num(_) => out.push_str("null"),
        Value::Str(s) => out.push_str(&serde_json::to_string(&**s).expect("a string serializes")),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(item, out);
            }
            out.push(']');
        }
        Value::Obj(fields) => {
            out.push('{');
            let mut first = true;
            for k in json_key_order(fields) {
                // JS keeps the first position and the last value.
                let val = fields
                    .iter()
                    .rev()
                    .find(|(k2, _)| k2 == k)
                    .map_or(&Value::Undefined, |(_, v)| v);
                if matches!(val, Value::Undefined) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&serde_json::to_string(k).expect("a string serializes"));
                out.push(':');
                to_json(val, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (n, s) in [
            (1.0, "1"),
            (-0.0, "0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1.5e-10, "1.5e-10"),
            (-42.5, "-42.5"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(number_to_string(n), s, "{n}");
        }
    }

    #[test]
    fn parse_int_follows_the_ecmascript_rules() {
        let p = |s: &str, r: Option<f64>| parse_int(s, r);
        assert_eq!(p("  42px", None), 42.0);
        assert_eq!(p("-0x1F", None), -31.0);
        assert_eq!(p("0x1F", Some(10.0)), 0.0);
        assert_eq!(p("08", None), 8.0);
        assert_eq!(p("101", Some(2.0)), 5.0);
        assert!(p("px", None).is_nan());
        assert!(p("", None).is_nan());
        assert!(p("1", Some(1.0)).is_nan());
        assert_eq!(p("3.9", None), 3.0);
    }

    #[test]
    fn string_to_number_is_strict_about_its_shape() {
        assert_eq!(string_to_number(" 12 "), 12.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0x10"), 16.0);
        assert!(string_to_number("12px").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
    }

    #[test]
    fn truthiness_is_javascripts() {
        for v in [
            Value::str(""),
            Value::Num(0.0),
            Value::Num(f64::NAN),
            Value::Null,
            Value::Undefined,
            Value::Bool(false),
        ] {
            assert!(!v.truthy(), "{v:?}");
        }
        for v in [
            Value::str("0"),
            Value::str("false"),
            Value::List(Rc::new(vec![])),
        ] {
            assert!(v.truthy(), "{v:?}");
        }
    }

    #[test]
    fn lengths_and_slices_count_utf16_code_units() {
        assert_eq!(utf16_len("é😀"), 3);
        assert_eq!(slice_utf16("é😀x", 1, 3), "😀");
        assert_eq!(slice_utf16("é😀x", 1, 2), "\u{fffd}");
    }
}
