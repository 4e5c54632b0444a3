//! Patterns (of routes, or of a class's path groups) by their first two
//! literal segments, so that building the view compares a pattern only
//! with those that can cover it or share a path with it, not with every
//! pattern of its first segment (50 routes under one base path would be
//! 50 × 50 comparisons).
//!
//! Why the lists are enough ([`super::relations`]): a literal segment
//! takes only itself, and a prefix pattern (`/a/b/*`) has literals only.
//! So a pattern whose segment `i` is the literal `x` covers only patterns
//! whose segment `i` is `x`, and shares no path with one whose segment `i`
//! is another literal.

use crate::ir::{PathPattern, Segment};
use rustc_hash::FxHashMap as HashMap;

/// Ascending entry numbers (route indices, or pattern positions) by their
/// pattern's leading literals. Entries are pushed in ascending order.
#[derive(Debug, Default)]
pub(super) struct LeadIndex {
    by_first: HashMap<String, FirstLiteral>,
    /// Entries whose first segment is not a literal: a param, or none
    /// (`/`, `/*`).
    any_first: Vec<usize>,
}

/// The entries of one first literal.
#[derive(Debug, Default)]
struct FirstLiteral {
    /// All of them.
    all: Vec<usize>,
    /// Those whose second segment is not a literal: a param, or none
    /// (`/a`, `/a/*`).
    any_second: Vec<usize>,
    /// Those with a literal second segment, by it.
    by_second: HashMap<String, Vec<usize>>,
}

/// A pattern's leading literals.
enum Lead<'p> {
    /// The first segment is a param or missing.
    None,
    /// A literal first, then a param or nothing.
    One(&'p str),
    /// Two literals first.
    Two(&'p str, &'p str),
}

fn lead(p: &PathPattern) -> Lead<'_> {
    match p.segments.as_slice() {
        [Segment::Literal(a), Segment::Literal(b), ..] => Lead::Two(a, b),
        [Segment::Literal(a), ..] => Lead::One(a),
        _ => Lead::None,
    }
}

const NONE: &[usize] = &[];

impl LeadIndex {
    /// Adds entry `at` (greater than every entry before it) of pattern `p`.
    pub(super) fn push(&mut self, p: &PathPattern, at: usize) {
        let (first, second) = match lead(p) {
            Lead::None => return self.any_first.push(at),
            Lead::One(a) => (a, None),
            Lead::Two(a, b) => (a, Some(b)),
        };
        let f = match self.by_first.get_mut(first) {
            Some(f) => f,
            None => self.by_first.entry(first.to_string()).or_default(),
        };
        f.all.push(at);
        match second {
            None => f.any_second.push(at),
            Some(b) => match f.by_second.get_mut(b) {
                Some(list) => list.push(at),
                None => {
                    f.by_second.insert(b.to_string(), vec![at]);
                }
            },
        }
    }

    /// In ascending order, a superset of the entries whose pattern takes
    /// every path `p` takes ([`super::relations::path_within`]).
    pub(super) fn covering(&self, p: &PathPattern) -> impl Iterator<Item = usize> + '_ {
        let [x, y] = self.lists(p, false).unwrap_or([NONE, NONE]);
        self.with_any_first(x, y)
    }

    /// In ascending order, a superset of the entries whose pattern shares
    /// a path with `p`; `None` when `p`'s first segment is not a literal
    /// (then any entry may).
    pub(super) fn overlapping(&self, p: &PathPattern) -> Option<impl Iterator<Item = usize> + '_> {
        let [x, y] = self.lists(p, true)?;
        Some(self.with_any_first(x, y))
    }

    /// The lists besides `any_first` that together hold every entry that
    /// may cover `p` (with `overlap`: share a path with it). `None` when
    /// that is every entry.
    fn lists(&self, p: &PathPattern, overlap: bool) -> Option<[&[usize]; 2]> {
        let first = |a: &str| self.by_first.get(a);
        Some(match lead(p) {
            // `/*` and `/{x}/b` share paths with `/a/b`.
            Lead::None if overlap => return None,
            // An entry with a literal first has a segment that `/{x}`, `/`
            // or `/*` does not always have as that literal.
            Lead::None => [NONE, NONE],
            Lead::One(a) => match first(a) {
                // `/a/*` takes `/a/b` and `/a/{x}` takes `/a/b`.
                Some(f) if overlap => [&f.all, NONE],
                // `/a/b...` never takes all of `/a`, `/a/*` or `/a/{x}...`.
                Some(f) => [&f.any_second, NONE],
                None => [NONE, NONE],
            },
            // Entries of another literal second share no path with `p`.
            Lead::Two(a, b) => match first(a) {
                Some(f) => [
                    &f.any_second,
                    f.by_second.get(b).map_or(NONE, Vec::as_slice),
                ],
                None => [NONE, NONE],
            },
        })
    }

    fn with_any_first<'a>(
        &'a self,
        x: &'a [usize],
        y: &'a [usize],
    ) -> impl Iterator<Item = usize> + 'a {
        merge(
            merge(x.iter().copied(), y.iter().copied()),
            self.any_first.iter().copied(),
        )
    }
}

/// Two ascending sequences as one ascending sequence.
pub(super) fn merge<T: Ord>(
    a: impl Iterator<Item = T>,
    b: impl Iterator<Item = T>,
) -> impl Iterator<Item = T> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if x < y => a.next(),
        (_, Some(_)) => b.next(),
        (Some(_), None) => a.next(),
        (None, None) => None,
    })
}
