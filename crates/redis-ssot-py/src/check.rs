//! `ssot check` in process: the `ssot` command of the Python package runs the checker
//! compiled into this module, so a Python CI needs no Rust toolchain for it.

use clap::Parser;
use pyo3::prelude::*;

/// `ssot check [ARGS]`.
#[derive(Debug, Parser)]
#[command(
    name = "ssot check",
    version,
    about = "Find, count, ratchet and fix Redis SSOT violations"
)]
struct CheckCommand {
    #[command(flatten)]
    args: ssot_check::CheckArgs,
}

/// Runs `ssot check` with `argv` (the arguments after `check`); returns its exit code
/// (0 clean, 1 violations, 2 error). Writes to the process's stdout and stderr.
#[pyfunction]
pub(crate) fn check(py: Python<'_>, argv: Vec<String>) -> i32 {
    let parsed = CheckCommand::try_parse_from(std::iter::once("ssot check".to_owned()).chain(argv));
    let command = match parsed {
        Ok(command) => command,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(err) => {
            eprintln!("error: cannot read the working directory: {err}");
            return 2;
        }
    };
    py.detach(|| {
        let status = ssot_check::run_in(
            command.args,
            &cwd,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        );
        i32::from(status.code())
    })
}
