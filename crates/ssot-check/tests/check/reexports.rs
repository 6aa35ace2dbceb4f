//! Constructions reached through a package's re-exports within the checked tree.

use crate::common::{run, write};

#[test]
fn constructions_through_package_reexports_are_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for (path, text) in [
        // aredis_om's shape: the package re-exports `redis.asyncio` as `redis`.
        ("aredis_om/__init__.py", "import redis.asyncio as redis\n"),
        (
            "aredis_om/connections.py",
            "from . import redis\n\n\ndef get_redis_connection(url):\n    return redis.Redis.from_url(url)\n",
        ),
        // `from .compat import redis`, the compat module importing redis itself.
        ("shop/__init__.py", ""),
        ("shop/compat.py", "import redis\n"),
        (
            "shop/client.py",
            "from .compat import redis\nclient = redis.StrictRedis()\n",
        ),
        // Two hops: the package re-exports its own compat module's import.
        ("jobs/__init__.py", "from .compat import redis\n"),
        ("jobs/compat.py", "from redis import asyncio as redis\n"),
        (
            "jobs/run.py",
            "from jobs import redis\nclient = redis.Redis()\n",
        ),
        // Look-alikes: a package attribute that is not an import, and a module of the tree.
        ("fake/__init__.py", "redis = object()\n"),
        (
            "fake/use.py",
            "from . import redis\nclient = redis.Redis()\n",
        ),
        ("local/__init__.py", ""),
        ("local/redis.py", "class Redis:\n    pass\n"),
        (
            "local/use.py",
            "from . import redis\nclient = redis.Redis()\n",
        ),
    ] {
        write(root, path, text);
    }

    let out = run(root, &["--format", "json"]);
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let found: Vec<String> = document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| {
            format!(
                "{}:{} {}",
                v["path"].as_str().expect("path"),
                v["start"]["line"],
                v["message"].as_str().expect("message")
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            "aredis_om/connections.py:5 Redis client built outside the canonical module: `redis.Redis.from_url` is `redis.asyncio.Redis.from_url`",
            "jobs/run.py:2 Redis client built outside the canonical module: `redis.Redis` is `redis.asyncio.Redis`",
            "shop/client.py:2 Redis client built outside the canonical module: `redis.StrictRedis`",
        ],
        "{}",
        out.stderr
    );
}
