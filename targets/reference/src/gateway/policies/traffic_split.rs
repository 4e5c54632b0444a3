//! `traffic-split` (phase 12): the first `header-match` rule whose header has
//! exactly that value picks the upstream; otherwise a weighted random choice.

use gatefold_compiler::ir::policy::TrafficSplit;
use http::{HeaderMap, HeaderName};

/// A split over the destinations of a route's proxy plan (by index).
pub struct Split {
    header_match: Vec<(HeaderName, String, usize)>,
    weighted: Vec<(u32, usize)>,
    total: u32,
}

impl Split {
    /// `dest` maps an upstream name to its destination index.
    pub fn new(cfg: &TrafficSplit, dest: impl Fn(&str) -> usize) -> Result<Split, String> {
        let header_match = cfg
            .header_match
            .iter()
            .map(|m| {
                Ok((
                    HeaderName::from_bytes(m.name.as_str().as_bytes())
                        .map_err(|e| e.to_string())?,
                    m.value.clone(),
                    dest(m.upstream.as_str()),
                ))
            })
            .collect::<Result<_, String>>()?;
        let weighted: Vec<(u32, usize)> = cfg
            .to
            .iter()
            .filter(|w| w.weight > 0)
            .map(|w| (w.weight, dest(w.upstream.as_str())))
            .collect();
        let total = weighted.iter().map(|(w, _)| w).sum();
        if total == 0 {
            return Err("traffic-split: every weight is 0".into());
        }
        Ok(Split {
            header_match,
            weighted,
            total,
        })
    }

    /// The destination for a request.
    pub fn choose(&self, headers: &HeaderMap) -> usize {
        for (name, value, dest) in &self.header_match {
            if headers
                .get(name)
                .is_some_and(|v| v.as_bytes() == value.as_bytes())
            {
                return *dest;
            }
        }
        let mut roll = fastrand::u32(0..self.total);
        for (w, dest) in &self.weighted {
            if roll < *w {
                return *dest;
            }
            roll -= w;
        }
        self.weighted[0].1
    }
}
