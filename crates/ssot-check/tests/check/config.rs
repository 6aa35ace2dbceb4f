//! Configuration: `ssot.toml`, `[tool.ssot]`, and precise errors (exit 2) naming the key.

use ssot_check::ExitStatus;

use crate::common::run;

fn with_config(file: &str, text: &str) -> crate::common::Run {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(file), text).expect("config");
    std::fs::write(dir.path().join("a.py"), "import redis\nr = redis.Redis()\n").expect("source");
    run(dir.path(), &[])
}

/// The run succeeded without a word on stderr.
fn assert_clean(out: &crate::common::Run) {
    assert_eq!(
        out.status,
        ExitStatus::Success,
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(out.stderr, "");
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
        "`manager_clas`: unknown key; expected [check] or a runtime section (redis, gateway, worker, tokens, events); did you mean `manager-class`?",
    );
}

#[test]
fn unknown_key_in_pyproject_is_named() {
    assert_error(
        "pyproject.toml",
        "[project]\nname = \"x\"\n[tool.ssot]\ncanonicl = []\n",
        "`tool.ssot.canonicl`: unknown key; expected [check] or a runtime section (redis, gateway, worker, tokens, events); did you mean `canonical`?",
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
fn pyproject_top_level_keys_are_read_with_a_warning() {
    let out = with_config("pyproject.toml", "[tool.ssot]\ncanonical = [\"a.py\"]\n");
    assert_eq!(out.status, ExitStatus::Success, "{}", out.stdout);
    assert!(
        out.stderr.ends_with(
            "pyproject.toml: checker keys at the top level (`canonical`) are deprecated; move them into [tool.ssot.check]\n"
        ),
        "{}",
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

const CHECK_AND_RUNTIME: &str = "\
[redis]
url = \"redis://127.0.0.1:6379\"
[gateway]
listen = \"127.0.0.1:8080\"
[worker]
concurrency = 4
[tokens]
audience = [\"chat\"]
[events]
[check]
canonical = [\"a.py\"]
";

#[test]
fn check_section_beside_runtime_sections_is_read() {
    let out = with_config("ssot.toml", CHECK_AND_RUNTIME);
    assert_clean(&out);
    // The [check] section is what counts: without it a.py is flagged.
    let without = with_config("ssot.toml", "[redis]\nurl = \"redis://h\"\n");
    assert_eq!(without.status, ExitStatus::Findings, "{}", without.stderr);
    assert_eq!(without.stderr, "");
}

#[test]
fn pyproject_check_section_is_read() {
    let out = with_config(
        "pyproject.toml",
        "[project]\nname = \"x\"\n[tool.ssot.redis]\nurl = \"redis://h\"\n[tool.ssot.check]\ncanonical = [\"a.py\"]\n",
    );
    assert_clean(&out);
}

#[test]
fn top_level_checker_keys_still_work_with_a_warning() {
    let out = with_config(
        "ssot.toml",
        "canonical = [\"a.py\"]\n[redis]\nurl = \"redis://h\"\n",
    );
    assert_eq!(out.status, ExitStatus::Success, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("warning: ") && out.stderr.ends_with(
            "ssot.toml: checker keys at the top level (`canonical`) are deprecated; move them into [check]\n"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_key_in_check_section_is_named_with_a_suggestion() {
    assert_error(
        "ssot.toml",
        "[check]\nmanager_clas = \"X\"\n",
        "`check.manager_clas`: unknown key; did you mean `manager-class`?",
    );
    assert_error(
        "ssot.toml",
        "[check]\ncanonical = [\"[x\"]\n",
        "`check.canonical[0]`: bad glob",
    );
}

#[test]
fn unknown_table_is_named_with_a_suggestion() {
    assert_error(
        "ssot.toml",
        "[redsi]\nurl = \"x\"\n[check]\n",
        "`redsi`: unknown key; expected [check] or a runtime section (redis, gateway, worker, tokens, events); did you mean `redis`?",
    );
}

#[test]
fn checker_key_outside_the_check_section_is_an_error() {
    assert_error(
        "ssot.toml",
        "exclude = []\n[check]\ncanonical = []\n",
        "`exclude`: a checker key outside [check]; move it into [check]",
    );
}

#[test]
fn pyproject_check_section_wins_over_a_runtime_only_ssot_toml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(root.join("ssot.toml"), "[redis]\nurl = \"redis://h\"\n").expect("write");
    std::fs::write(
        root.join("pyproject.toml"),
        "[tool.ssot.check]\ncanonical = [\"a.py\"]\n",
    )
    .expect("write");
    std::fs::write(root.join("a.py"), "import redis\nr = redis.Redis()\n").expect("write");
    assert_clean(&run(root, &[]));
    // With checker settings of its own, ssot.toml is the one read.
    std::fs::write(
        root.join("ssot.toml"),
        "[redis]\nurl = \"redis://h\"\n[check]\nexclude = []\n",
    )
    .expect("write");
    assert_eq!(run(root, &[]).status, ExitStatus::Findings);
}
