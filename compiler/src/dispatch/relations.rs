//! How two route matchers relate: the overlap and cover tests route
//! validation and the dispatch view share.

use super::MethodSet;
use crate::ir::{HostPattern, Matcher, PathPattern, Segment};

/// Whether some path is taken by both patterns.
pub fn paths_overlap(a: &PathPattern, b: &PathPattern) -> bool {
    meet(a, b, false).is_some()
}

/// Whether every path `a` takes, `b` takes too.
pub fn path_within(a: &PathPattern, b: &PathPattern) -> bool {
    if !b.prefix {
        return !a.prefix
            && a.segments.len() == b.segments.len()
            && a.segments.iter().zip(&b.segments).all(|pair| match pair {
                (_, Segment::Param(_)) => true,
                (Segment::Literal(x), Segment::Literal(y)) => x == y,
                (Segment::Param(_), Segment::Literal(_)) => false,
            });
    }
    // `b` is a literal prefix; `a` must start with its literals.
    a.segments.len() >= b.segments.len()
        && a.segments
            .iter()
            .zip(&b.segments)
            .all(|pair| pair.0 == pair.1)
}

/// The paths both patterns take, as one pattern (param names from `a`
/// where it has a param, else from `b`), or `None` when they share none.
/// It is as specific as `a` and `b` or more, so its precedence is at least
/// theirs, and greater when it differs from both.
pub fn path_intersection(a: &PathPattern, b: &PathPattern) -> Option<PathPattern> {
    meet(a, b, true)
}

/// The intersection; built only when `build` (else an empty stand-in).
fn meet(a: &PathPattern, b: &PathPattern, build: bool) -> Option<PathPattern> {
    let (la, lb) = (a.segments.len(), b.segments.len());
    // A prefix takes its literals and then any number of segments; a
    // non-prefix exactly its own count.
    let len_ok = match (a.prefix, b.prefix) {
        (false, false) => la == lb,
        (false, true) => la >= lb,
        (true, false) => lb >= la,
        (true, true) => true,
    };
    if !len_ok {
        return None;
    }
    let mut out = Vec::new();
    for i in 0..la.max(lb) {
        let seg = match (a.segments.get(i), b.segments.get(i)) {
            (Some(Segment::Literal(x)), Some(Segment::Literal(y))) if x != y => return None,
            (Some(s @ Segment::Literal(_)), _) | (_, Some(s @ Segment::Literal(_))) => s,
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => unreachable!("i is below the longer length"),
        };
        if build {
            out.push(seg.clone());
        }
    }
    Some(PathPattern {
        segments: out,
        prefix: a.prefix && b.prefix,
    })
}

/// Whether every host `host` stands for is taken by `m` (`None` stands
/// for any host: a matcher without `hosts`).
pub fn takes_every_host_of(m: &Matcher, host: Option<&HostPattern>) -> bool {
    m.takes_every_host_of(host)
}

/// Whether `m` takes the method (`None`: a method outside `Method::ALL`).
pub fn takes_method(m: &Matcher, method: Option<crate::ir::Method>) -> bool {
    MethodSet::of(m).contains(method)
}

/// Whether some request could match both matchers: host, path, method
/// and conditions (none required to have two different values).
pub fn matchers_overlap(a: &Matcher, b: &Matcher) -> bool {
    !MethodSet::of(a).intersection(MethodSet::of(b)).is_empty()
        && a.hosts_overlap(b)
        && paths_overlap(&a.path, &b.path)
        && a.conditions.compatible(&b.conditions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        s.parse().unwrap()
    }

    /// Every relation agrees with matching sample paths: the intersection
    /// takes exactly the paths both take, and `within` holds when no sample
    /// taken by `a` is refused by `b`.
    #[test]
    fn relations_agree_with_matching() {
        let patterns = [
            "/", "/*", "/a", "/a/*", "/a/b/*", "/a/{x}", "/{y}/b", "/{x}", "/{x}/{y}", "/a/b",
            "/b/*", "/{x}/b/c", "/a/b/c",
        ];
        let paths = [
            "/", "/a", "/a/", "/a/b", "/a/b/", "/a/b/c", "/b", "/b/b", "/x/b", "/x/b/c", "/a/c",
            "/b/x/y",
        ];
        for x in patterns {
            for y in patterns {
                let (a, b) = (p(x), p(y));
                let both: Vec<&str> = paths
                    .iter()
                    .copied()
                    .filter(|q| a.is_match(q) && b.is_match(q))
                    .collect();
                match path_intersection(&a, &b) {
                    Some(i) => {
                        for q in paths {
                            assert_eq!(i.is_match(q), both.contains(&q), "{x} ^ {y} = {i} on {q}");
                        }
                        assert!(i.precedence() >= a.precedence().max(b.precedence()));
                        assert!(paths_overlap(&a, &b));
                    }
                    None => assert!(both.is_empty(), "{x} ^ {y} share {both:?}"),
                }
                if path_within(&a, &b) {
                    for q in paths {
                        assert!(!a.is_match(q) || b.is_match(q), "{x} within {y} but {q}");
                    }
                }
            }
        }
        assert!(path_within(&p("/a/b"), &p("/a/{x}")));
        assert!(path_within(&p("/a/{x}"), &p("/a/*")));
        assert!(!path_within(&p("/a/*"), &p("/a/{x}")));
        assert!(!path_within(&p("/{y}/b"), &p("/a/*")));
        assert_eq!(
            path_intersection(&p("/{y}/b"), &p("/a/*")).map(|i| i.to_string()),
            Some("/a/b".into())
        );
    }
}
