//! Checking files: parse, resolve, run the rules, apply suppressions, fingerprint.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Serialize;

use crate::config::{Priority, Settings};
use crate::error::Error;
use crate::fix::Fix;
use crate::lang::python::{self, PythonModel};
use crate::lang::rust::RustModel;
use crate::lang::{Language, Parsers};
use crate::line_index::LineIndex;
use crate::modules::ModuleIndex;
use crate::prefilter::Prefilter;
use crate::rules::direct_client::BannedNames;
use crate::rules::{Context, Rule, direct_client, legacy_import, manager_instance};
use crate::suppression::{self, Invalid, Suppression, Verdict};

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// One reported violation.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    /// The rule.
    #[serde(serialize_with = "serialize_rule")]
    pub rule: Rule,
    /// Path relative to the project root, `/`-separated.
    pub path: String,
    /// Where it starts.
    pub start: Location,
    /// Where it ends.
    pub end: Location,
    /// What is wrong.
    pub message: String,
    /// The priority of the file.
    pub priority: Priority,
    /// Stable identity for the baseline: rule, path, enclosing scope, normalised code and
    /// occurrence, but not the line.
    pub fingerprint: String,
    /// How to fix it, if it can be.
    pub fix: Option<Fix>,
}

fn serialize_rule<S: serde::Serializer>(rule: &Rule, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.code())
}

/// The outcome of checking one file.
#[derive(Debug)]
pub struct FileReport {
    /// Path relative to the project root, `/`-separated.
    pub path: String,
    /// The file on disk.
    pub file: PathBuf,
    /// Its language.
    pub language: Language,
    /// What was found, in source order.
    pub violations: Vec<Violation>,
    /// Why the file was skipped (it does not parse, or is not UTF-8).
    pub skipped: Option<String>,
    /// Suppressions that name no rule (`ssot: allow(SSOT009)`): errors.
    pub invalid_suppressions: Vec<InvalidSuppression>,
}

/// A suppression comment naming a rule that does not exist.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidSuppression {
    /// Where the unknown code is written.
    pub start: Location,
    /// What is wrong, with a "did you mean".
    pub message: String,
}

/// What checking one text found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The violations, in source order.
    pub violations: Vec<Violation>,
    /// Suppressions naming unknown rules.
    pub invalid_suppressions: Vec<InvalidSuppression>,
}

/// What one run found over all files.
#[derive(Debug, Default)]
pub struct CheckResult {
    /// One report per file checked, sorted by path.
    pub files: Vec<FileReport>,
}

impl CheckResult {
    /// Every violation, by path then position.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.files.iter().flat_map(|f| &f.violations)
    }
}

/// Runs the rules over files, reusing parsers.
///
/// ## Behavior
/// - Files are first screened for the words any violation must contain, as whole
///   identifiers (see `prefilter`). Files without them cannot have a violation and are
///   not parsed (so their syntax errors are not reported either). `--no-prefilter` turns
///   this off; the tests check that it changes no result.
pub struct Checker<'s> {
    settings: &'s Settings,
    banned: BannedNames,
    prefilter: Option<Prefilter>,
    /// The rules reported (`--select` / `--ignore`).
    rules: Vec<Rule>,
    modules: ModuleIndex,
}

impl<'s> Checker<'s> {
    /// A checker for `settings`.
    pub fn new(settings: &'s Settings) -> Self {
        let banned = BannedNames::new(&settings.extra_banned);
        let prefilter = Prefilter::new(&banned, settings);
        Self {
            settings,
            banned,
            prefilter,
            rules: Rule::ALL.to_vec(),
            modules: ModuleIndex::new(&settings.root),
        }
    }

    /// Reports only `rules`.
    pub fn with_rules(mut self, rules: Vec<Rule>) -> Self {
        self.rules = rules;
        self
    }

    /// Parses every file, without screening out those that cannot have a violation.
    pub fn without_prefilter(mut self) -> Self {
        self.prefilter = None;
        self
    }

