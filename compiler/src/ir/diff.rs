//! The semantic difference between two IRs: what a change to a spec does
//! to the gateway (`gatefold diff`, the fleet tool, the gateway's state
//! carry-over).
//!
//! Only meaning is compared, never the source map or a policy's origin, so
//! reformatting, reordering and moving apis between files give no change.
//! Each change is reported once, on the entity that changed:
//!
//! * a policy instance ([`super::PolicyId`]) whose options changed is one
//!   change, however many routes inherit it;
//! * a route changes when its matcher, upstream or chain does; a chain that
//!   only gained or lost instances that were themselves added or removed
//!   (a new gateway-level policy, a new route-level one) is not repeated on
//!   each route. Lowered meaning is derived, so it is not compared either
//!   (a baseline timeout change is one gateway change);
//! * upstreams and consumers by name (secrets appear as their references);
//! * two routes that both could take some request and swapped which wins.

use super::{Ir, PolicyId, RouteId};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// What happened to an entity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Added,
    Removed,
    Changed,
}

/// The entity a change is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Subject {
    /// Gateway-wide settings (name, listen port, baseline).
    Gateway,
    Upstream {
        name: String,
    },
    Consumer {
        name: String,
    },
    Policy {
        id: PolicyId,
    },
    Route {
        id: RouteId,
    },
    /// Routes that both could take some request, where `winner` now takes
    /// it and `loser` used to.
    Precedence {
        winner: RouteId,
        loser: RouteId,
    },
}

/// One field that differs: its path in the IR's JSON (`policy.requests`,
/// `targets`), the old and new values (absent when added or removed).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FieldChange {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// One change.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Change {
    pub op: Op,
    pub subject: Subject,
    /// For `changed`: each field that differs. For `added`/`removed`: one
    /// entry with an empty path and the whole value.
    pub fields: Vec<FieldChange>,
}

/// Every change from `old` to `new`, in a stable order: gateway,
/// upstreams, consumers, policies, routes, precedence.
pub fn diff(old: &Ir, new: &Ir) -> Vec<Change> {
    let mut out = Vec::new();
    if old.hash == new.hash {
        return out;
    }
    let gw = |ir: &Ir| to_value(&ir.gateway);
    compare(&mut out, Subject::Gateway, Some(gw(old)), Some(gw(new)));
    by_name(&mut out, &old.upstreams, &new.upstreams, |name| {
        Subject::Upstream {
            name: name.to_string(),
        }
    });
    by_name(&mut out, &old.consumers, &new.consumers, |name| {
        Subject::Consumer {
            name: name.to_string(),
        }
    });

    // Policy instances, without their origin (not meaning).
    let meaning = |p: &super::PolicyInstance| serde_json::json!({ "attachment": p.attachment, "policy": p.policy });
    let mut added: BTreeSet<&PolicyId> = BTreeSet::new();
    let mut removed: BTreeSet<&PolicyId> = BTreeSet::new();
    let ids: BTreeSet<&PolicyId> = old.policies.keys().chain(new.policies.keys()).collect();
    for id in ids {
        let (a, b) = (old.policies.get(id), new.policies.get(id));
        match (a, b) {
            (Some(a), Some(b)) if a.attachment == b.attachment && a.policy == b.policy => continue,
            (None, Some(_)) => {
                added.insert(id);
            }
            (Some(_), None) => {
                removed.insert(id);
            }
            _ => {}
        }
        compare(
            &mut out,
            Subject::Policy { id: id.clone() },
            a.map(meaning),
            b.map(meaning),
        );
    }

    // Routes: matcher, upstream, chain and preserve-host; the rest of the
    // lowered meaning is derived.
    let old_routes: HashMap<&RouteId, (usize, &super::Route)> = old
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.id, (i, &**r)))
        .collect();
    let new_ids: BTreeSet<&RouteId> = new.routes.iter().map(|r| &r.id).collect();
    // `preserve-host` is the one lowered field the spec writes directly.
    let route_value = |r: &super::Route| {
        let mut v =
            serde_json::json!({ "matcher": r.matcher, "upstream": r.upstream, "chain": r.chain });
        if r.lowered.preserve_host {
            v["preserve-host"] = Value::Bool(true);
        }
        v
    };
    let mut route_changes = Vec::new();
    for r in &new.routes {
        let Some((_, o)) = old_routes.get(&r.id) else {
            compare(
                &mut route_changes,
                Subject::Route { id: r.id.clone() },
                None,
                Some(route_value(r)),
            );
            continue;
        };
        let chain_implied = o.chain == r.chain || {
            let was: BTreeSet<&PolicyId> = o.chain.iter().collect();
            let is: BTreeSet<&PolicyId> = r.chain.iter().collect();
            was.difference(&is).all(|id| removed.contains(id))
                && is.difference(&was).all(|id| added.contains(id))
        };
        if o.matcher == r.matcher
            && o.upstream == r.upstream
            && o.lowered.preserve_host == r.lowered.preserve_host
            && chain_implied
        {
            continue;
        }
        let (mut a, mut b) = (route_value(o), route_value(r));
        if chain_implied {
            // Reported on the instances that came and went.
            a["chain"] = Value::Null;
            b["chain"] = Value::Null;
        }
        compare(
            &mut route_changes,
            Subject::Route { id: r.id.clone() },
            Some(a),
            Some(b),
        );
    }
    for o in old.routes.iter().filter(|o| !new_ids.contains(&o.id)) {
        compare(
            &mut route_changes,
            Subject::Route { id: o.id.clone() },
            Some(route_value(o)),
            None,
        );
    }
    route_changes.sort_by(|a, b| a.subject.cmp(&b.subject));
    out.extend(route_changes);
    out.extend(precedence(new, &old_routes));
    out
}

