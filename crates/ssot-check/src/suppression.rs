//! Inline suppressions, in Python (`#`) and Rust (`//`) comments:
//!
//! - `ssot: allow(SSOT001) <reason>`: on a code line it covers that line, on a line of
//!   its own the next line. The reason is required: an `allow` without one suppresses
//!   nothing, and the violation says so.
//! - `noqa: SSOT001[, SSOT002]` (ruff's and flake8's form, case-insensitive `noqa`): covers
//!   the line it is on, for the codes listed. A bare `noqa` covers every rule on its line,
//!   as in ruff. Codes of other tools (`# noqa: E501`) are ignored.
//!
//! A code that looks like ours (`SSOT…`) but names no rule, in either form, is an error:
//! a typo would otherwise suppress nothing, silently.

use crate::rules::Rule;
use crate::suggest;

pub(crate) const ALLOW: &str = "ssot: allow(";

/// The rules a suppression covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Covered {
    /// A bare `noqa`.
    All,
    Rules(Vec<Rule>),
}

/// One `ssot: allow(...)` or `noqa` comment.
#[derive(Debug, Clone)]
pub(crate) struct Suppression {
    /// 0-based line the suppression covers.
    pub(crate) line: usize,
    pub(crate) covered: Covered,
    /// `noqa` needs no reason; `ssot: allow` does.
    pub(crate) has_reason: bool,
}

/// A suppression naming a rule that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// Byte offset of the code in the comment.
    pub(crate) offset: usize,
    pub(crate) message: String,
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
/// whitespace precedes it on that line. Unknown codes go to `invalid`.
pub(crate) fn parse(
    comment: &str,
    comment_row: usize,
    own_line: bool,
    invalid: &mut Vec<Invalid>,
) -> Vec<Suppression> {
    let mut found = Vec::new();
    if let Some(at) = comment.find(ALLOW) {
        let start = at + ALLOW.len();
        let rest = &comment[start..];
        if let Some(close) = rest.find(')') {
            let mut rules = Vec::new();
            let mut offset = start;
            for code in rest[..close].split(',') {
                let trimmed = code.trim();
                match Rule::from_code(trimmed) {
                    Some(rule) => rules.push(rule),
                    None => invalid.push(unknown(
                        trimmed,
                        offset + code.len() - code.trim_start().len(),
                        "ssot: allow",
                    )),
                }
                offset += code.len() + 1;
            }
            let reason = rest[close + 1..]
                .trim()
                .trim_start_matches([':', '-', '—'])
                .trim();
            let reason = reason.trim_end_matches("*/").trim();
            found.push(Suppression {
                line: if own_line {
                    comment_row + 1
                } else {
                    comment_row
                },
                covered: Covered::Rules(rules),
                has_reason: !reason.is_empty(),
            });
        }
    }
    if let Some(covered) = noqa(comment, invalid) {
        found.push(Suppression {
            line: comment_row,
            covered,
            has_reason: true,
        });
    }
    found
}

fn unknown(code: &str, offset: usize, form: &str) -> Invalid {
    Invalid {
        offset,
        message: format!(
            "unknown rule `{code}` in `{form}`{}",
            suggest::hint(code, Rule::codes())
        ),
    }
}

/// The `noqa` directive of a comment: `# noqa`, `# noqa: A1, B2`, `// noqa: SSOT001`.
/// Like ruff, the directive is `noqa` right after the comment marker (or after another
/// `#` inside the comment: `# type: ignore # noqa`).
fn noqa(comment: &str, invalid: &mut Vec<Invalid>) -> Option<Covered> {
    let lower = comment.to_ascii_lowercase();
    let at = lower.match_indices("noqa").map(|(i, _)| i).find(|&i| {
        let before = comment[..i].trim_end();
        before.ends_with('#') || before == "//" || before == "/*"
    })?;
    let rest = &comment[at + 4..];
    let Some(list) = rest.trim_start().strip_prefix(':') else {
        // `# noqa` alone, or followed by prose: every rule.
        let bare = rest.is_empty() || !rest.starts_with(|c: char| c.is_alphanumeric());
        return bare.then_some(Covered::All);
    };
    let list_start = comment.len() - list.len();
    let mut rules = Vec::new();
    let mut any_code = false;
    let mut offset = list_start;
    for token in list.split_inclusive([',', ' ', '\t']) {
        let code = token.trim_matches([',', ' ', '\t']);
        let at = offset + token.len() - token.trim_start_matches([',', ' ', '\t']).len();
        offset += token.len();
        if code.is_empty() {
            continue;
        }
        let letters = code.trim_end_matches(|c: char| c.is_ascii_digit());
        let is_code = !letters.is_empty()
            && letters.len() < code.len()
            && letters.chars().all(|c| c.is_ascii_uppercase());
        if !is_code {
            break;
        }
        any_code = true;
        if letters == "SSOT" {
            match Rule::from_code(code) {
                Some(rule) => rules.push(rule),
                None => invalid.push(unknown(code, at, "noqa")),
            }
        }
    }
    Some(if any_code {
        Covered::Rules(rules)
    } else {
        Covered::All
    })
}

/// Looks up the suppressions covering `rule` on `line`.
pub(crate) fn verdict(suppressions: &[Suppression], rule: Rule, line: usize) -> Verdict {
    let mut verdict = Verdict::Report;
    for s in suppressions.iter().filter(|s| {
        s.line == line
            && match &s.covered {
                Covered::All => true,
                Covered::Rules(rules) => rules.contains(&rule),
            }
    }) {
        if s.has_reason {
            return Verdict::Suppressed;
        }
        verdict = Verdict::MissingReason;
    }
    verdict
}
