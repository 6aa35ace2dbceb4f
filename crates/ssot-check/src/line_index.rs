//! Byte offsets to 1-based lines and character columns.

use crate::check::Location;

/// The start of each line of one source text.
pub(crate) struct LineIndex {
    pub(crate) starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(source: &str) -> Self {
        Self {
            starts: std::iter::once(0)
                .chain(source.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        }
    }

    /// The 0-based line of `byte`.
    pub(crate) fn row(&self, byte: usize) -> usize {
        self.starts.partition_point(|&s| s <= byte) - 1
    }

    pub(crate) fn location(&self, source: &str, byte: usize) -> Location {
        let line = self.row(byte);
        let column = source[self.starts[line]..byte].chars().count() + 1;
        Location {
            line: line + 1,
            column,
        }
    }
}
