//! kong.yaml's text: the model written by serde-saphyr, set so that every
//! string reads back as the same string in YAML 1.1 readers (DB-less Kong
//! parses with lyaml, i.e. libyaml, and resolves `yes`, `on`, `1_000`,
//! `2001-12-14` as non-strings) and in YAML 1.2 ones (decK's Go yaml).

use serde::{Serialize, Serializer};

/// Appends `value` as YAML to `text`.
pub(crate) fn write<T: Serialize>(text: &mut String, value: &T) {
    let options = serde_saphyr::ser_options! {
        // Quote every string a YAML 1.1 resolver would take for a bool,
        // number, null, timestamp or merge key (`yes`, `0o17`, `<<`), not
        // only the YAML 1.2 ones.
        yaml_12: false,
        // No block scalar chosen on its own: a long line would be folded
        // (`>`) and a multi-line string made a `|` block, whose first line
        // libyaml may refuse (see `Block`). Only `block`/`blocks` fields
        // ask for one; every other string is plain or double-quoted.
        prefer_block_scalars: false,
    };
    serde_saphyr::to_fmt_writer_with_options(text, value, options)
        .expect("the Kong model serializes as YAML");
}

/// For `#[serde(serialize_with)]`: code (a PEM chain) as a `|` block.
pub(crate) fn block<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    Block(text).serialize(s)
}

/// For `#[serde(serialize_with)]`: a list of code (Lua chunks), each a
/// `|` block, so kong.yaml stays readable.
pub(crate) fn blocks<S: Serializer>(texts: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(texts.iter().map(|t| Block(t)))
}

/// Text written as a literal block scalar where that reads back the same.
struct Block<'a>(&'a str);

impl Serialize for Block<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // libyaml (so lyaml, and Go yaml ported from it) takes a block's
        // indentation from the leading spaces of its first non-empty line
        // and refuses a tab there ("found a tab character where an
        // indentation space is expected"): such text is double-quoted.
        // serde-saphyr itself double-quotes text no block can hold (`\r`,
        // control characters, U+2028/2029, BOM).
        let first = self.0.split('\n').find(|line| !line.is_empty());
        if first.is_some_and(|line| line.starts_with('\t')) {
            serde_saphyr::DoubleQuoted(self.0).serialize(s)
        } else {
            serde_saphyr::LitStr(self.0).serialize(s)
        }
    }
}
