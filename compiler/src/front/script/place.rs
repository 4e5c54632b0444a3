//! Where each character of a YAML scalar's value is in its spec file.
//!
//! The YAML tree keeps a scalar's decoded text and the span of the whole
//! scalar. A script in a block scalar (`request: |`) loses its indentation
//! when decoded, a quoted one its quotes and escapes. Walking the file text
//! from the scalar's start and matching each decoded character against the
//! next occurrence of it (within a small window) recovers the place of every
//! character exactly for literal block scalars and plain or quoted ones
//! without escapes; after an escape or a folded line the places stay close
//! (on the right line), never outside the scalar.

use super::super::yaml::Node;
use crate::source::{Pos, SourceFile, Span};
use std::ops::Range;

/// How far ahead a decoded character is looked for in the file text
/// (indentation, quotes and escapes lie in between).
const WINDOW: usize = 256;

/// The file position of each byte offset of a scalar's decoded text.
pub struct ScalarPlaces {
    file: crate::source::FileId,
    /// (byte offset in the decoded text, position in the file), in order.
    places: Vec<(usize, Pos)>,
    fallback: Span,
}

impl ScalarPlaces {
    /// `file` is the spec file; `node` the scalar; `value` its text. Costs
    /// the scalar's length, not the file's (the file's line index finds
    /// where it starts): a spec with many scripts stays linear.
    pub fn new(file: &SourceFile, node: &Node, value: &str) -> ScalarPlaces {
        let file_text = file.text.as_str();
        let span = node.span;
        let mut places = Vec::with_capacity(value.len());
        // The file's characters from the scalar's start, with their positions.
        let mut src: Vec<(char, Pos)> = Vec::new();
        {
            let mut pos = span.start;
            let start_byte = file.offset(span.start);
            for c in file_text[start_byte..].chars() {
                if span.end > span.start && pos >= span.end {
                    break;
                }
                src.push((c, pos));
                if c == '\n' {
                    pos = Pos {
                        line: pos.line + 1,
                        col: 1,
                    };
                } else {
                    pos.col += 1;
                }
            }
        }
        // Skip a block scalar's header line, or an opening quote.
        let mut cursor = match src.first().map(|c| c.0) {
            Some('|' | '>') => src
                .iter()
                .position(|c| c.0 == '\n')
                .map_or(src.len(), |i| i + 1),
            Some('"' | '\'') => 1,
            _ => 0,
        };
        for (i, ch) in value.char_indices() {
            let end = (cursor + WINDOW).min(src.len());
            let found = src[cursor.min(end)..end].iter().position(|c| c.0 == ch);
            let pos = match found {
                Some(j) => {
                    let p = src[cursor + j].1;
                    cursor += j + 1;
                    p
                }
                None => src.get(cursor).map_or(span.start, |c| c.1),
            };
            places.push((i, pos));
        }
        ScalarPlaces {
            file: span.file,
            places,
            fallback: span,
        }
    }

    fn pos(&self, offset: usize) -> Option<Pos> {
        let i = self.places.partition_point(|p| p.0 < offset);
        self.places.get(i).map(|p| p.1)
    }

    /// The spec span of the decoded text's byte range `range`.
    pub fn span(&self, range: Range<usize>) -> Span {
        let Some(start) = self
            .pos(range.start)
            .or_else(|| self.places.last().map(|p| p.1))
        else {
            return self.fallback;
        };
        let last = range.end.saturating_sub(1).max(range.start);
        let end = match self.pos(last) {
            Some(p) if p.line == start.line && p.col >= start.col => Pos {
                line: p.line,
                col: p.col + 1,
            },
            _ => Pos {
                line: start.line,
                col: start.col + 1,
            },
        };
        Span {
            file: self.file,
            start,
            end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::yaml::{parse, Value};
    use crate::source::FileId;

    fn script_node(text: &str) -> Node {
        let root = parse(FileId(0), text).unwrap();
        let Value::Map(entries) = root.value else {
            panic!()
        };
        entries[0].value.clone()
    }

    fn place_of(text: &str, needle: &str) -> Pos {
        let node = script_node(text);
        let Value::Str(value) = &node.value else {
            panic!()
        };
        let at = value.find(needle).unwrap();
        ScalarPlaces::new(&SourceFile::new("t.yaml", text), &node, value)
            .span(at..at + needle.len())
            .start
    }

    #[test]
    fn a_literal_block_maps_back_through_its_indentation() {
        let text = "request: |\n    const a = 1;\n    while (a) {}\n";
        assert_eq!(place_of(text, "while"), Pos { line: 3, col: 5 });
    }

    #[test]
    fn a_quoted_scalar_maps_back_past_its_quote() {
        let text = "request: \"const a = 1; while (a) {}\"\n";
        assert_eq!(place_of(text, "while"), Pos { line: 1, col: 24 });
    }

    #[test]
    fn a_plain_scalar_maps_back_exactly() {
        let text = "request: log(x)\n";
        assert_eq!(place_of(text, "x"), Pos { line: 1, col: 14 });
    }

    #[test]
    fn non_ascii_text_counts_columns_in_characters() {
        let text = "request: |\n  const é = \"ü\"; while (1) {}\n";
        assert_eq!(place_of(text, "while"), Pos { line: 2, col: 18 });
    }
}
