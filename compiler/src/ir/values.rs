//! Checked value types the IR is made of. Each serializes to one canonical
//! string or number, so two specs that mean the same serialize the same.

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Serializes through `Display` (or, given `as_str`, straight from the text
/// it holds, which is the same string without the formatting machinery) and
/// deserializes through `FromStr`.
macro_rules! string_serde {
    (@de $t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::deserialize_from_str(d)
            }
        }
    };
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        string_serde!(@de $t);
    };
    ($t:ty, as_str) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        string_serde!(@de $t);
    };
}

/// A name the spec gives to an api, route, upstream, consumer, policy or group:
/// `[A-Za-z0-9][A-Za-z0-9_-]*`, at most 63 characters, so it is safe in every
/// target's identifiers once mangled.
///
/// Kept inline up to 24 bytes (`CompactString`): a name is copied into
/// every route id, policy id and source-map key that refers to it, and
/// with no allocation of its own, 100,000 routes compile in far less memory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(CompactString);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = String;
    fn from_str(s: &str) -> Result<Name, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Name(CompactString::from(s)))
        } else {
            Err(format!("`{s}` is not a valid name: use letters, digits, `-` and `_`, starting with a letter or digit (at most 63)"))
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(Name, as_str);

/// A length of time, kept in milliseconds; written in the largest unit that is exact.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    pub millis: u64,
}

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
    pub const fn from_secs(s: u64) -> Duration {
        Duration { millis: s * 1000 }
    }
    pub fn as_secs_ceil(self) -> u64 {
        self.millis.div_ceil(1000)
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Duration, String> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = s.split_at(digits);
        let factor = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(format!("`{s}` is not a duration: write a whole number and a unit, like `250ms`, `5s`, `1m` or `2h`")),
        };
        let n: u64 = num.parse().map_err(|_| {
            format!("`{s}` is not a duration: it needs a whole number before the unit, like `5s`")
        })?;
        n.checked_mul(factor)
            .filter(|m| *m <= 365 * 24 * 3_600_000)
            .map(|millis| Duration { millis })
            .ok_or_else(|| format!("`{s}` is too long: at most a year"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.millis;
        match m {
            0 => write!(f, "0s"),
            _ if m.is_multiple_of(3_600_000) => write!(f, "{}h", m / 3_600_000),
            _ if m.is_multiple_of(60_000) => write!(f, "{}m", m / 60_000),
            _ if m.is_multiple_of(1_000) => write!(f, "{}s", m / 1_000),
            _ => write!(f, "{m}ms"),
        }
    }
}
string_serde!(Duration);

/// A size in bytes. The spec writes `512KiB`, `1MiB`, `10MB`; the IR holds bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<ByteSize, String> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = s.split_at(digits);
        let factor: u64 = match unit {
            "B" => 1,
            "KB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            _ => return Err(format!("`{s}` is not a size: write a whole number and a unit, like `512KiB`, `1MiB` or `10MB`")),
        };
        let n: u64 = num.parse().map_err(|_| {
            format!("`{s}` is not a size: it needs a whole number before the unit, like `1MiB`")
        })?;
        n.checked_mul(factor)
            .filter(|b| *b <= 1 << 40)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is too large: at most 1TiB"))
    }
}

/// An HTTP method.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Trace,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
        Method::Trace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
        }
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let upper = s.to_ascii_uppercase();
                if Method::ALL.iter().any(|m| m.as_str() == upper) {
                    format!("methods are written in capitals: `{upper}`")
                } else {
                    format!("`{s}` is not an HTTP method: use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or TRACE")
                }
            })
    }
}

/// An HTTP header name, kept lower-case (header names ignore case).
/// Inline up to 24 bytes, like [`Name`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeaderName(CompactString);

