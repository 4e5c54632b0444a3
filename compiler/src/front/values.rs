//! Decoders for the values that spec sections and policy options share:
//! names, secrets, time limits, retries and files inside the spec folder.
//! Both `spec` and `policy` use this module; it uses neither.

use super::decode::{did_you_mean, Cx, Fields};
use super::yaml::{Node, Value};
use crate::ir::policy::{Retry, RetryOn, Timeout};
use crate::ir::values::{Duration, Name, Secret};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// Checks a name written as a mapping key.
pub(super) fn name_at(
    cx: &mut Cx<'_>,
    text: &str,
    span: crate::source::Span,
    what: &str,
) -> Option<Name> {
    match text.parse::<Name>() {
        Ok(n) => Some(n),
        Err(msg) => {
            cx.error(
                "invalid-name",
                span,
                format!("{what} name: {msg}"),
                "for example `pets-v2`",
            );
            None
        }
    }
}

/// A time limit or interval: above zero.
pub(super) fn duration(cx: &mut Cx<'_>, f: &Fields<'_>, key: &str, what: &str) -> Option<Duration> {
    f.get(key)
        .and_then(|n| cx.positive_duration(n, &format!("{what} `{key}`"), "5s"))
}

/// `on: [connect-failure, 502]` of retries.
pub(super) fn decode_retry_on(cx: &mut Cx<'_>, node: &Node) -> BTreeSet<RetryOn> {
    let names: Vec<&str> = RetryOn::ALL.iter().map(|(n, _)| *n).collect();
    let Some(items) = cx.list(node, "retry `on`", "on: [connect-failure, 502, 503]") else {
        return BTreeSet::new();
    };
    cx.non_empty(
        node,
        "retry `on`",
        "nothing would ever be retried",
        "list what triggers a retry, like `on: [connect-failure]`, or set `attempts: 0`",
    );
    let mut out = Vec::new();
    for item in items {
        let text = match &item.value {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            _ => String::new(),
        };
        match RetryOn::ALL.iter().find(|(n, _)| *n == text) {
            Some((_, on)) => out.push((*on, item)),
            None => cx.error(
                "invalid-retry-condition",
                item.span,
                format!("`{text}` is not a retry condition"),
                did_you_mean(&text, &names),
            ),
        }
    }
    cx.set("retry `on`", out)
}

/// `{attempts, on}` of an upstream's `retries` or a `retry` policy.
pub(super) fn decode_retry(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<Retry> {
    let f = cx.fields(
        node,
        what,
        &["attempts", "on"],
        "{ attempts: 2, on: [connect-failure, 502] }",
    )?;
    let attempts = match cx.required(&f, "attempts", what, "attempts: 2") {
        Some(n) => cx.int(n, "`attempts`", 0, 10)? as u32,
        None => return None,
    };
    let on = match f.get("on") {
        Some(n) => decode_retry_on(cx, n),
        None => [RetryOn::ConnectFailure].into_iter().collect(),
    };
    Some(Retry { attempts, on })
}

/// `{connect, read}` of an upstream's `timeouts` or a `timeout` policy.
pub(super) fn decode_timeouts(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<Timeout> {
    let f = cx.fields(
        node,
        what,
        &["connect", "read"],
        "{ connect: 2s, read: 10s }",
    )?;
    let t = Timeout {
        connect: duration(cx, &f, "connect", "timeout"),
        read: duration(cx, &f, "read", "timeout"),
    };
    if f.entries.is_empty() {
        cx.error(
            "missing-key",
            f.span,
            format!("{what} sets no timeout"),
            "add `connect: 2s` or `read: 10s`",
        );
    }
    Some(t)
}

/// `{ env: NAME }`: the only way to write a secret.
pub(super) fn decode_secret(cx: &mut Cx<'_>, node: &Node, what: &str) -> Option<Secret> {
    if let Value::Str(_) = node.value {
        cx.error(
            "literal-secret",
            node.span,
            format!("{what} is a secret and may not be written literally"),
            "reference it instead: `{ env: NAME }`, and set NAME where the gateway runs",
        );
        return None;
    }
    let f = cx.fields(node, what, &["env"], "{ env: NAME }")?;
    let n = cx.required(&f, "env", what, "env: NAME")?;
    let var = cx.str(n, "`env`", "NAME")?;
    let ok = var
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        cx.error(
            "invalid-env-name",
            n.span,
            format!("`{var}` is not an environment variable name"),
            "use letters, digits and `_`, like `ACME_API_KEY`",
        );
        return None;
    }
    Some(Secret::Env(var.to_string()))
}

/// `rel` joined to `folder`, if it names a place inside `folder`: not an
/// absolute path, no `..` that climbs out of it, and (when it exists) not
/// a symbolic link that leads out of it.
pub(super) fn inside_folder(folder: &Path, rel: &str) -> Option<PathBuf> {
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1)?,
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let path = folder.join(rel);
    // The deepest part of the path that exists, links followed, must be
    // inside the folder: `link/x` with `link -> /etc` is outside whether or
    // not `/etc/x` exists.
    let existing = path.ancestors().find_map(|a| a.canonicalize().ok());
    match (existing, folder.canonicalize()) {
        (Some(real), Ok(root)) if !real.starts_with(&root) => None,
        // A link that leads nowhere is refused alike, so that whether its
        // target exists is not told either.
        _ if path.symlink_metadata().is_ok() && path.canonicalize().is_err() => None,
        _ => Some(path),
    }
}

/// An IP address or CIDR block (`ip-filter` lists, trusted proxies); a
/// block with bits set below its prefix is refused. `what` names one item.
pub(super) fn cidr(cx: &mut Cx<'_>, item: &Node, what: &str) -> Option<ipnet::IpNet> {
    let text = cx.str(item, what, "10.0.0.0/8")?;
    let net = text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    });
    let Some(net) = net else {
        cx.error(
            "invalid-cidr",
            item.span,
            format!("`{text}` is not an IP address or CIDR block"),
            "write `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`",
        );
        return None;
    };
    if net != net.trunc() {
        // Silently truncating would hide a typo that widens or moves the block.
        cx.error(
            "invalid-cidr",
            item.span,
            format!(
                "`{text}` has bits set below its /{} prefix, so it is not the start of a block",
                net.prefix_len()
            ),
            format!(
                "write the block as `{}`, or the single address as `{}`",
                net.trunc(),
                net.addr()
            ),
        );
        return None;
    }
    Some(net)
}
