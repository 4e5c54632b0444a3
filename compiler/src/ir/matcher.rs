//! Route matchers and their precedence: the part of a spec every target must
//! reproduce exactly.

use super::conditions::Conditions;
use super::values::Method;
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One segment of a path pattern. Its text is kept inline up to 24 bytes
/// (`CompactString`), as almost every segment is: a pattern per route, and
/// the dispatch view copies them, so no allocation per segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// Matches exactly this text (compared byte for byte, as sent).
    Literal(CompactString),
    /// `{name}`: matches one non-empty segment and binds it to `name`.
    Param(CompactString),
}

/// What kind of path a route matches, which decides precedence.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Literal segments only: matches one path.
    Exact,
    /// At least one `{param}` segment.
    Template,
    /// Ends in `/*`: the literal prefix and everything below it.
    Prefix,
}

/// A full request path pattern (base path already joined), e.g. `/pets/{id}`
/// or `/pets/files/*`. Written in canonical form it is its own serialization.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPattern {
    pub segments: Vec<Segment>,
    /// True for `.../*` patterns: also matches every path below the segments.
    pub prefix: bool,
}

impl PathPattern {
    pub fn kind(&self) -> PathKind {
        if self.prefix {
            PathKind::Prefix
        } else if self.params().next().is_some() {
            PathKind::Template
        } else {
            PathKind::Exact
        }
    }

    /// Names of the `{params}`, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
    }

    pub fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// The literal text before any param or `/*`: `/pets/files` for `/pets/files/*`.
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Literal(l) => {
                    out.push('/');
                    out.push_str(l);
                }
                Segment::Param(_) => break,
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// Precedence key: a greater key wins. Exact beats template beats prefix;
    /// among templates more literal segments win; among prefixes the longer.
    pub fn precedence(&self) -> (u8, usize) {
        match self.kind() {
            PathKind::Exact => (2, 0),
            PathKind::Template => (1, self.literal_count()),
            PathKind::Prefix => (0, self.literal_prefix().len()),
        }
    }

    /// The same pattern with param names erased: two patterns with equal
    /// shapes match exactly the same paths.
    pub fn shape(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(_) => out.push_str("{}"),
            }
        }
        if self.prefix {
            out.push_str("/*");
        } else if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// Whether the pattern takes a request path (normalized, without
    /// query). Allocates nothing: the gateway calls it per request.
    pub fn is_match(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        // "/" has no segments; otherwise every `/` starts one (maybe empty).
        // Split by bytes: `str::split` looks for each `/` with a memchr
        // call, which costs more than it saves on segments this short.
        let mut parts = (!rest.is_empty()).then(|| rest.as_bytes().split(|b| *b == b'/'));
        let mut next = || parts.as_mut().and_then(Iterator::next);
        for seg in &self.segments {
            let Some(part) = next() else { return false };
            match seg {
                Segment::Literal(l) if l.as_bytes() == part => {}
                Segment::Param(_) if !part.is_empty() => {}
                _ => return false,
            }
        }
        match next() {
            None => true,
            // `/files/*` takes `/files/` (one trailing empty part) and anything below.
            Some(_) => self.prefix,
        }
    }

    /// Matches a request path (without query): the bound params, in
    /// pattern order, read lazily from the path (nothing allocated).
    pub fn matches<'s, 'p>(&'s self, path: &'p str) -> Option<Params<'s, 'p>> {
        self.is_match(path).then(|| Params {
            segments: self.segments.iter(),
            parts: path[1..].split('/'),
        })
    }
}

/// The `{params}` a [`PathPattern`] bound in a path: `(name, value)` pairs.
#[derive(Clone, Debug)]
pub struct Params<'s, 'p> {
    segments: std::slice::Iter<'s, Segment>,
    parts: std::str::Split<'p, char>,
}

impl<'s, 'p> Params<'s, 'p> {
    /// The value bound to `name`, if the pattern has that param.
    pub fn get(self, name: &str) -> Option<&'p str> {
        self.into_iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl<'s, 'p> Iterator for Params<'s, 'p> {
    type Item = (&'s str, &'p str);
    fn next(&mut self) -> Option<(&'s str, &'p str)> {
        loop {
            let seg = self.segments.next()?;
            let part = self.parts.next()?;
            if let Segment::Param(name) = seg {
                return Some((name.as_str(), part));
            }
        }
    }
}

fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()+,;=:@%".contains(c)
}

