//! Header values of decimal numbers; the small ones without allocating.
//!
//! `HeaderValue::from(u64)` formats into a fresh allocation, and the value's
//! first clone allocates again to share it. The numbers `rate-limit` puts
//! on responses (`x-ratelimit-reset` and `retry-after`, and a small
//! `x-ratelimit-limit` or `-remaining`) are mostly below a thousand: those
//! come from a table of static values, whose clones copy a pointer.

use http::HeaderValue;
use std::fmt::Write;
use std::sync::LazyLock;

/// Numbers below this come from the table.
const TABLED: usize = 1000;

static TABLE: LazyLock<Box<[HeaderValue]>> = LazyLock::new(|| {
    let mut text = String::new();
    let mut ends = Vec::with_capacity(TABLED);
    for n in 0..TABLED {
        let _ = write!(text, "{n}");
        ends.push(text.len());
    }
    // One string for the life of the process, made once.
    let text: &'static str = Box::leak(text.into_boxed_str());
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let v = HeaderValue::from_static(&text[start..end]);
            start = end;
            v
        })
        .collect()
});

/// `n` in decimal, as a header value.
pub fn decimal(n: u64) -> HeaderValue {
    match usize::try_from(n).ok().and_then(|i| TABLE.get(i)) {
        Some(v) => v.clone(),
        None => HeaderValue::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn every_number_reads_as_itself() {
        for n in (0..2_000).chain([u64::MAX, 1_000_000_000]) {
            assert_eq!(decimal(n).to_str().unwrap(), n.to_string());
        }
    }
}
