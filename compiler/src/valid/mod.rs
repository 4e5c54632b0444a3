//! Validation over the whole spec: the reference graph (dangling, unused,
//! cycles) and the route table (canonical match order, then duplicate and
//! shadowed routes checked in that order).

mod graph;
mod order;
mod routes;

pub use graph::check_graph;
pub use order::{canonical_order, overlap};
pub use routes::check_routes;