fn is_param_name(p: &str) -> bool {
    let mut chars = p.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl FromStr for PathPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<PathPattern, String> {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!("`{s}` must start with `/`"));
        };
        let (body, prefix) = match rest.strip_suffix("/*") {
            Some(b) => (b, true),
            None if rest == "*" => ("", true),
            None => (rest, false),
        };
        // Sized exactly: one pattern per route, and a doubling vector would
        // hold twice the segments at 100,000 routes.
        let mut segments = Vec::with_capacity(if body.is_empty() {
            0
        } else {
            body.matches('/').count() + 1
        });
        if !body.is_empty() {
            for part in body.split('/') {
                if part.is_empty() {
                    return Err(format!("`{s}` has an empty segment (`//`) or a trailing `/`: write `/a/b`, or `/a/*` for a prefix"));
                }
                if let Some(inner) = part.strip_prefix('{') {
                    let Some(name) = inner.strip_suffix('}') else {
                        return Err(format!(
                            "`{s}`: a parameter takes a whole segment, like `/{{id}}`"
                        ));
                    };
                    if !is_param_name(name) {
                        return Err(format!(
                            "`{s}`: `{name}` is not a parameter name (letters, digits, `_`)"
                        ));
                    }
                    if segments.contains(&Segment::Param(name.into())) {
                        return Err(format!("`{s}` uses the parameter `{{{name}}}` twice"));
                    }
                    segments.push(Segment::Param(name.into()));
                } else if part.contains('*') {
                    return Err(format!("`{s}`: `*` may only end a path, as `/*` (a prefix); v1 has no other wildcards or regex"));
                } else if !part.chars().all(is_literal_char) {
                    return Err(format!("`{s}`: `{part}` holds characters a path may not hold unencoded; percent-encode them"));
                } else {
                    segments.push(Segment::Literal(part.into()));
                }
            }
        }
        let pattern = PathPattern { segments, prefix };
        if prefix && pattern.params().next().is_some() {
            return Err(format!(
                "`{s}`: a prefix route (`/*`) may not contain parameters in v1"
            ));
        }
        Ok(pattern)
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Piece by piece, no `write!`: the IR holds one pattern per route,
        // written on every compile and every gateway load.
        for s in &self.segments {
            f.write_str("/")?;
            match s {
                Segment::Literal(l) => f.write_str(l)?,
                Segment::Param(p) => {
                    f.write_str("{")?;
                    f.write_str(p)?;
                    f.write_str("}")?;
                }
            }
        }
        if self.prefix {
            f.write_str("/*")
        } else if self.segments.is_empty() {
            f.write_str("/")
        } else {
            Ok(())
        }
    }
}

impl Serialize for PathPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_display(self, s)
    }
}
impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_from_str(d)
    }
}

/// A host a route answers for: exact (`api.example.com`) or a wildcard
/// (`*.example.com`: one or more labels before the suffix). Lower-case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    Exact(String),
    /// Holds the suffix with its leading dot: `.example.com`.
    Wildcard(String),
}

impl HostPattern {
    /// Host matching ignores case and port.
    pub fn matches(&self, host: &str) -> bool {
        let host = host_without_port(host);
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Wildcard(suffix) => {
                host.len() > suffix.len()
                    && host.is_char_boundary(host.len() - suffix.len())
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }

    /// Whether every host this pattern matches, `other` matches too.
    pub fn within(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Exact(a), _) => other.matches(a),
            (HostPattern::Wildcard(a), HostPattern::Wildcard(b)) => a.ends_with(b.as_str()),
            (HostPattern::Wildcard(_), HostPattern::Exact(_)) => false,
        }
    }

    /// Whether some host matches both patterns.
    pub fn overlaps(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Exact(h), p) | (p, HostPattern::Exact(h)) => p.matches(h),
            // Suffixes keep their leading dot, so this is at a label boundary.
            (HostPattern::Wildcard(a), HostPattern::Wildcard(b)) => {
                a.ends_with(b.as_str()) || b.ends_with(a.as_str())
            }
        }
    }
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

