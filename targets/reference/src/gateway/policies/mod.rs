//! One module per policy kind (`script` evaluates through
//! [`crate::script`]). `native` has nothing the reference gateway reads; `timeout` and `retry`
//! are folded into a route's proxy plan ([`crate::gateway::proxy`]), and
//! `mirror` sits beside it (a phase-12 plan, not a [`crate::gateway::phases::PhaseHooks`]).

pub mod acl;
pub mod auth;
pub mod basic_auth;
pub mod cache;
pub mod cors;
pub mod deprecation;
pub mod headers;
pub mod ip_filter;
pub mod jwt;
pub mod key_auth;
pub mod mirror;
pub mod mock;
pub mod rate_limit;
pub mod redirect;
pub mod request_size_limit;
pub mod rewrite;
pub mod script;
pub mod traffic_split;
