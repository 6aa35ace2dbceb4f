//! `ssot check`: load the settings, check the paths, then fix, write a baseline or report.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Failure;
use crate::args::CheckArgs;
use crate::baseline::{self, Baseline};
use crate::check::{CheckResult, Checker};
use crate::config::{self, Options, Settings};
use crate::exit::ExitStatus;
use crate::fix;
use crate::output::{self, BaselineState, Report};

/// Checks `paths` (absolute) with the configuration found from `start`.
pub(crate) fn run(
    args: &CheckArgs,
    cwd: &Path,
    paths: &[PathBuf],
    start: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let settings = load_settings(args, cwd, start)?;
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
    let mut result = checker.check_paths(paths)?;
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
            return Ok(ExitStatus::findings_if(!outcome.diffs.is_empty()));
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
        return Ok(ExitStatus::Success);
    }
    report(
        args,
        cwd,
        &settings,
        &result,
        fixes_applied,
        path_prefix,
        out,
    )
}

/// The settings from `--config`, or the configuration discovered from `start`, or the defaults.
fn load_settings(args: &CheckArgs, cwd: &Path, start: &Path) -> Result<Settings, Failure> {
    let config_file = match &args.config {
        Some(file) => Some(cwd.join(file)),
        None => config::discover(start),
    };
    Ok(match config_file {
        Some(file) => {
            let root = file.parent().map_or(cwd.to_owned(), Path::to_owned);
            Options::load(&file)?.resolve(root, Some(file))?
        }
        None => Settings::defaults(cwd.to_owned()),
    })
}

/// Compares with the baseline (pruning it when asked) and writes the report.
fn report(
    args: &CheckArgs,
    cwd: &Path,
    settings: &Settings,
    result: &CheckResult,
    fixes_applied: usize,
    path_prefix: String,
    out: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let loaded = args
        .baseline
        .as_ref()
        .map(|f| Baseline::load(&cwd.join(f)).map(|b| (cwd.join(f), b)))
        .transpose()?;
    let comparison = loaded
        .as_ref()
        .map(|(_, b)| b.compare(result, &settings.root));
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
        result,
        shown,
        baseline: baseline_state,
        fixes_applied,
        statistics: args.statistics,
        path_prefix,
    };
    output::write(args.format, &report, out)?;
    out.flush()?;
    Ok(ExitStatus::findings_if(!report.shown.is_empty()))
}
