//! `match` conditions (language 1.1). Envoy's own header and query
//! matchers differ from the spec (a header sent twice is matched as the
//! values joined by `,`, not its first line; query values are compared
//! undecoded), so the front Lua filter evaluates each distinct condition
//! of the spec once per request, exactly as the spec says, and marks the
//! ones that hold with an internal header (`gatefold-cond-N`, any client
//! copy removed first). Route entries require those headers to be
//! present; the route configuration removes them before the upstream.

use crate::lua::lua_string;
use crate::model::HeaderMatcher;
use gatefold_compiler::ir::{Conditions, Ir};
use std::collections::BTreeMap;

/// One condition: a header's first line, or a query parameter's first
/// occurrence (both percent-decoded), equal to a value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Condition {
    Header { name: String, value: String },
    Query { name: String, value: String },
}

/// The spec's distinct conditions, numbered from 1.
#[derive(Debug, Default)]
pub struct ConditionTable {
    numbers: BTreeMap<Condition, usize>,
}

/// The internal header marking that condition `n` holds.
fn marker(n: usize) -> String {
    format!("gatefold-cond-{n}")
}

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

    /// Header matchers requiring every one of `c` to hold.
    pub fn matchers(&self, c: &Conditions) -> Vec<HeaderMatcher> {
        each(c)
            .filter_map(|c| self.numbers.get(&c))
            .map(|n| HeaderMatcher {
                name: marker(*n),
                string_match: None,
                present_match: Some(true),
                invert_match: None,
            })
            .collect()
    }

    /// The internal headers, for the route configuration to remove.
    pub fn markers(&self) -> Vec<String> {
        let mut n: Vec<usize> = self.numbers.values().copied().collect();
        n.sort_unstable();
        n.into_iter().map(marker).collect()
    }

    /// `CONDITIONS` for the front filter: `{ kind, name, value }` by number.
    pub fn lua(&self) -> String {
        let mut by_number: Vec<(&usize, &Condition)> =
            self.numbers.iter().map(|(c, n)| (n, c)).collect();
        by_number.sort();
        let mut out = String::from("CONDITIONS = {\n");
        for (_, c) in by_number {
            let (kind, name, value) = match c {
                Condition::Header { name, value } => ("h", name, value),
                Condition::Query { name, value } => ("q", name, value),
            };
            out.push_str(&format!(
                "  {{ {}, {}, {} }},\n",
                lua_string(kind),
                lua_string(name),
                lua_string(value)
            ));
        }
        out.push_str("}\n");
        out
    }
}
