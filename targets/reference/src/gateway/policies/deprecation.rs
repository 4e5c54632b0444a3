//! `deprecation` (phase 7): `deprecation` (RFC 9745), `sunset` (RFC 8594) and
//! `link` headers on every response the route makes from phase 7 on.

use crate::gateway::clock::http_date_of_day;
use crate::gateway::context::Ctx;
use crate::gateway::phases::{Flow, PhaseHooks};
use gatefold_compiler::ir::policy::Deprecation;
use http::header::LINK;
use http::{request, HeaderMap, HeaderName, HeaderValue};

pub struct DeprecationPolicy {
    headers: HeaderMap,
}

impl DeprecationPolicy {
    pub fn new(cfg: &Deprecation) -> Result<DeprecationPolicy, String> {
        let mut headers = HeaderMap::new();
        let since = cfg.since.map_or(0, |d| d.days_since_epoch() * 86_400);
        headers.insert(
            HeaderName::from_static("deprecation"),
            HeaderValue::from_str(&format!("@{since}")).map_err(|e| e.to_string())?,
        );
        if let Some(sunset) = cfg.sunset {
            headers.insert(
                HeaderName::from_static("sunset"),
                HeaderValue::from_str(&http_date_of_day(sunset.days_since_epoch()))
                    .map_err(|e| e.to_string())?,
            );
        }
        if let Some(link) = &cfg.link {
            headers.insert(
                LINK,
                HeaderValue::from_str(&format!("<{link}>; rel=\"deprecation\""))
                    .map_err(|_| format!("deprecation: `{link}` cannot be sent in a header"))?,
            );
        }
        Ok(DeprecationPolicy { headers })
    }
}

impl PhaseHooks for DeprecationPolicy {
    fn request_filter(&self, _req: &request::Parts, ctx: &mut Ctx) -> Flow {
        for (k, v) in &self.headers {
            ctx.promised.insert(k.clone(), v.clone());
        }
        Flow::Continue
    }
}
