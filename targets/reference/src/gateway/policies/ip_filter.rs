//! `ip-filter` (phase 1): refuse client addresses with 403. `deny` is checked
//! first; with an `allow` list, anything outside it is refused. The address
//! is the TCP peer's.

use crate::gateway::context::Ctx;
use crate::gateway::phases::{Flow, PhaseHooks};
use crate::gateway::respond;
use gatefold_compiler::ir::policy::IpFilter;
use http::request;
use ipnet::IpNet;

pub struct IpFilterPolicy {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpFilterPolicy {
    pub fn new(cfg: &IpFilter) -> IpFilterPolicy {
        IpFilterPolicy {
            allow: cfg.allow.iter().copied().collect(),
            deny: cfg.deny.iter().copied().collect(),
        }
    }
}

impl PhaseHooks for IpFilterPolicy {
    fn request_filter(&self, _req: &request::Parts, ctx: &mut Ctx) -> Flow {
        let ip = ctx.client_ip();
        let denied = self.deny.iter().any(|n| n.contains(&ip))
            || (!self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&ip)));
        if denied {
            Flow::Stop(respond::forbidden())
        } else {
            Flow::Continue
        }
    }
}
