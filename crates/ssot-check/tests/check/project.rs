//! The fixture project (a Python backend with services, agents, start-up code, tests and
//! docs, plus a Rust workspace) through the command line: the exact violation list.

use ssot_check::ExitStatus;

use crate::common::{project, run};

/// Every violation the project has, by file and line; decoys, the canonical modules,
/// suppressed lines, `.gitignore`d and excluded files are absent.
const EXPECTED: &[(&str, &[(usize, &str)])] = &[
    (
        "app/agents/memory.py",
        &[(7, "SSOT001"), (11, "SSOT001"), (12, "SSOT001")],
    ),
    (
        "app/agents/planner.py",
        &[(4, "SSOT002"), (8, "SSOT001"), (12, "SSOT001")],
    ),
    ("app/core/redis_manager.py", &[(4, "SSOT001")]),
    (
        "app/services/billing.py",
        &[(6, "SSOT001"), (10, "SSOT001"), (11, "SSOT001")],
    ),
    ("app/services/cache.py", &[(15, "SSOT001")]),
    ("app/services/chat.py", &[(4, "SSOT002"), (9, "SSOT001")]),
    ("app/services/sessions.py", &[(6, "SSOT001")]),
    (
        "app/startup.py",
        &[
            (2, "SSOT002"),
            (9, "SSOT003"),
            (11, "SSOT001"),
            (14, "SSOT001"),
        ],
    ),
    (
        "crates/worker/src/lib.rs",
        &[
            (2, "SSOT002"),
            (8, "SSOT001"),
            (9, "SSOT001"),
            (13, "SSOT001"),
            (17, "SSOT001"),
            (22, "SSOT003"),
            (45, "SSOT001"),
        ],
    ),
    ("docs/examples/quickstart.py", &[(3, "SSOT001")]),
    ("tests/test_chat.py", &[(8, "SSOT001"), (9, "SSOT001")]),
];

#[test]
fn finds_exactly_the_known_violations() {
    let out = run(&project(), &["--format", "json"]);
    assert_eq!(out.status, ExitStatus::Findings);
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let found: Vec<(String, usize, String)> = document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| {
            (
                v["path"].as_str().unwrap().to_owned(),
                v["start"]["line"].as_u64().unwrap() as usize,
                v["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, usize, String)> = EXPECTED
        .iter()
        .flat_map(|(path, list)| {
            list.iter()
                .map(move |(line, code)| ((*path).to_owned(), *line, (*code).to_owned()))
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(document["skipped"][0]["path"], "scripts/broken.py");
}

#[test]
fn text_output() {
    let out = run(&project(), &[]);
    assert_eq!(out.status, ExitStatus::Findings);
    insta::assert_snapshot!("project_text", out.stdout);
    insta::assert_snapshot!("project_text_stderr", out.stderr);
}

#[test]
fn json_output() {
    let out = run(&project(), &["--format", "json"]);
    insta::assert_snapshot!("project_json", out.stdout);
}

#[test]
fn sarif_output() {
    let out = run(&project(), &["--format", "sarif"]);
    assert_eq!(out.status, ExitStatus::Findings);
    insta::assert_snapshot!("project_sarif", out.stdout);
}

#[test]
fn statistics_output() {
    let out = run(&project(), &["--statistics"]);
    assert_eq!(out.status, ExitStatus::Findings);
    insta::assert_snapshot!("project_statistics", out.stdout);
}

#[test]
fn github_output() {
    let out = run(&project(), &["--format", "github"]);
    insta::assert_snapshot!("project_github", out.stdout);
}

#[test]
fn single_file_and_subdirectory() {
    let out = run(&project(), &["app/services/chat.py"]);
    assert_eq!(out.status, ExitStatus::Findings);
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("app/services/chat.py:"))
            .count(),
        2,
        "{}",
        out.stdout
    );
    let clean = run(&project().join("app"), &["decoys.py"]);
    assert_eq!(clean.status, ExitStatus::Success, "{}", clean.stdout);
    assert_eq!(clean.stdout, "All checks passed (1 file checked)\n");
}

#[test]
fn prefilter_changes_no_result() {
    let with = run(&project(), &["--format", "json"]);
    let without = run(&project(), &["--format", "json", "--no-prefilter"]);
    assert_eq!(with.stdout, without.stdout);
}
