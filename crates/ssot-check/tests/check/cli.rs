//! Exit codes, broken pipes and `--init`.

use ssot_check::ExitStatus;

use crate::common::{Run, copy_project, edit, long_help, project, run, run_into_broken_pipe};

#[test]
fn exit_codes_are_0_1_2() {
    assert_eq!(ExitStatus::Success.code(), 0);
    assert_eq!(ExitStatus::Findings.code(), 1);
    assert_eq!(ExitStatus::Error.code(), 2);
    assert_eq!(
        run(&project(), &["app/decoys.py"]).status,
        ExitStatus::Success
    );
    assert_eq!(run(&project(), &["app"]).status, ExitStatus::Findings);
    let missing = run(&project(), &["no/such/dir"]);
    assert_eq!(missing.status, ExitStatus::Error);
    assert!(missing.stderr.starts_with("error: "), "{}", missing.stderr);
}

#[test]
fn broken_pipe_exits_0() {
    assert_eq!(run_into_broken_pipe(&project(), &[]), ExitStatus::Success);
}

/// The paths of the violations in a JSON report.
fn flagged_paths(out: &Run) -> Vec<String> {
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["path"].as_str().expect("path").to_owned())
        .collect()
}

#[test]
fn gitignored_files_are_not_checked() {
    let dir = copy_project();
    let root = dir.path();
    std::fs::create_dir(root.join("build")).expect("mkdir");
    std::fs::write(
        root.join("build/generated.py"),
        "import redis\nclient = redis.Redis()\n",
    )
    .expect("write");
    let ignored = "build/generated.py".to_owned();

    // Named on the command line, the file is checked and flagged ...
    let direct = run(root, &["--format", "json", "build/generated.py"]);
    assert_eq!(
        flagged_paths(&direct),
        std::slice::from_ref(&ignored),
        "{}",
        direct.stdout
    );
    // ... and a walk skips it only because of `.gitignore`.
    let walked = run(root, &["--format", "json"]);
    assert!(
        !flagged_paths(&walked).contains(&ignored),
        "{}",
        walked.stdout
    );
    std::fs::remove_file(root.join(".gitignore")).expect("remove .gitignore");
    let unignored = run(root, &["--format", "json"]);
    assert!(
        flagged_paths(&unignored).contains(&ignored),
        "{}",
        unignored.stdout
    );
}

#[test]
fn excluded_files_are_not_checked() {
    let dir = copy_project();
    let root = dir.path();
    assert!(
        !flagged_paths(&run(root, &["--format", "json"]))
            .iter()
            .any(|p| p.starts_with("migrations/"))
    );
    edit(
        &root.join("ssot.toml"),
        "exclude = [\"migrations\"]",
        "exclude = []",
    );
    assert!(
        flagged_paths(&run(root, &["--format", "json"]))
            .contains(&"migrations/0001_cache.py".to_owned())
    );
}

#[test]
fn bad_exclude_glob_is_a_precise_error() {
    let dir = copy_project();
    let root = dir.path();
    edit(
        &root.join("ssot.toml"),
        "exclude = [\"migrations\"]",
        "exclude = [\"migrations\", \"build/{x\"]",
    );
    let out = run(root, &[]);
    assert_eq!(out.status, ExitStatus::Error, "{}", out.stdout);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("`check.exclude[1]`: bad glob `build/{x`"),
        "{}",
        out.stderr
    );
}

#[test]
fn syntax_errors_are_reported_where_a_violation_could_be_or_with_no_prefilter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // No banned name: the prefilter passes over it without parsing.
    std::fs::write(root.join("plain.py"), "def broken(:\n    pass\n").expect("write");
    std::fs::write(root.join("plain.rs"), "fn broken( {\n").expect("write");
    // Names `redis`: parsed, so its syntax error is reported.
    std::fs::write(
        root.join("client.py"),
        "import redis\ndef broken(:\n    return redis.Redis()\n",
    )
    .expect("write");
    let skipped = |out: &Run| -> Vec<String> {
        let mut lines: Vec<String> = out
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix("warning: skipped "))
            .map(|l| l.split(':').next().unwrap_or_default().to_owned())
            .collect();
        lines.sort();
        lines
    };

    let screened = run(root, &[]);
    assert_eq!(screened.status, ExitStatus::Success, "{}", screened.stderr);
    assert_eq!(skipped(&screened), ["client.py"], "{}", screened.stderr);

    let parsed = run(root, &["--no-prefilter"]);
    assert_eq!(parsed.status, ExitStatus::Success, "{}", parsed.stderr);
    assert_eq!(
        skipped(&parsed),
        ["client.py", "plain.py", "plain.rs"],
        "{}",
        parsed.stderr
    );

    // The trade-off is in `--help`.
    let help = long_help();
    assert!(help.contains("--no-prefilter"), "{help}");
    assert!(
        help.contains("so a syntax error in it is not reported"),
        "{help}"
    );
}
