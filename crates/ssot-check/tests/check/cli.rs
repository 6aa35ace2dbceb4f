//! Exit codes, broken pipes and `--init`.

use ssot_check::ExitStatus;

use crate::common::{copy_project, project, run, run_into_broken_pipe};

#[test]
fn exit_codes_are_0_1_2() {
    assert_eq!(ExitStatus::Clean.code(), 0);
    assert_eq!(ExitStatus::Violations.code(), 1);
    assert_eq!(ExitStatus::Error.code(), 2);
    assert_eq!(
        run(&project(), &["app/decoys.py"]).status,
        ExitStatus::Clean
    );
    assert_eq!(run(&project(), &["app"]).status, ExitStatus::Violations);
    let missing = run(&project(), &["no/such/dir"]);
    assert_eq!(missing.status, ExitStatus::Error);
    assert!(missing.stderr.starts_with("error: "), "{}", missing.stderr);
}

#[test]
fn broken_pipe_exits_0() {
    assert_eq!(run_into_broken_pipe(&project(), &[]), ExitStatus::Clean);
}

#[test]
fn init_writes_a_starter_config_that_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["--init"]);
    assert_eq!(out.status, ExitStatus::Clean, "{}", out.stderr);
    let written = std::fs::read_to_string(dir.path().join("ssot.toml")).expect("written");
    assert!(written.contains("canonical = [\"app/redis_manager.py\"]"));
    assert_eq!(
        run(dir.path(), &[]).status,
        ExitStatus::Clean,
        "the starter config is valid"
    );
    let again = run(dir.path(), &["--init"]);
    assert_eq!(again.status, ExitStatus::Error);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn gitignored_and_excluded_files_are_not_checked() {
    let dir = copy_project();
    let out = run(dir.path(), &["--format", "json"]);
    assert!(!out.stdout.contains("build/generated.py"));
    assert!(!out.stdout.contains("migrations/"));
}
