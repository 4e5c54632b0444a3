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
use gatefold_compiler::dispatch::conditions::Condition;
pub use gatefold_compiler::dispatch::conditions::ConditionTable;
use gatefold_compiler::ir::Conditions;

/// What the Envoy target writes from the spec's condition table.
pub trait EnvoyConditions {
    /// Header matchers requiring every one of `c` to hold.
    fn matchers(&self, c: &Conditions) -> Vec<HeaderMatcher>;
    /// The internal headers, for the route configuration to remove.
    fn markers(&self) -> Vec<String>;
    /// `CONDITIONS` for the front filter: `{ kind, name, value }` by number.
    fn lua(&self) -> String;
}

impl EnvoyConditions for ConditionTable {
    fn matchers(&self, c: &Conditions) -> Vec<HeaderMatcher> {
        self.numbers(c)
            .into_iter()
            .map(|n| HeaderMatcher {
                name: ConditionTable::marker(n),
                string_match: None,
                present_match: Some(true),
                invert_match: None,
            })
            .collect()
    }

    fn markers(&self) -> Vec<String> {
        self.by_number()
            .into_iter()
            .map(|(n, _)| ConditionTable::marker(n))
            .collect()
    }

    fn lua(&self) -> String {
        let mut out = String::from("CONDITIONS = {\n");
        for (_, c) in self.by_number() {
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
