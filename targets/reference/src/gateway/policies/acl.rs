//! `acl` (phase 5): by consumer group; refusals get 403. With `allow`, a
//! request without a consumer is refused; with `deny`, it passes.

use crate::gateway::context::Ctx;
use crate::gateway::phases::{Flow, PhaseHooks};
use crate::gateway::respond;
use gatefold_compiler::ir::policy::Acl;
use http::request;

pub struct AclPolicy {
    allow: bool,
    groups: Vec<String>,
}

impl AclPolicy {
    pub fn new(cfg: &Acl) -> AclPolicy {
        let (allow, groups) = match cfg {
            Acl::Allow(g) => (true, g),
            Acl::Deny(g) => (false, g),
        };
        AclPolicy {
            allow,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }
}

impl PhaseHooks for AclPolicy {
    fn request_filter(&self, _req: &request::Parts, ctx: &mut Ctx) -> Flow {
        let member = ctx
            .consumer
            .as_ref()
            .is_some_and(|c| c.groups.iter().any(|g| self.groups.contains(g)));
        if member == self.allow {
            Flow::Continue
        } else {
            Flow::Stop(respond::forbidden())
        }
    }
}
