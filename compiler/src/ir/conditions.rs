//! Request conditions (`match`): headers and query parameters a route
//! requires besides its host, path and method.
//!
//! A route with conditions is a candidate for a request only when every
//! condition holds; otherwise the request is routed as if the route did not
//! exist. Among routes of equal path precedence, more header conditions win,
//! then more query conditions ([`Conditions::precedence`]), then listing
//! order.

use super::values::{HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The conditions of one route. Maps, so the order the spec lists them in
/// changes neither the IR nor its hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Conditions {
    /// Header name (lower case; names compare ignoring case) to the exact
    /// value its first field line must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<HeaderName, HeaderValue>,
    /// Query parameter name to the exact value of its first occurrence,
    /// both compared percent-decoded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<QueryText, QueryText>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty()
    }

    /// Precedence among routes whose paths tie: a greater key wins (more
    /// header conditions, then more query conditions).
    pub fn precedence(&self) -> (usize, usize) {
        (self.headers.len(), self.query.len())
    }

    /// Whether every request meeting `other` meets these conditions too
    /// (each of these conditions is one of `other`'s).
    pub fn implied_by(&self, other: &Conditions) -> bool {
        self.headers
            .iter()
            .all(|(k, v)| other.headers.get(k) == Some(v))
            && self
                .query
                .iter()
                .all(|(k, v)| other.query.get(k) == Some(v))
    }

    /// Whether some request can meet both: no header or parameter is
    /// required to have two different values.
    pub fn compatible(&self, other: &Conditions) -> bool {
        agree(&self.headers, &other.headers) && agree(&self.query, &other.query)
    }

    /// Whether a request meets every condition. `header` gives the value of
    /// a header's first field line (names are lower case); `query` is the
    /// raw query string, without `?`. Allocates nothing.
    pub fn holds<'r>(
        &self,
        header: impl Fn(&str) -> Option<&'r [u8]>,
        query: Option<&str>,
    ) -> bool {
        self.headers
            .iter()
            .all(|(k, v)| header(k.as_str()) == Some(v.as_str().as_bytes()))
            && self.query.iter().all(|(k, v)| {
                first_param(query.unwrap_or(""), k.as_str())
                    .is_some_and(|raw| decoded_eq(raw, v.as_str()))
            })
    }
}

/// Whether no key has two different values in `a` and `b`.
fn agree<K: Ord, V: PartialEq>(a: &BTreeMap<K, V>, b: &BTreeMap<K, V>) -> bool {
    a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v))
}

/// The raw value of the first occurrence of parameter `name` (compared
/// percent-decoded) in a raw query string: `a=1&b=2`. A parameter without
/// `=` has the empty value.
fn first_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| decoded_eq(k, name))
        .map(|(_, v)| v)
}

/// Whether `raw`, percent-decoded (`%41` is `A`; a `%` not followed by two
/// hex digits is itself; `+` is `+`), is `want`, byte for byte.
pub fn decoded_eq(raw: &str, want: &str) -> bool {
    let (raw, want) = (raw.as_bytes(), want.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < raw.len() {
        let mut b = raw[i];
        i += 1;
        if b == b'%' {
            if let (Some(h), Some(l)) = (
                raw.get(i).and_then(|c| hex(*c)),
                raw.get(i + 1).and_then(|c| hex(*c)),
            ) {
                b = h << 4 | l;
                i += 2;
            }
        }
        if want.get(j) != Some(&b) {
            return false;
        }
        j += 1;
    }
    j == want.len()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A query parameter name or value as the spec writes it (and as it reads
/// percent-decoded): at most 1,024 bytes, no control characters. Names are
/// also non-empty.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryText(String);

impl QueryText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A parameter name: a non-empty text.
    pub fn name(s: &str) -> Result<QueryText, String> {
        if s.is_empty() {
            return Err("a query parameter name may not be empty".into());
        }
        s.parse()
    }
}

impl FromStr for QueryText {
    type Err = String;
    fn from_str(s: &str) -> Result<QueryText, String> {
        if s.len() > 1024 {
            Err("a query parameter name or value may be at most 1,024 bytes".into())
        } else if s.chars().any(char::is_control) {
            Err("a query parameter name or value may not hold control characters (tabs, line breaks)".into())
        } else {
            Ok(QueryText(s.to_string()))
        }
    }
}

impl fmt::Display for QueryText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for QueryText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for QueryText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_from_str(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conds(headers: &[(&str, &str)], query: &[(&str, &str)]) -> Conditions {
        Conditions {
            headers: headers
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect(),
            query: query
                .iter()
                .map(|(k, v)| (QueryText::name(k).unwrap(), v.parse().unwrap()))
                .collect(),
        }
    }

    #[test]
    fn percent_decoding_compares_bytes() {
        assert!(decoded_eq("json", "json"));
        assert!(decoded_eq("%6Ason", "json"));
        assert!(decoded_eq("a%20b", "a b"));
        assert!(decoded_eq("a%2", "a%2"), "a broken escape is itself");
        assert!(decoded_eq("100%", "100%"));
        assert!(!decoded_eq("a+b", "a b"), "`+` is not a space");
        assert!(!decoded_eq("jso", "json"));
        assert!(!decoded_eq("jsonx", "json"));
    }

    #[test]
    fn query_takes_the_first_occurrence() {
        let c = conds(&[], &[("format", "json")]);
        let none = |_: &str| None;
        assert!(c.holds(none, Some("format=json")));
        assert!(c.holds(none, Some("a=1&format=json&format=xml")));
        assert!(!c.holds(none, Some("format=xml&format=json")));
        assert!(!c.holds(none, Some("format=JSON")));
        assert!(!c.holds(none, Some("xformat=json")));
        assert!(!c.holds(none, None));
        let flag = conds(&[], &[("debug", "")]);
        assert!(flag.holds(none, Some("debug")));
        assert!(flag.holds(none, Some("debug=")));
        assert!(!flag.holds(none, Some("debug=1")));
    }

    #[test]
    fn headers_compare_exactly() {
        let c = conds(&[("X-Version", "2")], &[]);
        assert!(c.holds(|n| (n == "x-version").then_some(&b"2"[..]), None));
        assert!(!c.holds(|n| (n == "x-version").then_some(&b"20"[..]), None));
        assert!(!c.holds(|_| None, None));
    }

    #[test]
    fn relations() {
        let none = Conditions::default();
        let v2 = conds(&[("x-v", "2")], &[]);
        let v3 = conds(&[("x-v", "3")], &[]);
        let v2json = conds(&[("x-v", "2")], &[("f", "json")]);
        assert!(none.implied_by(&v2));
        assert!(!v2.implied_by(&none));
        assert!(v2.implied_by(&v2json));
        assert!(!v2.compatible(&v3));
        assert!(v2.compatible(&v2json) && none.compatible(&v3));
        assert!(v2json.precedence() > v2.precedence());
        assert!(conds(&[], &[("a", "1"), ("b", "2")]).precedence() < v2.precedence());
    }
}
