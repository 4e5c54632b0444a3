//! [`Ir::policies`](super::Ir::policies) in a hash map, for code that
//! looks up every instance of every route's chain: at thousands of routes a
//! tree search (a dozen id comparisons) per lookup is a large part of
//! checking an IR and of building a gateway's runtime from it.

use super::{Ir, PolicyId, PolicyInstance, Route};
use rustc_hash::FxHashMap;

/// The policy instances of one IR, by id.
pub struct PolicyIndex<'a>(FxHashMap<&'a PolicyId, (&'a PolicyId, &'a PolicyInstance)>);

impl<'a> PolicyIndex<'a> {
    pub fn new(policies: &'a std::collections::BTreeMap<PolicyId, PolicyInstance>) -> Self {
        PolicyIndex(policies.iter().map(|(k, v)| (k, (k, v))).collect())
    }

    /// Of `ir`'s policies.
    pub fn of(ir: &'a Ir) -> Self {
        Self::new(&ir.policies)
    }

    pub fn get(&self, id: &PolicyId) -> Option<&'a PolicyInstance> {
        self.get_key_value(id).map(|(_, v)| v)
    }

    /// The id as the IR holds it (one place per instance) and the instance.
    pub fn get_key_value(&self, id: &PolicyId) -> Option<(&'a PolicyId, &'a PolicyInstance)> {
        self.0.get(id).copied()
    }

    /// [`Ir::chain`]: a route's chain with each instance, in execution order.
    pub fn chain<'r>(
        &'r self,
        route: &'r Route,
    ) -> impl Iterator<Item = (&'r PolicyId, &'a PolicyInstance)> + 'r {
        route
            .chain
            .iter()
            .filter_map(move |id| Some((id, self.get(id)?)))
    }
}