impl HeaderName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HeaderName {
    type Err = String;
    fn from_str(s: &str) -> Result<HeaderName, String> {
        let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b);
        if !s.is_empty() && s.len() <= 256 && s.bytes().all(is_tchar) {
            Ok(HeaderName(CompactString::from(s.to_ascii_lowercase())))
        } else {
            Err(format!(
                "`{s}` is not a header name: use letters, digits and `-` (an HTTP token)"
            ))
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(HeaderName, as_str);

/// A header value: printable ASCII and tabs, no line breaks, so it cannot
/// smuggle a second header into any target.
pub fn check_header_value(v: &str) -> Result<(), String> {
    if v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(
            "a header value may hold printable ASCII only: no line breaks or control characters"
                .into(),
        )
    }
}

/// A header value the spec sets (`request-headers`, `response-headers`,
/// `mock`), checked once by the front end with [`check_header_value`]:
/// printable ASCII and tabs. Every such value is also a valid value for
/// every target and for the `http` crate, so no back end and no gateway
/// checks it again. Serialized as the text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeaderValue(String);

impl HeaderValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HeaderValue {
    type Err = String;
    fn from_str(s: &str) -> Result<HeaderValue, String> {
        check_header_value(s).map(|()| HeaderValue(s.to_string()))
    }
}

impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(HeaderValue, as_str);

/// A calendar date, `YYYY-MM-DD`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Days since 1970-01-01 (proleptic Gregorian), for HTTP dates.
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (m, d) = (self.month as i64, self.day as i64);
        let y = self.year as i64 - if m <= 2 { 1 } else { 0 };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date a number of days after 1970-01-01 (the inverse of
    /// [`Date::days_since_epoch`]; Howard Hinnant's civil_from_days).
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date {
            year: year.clamp(0, u16::MAX as i64) as u16,
            month: month as u8,
            day: day as u8,
        }
    }

    /// Midnight of the date as an HTTP date (`Tue, 30 Jun 2026 00:00:00
    /// GMT`), as `sunset` headers carry it.
    pub fn http_date(self) -> String {
        // 1970-01-01 was a Thursday.
        const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {} 00:00:00 GMT",
            WEEKDAYS[self.days_since_epoch().rem_euclid(7) as usize],
            self.day,
            MONTHS[(self.month as usize).clamp(1, 12) - 1],
            self.year
        )
    }
}

impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Date, String> {
        let bad = || format!("`{s}` is not a date: write `YYYY-MM-DD`, like `2026-12-31`");
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let year: u16 = s[0..4].parse().map_err(|_| bad())?;
        let month: u8 = s[5..7].parse().map_err(|_| bad())?;
        let day: u8 = s[8..10].parse().map_err(|_| bad())?;
        let leap =
            year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(format!("`{s}` has no month {month}")),
        };
        if day == 0 || day > days {
            return Err(format!("`{s}`: month {month} of {year} has no day {day}"));
        }
        Ok(Date { year, month, day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
string_serde!(Date);

/// A secret is never a literal: it names where the target reads it at run time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Secret {
    /// An environment variable of the gateway process (or the target's secret store).
    Env(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_maps_are_sorted_by_name_and_serialize_as_objects() {
        let h = |n: &str| n.parse::<HeaderName>().unwrap();
        let v = |t: &str| t.parse::<HeaderValue>().unwrap();
        let a: HeaderMap = [(h("x-b"), v("1")), (h("x-a"), v("2")), (h("x-b"), v("3"))].into();
        let b: HeaderMap = [(h("x-a"), v("2")), (h("x-b"), v("3"))].into();
        // The later value for a name wins; insertion order does not matter.
        assert_eq!(a, b);
        assert_eq!(a.get(&h("x-b")), Some(&v("3")));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"x-a":"2","x-b":"3"}"#);
        let back: HeaderMap = serde_json::from_str(r#"{"x-b":"3","x-a":"2"}"#).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn durations_are_canonical() {
        assert_eq!("60s".parse::<Duration>().unwrap().to_string(), "1m");
        assert_eq!("1500ms".parse::<Duration>().unwrap().to_string(), "1500ms");
        assert!("5".parse::<Duration>().is_err());
        assert!("5 s".parse::<Duration>().is_err());
        assert!("99999999999999h".parse::<Duration>().is_err());
    }

    #[test]
    fn sizes_use_binary_and_decimal_units() {
        assert_eq!("1MiB".parse::<ByteSize>().unwrap(), ByteSize(1 << 20));
        assert_eq!("10MB".parse::<ByteSize>().unwrap(), ByteSize(10_000_000));
        assert!("1mb".parse::<ByteSize>().is_err());
    }

    /// A header value is checked when parsed, so an IR file whose value
    /// would smuggle a second header is refused on load.
    #[test]
    fn header_values_are_checked() {
        assert!("gateway\tA".parse::<HeaderValue>().is_ok());
        assert!("a\r\nx-evil: 1".parse::<HeaderValue>().is_err());
        assert!(serde_json::from_str::<HeaderValue>(r#""a\nb""#).is_err());
        let v: HeaderValue = serde_json::from_str(r#""no-store""#).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#""no-store""#);
    }

    #[test]
    fn dates_are_checked() {
        assert!("2024-02-29".parse::<Date>().is_ok());
        assert!("2025-02-29".parse::<Date>().is_err());
        assert_eq!("1970-01-02".parse::<Date>().unwrap().days_since_epoch(), 1);
    }
}

/// Header names to values, sorted by name, each name once: what
/// `request-headers`/`response-headers` set or add and a `mock` answers
/// with. A sorted vector, not a `BTreeMap`: most hold one or two headers,
/// and a `BTreeMap` node costs about 500 bytes however few it holds (at
/// 100,000 routes that was 17 MB of the compiler's peak). Serialized as a
/// JSON object in name order, as a `BTreeMap` was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeaderMap(Vec<(HeaderName, HeaderValue)>);

impl HeaderMap {
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// Sets `name` to `value`; returns the value it replaces.
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) -> Option<HeaderValue> {
        match self.0.binary_search_by(|(n, _)| n.cmp(&name)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        let i = self.0.binary_search_by(|(n, _)| n.cmp(name)).ok()?;
        Some(&self.0[i].1)
    }

    pub fn contains_key(&self, name: &HeaderName) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&HeaderName, &HeaderValue)> + Clone {
        self.0.iter().map(|(n, v)| (n, v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &HeaderName> + Clone {
        self.0.iter().map(|(n, _)| n)
    }

    pub fn values(&self) -> impl ExactSizeIterator<Item = &HeaderValue> + Clone {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for &'a HeaderMap {
    type Item = (&'a HeaderName, &'a HeaderValue);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (HeaderName, HeaderValue)>,
        fn(&'a (HeaderName, HeaderValue)) -> (&'a HeaderName, &'a HeaderValue),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, v)| (n, v))
    }
}

impl IntoIterator for HeaderMap {
    type Item = (HeaderName, HeaderValue);
    type IntoIter = std::vec::IntoIter<(HeaderName, HeaderValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// A later value for the same name wins, as with `BTreeMap`.
impl FromIterator<(HeaderName, HeaderValue)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (HeaderName, HeaderValue)>>(iter: I) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in iter {
            map.insert(n, v);
        }
        map.0.shrink_to_fit();
        map
    }
}

impl<const N: usize> From<[(HeaderName, HeaderValue); N]> for HeaderMap {
    fn from(pairs: [(HeaderName, HeaderValue); N]) -> HeaderMap {
        pairs.into_iter().collect()
    }
}

impl Serialize for HeaderMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for HeaderMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HeaderMap, D::Error> {
        let map = std::collections::BTreeMap::<HeaderName, HeaderValue>::deserialize(d)?;
        Ok(map.into_iter().collect())
    }
}
