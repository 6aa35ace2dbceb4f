//! The baseline: known violations, keyed by fingerprint, that do not fail the check.
//!
//! ## Behavior
//! - Entries are fingerprints (rule, path, enclosing scope, normalised code, occurrence),
//!   never line numbers, so moving code around keeps them matched.
//! - Only violations missing from the baseline fail the check.
//! - Entries that no longer match (the violation was fixed) are reported; pruning drops
//!   them. Writing a baseline over an existing one never adds entries: the count only
//!   goes down.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::{CheckResult, Violation};
use crate::error::Error;

const FORMAT_VERSION: u32 = 1;

/// A baseline file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Format version (1).
    pub version: u32,
    /// Number of entries (for people reading diffs of the file).
    pub count: usize,
    /// One entry per accepted violation.
    pub entries: Vec<BaselineEntry>,
}

/// One accepted violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    /// The violation's fingerprint.
    pub fingerprint: String,
    /// Its rule code.
    pub code: String,
    /// Its file, relative to the project root.
    pub path: String,
    /// Its message when it was accepted.
    pub message: String,
}

/// The current violations split against a baseline.
#[derive(Debug)]
pub struct Comparison<'r> {
    /// Violations not in the baseline: these fail the check.
    pub new: Vec<&'r Violation>,
    /// How many violations the baseline accepts.
    pub baselined: usize,
    /// Entries whose violation is gone.
    pub fixed: Vec<BaselineEntry>,
}

impl Baseline {
    /// A baseline accepting every violation in `result`.
    pub fn from_result(result: &CheckResult) -> Self {
        let mut entries: Vec<BaselineEntry> = result
            .violations()
            .map(|v| BaselineEntry {
                fingerprint: v.fingerprint.clone(),
                code: v.rule.code().to_owned(),
                path: v.path.clone(),
                message: v.message.clone(),
            })
            .collect();
        entries.sort_by(|a, b| {
            (&a.path, &a.code, &a.fingerprint).cmp(&(&b.path, &b.code, &b.fingerprint))
        });
        Self {
            version: FORMAT_VERSION,
            count: entries.len(),
            entries,
        }
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let baseline: Baseline = serde_json::from_str(&text).map_err(|e| Error::Baseline {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if baseline.version != FORMAT_VERSION {
            return Err(Error::Baseline {
                path: path.to_owned(),
                message: format!("unsupported version {}", baseline.version),
            });
        }
        Ok(baseline)
    }

    /// Writes the baseline as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut text = serde_json::to_string_pretty(self).expect("baselines serialise");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }

    /// Splits `result` against the baseline. Entries count as fixed only for files that
    /// were checked in this run or no longer exist under `root`.
    pub fn compare<'r>(&self, result: &'r CheckResult, root: &Path) -> Comparison<'r> {
        let known: HashSet<&str> = self
            .entries
            .iter()
            .map(|e| e.fingerprint.as_str())
            .collect();
        let (old, new): (Vec<&Violation>, Vec<&Violation>) = result
            .violations()
            .partition(|v| known.contains(v.fingerprint.as_str()));
        let current: HashSet<&str> = old.iter().map(|v| v.fingerprint.as_str()).collect();
        let checked: HashSet<&str> = result
            .files
            .iter()
            .filter(|f| f.skipped.is_none())
            .map(|f| f.path.as_str())
            .collect();
        let fixed = self
            .entries
            .iter()
            .filter(|e| !current.contains(e.fingerprint.as_str()))
            .filter(|e| checked.contains(e.path.as_str()) || !root.join(&e.path).exists())
            .cloned()
            .collect();
        Comparison {
            new,
            baselined: old.len(),
            fixed,
        }
    }

    /// The baseline without `fixed` entries.
    pub fn pruned(&self, fixed: &[BaselineEntry]) -> Self {
        let entries: Vec<BaselineEntry> = self
            .entries
            .iter()
            .filter(|e| !fixed.contains(e))
            .cloned()
            .collect();
        Self {
            version: FORMAT_VERSION,
            count: entries.len(),
            entries,
        }
    }
}

/// Writes a fresh baseline for `result` to `path`, refusing to accept violations that an
/// existing baseline at `path` does not already hold.
pub fn write(result: &CheckResult, path: &Path) -> Result<Baseline, Error> {
    let fresh = Baseline::from_result(result);
    if path.exists() {
        let old = Baseline::load(path)?;
        let known: HashSet<&str> = old.entries.iter().map(|e| e.fingerprint.as_str()).collect();
        let added: Vec<&BaselineEntry> = fresh
            .entries
            .iter()
            .filter(|e| !known.contains(e.fingerprint.as_str()))
            .collect();
        if !added.is_empty() {
            let names: Vec<String> = added
                .iter()
                .take(5)
                .map(|e| format!("{} {}", e.path, e.code))
                .collect();
            return Err(Error::Baseline {
                path: path.to_owned(),
                message: format!(
                    "refusing to add {} violation(s) to the baseline, it can only shrink ({}); fix them, or delete the file to start a new baseline",
                    added.len(),
                    names.join(", ")
                ),
            });
        }
    }
    fresh.save(path)?;
    Ok(fresh)
}
