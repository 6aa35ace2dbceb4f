//! `ssot check`: finds, counts, ratchets and fixes Redis SSOT violations — Redis clients
//! built outside the canonical module — in Python and Rust code.
//!
//! # Layout
//! - [`config`]: `ssot.toml` / `[tool.ssot]` options, validated into [`config::Settings`].
//! - `lang`: parsing (Ruff's parser for Python, tree-sitter for Rust) plus name
//!   resolution for Python (scopes, imports, aliases) and Rust (`use` trees, crate
//!   paths, macro arguments).
//! - `rules`: one file per rule (SSOT001 `direct-client`, SSOT002 `legacy-import`,
//!   SSOT003 `manager-instance`), each with a fixture in `rules/fixtures/`.
//! - [`check`]: the parallel walk (the `ignore` crate), suppressions, fingerprints.
//! - [`baseline`]: accepted violations by fingerprint; the count can only go down.
//! - [`fix`]: edits, safe and unsafe fixes, `--diff`.
//! - `output`: text, `--statistics`, JSON, SARIF 2.1.0, GitHub annotations.
//!
//! # Files that are not parsed
//! A file is first screened for the words a violation needs (a banned package, the
//! manager class, a legacy module); one without them is not parsed, which is most of
//! the speed on large trees. So a syntax error is reported (and the file skipped) only
//! in files that could contain a violation; `--no-prefilter` parses every file.
//!
//! [`run`] is what the `ssot` binary calls; [`run_in`] takes the working directory and
//! output streams so tests drive the whole command.

pub mod baseline;
pub mod check;
pub mod config;
mod error;
mod exit;
pub mod fix;
mod lang;
mod names;
mod output;
mod rules;
mod suppression;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use error::Error;
pub use exit::ExitStatus;
pub use lang::Language;
pub use output::Format;
pub use rules::Rule;

use baseline::Baseline;
use check::Checker;
use config::{Options, Settings};
use output::{BaselineState, Report};

/// Command-line arguments of `ssot check`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CheckArgs {
    /// Files or directories to check.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Configuration file (default: the nearest `ssot.toml`, or `pyproject.toml` with `[tool.ssot]`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print counts per rule and per file instead of each violation.
    #[arg(long)]
    pub statistics: bool,
    /// Only fail on violations missing from this baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write every current violation to this baseline file (an existing baseline can only shrink).
    #[arg(long, value_name = "FILE", conflicts_with = "baseline")]
    pub write_baseline: Option<PathBuf>,
    /// Remove fixed entries from the `--baseline` file.
    #[arg(long, requires = "baseline")]
    pub prune_baseline: bool,
    /// Apply safe fixes.
    #[arg(long)]
    pub fix: bool,
    /// Also apply unsafe fixes (with --fix or --diff): constructions become the configured accessor.
    #[arg(long)]
    pub unsafe_fixes: bool,
    /// Print the changes fixes would make instead of writing them (exit 1 if there are any).
    #[arg(long)]
    pub diff: bool,
    /// Parse every file, so that each syntax error is reported.
    ///
    /// By default a file that cannot contain a violation (it names no banned package,
    /// manager class or legacy module) is not parsed, so a syntax error in it is not
    /// reported. With this flag every Python and Rust file is parsed and each one that
    /// does not parse is reported as skipped; the violations found are the same.
    #[arg(long)]
    pub no_prefilter: bool,
    /// Write a commented starter `ssot.toml` into the first path (or the current directory).
    #[arg(long, exclusive = true)]
    pub init: bool,
}

/// Runs `ssot check` and returns its exit code (0 clean, 1 violations, 2 error).
pub fn run(args: CheckArgs) -> ExitCode {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(e) => {
            eprintln!("error: cannot read the working directory: {e}");
            return ExitStatus::Error.into();
        }
    };
    run_in(
        args,
        &cwd,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    )
    .into()
}

