//! The route's lowered upstream path (`rewrite` and `strip-base-path`,
//! phase 10): the path sent upstream. The query string is always kept.

use crate::gateway::context::Ctx;
use crate::gateway::phases::{Policy, UpstreamRequest};
use gatefold_compiler::ir::{PathPattern, Segment, UpstreamPath};

pub enum RewritePolicy {
    /// The whole path from a template; params from the route's own path.
    Path {
        template: PathPattern,
        route_path: PathPattern,
    },
    Prefix {
        strip: Option<String>,
        add: Option<String>,
    },
}

impl RewritePolicy {
    /// A route's lowered upstream path; `None` when it is kept as is.
    pub fn lowered(path: &UpstreamPath, route_path: &PathPattern) -> Option<RewritePolicy> {
        match path {
            UpstreamPath::Keep => None,
            UpstreamPath::Template(t) => Some(RewritePolicy::Path {
                template: t.clone(),
                route_path: route_path.clone(),
            }),
            UpstreamPath::Prefix { strip, add } => Some(RewritePolicy::Prefix {
                strip: strip.clone(),
                add: add.clone(),
            }),
        }
    }
}

/// Removes a literal prefix at a segment boundary; what is left may be empty.
fn strip_prefix<'p>(path: &'p str, prefix: &str) -> &'p str {
    if prefix == "/" {
        return path;
    }
    match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

/// `strip`, then `add`; an empty result becomes `/`.
pub fn rewrite_prefix(path: &str, strip: Option<&str>, add: Option<&str>) -> String {
    let rest = strip.map_or(path, |s| strip_prefix(path, s));
    let mut out = String::with_capacity(rest.len() + add.map_or(0, str::len));
    if let Some(a) = add.filter(|a| *a != "/") {
        out.push_str(a);
    }
    out.push_str(rest);
    if out.is_empty() {
        out.push('/');
    }
    out
}

impl Policy for RewritePolicy {
    fn upstream_request(&self, up: &mut UpstreamRequest, ctx: &Ctx) {
        match self {
            RewritePolicy::Path {
                template,
                route_path,
            } => {
                let params = route_path.matches(&ctx.path);
                let mut out = String::new();
                for s in &template.segments {
                    out.push('/');
                    match s {
                        Segment::Literal(l) => out.push_str(l),
                        Segment::Param(p) => {
                            if let Some(v) = params.clone().and_then(|b| b.get(p)) {
                                out.push_str(v);
                            }
                        }
                    }
                }
                if out.is_empty() {
                    out.push('/');
                }
                up.path = out;
            }
            RewritePolicy::Prefix { strip, add } => {
                up.path = rewrite_prefix(&up.path, strip.as_deref(), add.as_deref());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_the_spec_examples() {
        let r = |p| rewrite_prefix(p, Some("/catalog/files"), Some("/static"));
        assert_eq!(r("/catalog/files/a.css"), "/static/a.css");
        assert_eq!(r("/catalog/files"), "/static");
        assert_eq!(r("/catalog/files/"), "/static/");
        assert_eq!(rewrite_prefix("/pets", Some("/pets"), None), "/");
        assert_eq!(rewrite_prefix("/pets/1", Some("/pets"), None), "/1");
    }
}
