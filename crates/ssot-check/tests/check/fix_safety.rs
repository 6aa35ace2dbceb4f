//! What fixes may produce: safe SSOT002 fixes import only names the canonical module
//! defines; unsafe SSOT001 fixes keep sync and async apart, never turn a pool into a
//! client, and remove the imports they leave unused.

use crate::common::{copy_project, edit, run};

/// The fix of each violation of `path`, by line: `safe`, `unsafe` or `none`.
fn fixes(root: &std::path::Path, path: &str) -> Vec<(u64, String)> {
    let out = run(root, &["--format", "json", path]);
    let document: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    document["violations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| {
            let kind = v["fix"]["applicability"].as_str().unwrap_or("none");
            (v["start"]["line"].as_u64().expect("line"), kind.to_owned())
        })
        .collect()
}

#[test]
fn a_safe_legacy_fix_imports_only_names_the_canonical_module_defines() {
    let dir = copy_project();
    let root = dir.path();
    edit(
        &root.join("ssot.toml"),
        "[check.legacy-modules]\n",
        "[check.legacy-modules]\n\"app.old\" = \"vendor_redis.shared\"\n",
    );
    std::fs::write(
        root.join("app/services/legacy_user.py"),
        "from app.core.redis_manager import cache_client\n\
         from app.core.redis_manager import get_redis\n\
         from app.core.redis_manager import get_redis, cache_client\n\
         from app.core import redis_manager\n\
         from app.old import thing\n",
    )
    .expect("write");
    assert_eq!(
        fixes(root, "app/services/legacy_user.py"),
        [
            // app/redis_manager.py defines no `cache_client`: no fix at all.
            (1, "none".to_owned()),
            (2, "safe".to_owned()),
            (3, "none".to_owned()),
            // The module itself exists in the tree.
            (4, "safe".to_owned()),
            // Outside the tree: cannot be checked, so unsafe.
            (5, "unsafe".to_owned()),
        ]
    );
}

#[test]
fn unsafe_fixes_keep_sync_async_and_pools_apart_and_drop_unused_imports() {
    let dir = copy_project();
    let root = dir.path();
    std::fs::write(
        root.join("app/services/kinds.py"),
        "import redis\nimport redis.asyncio\n\n\
         sync_client = redis.Redis(host=\"h\")\n\
         async_client = redis.asyncio.Redis(host=\"h\")\n\
         pool = redis.ConnectionPool(host=\"h\")\n\n\n\
         async def connect():\n    return await redis.asyncio.from_url(\"redis://h\")\n",
    )
    .expect("write");
    std::fs::write(
        root.join("app/services/only_client.py"),
        "\"\"\"Builds one client.\"\"\"\nimport os\nfrom redis import Redis, StrictRedis as SR\n\nclient = Redis(host=os.environ[\"H\"])\nother = SR()\n",
    )
    .expect("write");
    assert_eq!(
        fixes(root, "app/services/kinds.py"),
        [
            (4, "unsafe".to_owned()),
            (5, "unsafe".to_owned()),
            (6, "none".to_owned()),
            (10, "none".to_owned()),
        ]
    );
    let out = run(
        root,
        &[
            "--fix",
            "--unsafe-fixes",
            "app/services/kinds.py",
            "app/services/only_client.py",
        ],
    );
    assert!(!out.stderr.contains("would not parse"), "{}", out.stderr);
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect("read");
    insta::assert_snapshot!("unsafe_kinds", read("app/services/kinds.py"));
    insta::assert_snapshot!("unsafe_only_client", read("app/services/only_client.py"));
}