impl FromStr for HostPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<HostPattern, String> {
        let lower = s.to_ascii_lowercase();
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!("`{s}` is not a host name: write `api.example.com` or `*.example.com` (no scheme, port or path)"));
        }
        Ok(if wild {
            HostPattern::Wildcard(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_string())
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(s) => write!(f, "*{s}"),
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            HostPattern::Exact(h) => s.serialize_str(h),
            HostPattern::Wildcard(_) => s.collect_str(self),
        }
    }
}
impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::deserialize_from_str(d)
    }
}

/// What requests a route takes: host, path, method and conditions must
/// all match.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Matcher {
    /// Empty: any host (left out of the JSON then).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub hosts: BTreeSet<HostPattern>,
    pub path: PathPattern,
    /// `None`: every method.
    pub methods: Option<BTreeSet<Method>>,
    /// The spec's `match`: headers and query parameters. Left out of the
    /// JSON when empty, so specs without it keep their content hash.
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
}

impl Matcher {
    pub fn matches_host(&self, host: Option<&str>) -> bool {
        self.hosts.is_empty() || host.is_some_and(|h| self.hosts.iter().any(|p| p.matches(h)))
    }

    pub fn matches_method(&self, m: Method) -> bool {
        self.methods.as_ref().is_none_or(|ms| ms.contains(&m))
    }

    /// Whether this matcher takes every host `host` matches; `None` stands
    /// for any host (a matcher without `hosts`).
    pub fn takes_every_host_of(&self, host: Option<&HostPattern>) -> bool {
        self.hosts.is_empty() || host.is_some_and(|h| self.hosts.iter().any(|o| h.within(o)))
    }

    /// Whether some host is taken by both matchers.
    pub fn hosts_overlap(&self, other: &Matcher) -> bool {
        self.hosts.is_empty()
            || other.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|a| other.hosts.iter().any(|b| a.overlaps(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_matches_at_segment_boundary() {
        let files = p("/files/*");
        assert!(files.matches("/files").is_some());
        assert!(files.matches("/files/").is_some());
        assert!(files.matches("/files/a/b").is_some());
        assert!(files.matches("/filesystem").is_none());
    }

    #[test]
    fn params_take_one_non_empty_segment() {
        let t = p("/pets/{id}");
        let bound = |p: &'static str| t.matches(p).map(|b| b.collect::<Vec<_>>());
        assert_eq!(bound("/pets/7"), Some(vec![("id", "7")]));
        assert_eq!(t.matches("/pets/7").and_then(|b| b.get("id")), Some("7"));
        assert!(t.matches("/pets/").is_none());
        assert!(t.matches("/pets/7/x").is_none());
    }

    #[test]
    fn precedence_orders_kinds() {
        assert!(p("/a/b").precedence() > p("/a/{x}").precedence());
        assert!(p("/a/{x}").precedence() > p("/{y}/{x}").precedence());
        assert!(p("/{y}/{x}").precedence() > p("/a/b/*").precedence());
        assert!(p("/a/b/*").precedence() > p("/a/*").precedence());
    }

    #[test]
    fn canonical_text_round_trips() {
        for s in ["/", "/*", "/a/{b}/c", "/a/b/*"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn host_relations() {
        let h = |s: &str| s.parse::<HostPattern>().unwrap();
        assert!(h("a.example.com").within(&h("*.example.com")));
        assert!(h("*.a.example.com").within(&h("*.example.com")));
        assert!(!h("*.example.com").within(&h("a.example.com")));
        assert!(h("*.example.com").overlaps(&h("a.example.com")));
        assert!(h("*.example.com").overlaps(&h("*.a.example.com")));
        assert!(!h("*.example.com").overlaps(&h("*.xample.com")));
        assert!(!h("a.example.com").overlaps(&h("b.example.com")));
    }

    #[test]
    fn wildcard_hosts_need_a_label() {
        let h: HostPattern = "*.Example.com".parse().unwrap();
        assert!(h.matches("a.example.COM:8080"));
        assert!(h.matches("a.b.example.com"));
        assert!(!h.matches("example.com"));
    }
}
