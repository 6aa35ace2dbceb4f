//! Inline suppressions: `# ssot: allow(SSOT001) <reason>` / `// ssot: allow(SSOT001) <reason>`.
//!
//! A suppression on a code line covers that line; one on a line of its own covers the
//! next line. The reason is required: an `allow` without one suppresses nothing, and the
//! violation says so.

use crate::rules::Rule;

const MARKER: &str = "ssot: allow(";

/// One `ssot: allow(...)` comment.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    /// 0-based line the suppression covers.
    pub(crate) line: usize,
    pub(crate) rules: Vec<Rule>,
    pub(crate) has_reason: bool,
}

/// What a violation on `line` with `rule` meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Report,
    Suppressed,
    /// An `allow` matched but had no reason.
    MissingReason,
}

/// Parses a comment's text; `comment_row` is its 0-based line, `own_line` whether only
/// whitespace precedes it on that line.
pub(crate) fn parse(comment: &str, comment_row: usize, own_line: bool) -> Option<Suppression> {
    let at = comment.find(MARKER)?;
    let rest = &comment[at + MARKER.len()..];
    let close = rest.find(')')?;
    let rules = rest[..close]
        .split(',')
        .filter_map(|code| Rule::from_code(code.trim()))
        .collect::<Vec<_>>();
    let reason = rest[close + 1..]
        .trim()
        .trim_start_matches([':', '-', '—'])
        .trim();
    let reason = reason.trim_end_matches("*/").trim();
    Some(Suppression {
        line: if own_line {
            comment_row + 1
        } else {
            comment_row
        },
        rules,
        has_reason: !reason.is_empty(),
    })
}

/// Looks up the suppressions covering `rule` on `line`.
pub(crate) fn verdict(suppressions: &[Suppression], rule: Rule, line: usize) -> Verdict {
    let mut verdict = Verdict::Report;
    for s in suppressions
        .iter()
        .filter(|s| s.line == line && s.rules.contains(&rule))
    {
        if s.has_reason {
            return Verdict::Suppressed;
        }
        verdict = Verdict::MissingReason;
    }
    verdict
}
