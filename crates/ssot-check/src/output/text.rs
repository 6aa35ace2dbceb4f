//! The text format.

use std::io::{self, Write};

use crate::fix::Applicability;
use crate::output::{Report, plural};

pub(super) fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    if report.statistics {
        write_statistics(report, out)?;
    } else {
        for v in &report.shown {
            let marker = if v
                .fix
                .as_ref()
                .is_some_and(|f| f.applicability == Applicability::Safe)
            {
                "[*] "
            } else {
                ""
            };
            writeln!(
                out,
                "{}:{}:{}: {} {marker}{}",
                report.display(&v.path),
                v.start.line,
                v.start.column,
                v.rule.code(),
                v.message
            )?;
            if let Some(fix) = v.fix.as_ref().filter(|_| report.show_fixes) {
                let kind = match fix.applicability {
                    Applicability::Safe => "safe",
                    Applicability::Unsafe => "unsafe",
                };
                writeln!(out, "    fix ({kind}): {}", fix.message)?;
            }
        }
    }
    if report.quiet {
        return Ok(());
    }
    if !report.shown.is_empty() {
        writeln!(out, "{}", report.summary_line())?;
    }
    let (safe, unsafe_) = (
        report.fixable(Applicability::Safe),
        report.fixable(Applicability::Unsafe),
    );
    if safe > 0 {
        writeln!(out, "[*] {safe} fixable with --fix")?;
    }
    if unsafe_ > 0 {
        writeln!(out, "{unsafe_} more fixable with --fix --unsafe-fixes")?;
    }
    if !report.fixed.is_empty() {
        let n = report.fixed.len();
        let colon = if report.show_fixes { ":" } else { "" };
        writeln!(
            out,
            "Fixed {n} {}{colon}",
            plural(n, "violation", "violations")
        )?;
        if report.show_fixes {
            write_fixed(report, out)?;
        }
    }
    if let Some(baseline) = &report.baseline {
        if baseline.baselined > 0 {
            writeln!(
                out,
                "{} baselined {} in {} not shown",
                baseline.baselined,
                plural(baseline.baselined, "violation", "violations"),
                baseline.file
            )?;
        }
        if !baseline.fixed.is_empty() {
            let n = baseline.fixed.len();
            writeln!(out, "{n} baseline {} fixed:", plural(n, "entry", "entries"))?;
            for entry in baseline.fixed {
                writeln!(
                    out,
                    "  {} {} {}",
                    report.display(&entry.path),
                    entry.code,
                    entry.message
                )?;
            }
            if baseline.pruned {
                writeln!(
                    out,
                    "Pruned {n} {} from {}",
                    plural(n, "entry", "entries"),
                    baseline.file
                )?;
            } else {
                writeln!(out, "Run with --prune-baseline to shrink {}", baseline.file)?;
            }
        }
    }
    if report.shown.is_empty() {
        let checked = report
            .result
            .files
            .iter()
            .filter(|f| f.skipped.is_none())
            .count();
        writeln!(
            out,
            "All checks passed ({checked} {} checked)",
            plural(checked, "file", "files")
        )?;
    }
    Ok(())
}

/// `--show-fixes` after `--fix`, as ruff lists them: per file, a count per rule.
fn write_fixed(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut by_file: Vec<(&str, std::collections::BTreeMap<crate::rules::Rule, usize>)> =
        Vec::new();
    for (path, rule) in report.fixed {
        if by_file.last().is_none_or(|(p, _)| *p != path.as_str()) {
            by_file.push((path, Default::default()));
        }
        if let Some((_, counts)) = by_file.last_mut() {
            *counts.entry(*rule).or_default() += 1;
        }
    }
    for (path, counts) in by_file {
        writeln!(out, "- {}:", report.display(path))?;
        for (rule, n) in counts {
            writeln!(out, "    {n} × {} ({})", rule.code(), rule.name())?;
        }
    }
    Ok(())
}

fn write_statistics(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "By rule:")?;
    for (rule, count) in report.by_rule() {
        writeln!(out, "  {:>5}  {} {}", count, rule.code(), rule.name())?;
    }
    writeln!(out, "By file:")?;
    let mut files: Vec<(&str, crate::config::Priority, usize)> = Vec::new();
    for v in &report.shown {
        match files.last_mut() {
            Some(last) if last.0 == v.path => last.2 += 1,
            _ => files.push((&v.path, v.priority, 1)),
        }
    }
    files.sort_by(|a, b| {
        (a.1, std::cmp::Reverse(a.2), a.0).cmp(&(b.1, std::cmp::Reverse(b.2), b.0))
    });
    for (path, priority, count) in files {
        writeln!(
            out,
            "  {count:>5}  {:<8}  {}",
            priority.as_str(),
            report.display(path)
        )?;
    }
    Ok(())
}
