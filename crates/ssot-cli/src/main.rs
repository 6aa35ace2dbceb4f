//! The `ssot` binary: the whole command is [`ssot_cli::main`].

use std::process::ExitCode;

fn main() -> ExitCode {
    ssot_cli::main(std::env::args_os()).into()
}
