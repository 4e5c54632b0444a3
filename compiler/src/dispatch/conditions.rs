//! The spec's distinct `match` conditions (language 1.1), numbered.
//!
//! Targets whose own matchers cannot read a condition as the spec does
//! (Envoy's front Lua filter, Kong's global `rewrite` chunk) evaluate each
//! distinct condition once per request, before routing, and mark the ones
//! that hold with an internal request header ([`ConditionTable::marker`]);
//! a route then requires its conditions' markers. This table is the
//! numbering they share.

use crate::ir::{Conditions, Ir};
use std::collections::BTreeMap;

/// One condition: a header's first line, or a query parameter's first
/// occurrence (percent-decoded, as the spec compares them), equal to a
/// value. Header names are lower case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    Header { name: String, value: String },
    Query { name: String, value: String },
}

/// The distinct conditions of every route, numbered from 1 in IR route
/// order (a route's headers, then its query parameters).
#[derive(Debug, Default)]
pub struct ConditionTable {
    numbers: BTreeMap<Condition, usize>,
}

/// `c`'s conditions: its headers, then its query parameters.
fn each(c: &Conditions) -> impl Iterator<Item = Condition> + '_ {
    let headers = c.headers.iter().map(|(k, v)| Condition::Header {
        name: k.as_str().to_ascii_lowercase(),
        value: v.as_str().to_string(),
    });
    let query = c.query.iter().map(|(k, v)| Condition::Query {
        name: k.as_str().to_string(),
        value: v.as_str().to_string(),
    });
    headers.chain(query)
}

impl ConditionTable {
    pub fn new(ir: &Ir) -> ConditionTable {
        let mut numbers = BTreeMap::new();
        for r in &ir.routes {
            for c in each(&r.matcher.conditions) {
                let next = numbers.len() + 1;
                numbers.entry(c).or_insert(next);
            }
        }
        ConditionTable { numbers }
    }

    /// No route has a condition.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// How many distinct conditions there are (numbered 1 to `len`).
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// The numbers of `c`'s conditions, in `c`'s order (headers, then
    /// query parameters).
    pub fn numbers(&self, c: &Conditions) -> Vec<usize> {
        each(c)
            .filter_map(|c| self.numbers.get(&c))
            .copied()
            .collect()
    }

    /// Every condition with its number, by number.
    pub fn by_number(&self) -> Vec<(usize, &Condition)> {
        let mut out: Vec<(usize, &Condition)> = self.numbers.iter().map(|(c, n)| (*n, c)).collect();
        out.sort_unstable_by_key(|(n, _)| *n);
        out
    }

    /// The internal request header marking that condition `n` holds.
    pub fn marker(n: usize) -> String {
        format!("gatefold-cond-{n}")
    }
}
