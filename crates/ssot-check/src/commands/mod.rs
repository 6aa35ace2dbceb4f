//! What `ssot check` runs, one file per command as in ruff's `commands/`: each is a
//! function from the arguments to an [`ExitStatus`].
//!
//! - `explain`: `--explain SSOT001`, a rule's documentation;
//! - `init`: `--init`, a starter configuration;
//! - `check`: the check itself, with its fix and baseline steps.

mod check;
mod explain;
mod init;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::args::CheckArgs;
use crate::error::Error;
use crate::exit::ExitStatus;

/// Why a command stopped (exit code 2, or 0 for a closed stdout).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Check(#[from] Error),
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

/// Runs the command `args` asks for.
pub(crate) fn run(
    args: &CheckArgs,
    cwd: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    // `components` drops the `.` of `cwd/.`, so messages show clean paths.
    let paths: Vec<PathBuf> = args
        .paths
        .iter()
        .map(|p| cwd.join(p).components().collect())
        .collect();
    let start = paths.first().map_or(cwd.to_owned(), |p| {
        if p.is_file() {
            p.parent().unwrap_or(p).to_owned()
        } else {
            p.clone()
        }
    });
    if let Some(rule) = &args.explain {
        return explain::run(rule, out);
    }
    if args.init {
        return init::run(&start, cwd, out);
    }
    if args.write_baseline.is_some() && !(args.select.is_empty() && args.ignore.is_empty()) {
        return Err(Error::Usage(
            "--write-baseline records every rule; it does not go with --select or --ignore"
                .to_owned(),
        )
        .into());
    }
    if args.unsafe_fixes && !(args.fix || args.diff) {
        return Err(Error::Usage(
            "--unsafe-fixes needs --fix (to apply them) or --diff (to show them)".to_owned(),
        )
        .into());
    }
    check::run(args, cwd, &paths, &start, out, err)
}
