//! The route table: host, path and method to a route, with the precedence of
//! policy-spec "Matching". The IR's route list is already in precedence
//! order, so the first route that takes a request wins; the router only makes
//! finding it cheap (an index by first path segment) and answers 404/405.

use gatefold_compiler::ir::{HostPattern, Matcher, Method, Segment};
use std::collections::HashMap;

/// Methods as a bit set, bit `i` for `Method::ALL[i]` (GET first).
pub type MethodSet = u16;

pub fn method_bit(m: Method) -> MethodSet {
    1 << Method::ALL.iter().position(|x| *x == m).unwrap_or(0)
}

/// `GET, HEAD` in the spec's order, for `allow`.
pub fn allow_header(set: MethodSet) -> String {
    Method::ALL
        .iter()
        .filter(|m| set & method_bit(**m) != 0)
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Entry {
    hosts: Vec<HostPattern>,
    segments: Vec<Segment>,
    prefix: bool,
    /// `None`: every method, including ones outside [`Method::ALL`].
    methods: Option<MethodSet>,
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Index into the route list.
    Found(usize),
    /// Routes take the host and path, none the method: their methods.
    MethodNotAllowed(MethodSet),
    NotFound,
}

/// The compiled match table.
pub struct Router {
    entries: Vec<Entry>,
    /// Routes whose first segment is this literal, in precedence order.
    by_first: HashMap<String, Vec<u32>>,
    /// Routes that can match any first segment (a parameter first, `/`, `/*`).
    any_first: Vec<u32>,
}

impl Router {
    /// `matchers` in precedence order (the IR's route order).
    pub fn new<'a>(matchers: impl IntoIterator<Item = &'a Matcher>) -> Router {
        let mut router = Router {
            entries: Vec::new(),
            by_first: HashMap::new(),
            any_first: Vec::new(),
        };
        for (i, m) in matchers.into_iter().enumerate() {
            let i = i as u32;
            match m.path.segments.first() {
                Some(Segment::Literal(l)) => router.by_first.entry(l.clone()).or_default().push(i),
                _ => router.any_first.push(i),
            }
            router.entries.push(Entry {
                hosts: m.hosts.iter().cloned().collect(),
                segments: m.path.segments.clone(),
                prefix: m.path.prefix,
                methods: m
                    .methods
                    .as_ref()
                    .map(|ms| ms.iter().fold(0, |acc, m| acc | method_bit(*m))),
            });
        }
        router
    }

    /// Finds the route for a normalized path. `method` is `None` for methods
    /// outside the spec's list, which only routes without `methods` take.
    pub fn lookup(&self, host: Option<&str>, path: &str, method: Option<Method>) -> Lookup {
        let rest = &path[1..];
        let first = rest.split('/').next().unwrap_or("");
        let bucket = self.by_first.get(first).map_or(&[][..], Vec::as_slice);
        let want = method.map(method_bit);
        let mut allow: MethodSet = 0;
        // Merge the two index lists in precedence order.
        let (mut a, mut b) = (bucket.iter().peekable(), self.any_first.iter().peekable());
        loop {
            let i = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x < y => *a.next().unwrap_or(&0),
                (Some(_), Some(_)) | (None, Some(_)) => *b.next().unwrap_or(&0),
                (Some(_), None) => *a.next().unwrap_or(&0),
                (None, None) => break,
            };
            let e = &self.entries[i as usize];
            if !path_matches(&e.segments, e.prefix, rest)
                || !(e.hosts.is_empty()
                    || host.is_some_and(|h| e.hosts.iter().any(|p| p.matches(h))))
            {
                continue;
            }
            match (e.methods, want) {
                (None, _) => return Lookup::Found(i as usize),
                (Some(set), Some(w)) if set & w != 0 => return Lookup::Found(i as usize),
                (Some(set), _) => allow |= set,
            }
        }
        if allow != 0 {
            Lookup::MethodNotAllowed(allow)
        } else {
            Lookup::NotFound
        }
    }
}

/// [`gatefold_compiler::ir::PathPattern::matches`] without allocating: `rest`
/// is the path after its leading `/`.
fn path_matches(segments: &[Segment], prefix: bool, rest: &str) -> bool {
    let mut parts = if rest.is_empty() {
        None
    } else {
        Some(rest.split('/'))
    };
    let mut next = || parts.as_mut().and_then(Iterator::next);
    for seg in segments {
        let Some(part) = next() else { return false };
        match seg {
            Segment::Literal(l) if l == part => {}
            Segment::Param(_) if !part.is_empty() => {}
            _ => return false,
        }
    }
    match next() {
        None => true,
        // `/files/*` takes `/files/` (one trailing empty part) and anything below.
        Some(_) if prefix => true,
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatefold_compiler::ir::PathPattern;

    #[test]
    fn agrees_with_the_ir_matcher() {
        let patterns = [
            "/", "/*", "/a", "/a/*", "/a/{x}", "/{y}/b", "/a/b/*", "/{x}",
        ];
        let paths = [
            "/", "/a", "/a/", "/a/b", "/a/b/", "/a/b/c", "/b", "/b/b", "/ab", "/a/x/y",
        ];
        for p in patterns {
            let pat: PathPattern = p.parse().unwrap();
            for path in paths {
                assert_eq!(
                    path_matches(&pat.segments, pat.prefix, &path[1..]),
                    pat.matches(path).is_some(),
                    "{p} vs {path}"
                );
            }
        }
    }
}
