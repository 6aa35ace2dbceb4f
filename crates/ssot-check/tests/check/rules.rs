//! Each rule against its fixture in `src/rules/fixtures/`: the lines marked `# SSOT00N`
//! (`// SSOT00N`) are exactly the ones flagged, and `# OK` lines are not.

use std::collections::BTreeSet;

use ssot_check::check::{Checker, Violation};
use ssot_check::config::Options;

use crate::common::crate_dir;

const SETTINGS: &str = r#"
manager-class = "RedisManager"
accessor = "app.redis_manager:redis_manager"
rust-accessor = "redis_ssot::manager()"
extra-banned = ["app.legacy_cache.make_client"]
[legacy-modules]
"app.core.redis_manager" = "app.redis_manager"
"app_core::redis_pool" = "redis_ssot"
"#;

fn check_fixture(name: &str) -> (String, Vec<Violation>) {
    let source = std::fs::read_to_string(crate_dir().join("src/rules/fixtures").join(name))
        .expect("fixture");
    let options: Options = toml::from_str(SETTINGS).expect("options");
    let settings = options.resolve(crate_dir(), None).expect("settings");
    // Checked as a module two packages deep, so `from ..core` resolves to `app.core`.
    let path = format!("app/services/{name}");
    let violations = Checker::new(&settings)
        .check_text(&path, &source)
        .expect("fixture parses");
    let unfiltered = Checker::new(&settings)
        .without_prefilter()
        .check_text(&path, &source)
        .expect("fixture parses");
    assert_eq!(
        violations.len(),
        unfiltered.len(),
        "the prefilter changes no result"
    );
    (source, violations)
}

fn markers(source: &str) -> BTreeSet<(usize, String)> {
    source
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let marker = line.trim_end().rsplit(['#', '/']).next()?.trim();
            marker
                .starts_with("SSOT")
                .then(|| (i + 1, marker.to_owned()))
        })
        .collect()
}

fn assert_fixture(name: &str) {
    let (source, violations) = check_fixture(name);
    let found: BTreeSet<(usize, String)> = violations
        .iter()
        .map(|v| (v.start.line, v.rule.code().to_owned()))
        .collect();
    assert_eq!(
        found,
        markers(&source),
        "flagged lines of {name} differ from its markers"
    );
    assert_eq!(
        found.len(),
        violations.len(),
        "one violation per marked line"
    );
    let listing: Vec<String> = violations
        .iter()
        .map(|v| {
            let fix = v.fix.as_ref().map_or(String::new(), |f| {
                format!(" [{:?} fix: {}]", f.applicability, f.message)
            });
            format!(
                "{}:{} {} {}{fix}",
                v.start.line,
                v.start.column,
                v.rule.code(),
                v.message
            )
        })
        .collect();
    insta::assert_snapshot!(name, listing.join("\n"));
}

#[test]
fn direct_client_python() {
    assert_fixture("direct_client.py");
}

#[test]
fn direct_client_rust() {
    assert_fixture("direct_client.rs");
}

#[test]
fn legacy_import_python() {
    assert_fixture("legacy_import.py");
}

#[test]
fn legacy_import_rust() {
    assert_fixture("legacy_import.rs");
}

#[test]
fn manager_instance_python() {
    assert_fixture("manager_instance.py");
}

#[test]
fn manager_instance_rust() {
    assert_fixture("manager_instance.rs");
}

#[test]
fn canonical_module_may_build_clients() {
    let options: Options =
        toml::from_str("canonical = [\"app/redis_manager.py\"]\nmanager-class = \"RedisManager\"")
            .expect("options");
    let settings = options.resolve(crate_dir(), None).expect("settings");
    let checker = Checker::new(&settings);
    let source =
        "import redis\nfrom app.x import RedisManager\nc = redis.Redis()\nm = RedisManager()\n";
    assert!(
        checker
            .check_text("app/redis_manager.py", source)
            .expect("parses")
            .is_empty()
    );
    assert_eq!(
        checker
            .check_text("app/other.py", source)
            .expect("parses")
            .len(),
        2
    );
}

#[test]
fn syntax_errors_are_reported_not_fatal() {
    let settings = Options::default()
        .resolve(crate_dir(), None)
        .expect("settings");
    let error = Checker::new(&settings)
        .check_text(
            "x.py",
            "import redis\ndef broken(:\n    return redis.Redis()\n",
        )
        .expect_err("does not parse");
    assert!(error.contains("syntax error at 2:"), "{error}");
}

