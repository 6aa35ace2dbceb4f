//! Output formats: text (with `--statistics`), JSON, SARIF 2.1.0 and GitHub annotations.

mod github;
mod json;
mod sarif;
mod text;

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::baseline::BaselineEntry;
use crate::check::{CheckResult, Violation};
use crate::config::Priority;
use crate::fix::Applicability;
use crate::rules::Rule;

/// `--format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per violation and a summary.
    #[default]
    Text,
    /// One JSON document with violations, summary, skipped files and baseline state.
    Json,
    /// SARIF 2.1.0 for code-scanning tools.
    Sarif,
    /// GitHub Actions workflow commands (annotations).
    Github,
}

/// The baseline's part of a report.
#[derive(Debug)]
pub(crate) struct BaselineState<'a> {
    /// The baseline file as shown to the user.
    pub(crate) file: String,
    pub(crate) baselined: usize,
    pub(crate) fixed: &'a [BaselineEntry],
    pub(crate) pruned: bool,
}

/// Everything an output format needs.
pub(crate) struct Report<'a> {
    pub(crate) result: &'a CheckResult,
    /// The violations that count (all, or those missing from the baseline).
    pub(crate) shown: Vec<&'a Violation>,
    pub(crate) baseline: Option<BaselineState<'a>>,
    /// The violations `--fix` fixed: path and rule.
    pub(crate) fixed: &'a [(String, Rule)],
    pub(crate) statistics: bool,
    /// `--quiet`: the violations and nothing else.
    pub(crate) quiet: bool,
    /// `--show-fixes`.
    pub(crate) show_fixes: bool,
    /// Prefix that turns a root-relative path into one relative to the working directory.
    pub(crate) path_prefix: String,
}

impl Report<'_> {
    pub(crate) fn display(&self, path: &str) -> String {
        format!("{}{path}", self.path_prefix)
    }

    pub(crate) fn files_with_violations(&self) -> usize {
        let mut paths: Vec<&str> = self.shown.iter().map(|v| v.path.as_str()).collect();
        paths.dedup();
        paths.len()
    }

    pub(crate) fn by_priority(&self) -> BTreeMap<Priority, usize> {
        let mut counts = BTreeMap::new();
        for v in &self.shown {
            *counts.entry(v.priority).or_insert(0) += 1;
        }
        counts
    }

    pub(crate) fn by_rule(&self) -> BTreeMap<Rule, usize> {
        let mut counts = BTreeMap::new();
        for v in &self.shown {
            *counts.entry(v.rule).or_insert(0) += 1;
        }
        counts
    }

    pub(crate) fn fixable(&self, applicability: Applicability) -> usize {
        self.shown
            .iter()
            .filter(|v| {
                v.fix
                    .as_ref()
                    .is_some_and(|f| f.applicability == applicability)
            })
            .count()
    }

    /// `43 violations across 30 files — critical 9, normal 12, low 22`
    pub(crate) fn summary_line(&self) -> String {
        let n = self.shown.len();
        let files = self.files_with_violations();
        let levels: Vec<String> = self
            .by_priority()
            .iter()
            .map(|(p, c)| format!("{} {c}", p.as_str()))
            .collect();
        format!(
            "{n} {} across {files} {} — {}",
            plural(n, "violation", "violations"),
            plural(files, "file", "files"),
            levels.join(", ")
        )
    }
}

pub(crate) fn plural<'s>(n: usize, one: &'s str, many: &'s str) -> &'s str {
    if n == 1 { one } else { many }
}

/// Writes `report` in `format`.
pub(crate) fn write(format: Format, report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::write(report, out),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Github => github::write(report, out),
    }
}
