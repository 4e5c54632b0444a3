//! `traffic-split`: weighted upstreams and header matches.

use super::*;

/// Decodes `traffic-split` options.
pub(super) fn decode(cx: &mut Cx<'_>, node: &Node, refs: &mut Refs) -> Option<Policy> {
    let kind = PolicyKind::TrafficSplit;
    let what = format!("`{kind}`");
    let f = fields(
        cx,
        kind,
        node,
        &["to", "header-match"],
        "traffic-split: { to: [{ upstream: v1, weight: 90 }, { upstream: v2, weight: 10 }] }",
    )?;
    let mut to = Vec::new();
    let upstream_ref = |cx: &mut Cx<'_>, n: &Node, refs: &mut Refs| -> Option<Name> {
        let text = cx.str(n, "`upstream`", "pets-v2")?;
        let name = name_at(cx, text, n.span, "upstream")?;
        refs.push((
            RefKind::Upstream,
            NameRef {
                name: name.clone(),
                span: n.span,
            },
        ));
        Some(name)
    };
    if let Some(list) = cx.required(&f, "to", &what, "to: [{ upstream: pets, weight: 100 }]") {
        cx.non_empty(
            list,
            "`to`",
            "no request could be sent anywhere",
            "add a destination: `to: [{ upstream: pets, weight: 100 }]`",
        );
        for item in cx
            .list(list, "`to`", "[{ upstream: pets, weight: 100 }]")
            .unwrap_or(&[])
        {
            let Some(tf) = cx.fields(
                item,
                "a split destination",
                &["upstream", "weight"],
                "{ upstream: pets, weight: 90 }",
            ) else {
                continue;
            };
            let up = cx
                .required(&tf, "upstream", "a split destination", "upstream: pets")
                .and_then(|n| upstream_ref(cx, n, refs));
            let weight = cx
                .required(&tf, "weight", "a split destination", "weight: 90")
                .and_then(|n| cx.int(n, "`weight`", 0, 1000));
            if let (Some(upstream), Some(weight)) = (up, weight) {
                to.push(WeightedUpstream {
                    upstream,
                    weight: weight as u32,
                });
            }
        }
        if !to.is_empty() && to.iter().all(|w| w.weight == 0) {
            // At the key: a block list's span runs on past its end.
            cx.error(
                "invalid-option",
                f.key_span("to").unwrap_or(list.span),
                "every weight of this split is 0, so no request could be sent",
                "give at least one destination a weight above 0",
            );
        }
    }
    let mut header_match = Vec::new();
    if let Some(list) = f.get("header-match") {
        for item in cx
            .list(
                list,
                "`header-match`",
                "[{ name: x-canary, value: \"1\", upstream: pets-v2 }]",
            )
            .unwrap_or(&[])
        {
            let Some(hf) = cx.fields(
                item,
                "a header match",
                &["name", "value", "upstream"],
                "{ name: x-canary, value: \"1\", upstream: pets-v2 }",
            ) else {
                continue;
            };
            let name = cx
                .required(&hf, "name", "a header match", "name: x-canary")
                .and_then(|n| cx.parse::<HeaderName>(n, "`name`", "invalid-header", "x-canary"));
            let value = cx
                .required(&hf, "value", "a header match", "value: \"1\"")
                .and_then(|n| match &n.value {
                    Value::Str(s) => Some(s.to_string()),
                    Value::Int(i) => Some(i.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => cx.str(n, "`value`", "\"1\"").map(str::to_string),
                });
            let up = cx
                .required(&hf, "upstream", "a header match", "upstream: pets-v2")
                .and_then(|n| upstream_ref(cx, n, refs));
            if let (Some(name), Some(value), Some(upstream)) = (name, value, up) {
                header_match.push(HeaderMatch {
                    name,
                    value,
                    upstream,
                });
            }
        }
    }
    Some(Policy::TrafficSplit(TrafficSplit { to, header_match }))
}
