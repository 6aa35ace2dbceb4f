//! A Python project that depends on the `redis-ssot` package: `--init` proposes its
//! accessors, and `--unsafe-fixes` rewrites constructions into them (issue 11, part 3).

use std::process::Command;

use ssot_check::ExitStatus;

use crate::common::{run, write};

/// A project whose `app/db.py` is the most imported module building a client.
fn project(dependency_file: &str, dependency: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, dependency_file, dependency);
    for (path, text) in [
        ("app/__init__.py", ""),
        ("app/db.py", "import redis\n\nclient = redis.Redis()\n"),
        ("app/users.py", "from app.db import client\n"),
        ("app/orders.py", "from app.db import client\n"),
        (
            "app/cache.py",
            "import redis\nimport redis.asyncio\n\n\
             sync_client = redis.Redis(host=\"h\")\n\
             async_client = redis.asyncio.from_url(\"redis://h\")\n\
             pool = redis.ConnectionPool(host=\"h\")\n",
        ),
    ] {
        write(root, path, text);
    }
    dir
}

#[test]
fn init_proposes_the_redis_ssot_accessors() {
    for (file, text) in [
        (
            "pyproject.toml",
            "[project]\nname = \"shop\"\ndependencies = [\"fastapi\", \"redis_ssot>=0.1\"]\n",
        ),
        (
            "requirements.txt",
            "fastapi==0.115\nredis-ssot @ file:///src/redis-ssot\n",
        ),
    ] {
        let dir = project(file, text);
        let out = run(dir.path(), &["--init"]);
        assert_eq!(out.status, ExitStatus::Success, "{}", out.stderr);
        let written = std::fs::read_to_string(dir.path().join("ssot.toml")).expect("written");
        assert!(
            written.contains("\naccessor = \"redis_ssot:sync.get_redis()\"\n")
                && written.contains("\nasync-accessor = \"redis_ssot:get_redis()\"\n")
                && written.contains("\ncanonical = [\"app/db.py\"]\n"),
            "{file}: {written}"
        );
    }
    // `redis-ssot-extras` or `not-redis-ssot` is another package.
    let dir = project("requirements.txt", "not-redis-ssot==1\n");
    run(dir.path(), &["--init"]);
    let written = std::fs::read_to_string(dir.path().join("ssot.toml")).expect("written");
    assert!(!written.contains("\"redis_ssot:get_redis()\""), "{written}");
}

#[test]
fn unsafe_fixes_rewrite_constructions_into_redis_ssot() {
    let dir = project("requirements.txt", "redis-ssot\n");
    let root = dir.path();
    assert_eq!(run(root, &["--init"]).status, ExitStatus::Success);
    let out = run(root, &["--fix", "--unsafe-fixes", "app/cache.py"]);
    assert!(
        out.stdout.contains("Fixed 2 violations"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let fixed = std::fs::read_to_string(root.join("app/cache.py")).expect("read");
    // The async construction becomes the asyncio manager, the sync one its blocking
    // facade; the pool is left for a person, so `import redis` stays.
    insta::assert_snapshot!("redis_ssot_cache", fixed);

    // The output imports and runs: stand-ins for the two packages, with the accessors
    // redis-ssot's stubs declare (`get_redis()`, `sync.get_redis()`).
    let stubs = tempfile::tempdir().expect("tempdir");
    write(
        stubs.path(),
        "redis_ssot/__init__.py",
        "def get_redis():\n    return \"async manager\"\n",
    );
    write(
        stubs.path(),
        "redis_ssot/sync.py",
        "def get_redis():\n    return \"sync manager\"\n",
    );
    write(
        stubs.path(),
        "redis/__init__.py",
        "class ConnectionPool:\n    def __init__(self, **kwargs):\n        self.kwargs = kwargs\n",
    );
    write(stubs.path(), "redis/asyncio.py", "");
    let python = Command::new("python3")
        .args([
            "-c",
            "import app.cache as c; print(c.sync_client, '|', c.async_client, '|', type(c.pool).__name__)",
        ])
        .current_dir(root)
        .env("PYTHONPATH", format!("{}:{}", root.display(), stubs.path().display()))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&python.stdout),
        "sync manager | async manager | ConnectionPool\n"
    );
}
