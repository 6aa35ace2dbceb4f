//! Inline suppressions: `ssot: allow(CODE) reason`, ruff's `noqa`, and unknown codes.

use ssot_check::ExitStatus;

use crate::common::run;

/// The lines flagged in a JSON report.
fn flagged_lines(stdout: &str) -> Vec<u64> {
    let document: serde_json::Value = serde_json::from_str(stdout).expect("json");
    document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["start"]["line"].as_u64().expect("line"))
        .collect()
}

#[test]
fn noqa_follows_ruff() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("x.py"),
        "import redis\n\
         a = redis.Redis()  # noqa: SSOT001\n\
         b = redis.Redis()  # noqa\n\
         c = redis.Redis()  # noqa: E501\n\
         d = redis.Redis()  # NOQA:E501,SSOT001\n\
         e = redis.Redis()  # noqa: SSOT003\n\
         # noqa\n\
         f = redis.Redis()\n\
         g = redis.Redis()  # type: ignore # noqa: SSOT001\n\
         h = redis.Redis()  # not a noqa directive\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("x.rs"),
        "fn a() { let c = redis::Client::open(u); } // noqa: SSOT001\n\
         fn b() { let c = redis::Client::open(u); } // noqa: SSOT002\n",
    )
    .expect("write");
    let out = run(dir.path(), &["--format", "json", "x.py"]);
    assert_eq!(out.status, ExitStatus::Findings, "{}", out.stderr);
    // Other tools' codes and other rules do not cover SSOT001; a `noqa` of its own line
    // covers only that line, as in ruff.
    assert_eq!(flagged_lines(&out.stdout), [4, 6, 8, 10]);
    let rust = run(dir.path(), &["--format", "json", "x.rs"]);
    assert_eq!(flagged_lines(&rust.stdout), [2]);
}

#[test]
fn an_unknown_rule_in_a_suppression_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("x.py"),
        "import redis\nclient = redis.Redis()  # ssot: allow(SSOT009) legacy client\n",
    )
    .expect("write");
    let out = run(dir.path(), &["x.py"]);
    assert_eq!(out.status, ExitStatus::Error, "{}", out.stdout);
    assert_eq!(
        out.stderr,
        "error: x.py:2:39: unknown rule `SSOT009` in `ssot: allow`; did you mean `SSOT001`?\n"
    );
    // The violation is still reported: the unknown code suppressed nothing.
    assert!(out.stdout.contains("x.py:2:10: SSOT001"), "{}", out.stdout);

    // Also in a file without any violation, and in `noqa`.
    std::fs::write(
        dir.path().join("plain.py"),
        "def f():\n    return 1  # noqa: E501, SSOT0001\n",
    )
    .expect("write");
    let plain = run(dir.path(), &["plain.py"]);
    assert_eq!(plain.status, ExitStatus::Error);
    assert_eq!(
        plain.stderr,
        "error: plain.py:2:29: unknown rule `SSOT0001` in `noqa`; did you mean `SSOT001`?\n"
    );
    // --exit-zero does not hide it.
    assert_eq!(
        run(dir.path(), &["--exit-zero", "plain.py"]).status,
        ExitStatus::Error
    );
}
