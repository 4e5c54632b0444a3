//! MD5, only to predict the hash Kong reports for a config: DB-less
//! Kong's `configuration_hash` is the MD5 of the `config` string posted to
//! `POST /config` (kong/db/declarative/init.lua, `unserialize`). Not used
//! for anything that needs a strong hash.

use md5::{Digest, Md5};

/// The MD5 of `data` as 32 lowercase hex digits.
pub fn hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::hex;

    /// RFC 1321's test suite (appendix A.5), a few of its lines.
    #[test]
    fn rfc_1321_vectors() {
        assert_eq!(hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }
}
