//! The Python front end (Ruff's parser): name binding, parenthesised callees, syntax
//! errors and deeply nested code, each with and without the prefilter.

use ssot_check::check::Checker;
use ssot_check::config::{Options, Settings};

use crate::common::crate_dir;

fn settings() -> Settings {
    let options: Options = toml::from_str("manager-class = \"RedisManager\"").expect("options");
    options.resolve(crate_dir(), None).expect("settings")
}

/// The lines flagged in `source`, checked as `app/x.py`; the prefilter must agree.
fn flagged_lines(source: &str) -> Vec<usize> {
    let settings = settings();
    let lines = |checker: Checker<'_>| -> Vec<usize> {
        checker
            .check_text("app/x.py", source)
            .expect("parses")
            .iter()
            .map(|v| v.start.line)
            .collect()
    };
    let filtered = lines(Checker::new(&settings));
    assert_eq!(
        filtered,
        lines(Checker::new(&settings).without_prefilter()),
        "the prefilter changes no result:\n{source}"
    );
    filtered
}

#[test]
fn every_binding_form_shadows_the_import() {
    let cases = [
        "try:\n    pass\nexcept ValueError as Redis:\n    Redis()\n",
        "with open('f') as Redis:\n    Redis()\n",
        "with open('f') as (a, Redis):\n    Redis()\n",
        "if (Redis := make()):\n    Redis()\n",
        "[x for Redis in makers if Redis()]\n",
        "for Redis in makers:\n    Redis()\n",
        "a, *Redis = makers\nRedis()\n",
        "Redis += 1\nRedis()\n",
        "Redis: type = make()\nRedis()\n",
        "def f(Redis):\n    Redis()\n",
        "def f(*, Redis=None):\n    Redis()\n",
        "def f(*Redis, **kw):\n    Redis()\n",
        "f = lambda Redis: Redis()\n",
        "class Redis:\n    pass\nRedis()\n",
        "def Redis():\n    pass\nRedis()\n",
        "def f():\n    global Redis\n    Redis = make()\nRedis()\n",
    ];
    for body in cases {
        let source = format!("from redis import Redis\n{body}");
        assert_eq!(flagged_lines(&source), Vec::<usize>::new(), "{source}");
    }
}

#[test]
fn scopes_follow_python() {
    // Decorators run in the enclosing scope; class scopes are invisible to methods; a
    // name bound later in a function is local to all of it.
    let source = "\
from redis import Redis
def f(Redis=None):
    return Redis()
@Redis()
def g():
    pass
class C:
    Redis = None
    def m(self):
        return Redis()
def h():
    x = Redis()
    Redis = 1
";
    assert_eq!(flagged_lines(source), vec![4, 10]);
}

#[test]
fn none_fallback_keeps_the_import() {
    let source = "\
try:
    from redis import Redis
except ImportError:
    Redis = None
Redis()
";
    assert_eq!(flagged_lines(source), vec![5]);
    // Parenthesised, it is an ordinary assignment.
    let source = source.replace("Redis = None", "Redis = (None)");
    assert_eq!(flagged_lines(&source), Vec::<usize>::new());
}

#[test]
fn parenthesised_callees_are_not_resolved() {
    // The prefilter looks for `Redis(`, so neither front end resolves these.
    let source = "import redis\n(redis.Redis)()\n(redis).Redis()\nredis . Redis ()\n";
    assert_eq!(flagged_lines(source), vec![4]);
}

#[test]
fn relative_and_future_imports() {
    let settings = settings();
    let source = "from __future__ import annotations\nfrom ..redis import Redis\nRedis()\n";
    let found = Checker::new(&settings)
        .check_text("redis/sub/x.py", source)
        .expect("parses");
    assert_eq!(found.len(), 1);
    assert!(
        found[0].message.contains("redis.Redis"),
        "{}",
        found[0].message
    );
    // `from ... import` above the root resolves to nothing.
    let source = "from ...redis import Redis\nRedis()\n";
    assert!(
        Checker::new(&settings)
            .check_text("redis/x.py", source)
            .expect("parses")
            .is_empty()
    );
}

#[test]
fn syntax_error_only_ruff_sees_is_reported_with_its_position() {
    // tree-sitter-python still accepts Python 2's print statement; Ruff does not.
    let error = Checker::new(&settings())
        .check_text("x.py", "import redis\nprint \"x\"\nredis.Redis()\n")
        .expect_err("does not parse");
    assert!(error.starts_with("syntax error at 2:"), "{error}");
}

#[test]
fn deeply_nested_code_does_not_overflow_the_stack() {
    let long_sum = format!(
        "import redis\nx = 1{}\nredis.Redis()\n",
        " + 1".repeat(200_000)
    );
    assert_eq!(flagged_lines(&long_sum), vec![3]);
    let depth = 5_000;
    let nested = format!(
        "import redis\nx = {}redis.Redis(){}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(flagged_lines(&nested), vec![2]);
    // A syntax error after the deep part: the tree is still freed safely.
    let broken = format!("{long_sum}def broken(:\n");
    let error = Checker::new(&settings())
        .check_text("app/x.py", &broken)
        .expect_err("does not parse");
    assert!(error.starts_with("syntax error at 4:"), "{error}");
}

#[test]
fn prefilter_keeps_relative_imports_under_a_wildcard() {
    // Inside the banned package, `from . import x` reaches it without naming it.
    let options: Options = toml::from_str("extra-banned = [\"acme.*\"]").expect("options");
    let settings = options.resolve(crate_dir(), None).expect("settings");
    let source = "from . import site\nsite.connect()\n";
    for checker in [
        Checker::new(&settings),
        Checker::new(&settings).without_prefilter(),
    ] {
        let found = checker.check_text("acme/x.py", source).expect("parses");
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
