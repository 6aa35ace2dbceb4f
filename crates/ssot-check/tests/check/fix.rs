//! `--fix`, `--unsafe-fixes` and `--diff` on the fixture project.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ssot_check::ExitStatus;

use crate::common::{copy_project, run};

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).expect("read")
}

/// Every file under `dir`, by path, with its contents.
fn read_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("readdir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

/// Re-checks every file, parsing even those the prefilter would pass over, and asserts
/// that only `scripts/broken.py` (broken in the fixture) fails to parse.
fn assert_everything_parses(root: &Path) {
    let after = run(root, &["--format", "json", "--no-prefilter"]);
    let document: serde_json::Value = serde_json::from_str(&after.stdout).expect("json");
    let skipped: Vec<&str> = document["skipped"]
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["path"].as_str().expect("path"))
        .collect();
    assert_eq!(skipped, ["scripts/broken.py"], "{}", after.stderr);
}

#[test]
fn safe_fixes_apply_parse_and_are_idempotent() {
    let dir = copy_project();
    let root = dir.path();
    let first = run(root, &["--fix"]);
    assert!(
        first.stdout.contains("Fixed 3 violations"),
        "{}",
        first.stdout
    );
    insta::assert_snapshot!("fix_chat", read(root, "app/services/chat.py"));
    insta::assert_snapshot!("fix_planner", read(root, "app/agents/planner.py"));
    insta::assert_snapshot!("fix_startup", read(root, "app/startup.py"));
    // The Rust SSOT002 fix is unsafe: whether `redis_ssot` exports the same names is not known.
    assert_eq!(
        read(root, "crates/worker/src/lib.rs"),
        read(&crate::common::project(), "crates/worker/src/lib.rs")
    );

    // The result parses and no SSOT002 is left.
    assert_everything_parses(root);
    let after = run(root, &["--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&after.stdout).expect("json");
    // Only the Rust SSOT002 is left (its fix is unsafe).
    let ssot002: Vec<&serde_json::Value> = document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|v| v["code"] == "SSOT002")
        .collect();
    assert_eq!(ssot002.len(), 1, "{ssot002:?}");
    assert_eq!(ssot002[0]["path"], "crates/worker/src/lib.rs");
    assert_eq!(document["summary"]["violations"], 25);

    // A second --fix changes nothing.
    let fixed_files = [
        "app/services/chat.py",
        "app/agents/planner.py",
        "app/startup.py",
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
    assert_eq!(out.status, ExitStatus::Findings);
    assert_eq!(read(root, "app/services/chat.py"), before);
    insta::assert_snapshot!("diff_safe", out.stdout);
    assert!(
        out.stderr.contains("3 fixes would be applied"),
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
    let before = read_tree(root);
    let listed = run(root, &["--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json");
    let with_violations: BTreeSet<PathBuf> = document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| root.join(v["path"].as_str().expect("path")))
        .collect();
    let fixed = run(root, &["--fix", "--unsafe-fixes", "--format", "json"]);
    assert!(
        !fixed.stderr.contains("would not parse"),
        "{}",
        fixed.stderr
    );
    // What is left has no fix: pools, Sentinels, awaited constructions, Rust
    // constructions, and planner.py, whose `redis_manager` is bound to the module so
    // the accessor's import would clash.
    let left: serde_json::Value = serde_json::from_str(&fixed.stdout).expect("json");
    let left: Vec<String> = left["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| {
            assert!(v["fix"].is_null(), "{v}");
            format!(
                "{}:{} {}",
                v["path"].as_str().expect("path"),
                v["start"]["line"],
                v["code"].as_str().expect("code")
            )
        })
        .collect();
    insta::assert_snapshot!("unsafe_fix_left", left.join("\n"));
    assert_eq!(
        run(root, &["--format", "json"]).status,
        ExitStatus::Findings
    );
    assert_python_compiles(root);

    // Every fixed file still parses, and a second run changes nothing.
    let after = read_tree(root);
    let changed: BTreeSet<PathBuf> = after
        .iter()
        .filter(|(p, text)| before.get(*p) != Some(text))
        .map(|(p, _)| p.clone())
        .collect();
    // Each file with a violation has at least one fix that applies (planner.py its SSOT002).
    assert_eq!(changed, with_violations);
    assert_everything_parses(root);
    let second = run(root, &["--fix", "--unsafe-fixes"]);
    assert!(!second.stdout.contains("Fixed"), "{}", second.stdout);
    assert_eq!(read_tree(root), after);
}

#[test]
fn clean_diff_exits_0() {
    let dir = copy_project();
    let out = run(dir.path(), &["--diff", "app/decoys.py"]);
    assert_eq!(out.status, ExitStatus::Success);
    assert!(out.stdout.is_empty());
}

/// `python3 -m py_compile` on every Python file under `root` but `scripts/broken.py`
/// (broken in the fixture).
fn assert_python_compiles(root: &Path) {
    let files: Vec<PathBuf> = read_tree(root)
        .into_keys()
        .filter(|p| p.extension().is_some_and(|e| e == "py") && !p.ends_with("scripts/broken.py"))
        .collect();
    assert!(files.len() > 10, "{files:?}");
    let cache = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new("python3")
        .args(["-m", "py_compile"])
        .args(&files)
        .env("PYTHONPYCACHEPREFIX", cache.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
