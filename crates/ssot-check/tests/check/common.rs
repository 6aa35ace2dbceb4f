//! Helpers: run the command in a directory, copy the fixture project.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use ssot_check::{CheckArgs, ExitStatus};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CheckArgs,
}

/// The output of one run.
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `ssot check <args>` in `cwd`.
pub(crate) fn run(cwd: &Path, args: &[&str]) -> Run {
    let cli = Cli::try_parse_from(std::iter::once("ssot-check").chain(args.iter().copied()))
        .expect("valid arguments");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = ssot_check::run_in(cli.args, cwd, &mut out, &mut err);
    Run {
        status,
        stdout: String::from_utf8(out).expect("utf-8"),
        stderr: String::from_utf8(err).expect("utf-8"),
    }
}

/// The error clap gives for `args` (which must not parse).
pub(crate) fn parse_error(args: &[&str]) -> String {
    match Cli::try_parse_from(std::iter::once("ssot-check").chain(args.iter().copied())) {
        Ok(_) => panic!("{args:?} parsed"),
        Err(e) => e.to_string(),
    }
}

/// The text of `ssot check --help`.
pub(crate) fn long_help() -> String {
    Cli::command().render_long_help().to_string()
}

/// Runs with stdout going to a closed pipe.
pub(crate) fn run_into_broken_pipe(cwd: &Path, args: &[&str]) -> ExitStatus {
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let cli = Cli::try_parse_from(std::iter::once("ssot-check").chain(args.iter().copied()))
        .expect("valid arguments");
    ssot_check::run_in(cli.args, cwd, &mut Closed, &mut Vec::new())
}

pub(crate) fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture project (read-only).
pub(crate) fn project() -> PathBuf {
    crate_dir().join("tests/fixtures/project")
}

/// A writable copy of the fixture project.
pub(crate) fn copy_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&project(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readdir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Replaces `from` (which must occur) with `to` in `file`.
pub(crate) fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        file.display()
    );
    std::fs::write(file, text.replacen(from, to, 1)).expect("write");
}

/// Writes `text` to `root/path`, making its directories.
pub(crate) fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}
