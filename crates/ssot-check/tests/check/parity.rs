//! The options ruff users expect: `--select`, `--ignore`, `--exit-zero`, `--quiet`,
//! `--output-file`, `--show-fixes`, `--explain`, and exit codes in `--help`.

use ssot_check::ExitStatus;

use crate::common::{copy_project, long_help, parse_error, project, run};

/// The rule codes of a JSON report's violations.
fn codes(stdout: &str) -> Vec<String> {
    let document: serde_json::Value = serde_json::from_str(stdout).expect("json");
    document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["code"].as_str().expect("code").to_owned())
        .collect()
}

#[test]
fn select_and_ignore_choose_the_rules_reported() {
    let all = codes(&run(&project(), &["--format", "json"]).stdout);
    let count = |code: &str| all.iter().filter(|c| *c == code).count();
    assert!(count("SSOT001") > 0 && count("SSOT002") > 0 && count("SSOT003") > 0);

    let selected = codes(&run(&project(), &["--format", "json", "--select", "SSOT002"]).stdout);
    assert_eq!(selected.len(), count("SSOT002"));
    assert!(selected.iter().all(|c| c == "SSOT002"), "{selected:?}");

    let two = codes(
        &run(
            &project(),
            &["--format", "json", "--select", "SSOT001,manager-instance"],
        )
        .stdout,
    );
    assert_eq!(two.len(), count("SSOT001") + count("SSOT003"));

    let ignored = codes(&run(&project(), &["--format", "json", "--ignore", "SSOT001"]).stdout);
    assert_eq!(ignored.len(), count("SSOT002") + count("SSOT003"));
    assert!(!ignored.iter().any(|c| c == "SSOT001"));

    // A prefix selects every rule it starts; --ignore wins over --select.
    let prefix = run(
        &project(),
        &[
            "--format",
            "json",
            "--select",
            "SSOT",
            "--ignore",
            "SSOT002,SSOT003",
        ],
    );
    assert_eq!(codes(&prefix.stdout).len(), count("SSOT001"));

    let unknown = parse_error(&["--select", "SSOT009"]);
    assert!(
        unknown.contains("unknown rule `SSOT009`; did you mean `SSOT001`?"),
        "{unknown}"
    );
}

#[test]
fn exit_zero_keeps_the_report_and_exits_0() {
    let out = run(&project(), &["--exit-zero", "app"]);
    assert_eq!(out.status, ExitStatus::Success);
    assert!(out.stdout.contains(": SSOT001 "), "{}", out.stdout);
    // Errors still exit 2.
    let missing = run(&project(), &["--exit-zero", "no/such/dir"]);
    assert_eq!(missing.status, ExitStatus::Error);
}

#[test]
fn quiet_prints_the_violations_only() {
    let loud = run(&project(), &[]);
    let quiet = run(&project(), &["--quiet"]);
    assert_eq!(quiet.status, ExitStatus::Findings);
    let violation_lines: Vec<&str> = loud
        .stdout
        .lines()
        .filter(|l| l.contains(": SSOT"))
        .collect();
    assert_eq!(quiet.stdout.lines().collect::<Vec<_>>(), violation_lines);
    assert!(loud.stderr.contains("warning: skipped"), "{}", loud.stderr);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn output_file_takes_the_report() {
    let dir = copy_project();
    let root = dir.path();
    let expected = run(root, &["--format", "json"]);
    let out = run(root, &["--format", "json", "--output-file", "report.json"]);
    assert_eq!(out.status, ExitStatus::Findings);
    assert_eq!(out.stdout, "");
    let written = std::fs::read_to_string(root.join("report.json")).expect("written");
    assert_eq!(written, expected.stdout);
}

#[test]
fn show_fixes_lists_available_and_applied_fixes() {
    let dir = copy_project();
    let root = dir.path();
    let listed = run(root, &["--show-fixes", "app/services/chat.py"]);
    insta::assert_snapshot!("show_fixes_available", listed.stdout);
    let fixed = run(root, &["--fix", "--show-fixes"]);
    let summary: String = fixed
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Fixed "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!("show_fixes_applied", summary);
}

#[test]
fn explain_prints_the_rule_documentation() {
    let out = run(&project(), &["--explain", "SSOT001"]);
    assert_eq!(out.status, ExitStatus::Success);
    assert!(
        out.stdout.starts_with("# direct-client (SSOT001)\n"),
        "{}",
        out.stdout
    );
    for section in [
        "## What it does",
        "## Why is this bad?",
        "## Example",
        "## Fix safety",
    ] {
        assert!(out.stdout.contains(section), "{section}: {}", out.stdout);
    }
    let by_name = run(&project(), &["--explain", "legacy-import"]);
    assert!(by_name.stdout.starts_with("# legacy-import (SSOT002)\n"));
    insta::assert_snapshot!(
        "explain_ssot003",
        run(&project(), &["--explain", "SSOT003"]).stdout
    );
    assert!(parse_error(&["--explain", "SSOT9"]).contains("unknown rule `SSOT9`"));
    // --explain stands alone.
    assert!(parse_error(&["--explain", "SSOT001", "--fix"]).contains("cannot be used"));
}

#[test]
fn unsafe_fixes_without_fix_or_diff_is_a_usage_error() {
    let out = run(&project(), &["--unsafe-fixes"]);
    assert_eq!(out.status, ExitStatus::Error);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: --unsafe-fixes needs --fix (to apply them) or --diff (to show them)\n"
    );
}

#[test]
fn help_documents_exit_codes_and_suppressions() {
    let help = long_help();
    for text in [
        "Exit codes:",
        "0  no violations",
        "1  violations missing from the baseline",
        "2  the check could not run",
        "ssot: allow(SSOT001) <reason>",
        "noqa: SSOT001, SSOT002",
        "--explain",
        "--exit-zero",
        "--output-file",
    ] {
        assert!(help.contains(text), "{text}: {help}");
    }
}
