//! Validation over the whole spec: the reference graph (dangling, unused,
//! cycles) and the route table (precedence order, duplicate and shadowed routes).

mod graph;
mod order;
mod routes;

pub use graph::check_graph;
pub use order::canonical_order;
pub use routes::order_and_check_routes;
