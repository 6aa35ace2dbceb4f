//! The Rust fix fixture, fixed with `--fix --unsafe-fixes`, passes `cargo check`.
//!
//! Ignored by default: it builds `redis-ssot` and its dependencies for a temporary crate
//! (`--offline`, the workspace's `Cargo.lock`, the workspace's `target/` through
//! `CARGO_TARGET_DIR` so that only what differs is built). Run it with
//! `cargo nextest run -p ssot-check --run-ignored only -E 'test(cargo_check)'`.
//! The rest of the suite checks that every fixed Rust file parses (tree-sitter).

use std::path::Path;
use std::process::Command;

use ssot_check::ExitStatus;

use crate::common::{crate_dir, run};

#[test]
#[ignore = "builds redis-ssot for a temporary crate; run with --run-ignored"]
fn fixed_rust_fixture_passes_cargo_check() {
    let workspace = crate_dir().join("../..").canonicalize().expect("workspace");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let fixture = crate_dir().join("tests/fixtures/rust-fix");
    std::fs::create_dir(root.join("src")).expect("mkdir");
    for file in ["ssot.toml", "src/lib.rs"] {
        std::fs::copy(fixture.join(file), root.join(file)).expect("copy");
    }
    std::fs::copy(workspace.join("Cargo.lock"), root.join("Cargo.lock")).expect("lock");
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"rust-fix\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nredis-ssot = {{ path = {:?} }}\n\n[workspace]\n",
            workspace.join("crates/redis-ssot")
        ),
    )
    .expect("manifest");

    let cargo_check = |root: &Path| {
        Command::new(env!("CARGO"))
            .args(["check", "--offline", "--quiet"])
            .current_dir(root)
            .env("CARGO_TARGET_DIR", workspace.join("target"))
            .output()
            .expect("cargo runs")
    };
    let before = cargo_check(root);
    assert!(
        before.status.success(),
        "the fixture itself compiles: {}",
        String::from_utf8_lossy(&before.stderr)
    );

    let fixed = run(root, &["--fix", "--unsafe-fixes", "src/lib.rs"]);
    assert_eq!(fixed.status, ExitStatus::Findings, "{}", fixed.stderr);
    assert!(
        fixed.stdout.contains("Fixed 1 violation"),
        "{}",
        fixed.stdout
    );
    let text = std::fs::read_to_string(root.join("src/lib.rs")).expect("read");
    assert!(text.contains("\nuse redis_ssot::manager;\n"), "{text}");
    assert!(
        text.contains("redis_ssot::redis::Client::open(url)"),
        "{text}"
    );

    let after = cargo_check(root);
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
}