/// Runs `ssot check` as if started in `cwd`, writing to `out` and `err`.
pub fn run_in(args: CheckArgs, cwd: &Path, out: &mut dyn Write, err: &mut dyn Write) -> ExitStatus {
    match execute(&args, cwd, out, err) {
        Ok(status) => status,
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitStatus::Clean,
        Err(failure) => {
            let _ = writeln!(err, "error: {failure}");
            let mut source = std::error::Error::source(&failure);
            while let Some(cause) = source {
                let _ = writeln!(err, "  caused by: {cause}");
                source = cause.source();
            }
            ExitStatus::Error
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Check(#[from] Error),
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

fn execute(
    args: &CheckArgs,
    cwd: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let paths: Vec<PathBuf> = args.paths.iter().map(|p| cwd.join(p)).collect();
    let start = paths.first().map_or(cwd.to_owned(), |p| {
        if p.is_file() {
            p.parent().unwrap_or(p).to_owned()
        } else {
            p.clone()
        }
    });
    if args.init {
        let file = start.join(config::SSOT_TOML);
        if file.exists() {
            return Err(Error::Usage(format!("{} already exists", file.display())).into());
        }
        std::fs::write(&file, config::STARTER_CONFIG).map_err(|e| Error::io(&file, e))?;
        writeln!(out, "Wrote {}", file.display())?;
        return Ok(ExitStatus::Clean);
    }

    let config_file = match &args.config {
        Some(file) => Some(cwd.join(file)),
        None => config::discover(&start),
    };
    let settings = match config_file {
        Some(file) => {
            let root = file.parent().map_or(cwd.to_owned(), Path::to_owned);
            Options::load(&file)?.resolve(root, Some(file))?
        }
        None => Settings::defaults(cwd.to_owned()),
    };
    let path_prefix = match settings.root.strip_prefix(cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => String::new(),
        Ok(rel) => format!("{}/", rel.display()),
        Err(_) => format!("{}/", settings.root.display()),
    };
    let display = |path: &str| format!("{path_prefix}{path}");

    let checker = if args.no_prefilter {
        Checker::new(&settings).without_prefilter()
    } else {
        Checker::new(&settings)
    };
    let mut result = checker.check_paths(&paths)?;
    for file in &result.files {
        if let Some(reason) = &file.skipped {
            writeln!(err, "warning: skipped {}: {reason}", display(&file.path))?;
        }
    }

    let mut fixes_applied = 0;
    if args.fix || args.diff {
        let outcome = fix::fix_files(
            &checker,
            &mut result,
            args.unsafe_fixes,
            !args.diff,
            display,
        )?;
        for path in &outcome.refused {
            writeln!(
                err,
                "warning: fixes for {} left unapplied: the fixed file would not parse",
                display(path)
            )?;
        }
        if args.diff {
            for diff in &outcome.diffs {
                write!(out, "{diff}")?;
            }
            let n = outcome.applied;
            writeln!(
                err,
                "{n} {} would be applied",
                output::plural(n, "fix", "fixes")
            )?;
            return Ok(if outcome.diffs.is_empty() {
                ExitStatus::Clean
            } else {
                ExitStatus::Violations
            });
        }
        fixes_applied = outcome.applied;
    }

    if let Some(file) = &args.write_baseline {
        let file = cwd.join(file);
        let written = baseline::write(&result, &file)?;
        writeln!(
            err,
            "Wrote {} with {} {}",
            file.display(),
            written.count,
            output::plural(written.count, "entry", "entries")
        )?;
        return Ok(ExitStatus::Clean);
    }

    let loaded = args
        .baseline
        .as_ref()
        .map(|f| Baseline::load(&cwd.join(f)).map(|b| (cwd.join(f), b)))
        .transpose()?;
    let comparison = loaded
        .as_ref()
        .map(|(_, b)| b.compare(&result, &settings.root));
    if let (Some((file, base)), Some(comparison), true) =
        (&loaded, &comparison, args.prune_baseline)
        && !comparison.fixed.is_empty()
    {
        base.pruned(&comparison.fixed).save(file)?;
    }
    let shown = match &comparison {
        Some(c) => c.new.clone(),
        None => result.violations().collect(),
    };
    let baseline_state = comparison
        .as_ref()
        .zip(args.baseline.as_ref())
        .map(|(c, file)| BaselineState {
            file: file.display().to_string(),
            baselined: c.baselined,
            fixed: &c.fixed,
            pruned: args.prune_baseline,
        });
    let report = Report {
        result: &result,
        shown,
        baseline: baseline_state,
        fixes_applied,
        statistics: args.statistics,
        path_prefix: path_prefix.clone(),
    };
    output::write(args.format, &report, out)?;
    out.flush()?;
    Ok(if report.shown.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Violations
    })
}
