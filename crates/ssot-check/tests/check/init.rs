//! `--init`: a starter configuration built from what the project already does.

use ssot_check::ExitStatus;

use crate::common::{run, write};

#[test]
fn init_proposes_the_most_imported_module_that_builds_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        "app/db.py",
        "import redis\n\npool = redis.ConnectionPool.from_url(URL)\n\n\ndef get_redis():\n    return redis.Redis(connection_pool=pool)\n",
    );
    write(
        root,
        "app/cache.py",
        "import redis\nclient = redis.Redis()\nclient2 = redis.Redis()\nclient3 = redis.Redis()\n",
    );
    write(root, "app/users.py", "from app.db import get_redis\n");
    write(root, "app/orders.py", "from app import db\n");
    write(root, "app/jobs.py", "import app.db\n");
    write(root, "app/web.py", "from app.cache import client\n");
    // A virtualenv outside .gitignore: redis-py itself builds clients, but is not the project.
    write(root, "venv/pyvenv.cfg", "home = /usr/bin\n");
    for i in 0..5 {
        write(
            root,
            &format!("venv/lib/python3.11/site-packages/redis/m{i}.py"),
            "from redis.client import Redis\nr = Redis()\nfrom redis import client\n",
        );
    }
    let out = run(root, &["--init"]);
    assert_eq!(out.status, ExitStatus::Success, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "Wrote ssot.toml\nCanonical module: app/db.py (builds 2 Redis clients, imported by 3 modules)\n"
    );
    let written = std::fs::read_to_string(root.join("ssot.toml")).expect("written");
    assert!(
        !written.contains("example.invalid") && !written.contains("issue"),
        "{written}"
    );
    insta::assert_snapshot!("init_config", written);

    // The configuration loads, and app/db.py is canonical: only app/cache.py is flagged.
    let check = run(root, &["--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&check.stdout).expect("json");
    let paths: Vec<&str> = document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, ["app/cache.py"; 3], "{}", check.stderr);

    let again = run(root, &["--init"]);
    assert_eq!(again.status, ExitStatus::Error);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn init_in_an_empty_project_proposes_nothing_and_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["--init"]);
    assert_eq!(out.status, ExitStatus::Success, "{}", out.stderr);
    assert!(
        out.stdout.contains("No module builds a Redis client yet"),
        "{}",
        out.stdout
    );
    let written = std::fs::read_to_string(dir.path().join("ssot.toml")).expect("written");
    assert!(written.contains("canonical = []\n"), "{written}");
    assert_eq!(run(dir.path(), &[]).status, ExitStatus::Success);
}

#[test]
fn init_adds_a_check_section_to_a_runtime_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let runtime = "[redis]\nurl = \"redis://127.0.0.1:6379\"\n";
    write(root, "ssot.toml", runtime);
    let out = run(root, &["--init"]);
    assert_eq!(out.status, ExitStatus::Success, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("Added [check] to ssot.toml\n"),
        "{}",
        out.stdout
    );
    let written = std::fs::read_to_string(root.join("ssot.toml")).expect("read");
    assert!(written.starts_with(runtime), "{written}");
    let table: toml::Table = toml::from_str(&written).expect("toml");
    assert!(table["check"]["canonical"].is_array(), "{written}");
    assert_eq!(run(root, &[]).status, ExitStatus::Success);
    // A second time there is a checker configuration already.
    let again = run(root, &["--init"]);
    assert_eq!(again.status, ExitStatus::Error);
    assert!(
        again
            .stderr
            .contains("already exists with a checker configuration"),
        "{}",
        again.stderr
    );
}
