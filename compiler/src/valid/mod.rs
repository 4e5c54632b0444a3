//! Validation over the resolved spec: each route's chain, the consumers,
//! the reference graph (dangling, unused, cycles) and the route table
//! (canonical match order, then duplicate and shadowed routes checked in
//! that order).

mod chain;
mod consumers;
mod graph;
mod order;
mod routes;

pub use chain::check_chains;
pub use consumers::{check_consumers, check_credentials_exist};
pub use graph::check_graph;
pub use order::{canonical_order, overlap};
pub use routes::check_routes;