#[test]
fn prefilter_keeps_every_import_form() {
    let settings = Options::default()
        .resolve(crate_dir(), None)
        .expect("settings");
    let cases: &[(&str, &str, usize)] = &[
        ("a.py", "import json, redis as rr\nrr.Redis()\n", 1),
        (
            "a.py",
            "import json, \\\n    redis\nredis.from_url('x')\n",
            1,
        ),
        ("a.py", "from redis import (\n    Redis as R,\n)\nR()\n", 1),
        ("a.py", "from redis import *\nStrictRedis()\n", 1),
        (
            "a.py",
            "import redis.asyncio as a\n(a.from_url  # comment\n ('x'))\n",
            1,
        ),
        (
            "a.py",
            "from\tredis.asyncio import from_url as connect\nconnect()\n",
            1,
        ),
        ("redis/user.py", "from .client import Redis\nRedis()\n", 1),
        // `aioredis.*`: a name that is no banned last segment still keeps the file.
        (
            "a.py",
            "import aioredis\naioredis.create_redis_pool('x')\n",
            1,
        ),
        (
            "a.py",
            "from aioredis.sentinel import Sentinel\nSentinel([])\n",
            1,
        ),
        (
            "aioredis/x.py",
            "from .pool import create_pool\ncreate_pool()\n",
            1,
        ),
        (
            "a.py",
            "import aioredis\nraise aioredis.exceptions.ConnectionError('x')\n",
            0,
        ),
        ("a.py", "x = aioredis.create_redis_pool()\n", 0),
        ("a.py", "x = redis.Redis()\n", 0),
        ("a.py", "import redis\nprint('redis.Redis()')\n", 0),
        (
            "src/lib.rs",
            "fn f() { let c = ::redis::Client::open(\"u\"); }\n",
            1,
        ),
        (
            "src/lib.rs",
            "use fred::prelude::*;\nfn f() { Builder::from_config(c); }\n",
            1,
        ),
    ];
    for (path, source, expected) in cases {
        let filtered = Checker::new(&settings)
            .check_text(path, source)
            .expect("parses");
        let unfiltered = Checker::new(&settings)
            .without_prefilter()
            .check_text(path, source)
            .expect("parses");
        assert_eq!(
            (filtered.len(), unfiltered.len()),
            (*expected, *expected),
            "{path}: {source}"
        );
    }
}

/// The lines reported in `source`, each with whether it carries the missing-reason note.
fn reported(path: &str, source: &str) -> Vec<(usize, bool)> {
    let settings = Options::default()
        .resolve(crate_dir(), None)
        .expect("settings");
    Checker::new(&settings)
        .check_text(path, source)
        .expect("parses")
        .iter()
        .map(|v| (v.start.line, v.message.contains("it needs a reason")))
        .collect()
}

#[test]
fn python_suppression_needs_a_reason() {
    let source = "\
import redis
# ssot: allow(SSOT001) health probe
a = redis.Redis()
b = redis.Redis()  # ssot: allow(SSOT001) one-off script
# ssot: allow(SSOT001)
c = redis.Redis()
d = redis.Redis()  # ssot: allow(SSOT001)
e = redis.Redis()  # ssot: allow(SSOT002) another rule
";
    assert_eq!(
        reported("app/x.py", source),
        [(6, true), (7, true), (8, false)]
    );
}

#[test]
fn rust_suppression_needs_a_reason() {
    let source = "\
fn f(u: &str) {
    // ssot: allow(SSOT001) health probe
    let a = redis::Client::open(u);
    let b = redis::Client::open(u); // ssot: allow(SSOT001) one-off script
    /* ssot: allow(SSOT001) in a block comment */
    let c = redis::Client::open(u);
    // ssot: allow(SSOT001)
    let d = redis::Client::open(u);
    let e = redis::Client::open(u); // ssot: allow(SSOT001)
    let f = redis::Client::open(u); /* ssot: allow(SSOT001) */
    let g = redis::Client::open(u); // ssot: allow(SSOT002) another rule
}
";
    assert_eq!(
        reported("src/lib.rs", source),
        [(8, true), (9, true), (10, true), (11, false)]
    );
}
