//! [`MethodSet`]: the methods a route takes or a path allows, as bits.

use crate::ir::{Matcher, Method};
use std::fmt;

/// A set of request methods: each of [`Method::ALL`], plus "other", which
/// stands for every method outside that list (`PROPFIND`, ...). A method is
/// written `Option<Method>` here: `None` is an "other" method. Copy, and
/// allocation-free, so the gateway can use it per request.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct MethodSet(u16);

const OTHER: u16 = 1 << Method::ALL.len();

fn bit(m: Option<Method>) -> u16 {
    match m {
        Some(m) => 1 << Method::ALL.iter().position(|x| *x == m).unwrap_or(0),
        None => OTHER,
    }
}

impl MethodSet {
    /// No method.
    pub const EMPTY: MethodSet = MethodSet(0);
    /// Every method, listed or not: what a route without `methods` takes.
    pub const ANY: MethodSet = MethodSet(OTHER | (OTHER - 1));

    /// The methods a matcher takes: its `methods`, or [`MethodSet::ANY`].
    pub fn of(m: &Matcher) -> MethodSet {
        match &m.methods {
            Some(ms) => ms.iter().map(|m| Some(*m)).collect(),
            None => MethodSet::ANY,
        }
    }

    pub fn contains(self, m: Option<Method>) -> bool {
        self.0 & bit(m) != 0
    }

    pub fn insert(&mut self, m: Option<Method>) {
        self.0 |= bit(m);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether "other" methods (outside [`Method::ALL`]) are in the set.
    pub fn has_other(self) -> bool {
        self.0 & OTHER != 0
    }

    pub fn union(self, o: MethodSet) -> MethodSet {
        MethodSet(self.0 | o.0)
    }

    pub fn intersection(self, o: MethodSet) -> MethodSet {
        MethodSet(self.0 & o.0)
    }

    pub fn difference(self, o: MethodSet) -> MethodSet {
        MethodSet(self.0 & !o.0)
    }

    /// The listed methods in the set, in [`Method::ALL`] order.
    pub fn methods(self) -> impl Iterator<Item = Method> {
        Method::ALL
            .into_iter()
            .filter(move |m| self.contains(Some(*m)))
    }

    /// Every member: the listed methods in order, then `None` for "other".
    pub fn slots(self) -> impl Iterator<Item = Option<Method>> {
        self.methods()
            .map(Some)
            .chain(self.has_other().then_some(None))
    }
}

impl FromIterator<Option<Method>> for MethodSet {
    fn from_iter<I: IntoIterator<Item = Option<Method>>>(iter: I) -> MethodSet {
        let mut s = MethodSet::EMPTY;
        for m in iter {
            s.insert(m);
        }
        s
    }
}

/// The listed methods as an `allow` header value: `GET, HEAD` ("other" is
/// never written).
impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.methods().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(m.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_set();
        for m in self.methods() {
            l.entry(&m.as_str());
        }
        if self.has_other() {
            l.entry(&"other");
        }
        l.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_holds_every_listed_method_and_other() {
        assert_eq!(MethodSet::ANY.methods().count(), Method::ALL.len());
        assert!(MethodSet::ANY.has_other());
        assert_eq!(MethodSet::ANY.slots().count(), Method::ALL.len() + 1);
    }

    #[test]
    fn allow_text_is_in_spec_order_without_other() {
        let s: MethodSet = [None, Some(Method::Post), Some(Method::Get)]
            .into_iter()
            .collect();
        assert_eq!(s.to_string(), "GET, POST");
        assert_eq!(format!("{s:?}"), r#"{"GET", "POST", "other"}"#);
    }
}