/// Pairs of routes in both IRs that could take the same request and whose
/// order flipped. Only routes that moved relative to the others (outside a
/// longest run kept in order) are compared with every other route, so a
/// small edit of a large spec stays cheap.
fn precedence(new: &Ir, old_routes: &HashMap<&RouteId, (usize, &super::Route)>) -> Vec<Change> {
    // New order of the routes in both, with their old positions.
    let common: Vec<(usize, &super::Route, &super::Route)> = new
        .routes
        .iter()
        .filter_map(|r| old_routes.get(&r.id).map(|(i, o)| (*i, *o, &**r)))
        .collect();
    let olds: Vec<usize> = common.iter().map(|c| c.0).collect();
    let kept = longest_increasing(&olds);
    let mut pairs: BTreeSet<(RouteId, RouteId)> = BTreeSet::new();
    for (ni, (oi, o, r)) in common.iter().enumerate() {
        if kept.contains(&ni) {
            continue;
        }
        for (nj, (oj, o2, r2)) in common.iter().enumerate() {
            if ni == nj || (ni < nj) == (oi < oj) {
                continue;
            }
            let overlapping = crate::valid::overlap(&r.matcher, &r2.matcher)
                || crate::valid::overlap(&o.matcher, &o2.matcher);
            if !overlapping {
                continue;
            }
            let (winner, loser) = if ni < nj { (r, r2) } else { (r2, r) };
            pairs.insert((winner.id.clone(), loser.id.clone()));
        }
    }
    pairs
        .into_iter()
        .map(|(winner, loser)| Change {
            op: Op::Changed,
            subject: Subject::Precedence { winner, loser },
            fields: Vec::new(),
        })
        .collect()
}

/// Indexes (into `xs`) of one longest strictly increasing subsequence.
fn longest_increasing(xs: &[usize]) -> BTreeSet<usize> {
    // Patience sorting: tails[k] is the index ending the best run of length k+1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; xs.len()];
    for (i, x) in xs.iter().enumerate() {
        let k = tails.partition_point(|&t| xs[t] < *x);
        prev[i] = k.checked_sub(1).map(|k| tails[k]);
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut out = BTreeSet::new();
    let mut at = tails.last().copied();
    while let Some(i) = at {
        out.insert(i);
        at = prev[i];
    }
    out
}

fn by_name<K: Ord + fmt::Display, V: Serialize + PartialEq>(
    out: &mut Vec<Change>,
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    subject: impl Fn(&K) -> Subject,
) {
    let names: BTreeSet<&K> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (a, b) = (old.get(name), new.get(name));
        if a == b {
            continue;
        }
        compare(out, subject(name), a.map(to_value), b.map(to_value));
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("IR serializes")
}

/// Pushes the change between two versions of one entity, if any.
fn compare(out: &mut Vec<Change>, subject: Subject, old: Option<Value>, new: Option<Value>) {
    let (op, fields) = match (old, new) {
        (None, None) => return,
        (None, Some(v)) => (Op::Added, vec![whole(None, Some(v))]),
        (Some(v), None) => (Op::Removed, vec![whole(Some(v), None)]),
        (Some(a), Some(b)) => {
            let mut fields = Vec::new();
            fields_of(&mut String::new(), &a, &b, &mut fields);
            if fields.is_empty() {
                return;
            }
            (Op::Changed, fields)
        }
    };
    out.push(Change {
        op,
        subject,
        fields,
    });
}

fn whole(old: Option<Value>, new: Option<Value>) -> FieldChange {
    FieldChange {
        path: String::new(),
        old,
        new,
    }
}

/// The leaves where `a` and `b` differ, by dotted path; lists and scalars
/// are compared whole.
fn fields_of(path: &mut String, a: &Value, b: &Value, out: &mut Vec<FieldChange>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => fields_of(path, va, vb, out),
                    (va, vb) => out.push(FieldChange {
                        path: path.clone(),
                        old: va.cloned(),
                        new: vb.cloned(),
                    }),
                }
                path.truncate(len);
            }
        }
        _ => out.push(FieldChange {
            path: path.clone(),
            old: Some(a.clone()).filter(|v| !v.is_null()),
            new: Some(b.clone()).filter(|v| !v.is_null()),
        }),
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Gateway => f.write_str("gateway"),
            Subject::Upstream { name } => write!(f, "upstream {name}"),
            Subject::Consumer { name } => write!(f, "consumer {name}"),
            Subject::Policy { id } => write!(f, "policy {id}"),
            Subject::Route { id } => write!(f, "route {id}"),
            Subject::Precedence { winner, loser } => {
                write!(
                    f,
                    "precedence: {winner} now wins over {loser} where both match"
                )
            }
        }
    }
}

/// The changes as text, one entity per line (`+` added, `-` removed, `~`
/// changed) with its fields indented; `no changes` when there are none.
pub fn render(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no changes\n".to_string();
    }
    let mut out = String::new();
    let show = |v: &Option<Value>| match v {
        Some(v) => v.to_string(),
        None => "(none)".to_string(),
    };
    for c in changes {
        let sign = match c.op {
            Op::Added => '+',
            Op::Removed => '-',
            Op::Changed => '~',
        };
        out.push_str(&format!("{sign} {}\n", c.subject));
        if c.op != Op::Changed {
            continue;
        }
        for f in &c.fields {
            out.push_str(&format!(
                "    {}: {} -> {}\n",
                f.path,
                show(&f.old),
                show(&f.new)
            ));
        }
    }
    let n = changes.len();
    out.push_str(&format!("{n} change{}\n", if n == 1 { "" } else { "s" }));
    out
}
