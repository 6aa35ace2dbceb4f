//! `--fix`, `--unsafe-fixes` and `--diff` on the fixture project.

use ssot_check::ExitStatus;

use crate::common::{copy_project, run};

fn read(dir: &std::path::Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).expect("read")
}

#[test]
fn safe_fixes_apply_parse_and_are_idempotent() {
    let dir = copy_project();
    let root = dir.path();
    let first = run(root, &["--fix"]);
    assert!(
        first.stdout.contains("Fixed 4 violations"),
        "{}",
        first.stdout
    );
    insta::assert_snapshot!("fix_chat", read(root, "app/services/chat.py"));
    insta::assert_snapshot!("fix_planner", read(root, "app/agents/planner.py"));
    insta::assert_snapshot!("fix_startup", read(root, "app/startup.py"));
    insta::assert_snapshot!("fix_worker", read(root, "crates/worker/src/lib.rs"));

    // The result parses and no SSOT002 is left.
    let after = run(root, &["--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&after.stdout).expect("json");
    assert_eq!(
        document["skipped"].as_array().map(Vec::len),
        Some(1),
        "only scripts/broken.py is skipped"
    );
    assert!(!after.stdout.contains("SSOT002"));
    assert_eq!(document["summary"]["violations"], 24);

    // A second --fix changes nothing.
    let fixed_files = [
        "app/services/chat.py",
        "app/agents/planner.py",
        "app/startup.py",
        "crates/worker/src/lib.rs",
    ];
    let read_fixed = || -> Vec<String> { fixed_files.iter().map(|p| read(root, p)).collect() };
    let snapshot = read_fixed();
    let second = run(root, &["--fix"]);
    assert!(!second.stdout.contains("Fixed"), "{}", second.stdout);
    let again = read_fixed();
    assert_eq!(snapshot, again);
}

#[test]
fn diff_shows_without_writing() {
    let dir = copy_project();
    let root = dir.path();
    let before = read(root, "app/services/chat.py");
    let out = run(root, &["--diff"]);
    assert_eq!(out.status, ExitStatus::Violations);
    assert_eq!(read(root, "app/services/chat.py"), before);
    insta::assert_snapshot!("diff_safe", out.stdout);
    assert!(
        out.stderr.contains("4 fixes would be applied"),
        "{}",
        out.stderr
    );
}

#[test]
fn unsafe_fixes_use_the_accessor() {
    let dir = copy_project();
    let root = dir.path();
    let out = run(
        root,
        &[
            "--diff",
            "--unsafe-fixes",
            "app/services/billing.py",
            "app/startup.py",
            "crates/worker/src/lib.rs",
        ],
    );
    insta::assert_snapshot!("diff_unsafe", out.stdout);
    let fixed = run(root, &["--fix", "--unsafe-fixes"]);
    // planner.py already binds `redis_manager` (to the module), so the accessor import
    // would clash: those two constructions are left for a person.
    let left: Vec<&str> = fixed
        .stdout
        .lines()
        .filter(|l| l.contains(": SSOT"))
        .collect();
    assert_eq!(left.len(), 2, "{}", fixed.stdout);
    assert!(
        left.iter().all(|l| l.starts_with("app/agents/planner.py:")),
        "{}",
        fixed.stdout
    );
    assert_eq!(
        run(root, &["--format", "json"]).status,
        ExitStatus::Violations
    );
}

#[test]
fn clean_diff_exits_0() {
    let dir = copy_project();
    let out = run(dir.path(), &["--diff", "app/decoys.py"]);
    assert_eq!(out.status, ExitStatus::Clean);
    assert!(out.stdout.is_empty());
}
