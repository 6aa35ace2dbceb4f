//! Baseline round trip: write, add a violation (fails, names only it), move code (still
//! passes), fix two (reported, pruning shrinks the file, which can never grow).

use ssot_check::ExitStatus;
use ssot_check::baseline::Baseline;

use crate::common::{copy_project, edit, run};

#[test]
fn round_trip() {
    let dir = copy_project();
    let root = dir.path();
    let write = run(root, &["--write-baseline", "ssot-baseline.json"]);
    assert_eq!(write.status, ExitStatus::Success, "{}", write.stderr);
    let written = Baseline::load(&root.join("ssot-baseline.json")).expect("baseline");
    assert_eq!(written.count, 28);

    let clean = run(root, &["--baseline", "ssot-baseline.json"]);
    assert_eq!(clean.status, ExitStatus::Success, "{}", clean.stdout);
    assert!(
        clean
            .stdout
            .contains("28 baselined violations in ssot-baseline.json not shown"),
        "{}",
        clean.stdout
    );

    // A new violation fails, and is the only one named.
    edit(
        &root.join("app/services/cache.py"),
        "def shared():",
        "def fresh():\n    import redis\n    return redis.Redis()\n\n\ndef shared():",
    );
    let new = run(root, &["--baseline", "ssot-baseline.json"]);
    assert_eq!(new.status, ExitStatus::Findings);
    let listed: Vec<&str> = new
        .stdout
        .lines()
        .filter(|l| l.contains(": SSOT"))
        .collect();
    assert_eq!(
        listed,
        [
            "app/services/cache.py:12:12: SSOT001 Redis client built outside the canonical module: `redis.Redis`"
        ]
    );
    edit(
        &root.join("app/services/cache.py"),
        "def fresh():\n    import redis\n    return redis.Redis()\n\n\n",
        "",
    );

    // Moving code around (new lines above, functions swapped) keeps the baseline matched.
    edit(
        &root.join("app/agents/planner.py"),
        "def cluster():",
        "# A comment that moves everything down.\n\n\ndef cluster():",
    );
    let planner = std::fs::read_to_string(root.join("app/agents/planner.py")).expect("read");
    let swapped = planner.replacen(
        "def cluster():\n    return RedisCluster(host=\"cluster\", port=7000)\n\n\n",
        "",
        1,
    ) + "\n\ndef cluster():\n    return RedisCluster(\n        host=\"cluster\",\n        port=7000,\n    )\n";
    std::fs::write(root.join("app/agents/planner.py"), swapped).expect("write");
    let moved = run(root, &["--baseline", "ssot-baseline.json"]);
    assert_eq!(moved.status, ExitStatus::Success, "{}", moved.stdout);

    // Fixing two is reported; pruning shrinks the file.
    edit(
        &root.join("docs/examples/quickstart.py"),
        "redis.from_url(\"redis://localhost:6379/0\")",
        "None",
    );
    edit(
        &root.join("app/services/cache.py"),
        "return from_url(url)",
        "return redis_manager.get_redis()",
    );
    let fixed = run(root, &["--baseline", "ssot-baseline.json"]);
    assert_eq!(fixed.status, ExitStatus::Success);
    assert!(
        fixed.stdout.contains("2 baseline entries fixed:"),
        "{}",
        fixed.stdout
    );
    assert!(
        fixed
            .stdout
            .contains("  docs/examples/quickstart.py SSOT001"),
        "{}",
        fixed.stdout
    );
    assert!(
        fixed
            .stdout
            .contains("Run with --prune-baseline to shrink ssot-baseline.json"),
        "{}",
        fixed.stdout
    );
    let pruned = run(
        root,
        &["--baseline", "ssot-baseline.json", "--prune-baseline"],
    );
    assert!(
        pruned
            .stdout
            .contains("Pruned 2 entries from ssot-baseline.json"),
        "{}",
        pruned.stdout
    );
    assert_eq!(
        Baseline::load(&root.join("ssot-baseline.json"))
            .expect("baseline")
            .count,
        26
    );
    assert!(
        !run(root, &["--baseline", "ssot-baseline.json"])
            .stdout
            .contains("fixed")
    );

    // The count can only go down: re-writing cannot accept a new violation.
    edit(
        &root.join("docs/examples/quickstart.py"),
        "client = None",
        "client = redis.from_url(\"redis://other\")",
    );
    let grow = run(root, &["--write-baseline", "ssot-baseline.json"]);
    assert_eq!(grow.status, ExitStatus::Error);
    assert!(
        grow.stderr
            .contains("refusing to add 1 violation(s) to the baseline"),
        "{}",
        grow.stderr
    );
    assert_eq!(
        Baseline::load(&root.join("ssot-baseline.json"))
            .expect("baseline")
            .count,
        26
    );
}

#[test]
fn checking_a_subset_does_not_report_other_files_as_fixed() {
    let dir = copy_project();
    let root = dir.path();
    run(root, &["--write-baseline", "b.json"]);
    let subset = run(root, &["--baseline", "b.json", "app/services"]);
    assert_eq!(subset.status, ExitStatus::Success);
    assert!(!subset.stdout.contains("fixed"), "{}", subset.stdout);
}

#[test]
fn selecting_rules_neither_reports_nor_prunes_the_others_as_fixed() {
    let dir = copy_project();
    let root = dir.path();
    run(root, &["--write-baseline", "b.json"]);
    let before = Baseline::load(&root.join("b.json"))
        .expect("baseline")
        .count;
    let selected = run(
        root,
        &[
            "--baseline",
            "b.json",
            "--prune-baseline",
            "--select",
            "SSOT002",
        ],
    );
    assert_eq!(selected.status, ExitStatus::Success, "{}", selected.stdout);
    assert!(!selected.stdout.contains("fixed"), "{}", selected.stdout);
    assert_eq!(
        Baseline::load(&root.join("b.json"))
            .expect("baseline")
            .count,
        before
    );

    let written = run(root, &["--write-baseline", "c.json", "--ignore", "SSOT001"]);
    assert_eq!(written.status, ExitStatus::Error);
    assert_eq!(
        written.stderr,
        "error: --write-baseline records every rule; it does not go with --select or --ignore\n"
    );
}

#[test]
fn unreadable_baseline_is_an_error() {
    let dir = copy_project();
    std::fs::write(
        dir.path().join("b.json"),
        "{\"version\": 1, \"entries\": 3}",
    )
    .expect("write");
    let out = run(dir.path(), &["--baseline", "b.json"]);
    assert_eq!(out.status, ExitStatus::Error);
    assert!(out.stderr.contains("error: baseline "), "{}", out.stderr);
}