    /// Checks `source` as if it were the file `path` (relative to the root, `/`-separated);
    /// `Err` says why it cannot be checked (unknown language, syntax error).
    pub fn check_text(&self, path: &str, source: &str) -> Result<Vec<Violation>, String> {
        let language = Language::of(Path::new(path))
            .ok_or_else(|| format!("{path}: not a Python or Rust file"))?;
        self.check_source(&mut Parsers::new(), path, language, source)
            .map(|checked| checked.violations)
    }

    /// Checks `source` as the file `path` (relative to the root, `/`-separated).
    pub(crate) fn check_source(
        &self,
        parsers: &mut Parsers,
        path: &str,
        language: Language,
        source: &str,
    ) -> Result<Checked, String> {
        if self
            .prefilter
            .as_ref()
            .is_some_and(|p| !p.may_violate(path, language, source))
            // A suppression is checked for unknown rules even where nothing is found.
            && !source.contains(suppression::ALLOW)
            && !source.contains("SSOT")
        {
            return Ok(Checked::default());
        }
        let ctx = Context {
            source,
            settings: self.settings,
            canonical: self.settings.is_canonical(path),
            banned: &self.banned,
            modules: &self.modules,
        };
        let mut findings = Vec::new();
        let comments: Vec<Range<usize>> = match language {
            Language::Python => {
                let syntax = parsers.parse_python(source)?;
                let (module, is_package) = python::module_of_path(path);
                let model = PythonModel::build(&syntax, source, &module, is_package);
                direct_client::check_python(&model, &ctx, &mut findings);
                legacy_import::check_python(&model, &ctx, &mut findings);
                manager_instance::check_python(&model, &ctx, &mut findings);
                let PythonModel {
                    comments, depth, ..
                } = model;
                python::free(syntax, depth);
                comments
            }
            Language::Rust => {
                let tree = parsers.parse_rust(source)?;
                let model = RustModel::build(tree.root_node(), source);
                direct_client::check_rust(&model, &ctx, &mut findings);
                legacy_import::check_rust(&model, &ctx, &mut findings);
                manager_instance::check_rust(&model, &ctx, &mut findings);
                model.comments.iter().map(|c| c.byte_range()).collect()
            }
        };
        findings.retain(|f| self.rules.contains(&f.rule));
        let suppressing = |c: &Range<usize>| {
            let text = &source[c.clone()];
            text.contains(suppression::ALLOW) || text.contains("SSOT")
        };
        if findings.is_empty() && !comments.iter().any(suppressing) {
            return Ok(Checked::default());
        }
        findings.sort_by_key(|f| (f.start, f.rule));
        let lines = LineIndex::new(source);
        let (suppressions, invalid) = read_suppressions(&comments, source, &lines);
        let invalid_suppressions = invalid
            .into_iter()
            .map(|i| InvalidSuppression {
                start: lines.location(source, i.offset),
                message: i.message,
            })
            .collect();
        let priority = self.settings.priority_of(path);
        let mut seen: Vec<(Rule, String, String)> = Vec::new();
        let mut violations = Vec::new();
        for finding in findings {
            let start = lines.location(source, finding.start);
            let mut message = finding.message;
            match suppression::verdict(&suppressions, finding.rule, start.line - 1) {
                Verdict::Suppressed => continue,
                Verdict::MissingReason => {
                    message.push_str(" (`ssot: allow` ignored: it needs a reason)")
                }
                Verdict::Report => {}
            }
            let identity = (finding.rule, finding.scope, finding.key);
            let occurrence = seen.iter().filter(|s| **s == identity).count();
            let fingerprint = fingerprint(identity.0, path, &identity.1, &identity.2, occurrence);
            seen.push(identity);
            violations.push(Violation {
                rule: finding.rule,
                path: path.to_owned(),
                start,
                end: lines.location(source, finding.end),
                message,
                priority,
                fingerprint,
                fix: finding.fix,
            });
        }
        Ok(Checked {
            violations,
            invalid_suppressions,
        })
    }

