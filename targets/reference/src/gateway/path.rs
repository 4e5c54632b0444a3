//! Request path normalization (policy-spec "The request path"): decode
//! percent-encoded unreserved characters, merge repeated slashes, resolve `.`
//! and `..`. The result is both what is matched and what is sent upstream.

use std::borrow::Cow;

/// Why a path cannot be served: answered 400 `{"error":"bad request"}`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPath;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalizes an origin-form path. Borrows when the path is already normal,
/// which is the common case, so a plain request allocates nothing here.
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(BadPath);
    }
    if is_normal(bytes) {
        return Ok(Cow::Borrowed(raw));
    }
    // Decode unreserved escapes; a stray `%` not followed by two hex digits
    // is malformed.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(BadPath);
            };
            let c = h * 16 + l;
            if is_unreserved(c) {
                decoded.push(c);
            } else {
                decoded.extend_from_slice(&bytes[i..i + 3]);
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    // Split into segments, dropping empty ones (merged slashes) and
    // resolving dot segments. A trailing slash (or trailing dot segment)
    // leaves the path ending in `/`.
    let text = String::from_utf8(decoded).map_err(|_| BadPath)?;
    let mut out: Vec<&str> = Vec::new();
    let mut trailing = false;
    let parts: Vec<&str> = text[1..].split('/').collect();
    for (n, seg) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        match *seg {
            "" => trailing = last,
            "." => trailing = last,
            ".." => {
                if out.pop().is_none() {
                    return Err(BadPath);
                }
                trailing = last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut path = String::with_capacity(text.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if trailing || path.is_empty() {
        path.push('/');
    }
    Ok(Cow::Owned(path))
}

/// True when there is nothing to decode, merge or resolve.
fn is_normal(b: &[u8]) -> bool {
    let mut prev_slash = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'%' => return false,
            b'/' if prev_slash => return false,
            b'.' if prev_slash => {
                // `/.` followed by end, `/` or `.` is a dot segment.
                match b.get(i + 1) {
                    None | Some(b'/') => return false,
                    Some(b'.') if matches!(b.get(i + 2), None | Some(b'/')) => return false,
                    _ => {}
                }
            }
            _ => {}
        }
        prev_slash = c == b'/';
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, BadPath> {
        normalize(p).map(|c| c.into_owned())
    }

    #[test]
    fn normal_paths_are_borrowed() {
        assert!(matches!(normalize("/pets/1"), Ok(Cow::Borrowed(_))));
        assert!(matches!(
            normalize("/pets/.well-known"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(normalize("/a..b/"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn decodes_merges_and_resolves() {
        assert_eq!(n("/%7Euser").unwrap(), "/~user");
        assert_eq!(n("/a%2Fb").unwrap(), "/a%2Fb");
        assert_eq!(n("//pets///1").unwrap(), "/pets/1");
        assert_eq!(n("/pets/./1").unwrap(), "/pets/1");
        assert_eq!(n("/pets/x/../1").unwrap(), "/pets/1");
        assert_eq!(n("/pets/1/..").unwrap(), "/pets/");
        assert_eq!(n("/pets/.").unwrap(), "/pets/");
        assert_eq!(n("/pets//").unwrap(), "/pets/");
        assert_eq!(n("/%2e%2e/etc").unwrap_err(), BadPath);
        assert_eq!(n("/a/../..").unwrap_err(), BadPath);
        assert_eq!(n("/..").unwrap_err(), BadPath);
        assert_eq!(n("/a/..").unwrap(), "/");
        assert_eq!(n("/%zz").unwrap_err(), BadPath);
        assert_eq!(n("*").unwrap_err(), BadPath);
    }
}
