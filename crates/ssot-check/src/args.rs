//! The command line of `ssot check`.

use std::path::PathBuf;

use crate::output::Format;

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
