//! The command line of `ssot check`.

use std::path::PathBuf;

use crate::output::Format;
use crate::rules::RuleSelector;

/// What `--help` says after the options: exit codes and suppressions.
const AFTER_HELP: &str = "\
Exit codes:
  0  no violations (or only baselined ones); with --exit-zero, also when there are some
  1  violations missing from the baseline, or changes that --diff would make
  2  the check could not run: bad arguments or configuration, an unreadable baseline,
     a suppression naming an unknown rule, an I/O error

Suppressions (in a Python `#` or Rust `//` comment):
  ssot: allow(SSOT001) <reason>   on a code line: that line; on a line of its own: the
                                  next line. The reason is required.
  noqa: SSOT001, SSOT002          that line, for the codes listed (ruff's form)
  noqa                            that line, every rule (ruff's bare noqa)
  An unknown SSOT code in either form is an error; other tools' codes (E501) are ignored.

Run `ssot check --explain SSOT001` for a rule's documentation.";

/// Command-line arguments of `ssot check`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
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
    /// Report only these rules: codes, code prefixes or names, comma-separated (`SSOT001,SSOT003`).
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub select: Vec<RuleSelector>,
    /// Do not report these rules (applied after --select).
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub ignore: Vec<RuleSelector>,
    /// Exit 0 even when violations are found (errors still exit 2).
    #[arg(long)]
    pub exit_zero: bool,
    /// Print the violations and nothing else: no summary, no warnings.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// List the fixes: applied ones with --fix, available ones beside each violation otherwise.
    #[arg(long)]
    pub show_fixes: bool,
    /// Print a rule's documentation (`--explain SSOT001`) and exit.
    #[arg(long, value_name = "RULE", exclusive = true)]
    pub explain: Option<RuleSelector>,
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
    /// Also apply unsafe fixes; needs --fix or --diff (alone it is a usage error, exit 2).
    /// Constructions become the configured accessor.
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
    /// Write a starter `[check]` configuration into the first path (or the current
    /// directory), proposing as canonical the module that already builds clients and is
    /// imported the most.
    #[arg(long, exclusive = true)]
    pub init: bool,
}
