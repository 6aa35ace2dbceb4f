//! The whole `ssot` command in process: the Python package's `ssot` script calls
//! [`main`], so `serve`, `worker`, `doctor`, `token`, `demo` and `check` all run from the wheel,
//! with no Rust toolchain and no second executable.

use std::io::Write;

use pyo3::prelude::*;

/// Runs the `ssot` command with `argv` (the program name first, as `sys.argv`) and returns
/// its exit code: 0 success, 1 findings, 2 error. Writes to the process's stdout and
/// stderr; the GIL is released while it runs.
#[pyfunction]
pub(crate) fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| {
        let status = ssot_cli::main(argv);
        // Rust's stdout is flushed at exit only when Rust owns `main`: not here.
        let _ = std::io::stdout().flush();
        i32::from(status.code())
    })
}
