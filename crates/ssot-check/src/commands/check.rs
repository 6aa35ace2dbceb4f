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
use crate::rules::Rule;

/// Checks `paths` (absolute) with the configuration found from `start`.
pub(crate) fn run(
    args: &CheckArgs,
    cwd: &Path,
    paths: &[PathBuf],
    start: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let (settings, warnings) = load_settings(args, cwd, start)?;
    for warning in warnings.iter().filter(|_| !args.quiet) {
        writeln!(err, "warning: {warning}")?;
    }
    let path_prefix = match settings.root.strip_prefix(cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => String::new(),
        Ok(rel) => format!("{}/", rel.display()),
        Err(_) => format!("{}/", settings.root.display()),
    };
    let display = |path: &str| format!("{path_prefix}{path}");

    let mut checker = Checker::new(&settings).with_rules(selected_rules(args));
    if args.no_prefilter {
        checker = checker.without_prefilter();
    }
    let mut result = checker.check_paths(paths)?;
    for file in &result.files {
        if let Some(reason) = file.skipped.as_ref().filter(|_| !args.quiet) {
            writeln!(err, "warning: skipped {}: {reason}", display(&file.path))?;
        }
    }

    let mut fixed = Vec::new();
    if args.fix || args.diff {
        let outcome = fix::fix_files(
            &checker,
            &mut result,
            args.unsafe_fixes,
            !args.diff,
            display,
        )?;
        for path in outcome.refused.iter().filter(|_| !args.quiet) {
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
            if !args.quiet {
                writeln!(
                    err,
                    "{n} {} would be applied",
                    output::plural(n, "fix", "fixes")
                )?;
            }
            let invalid = report_invalid_suppressions(&result, &display, err)?;
            return Ok(status(args, invalid, !outcome.diffs.is_empty()));
        }
        fixed = outcome.fixed;
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
    let invalid = report_invalid_suppressions(&result, &display, err)?;
    let found = match &args.output_file {
        Some(file) => {
            let file = cwd.join(file);
            let mut target =
                std::fs::File::create(&file).map_err(|e| crate::Error::io(&file, e))?;
            report(
                args,
                cwd,
                &settings,
                &result,
                &fixed,
                path_prefix,
                &mut target,
            )?
        }
        None => report(args, cwd, &settings, &result, &fixed, path_prefix, out)?,
    };
    Ok(status(args, invalid, found))
}

/// The rules `--select` and `--ignore` leave.
fn selected_rules(args: &CheckArgs) -> Vec<Rule> {
    Rule::ALL
        .into_iter()
        .filter(|rule| {
            (args.select.is_empty() || args.select.iter().any(|s| s.rules().contains(rule)))
                && !args.ignore.iter().any(|s| s.rules().contains(rule))
        })
        .collect()
}

/// Prints each suppression that names an unknown rule; whether there was one.
fn report_invalid_suppressions(
    result: &CheckResult,
    display: &dyn Fn(&str) -> String,
    err: &mut dyn Write,
) -> Result<bool, Failure> {
    let mut any = false;
    for file in &result.files {
        for invalid in &file.invalid_suppressions {
            any = true;
            writeln!(
                err,
                "error: {}:{}:{}: {}",
                display(&file.path),
                invalid.start.line,
                invalid.start.column,
                invalid.message
            )?;
        }
    }
    Ok(any)
}

/// The exit status: an invalid suppression is an error, findings count unless `--exit-zero`.
fn status(args: &CheckArgs, invalid_suppressions: bool, found: bool) -> ExitStatus {
    if invalid_suppressions {
        ExitStatus::Error
    } else {
        ExitStatus::findings_if(found && !args.exit_zero)
    }
}

/// The settings from `--config`, or the configuration discovered from `start`, or the
/// defaults; with the warnings reading the file gave.
fn load_settings(
    args: &CheckArgs,
    cwd: &Path,
    start: &Path,
) -> Result<(Settings, Vec<String>), Failure> {
    let config_file = match &args.config {
        Some(file) => Some(cwd.join(file)),
        None => config::discover(start),
    };
    Ok(match config_file {
        Some(file) => {
            let root = file.parent().map_or(cwd.to_owned(), Path::to_owned);
            let loaded = Options::load(&file)?;
            (loaded.options.resolve(root, Some(file))?, loaded.warnings)
        }
        None => (Settings::defaults(cwd.to_owned()), Vec::new()),
    })
}

/// Compares with the baseline (pruning it when asked) and writes the report; whether
/// violations that count were found.
fn report(
    args: &CheckArgs,
    cwd: &Path,
    settings: &Settings,
    result: &CheckResult,
    fixed: &[(String, Rule)],
    path_prefix: String,
    out: &mut dyn Write,
) -> Result<bool, Failure> {
    let loaded = args
        .baseline
        .as_ref()
        .map(|f| Baseline::load(&cwd.join(f)).map(|b| (cwd.join(f), b)))
        .transpose()?;
    // Entries of rules left out by --select/--ignore were not looked for: not fixed.
    let selected = selected_rules(args);
    let comparison = loaded.as_ref().map(|(_, b)| {
        let mut comparison = b.compare(result, &settings.root);
        comparison
            .fixed
            .retain(|e| selected.iter().any(|r| r.code() == e.code));
        comparison
    });
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
        fixed,
        statistics: args.statistics,
        quiet: args.quiet,
        show_fixes: args.show_fixes,
        path_prefix,
    };
    output::write(args.format, &report, out)?;
    out.flush()?;
    Ok(!report.shown.is_empty())
}
