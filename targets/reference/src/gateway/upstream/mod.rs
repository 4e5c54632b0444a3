//! Upstream pools: targets, balancing, health, and the pooled HTTP client.

pub mod balance;
pub mod client;
pub mod h1_pool;
pub mod health;
pub mod pool;
pub mod server;
pub mod tls;
