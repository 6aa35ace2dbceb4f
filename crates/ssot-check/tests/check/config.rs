//! Configuration: `ssot.toml`, `[tool.ssot]`, and precise errors (exit 2) naming the key.

use ssot_check::ExitStatus;

use crate::common::run;

fn with_config(file: &str, text: &str) -> crate::common::Run {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(file), text).expect("config");
    std::fs::write(dir.path().join("a.py"), "import redis\nr = redis.Redis()\n").expect("source");
    run(dir.path(), &[])
}

fn assert_error(file: &str, text: &str, expected: &str) {
    let out = with_config(file, text);
    assert_eq!(out.status, ExitStatus::Error, "{}", out.stdout);
    assert!(
        out.stderr.contains(expected),
        "expected {expected:?} in:\n{}",
        out.stderr
    );
}

#[test]
fn unknown_key_is_named() {
    assert_error(
        "ssot.toml",
        "canonical = []\nmanager_clas = \"X\"\n",
        "unknown field `manager_clas`",
    );
}

#[test]
fn unknown_key_in_pyproject_is_named() {
    assert_error(
        "pyproject.toml",
        "[project]\nname = \"x\"\n[tool.ssot]\ncanonicl = []\n",
        "[tool.ssot]: unknown field `canonicl`",
    );
}

#[test]
fn bad_glob_names_key_and_index() {
    assert_error(
        "ssot.toml",
        "canonical = [\"ok.py\", \"app/[oops.py\"]\n",
        "`canonical[1]`: bad glob `app/[oops.py`",
    );
}

#[test]
fn bad_priority_level_is_named() {
    assert_error(
        "ssot.toml",
        "[priority]\nurgent = [\"a/**\"]\n",
        "`priority.urgent`: unknown priority level",
    );
}

#[test]
fn bad_priority_glob_is_named() {
    assert_error(
        "ssot.toml",
        "[priority]\nlow = [\"tests/{x\"]\n",
        "`priority.low[0]`: bad glob",
    );
}

#[test]
fn bad_accessor_is_named() {
    assert_error(
        "ssot.toml",
        "accessor = \"no colon\"\n",
        "`accessor`: `no colon` is not `module:expression`",
    );
}

#[test]
fn bad_extra_banned_is_named() {
    assert_error(
        "ssot.toml",
        "extra-banned = [\"ok.name\", \"not a name\"]\n",
        "`extra-banned[1]`",
    );
}

#[test]
fn bad_legacy_module_is_named() {
    assert_error(
        "ssot.toml",
        "[legacy-modules]\n\"app.old\" = 3\n",
        "`legacy-modules.\"app.old\"`: expected a module path string",
    );
}

#[test]
fn invalid_toml_is_an_error() {
    assert_error("ssot.toml", "canonical = [\n", "ssot.toml");
}

#[test]
fn pyproject_section_is_read() {
    let out = with_config("pyproject.toml", "[tool.ssot]\ncanonical = [\"a.py\"]\n");
    assert_eq!(
        out.status,
        ExitStatus::Success,
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn pyproject_without_section_is_ignored() {
    let out = with_config("pyproject.toml", "[project]\nname = \"x\"\n");
    assert_eq!(out.status, ExitStatus::Findings);
}

#[test]
fn priority_first_match_wins() {
    let out = with_config(
        "ssot.toml",
        "[priority]\nlow = [\"*.py\"]\ncritical = [\"a.py\"]\n",
    );
    assert!(out.stdout.contains("— low 1"), "{}", out.stdout);
}
