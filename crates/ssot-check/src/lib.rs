//! `ssot check`: finds, counts, ratchets and fixes Redis SSOT violations — Redis clients
//! built outside the canonical module — in Python and Rust code.
//!
//! # Layout
//! - [`config`]: `[check]` in `ssot.toml` / `[tool.ssot.check]` in `pyproject.toml`, beside
//!   the runtime sections, validated into [`config::Settings`].
//! - `lang`: parsing (Ruff's parser for Python, tree-sitter for Rust) plus name
//!   resolution for Python (scopes, imports, aliases) and Rust (`use` trees, crate
//!   paths, macro arguments).
//! - `rules`: one file per rule (SSOT001 `direct-client`, SSOT002 `legacy-import`,
//!   SSOT003 `manager-instance`), each with a fixture in `rules/fixtures/`.
//! - [`check`]: the parallel walk (the `ignore` crate), suppressions, fingerprints.
//! - `exit`: [`ExitStatus`], the exit codes of every `ssot` command.
//! - [`baseline`]: accepted violations by fingerprint; the count can only go down.
//! - [`fix`]: edits, safe and unsafe fixes, `--diff`, imports left unused removed.
//! - `output`: text, `--statistics`, JSON, SARIF 2.1.0, GitHub annotations.
//! - `commands`: what the command line runs, one file per command (`check`, `init`,
//!   `explain`),
//!   each a function from arguments to an [`ExitStatus`]; `args` holds [`CheckArgs`].
//! - `prefilter` (see below) and `line_index` (byte offsets to lines and columns).
//! - `modules`: the tree's Python modules read on demand (re-exports, names a canonical
//!   module defines); `survey`: what `--init` learns from a project; `suggest`: "did you
//!   mean".
//!
//! # Files that are not parsed
//! A file is first screened for the words a violation needs (a banned package, the
//! manager class, a legacy module); one without them is not parsed, which is most of
//! the speed on large trees. So a syntax error is reported (and the file skipped) only
//! in files that could contain a violation; `--no-prefilter` parses every file. A file
//! with a suppression comment (`ssot: allow(`, or an `SSOT` code) is always parsed, so
//! that a suppression naming an unknown rule is reported.
//!
//! [`run`] is what the `ssot` binary calls; [`run_in`] takes the working directory and
//! output streams so tests drive the whole command.

mod args;
pub mod baseline;
pub mod check;
mod commands;
pub mod config;
mod error;
mod exit;
pub mod fix;
mod lang;
mod line_index;
mod modules;
mod names;
mod output;
mod prefilter;
mod rules;
mod suggest;
mod suppression;
mod survey;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

pub use args::CheckArgs;
pub use error::Error;
pub use exit::ExitStatus;
pub use lang::Language;
pub use output::Format;
pub use rules::{Rule, RuleSelector};
pub use suggest::did_you_mean;

use commands::Failure;

/// Runs `ssot check` and returns its exit code (see [`ExitStatus`]).
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
    match commands::run(&args, cwd, out, err) {
        Ok(status) => status,
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitStatus::Success,
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