    /// Checks one file on disk.
    pub(crate) fn check_file(
        &self,
        parsers: &mut Parsers,
        file: &Path,
        path: String,
        language: Language,
    ) -> FileReport {
        let mut report = FileReport {
            path,
            file: file.to_owned(),
            language,
            violations: Vec::new(),
            skipped: None,
            invalid_suppressions: Vec::new(),
        };
        // One read buffer per thread: no allocation, page faults or heap churn per file.
        let mut buffer = std::mem::take(&mut parsers.buffer);
        buffer.clear();
        match std::fs::File::open(file)
            .and_then(|mut f| f.read_to_end(&mut buffer))
            .map(|_| std::str::from_utf8(&buffer))
        {
            Err(e) => report.skipped = Some(format!("cannot read: {e}")),
            Ok(Err(_)) => report.skipped = Some("not UTF-8".to_owned()),
            Ok(Ok(source)) => match self.check_source(parsers, &report.path, language, source) {
                Ok(checked) => {
                    report.violations = checked.violations;
                    report.invalid_suppressions = checked.invalid_suppressions;
                }
                Err(e) => report.skipped = Some(e),
            },
        }
        parsers.buffer = buffer;
        report
    }

    /// Checks `paths` (files or directories, walked in parallel, honouring `.gitignore`).
    pub fn check_paths(&self, paths: &[PathBuf]) -> Result<CheckResult, Error> {
        let (sender, receiver) = mpsc::channel::<FileReport>();
        for path in paths {
            std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        }
        // Files given by name are walk roots too: the walker yields them as they are.
        if let Some((first, rest)) = paths.split_first() {
            let mut builder = ignore::WalkBuilder::new(first);
            for root in rest {
                builder.add(root);
            }
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            builder.threads(threads).require_git(false);
            builder.build_parallel().run(|| {
                let sender = sender.clone();
                let mut parsers = Parsers::new();
                Box::new(move |entry| {
                    let Ok(entry) = entry else {
                        return ignore::WalkState::Continue;
                    };
                    if entry.file_type().is_some_and(|t| t.is_dir()) {
                        let excluded = entry.depth() > 0
                            && self.settings.is_excluded(&self.relative(entry.path()));
                        return if excluded {
                            ignore::WalkState::Skip
                        } else {
                            ignore::WalkState::Continue
                        };
                    }
                    if let Some(report) = self.check_entry(&mut parsers, entry.path()) {
                        let _ = sender.send(report);
                    }
                    ignore::WalkState::Continue
                })
            });
        }
        drop(sender);
        let mut files: Vec<FileReport> = receiver.into_iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        Ok(CheckResult { files })
    }

    fn check_entry(&self, parsers: &mut Parsers, file: &Path) -> Option<FileReport> {
        let language = Language::of(file)?;
        let path = self.relative(file);
        if self.settings.is_excluded(&path) {
            return None;
        }
        Some(self.check_file(parsers, file, path, language))
    }

    /// `file` relative to the root, `/`-separated (as given when outside the root).
    pub(crate) fn relative(&self, file: &Path) -> String {
        let rel = file.strip_prefix(&self.settings.root).unwrap_or(file);
        let rel = rel.strip_prefix(".").unwrap_or(rel);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// The suppressions of a file, and those naming unknown rules (offsets in the file).
fn read_suppressions(
    comments: &[Range<usize>],
    source: &str,
    lines: &LineIndex,
) -> (Vec<Suppression>, Vec<Invalid>) {
    let mut suppressions = Vec::new();
    let mut invalid = Vec::new();
    for comment in comments {
        let row = lines.row(comment.start);
        let own_line = source[lines.starts[row]..comment.start].trim().is_empty();
        let before = invalid.len();
        suppressions.extend(suppression::parse(
            &source[comment.clone()],
            row,
            own_line,
            &mut invalid,
        ));
        for i in &mut invalid[before..] {
            i.offset += comment.start;
        }
    }
    (suppressions, invalid)
}

/// FNV-1a, 64 bits: stable across platforms and releases, unlike `std`'s hasher.
fn fingerprint(rule: Rule, path: &str, scope: &str, key: &str, occurrence: usize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [rule.code(), path, scope, key, &occurrence.to_string()] {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
