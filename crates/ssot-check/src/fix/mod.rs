//! Source edits that fixes are made of, and applying them.
//!
//! `unused_imports`: after fixes, Python imports only the replaced code used are removed.

mod unused_imports;

/// Whether a fix keeps the program's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applicability {
    /// Applied by `--fix`.
    Safe,
    /// Applied only with `--unsafe-fixes`: the replacement may differ in type or behaviour.
    Unsafe,
}

/// Replace the bytes `start..end` with `content` (an insertion when `start == end`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edit {
    /// First byte replaced.
    pub start: usize,
    /// One past the last byte replaced.
    pub end: usize,
    /// The new text.
    pub content: String,
}

/// The edits that resolve one violation; applied all together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fix {
    /// Whether `--fix` applies it.
    pub applicability: Applicability,
    /// What the fix does, for people.
    pub message: String,
    /// The edits, in any order.
    pub edits: Vec<Edit>,
}

/// Applies `fixes` to `source`, skipping any fix that overlaps one accepted earlier.
/// Identical edits shared by several fixes (the same added import) are applied once.
/// Returns the new text and the positions (in `fixes`) of the fixes applied.
pub(crate) fn apply<'a>(
    source: &str,
    fixes: impl IntoIterator<Item = &'a Fix>,
) -> (String, Vec<usize>) {
    let mut accepted: Vec<&Edit> = Vec::new();
    let mut applied = Vec::new();
    for (index, fix) in fixes.into_iter().enumerate() {
        let fresh: Vec<&Edit> = fix.edits.iter().filter(|e| !accepted.contains(e)).collect();
        let overlaps = fresh.iter().any(|e| {
            accepted.iter().any(|a| {
                e.start < a.end && a.start < e.end
                    || (e.start == e.end && e.start > a.start && e.start < a.end)
            })
        });
        if !overlaps {
            accepted.extend(fresh);
            applied.push(index);
        }
    }
    accepted.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(source.len());
    let mut cursor = 0;
    for edit in accepted {
        out.push_str(&source[cursor..edit.start]);
        out.push_str(&edit.content);
        cursor = edit.end;
    }
    out.push_str(&source[cursor..]);
    (out, applied)
}

/// What applying fixes to the checked files did.
#[derive(Debug, Default)]
pub(crate) struct FixOutcome {
    /// Fixes applied (or, for `--diff`, that would be).
    pub(crate) applied: usize,
    /// The violations those fixes resolve: path and rule, in file order.
    pub(crate) fixed: Vec<(String, crate::rules::Rule)>,
    /// Unified diffs of the changed files.
    pub(crate) diffs: Vec<String>,
    /// Files whose fixed text would not parse (left untouched).
    pub(crate) refused: Vec<String>,
}

/// Applies the fixes of `result` (safe ones, and unsafe ones when `include_unsafe`).
/// With `write`, the files are rewritten and re-checked so `result` shows what is left;
/// without, only the diffs are produced.
pub(crate) fn fix_files(
    checker: &crate::check::Checker<'_>,
    result: &mut crate::check::CheckResult,
    include_unsafe: bool,
    write: bool,
    display: impl Fn(&str) -> String,
) -> Result<FixOutcome, crate::error::Error> {
    let mut outcome = FixOutcome::default();
    let mut parsers = crate::lang::Parsers::new();
    for report in &mut result.files {
        let (rules, fixes): (Vec<crate::rules::Rule>, Vec<&Fix>) = report
            .violations
            .iter()
            .filter_map(|v| v.fix.as_ref().map(|f| (v.rule, f)))
            .filter(|(_, f)| include_unsafe || f.applicability == Applicability::Safe)
            .unzip();
        if fixes.is_empty() {
            continue;
        }
        let source = std::fs::read_to_string(&report.file)
            .map_err(|e| crate::error::Error::io(&report.file, e))?;
        let (mut fixed, applied) = apply(&source, fixes);
        if report.language == crate::lang::Language::Python {
            fixed = unused_imports::remove(&mut parsers, &source, &report.path, &fixed);
        }
        if fixed == source {
            continue;
        }
        if !parsers.parses(report.language, &fixed) {
            outcome.refused.push(report.path.clone());
            continue;
        }
        outcome.applied += applied.len();
        outcome
            .fixed
            .extend(applied.iter().map(|&i| (report.path.clone(), rules[i])));
        if write {
            std::fs::write(&report.file, &fixed)
                .map_err(|e| crate::error::Error::io(&report.file, e))?;
            let checked = checker
                .check_source(&mut parsers, &report.path, report.language, &fixed)
                .unwrap_or_default();
            report.violations = checked.violations;
            report.invalid_suppressions = checked.invalid_suppressions;
        } else {
            let name = display(&report.path);
            let diff = similar::TextDiff::from_lines(&source, &fixed);
            outcome.diffs.push(
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{name}"), &format!("b/{name}"))
                    .to_string(),
            );
        }
    }
    Ok(outcome)
}
