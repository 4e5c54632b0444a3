//! The content hash: identifies a compiled version by its meaning.

use super::{Consumer, Gateway, Ir, Name, PolicyId, PolicyInstance, Route, Upstream, IR_FORMAT};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::sync::Arc;

/// `sha256:<hex>` over the canonical JSON of everything but the source map.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentHash(String);

/// The part of the IR that is meaning, but its routes. Field order is
/// fixed and every map is ordered, so its JSON is canonical; the hash reads
/// the JSON object of these fields and `routes` (last), written by
/// [`Head::before_routes`] and then the routes.
#[derive(Serialize)]
struct Head<'a> {
    format: u32,
    gateway: &'a Gateway,
    upstreams: &'a BTreeMap<Name, Upstream>,
    consumers: &'a BTreeMap<Name, Consumer>,
    policies: Instances<'a>,
}

impl Head<'_> {
    /// The meaning's JSON up to its routes: `{...,"routes":`.
    fn before_routes(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec(self).expect("IR serializes");
        json.pop(); // the closing brace
        json.extend_from_slice(b",\"routes\":");
        json
    }
}

/// Each route's canonical JSON as the content hash reads it, in route
/// order: kept beside a loaded IR, so that an IR made from it by changes
/// ([`super::delta::IrDelta`]) hashes the routes it keeps without writing
/// them again (at 5,000 routes, most of the hash's cost).
#[derive(Clone, Debug, Default)]
pub struct RouteMeanings {
    /// The routes' JSON joined by commas: the body of the `routes` array.
    text: Vec<u8>,
    /// Where each route's JSON ends in `text`.
    ends: Vec<usize>,
    /// [`ContentHash::of_json`] of the IR's source map, when known: changes
    /// that keep the source map carry it over instead of hashing it again.
    pub(crate) sources: Option<ContentHash>,
}

impl RouteMeanings {
    /// Route `i`'s JSON.
    fn get(&self, i: usize) -> Option<&[u8]> {
        let start = match i {
            0 => 0,
            _ => self.ends.get(i - 1)? + 1,
        };
        self.text.get(start..*self.ends.get(i)?)
    }
}

/// Policy instances without their origin (which named policy they came
/// through is not meaning).
struct Instances<'a>(&'a BTreeMap<PolicyId, PolicyInstance>);

impl Serialize for Instances<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Meant<'a> {
            attachment: &'a super::Attachment,
            policy: &'a super::Policy,
        }
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (id, p) in self.0 {
            m.serialize_entry(
                id,
                &Meant {
                    attachment: &p.attachment,
                    policy: &p.policy,
                },
            )?;
        }
        m.end()
    }
}

impl ContentHash {
    pub fn of(ir: &Ir) -> ContentHash {
        Self::compute(
            &ir.gateway,
            &ir.upstreams,
            &ir.consumers,
            &ir.policies,
            &ir.routes,
        )
    }

    pub(crate) fn compute(
        gateway: &Gateway,
        upstreams: &BTreeMap<Name, Upstream>,
        consumers: &BTreeMap<Name, Consumer>,
        policies: &BTreeMap<PolicyId, PolicyInstance>,
        routes: &[Arc<Route>],
    ) -> ContentHash {
        let head = Head {
            format: IR_FORMAT,
            gateway,
            upstreams,
            consumers,
            policies: Instances(policies),
        };
        let mut hasher = Sha256::new();
        hasher.update(head.before_routes());
        // serde_json writes a few bytes at a time; feeding the hasher whole
        // buffers instead is several times cheaper.
        let mut out = std::io::BufWriter::with_capacity(1 << 16, HashWriter(&mut hasher));
        serde_json::to_writer(&mut out, routes).expect("IR serializes");
        out.flush().expect("hashing cannot fail");
        drop(out);
        hasher.update(b"}");
        Self::from_digest(hasher)
    }

    /// [`ContentHash::compute`], writing down each route's JSON as it
    /// goes. With `reuse`, route `i` is route `reuse.1[i]` of the IR whose
    /// meanings are `reuse.0`, unchanged, when that is `Some`: its JSON is
    /// copied, not written again.
    pub(crate) fn compute_keeping(
        ir: &Ir,
        reuse: Option<(&RouteMeanings, &[Option<usize>])>,
    ) -> (ContentHash, RouteMeanings) {
        let head = Head {
            format: IR_FORMAT,
            gateway: &ir.gateway,
            upstreams: &ir.upstreams,
            consumers: &ir.consumers,
            policies: Instances(&ir.policies),
        }
        .before_routes();
        let mut kept = RouteMeanings {
            text: Vec::with_capacity(
                reuse.map_or(ir.routes.len() * 256, |(m, _)| m.text.len() + 1024),
            ),
            ends: Vec::with_capacity(ir.routes.len()),
            sources: None,
        };
        for (i, route) in ir.routes.iter().enumerate() {
            if i > 0 {
                kept.text.push(b',');
            }
            let known = reuse.and_then(|(m, at)| m.get((*at.get(i)?)?));
            match known {
                Some(json) => kept.text.extend_from_slice(json),
                None => serde_json::to_writer(&mut kept.text, route).expect("IR serializes"),
            }
            kept.ends.push(kept.text.len());
        }
        let mut hasher = Sha256::new();
        hasher.update(&head);
        hasher.update(b"[");
        hasher.update(&kept.text);
        hasher.update(b"]}");
        (Self::from_digest(hasher), kept)
    }

    /// `sha256:<hex>` of `value`'s JSON: a digest of a part of the IR the
    /// content hash leaves out (the source map).
    pub fn of_json(value: &impl Serialize) -> ContentHash {
        let mut hasher = Sha256::new();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, HashWriter(&mut hasher));
        serde_json::to_writer(&mut out, value).expect("IR serializes");
        out.flush().expect("hashing cannot fail");
        drop(out);
        Self::from_digest(hasher)
    }

    fn from_digest(hasher: Sha256) -> ContentHash {
        let digest = hasher.finalize();
        let mut hex = String::with_capacity(7 + 64);
        hex.push_str("sha256:");
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        ContentHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        &self.0[7..19.min(self.0.len())]
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Streams JSON straight into the hasher instead of building a string.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
