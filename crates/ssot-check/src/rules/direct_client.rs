//! SSOT001 `direct-client`.
//!
//! ## What it does
//! Finds Redis clients and connection pools constructed outside the canonical module(s):
//! in Python `redis.Redis`, `StrictRedis`, `from_url` (module function and class method),
//! the `redis.asyncio` equivalents, `RedisCluster`, `Sentinel`, `ConnectionPool`,
//! `BlockingConnectionPool` and every constructor of the retired `aioredis` package
//! (`aioredis.*`: `aioredis.Redis`, `aioredis.from_url`, `aioredis.create_redis_pool`,
//! `aioredis.sentinel.Sentinel`, ...); in Rust `redis::Client::open`,
//! `redis::cluster::ClusterClient::{new,builder}`, `redis::aio::ConnectionManager::new`,
//! `deadpool_redis` pool configs, `bb8_redis::RedisConnectionManager::new` and the `fred`
//! client builders; plus every name in `extra-banned`. A `pkg.*` pattern (`aioredis.*`,
//! or one in `extra-banned`) covers every call below the package except exception
//! classes (a last segment ending in `Error` or `Exception`): raising
//! `aioredis.exceptions.ConnectionError(..)` opens no connection. Names are matched after import
//! aliases are resolved, so `import redis as r; r.Redis()` and `use redis::Client as C;
//! C::open(u)` are found while strings, comments and unrelated `Redis` classes are not.
//! Python re-exports within the checked tree are followed: in a package whose
//! `__init__.py` does `import redis.asyncio as redis`, `from . import redis;
//! redis.Redis.from_url(u)` is `redis.asyncio.Redis.from_url` (likewise `from .compat
//! import redis`).
//!
//! ## Why is this bad?
//! Each such client opens its own connections, outside the shared pool, the circuit
//! breaker and the health monitor: the connection count grows with every module, and a
//! Redis hiccup surfaces as a crash instead of a degraded state.
//!
//! ## Example
//! ```python
//! import redis
//! cache = redis.Redis(host="localhost")
//! ```
//! Use instead:
//! ```python
//! from app.redis_manager import redis_manager
//! cache = redis_manager
//! ```
//!
//! ## Fix safety
//! Python only, unsafe (`--unsafe-fixes`): a sync client construction becomes `accessor`,
//! an asyncio one (`redis.asyncio`, `aioredis`) `async-accessor`, and the accessor is
//! imported; an import the file no longer uses (`import redis`) is removed. Without the
//! matching accessor there is no fix, and a connection pool or a Sentinel never gets one:
//! no client stands in for a pool; nor does an awaited construction. The shared client may be configured differently
//! (database, decoding, timeouts) from the one built here.
//!
//! Rust constructions get no fix: the shared manager has another type than a redis-rs
//! client or pool, so no replacement compiles as is.

use crate::config::Accessor;
use crate::lang::compact;
use crate::lang::python::PythonModel;
use crate::lang::rust::RustModel;
use crate::names::NamePattern;
use crate::rules::{Context, Finding, Rule, python_accessor_fix, show};

/// Python names that build clients; `redis.Redis` also matches `redis.asyncio.Redis`,
/// `redis.client.Redis` and so on, `aioredis.*` every name below `aioredis` (see
/// [`NamePattern`] and [`BannedNames`]).
const PYTHON_DEFAULTS: &[&str] = &[
    "redis.Redis",
    "redis.Redis.from_url",
    "redis.Redis.from_pool",
    "redis.StrictRedis",
    "redis.StrictRedis.from_url",
    "redis.from_url",
    "redis.RedisCluster",
    "redis.RedisCluster.from_url",
    "redis.Sentinel",
    // A pool of connections to the master a Sentinel names; what `Sentinel.master_for` builds.
    "redis.SentinelConnectionPool",
    "redis.ConnectionPool",
    "redis.ConnectionPool.from_url",
    "redis.BlockingConnectionPool",
    "redis.BlockingConnectionPool.from_url",
    // aioredis (merged into redis-py as `redis.asyncio`) has renamed and moved its
    // constructors between releases (`create_redis_pool` in 1.x, `Redis.from_url` and
    // `sentinel.Sentinel` in 2.x): every call into it builds or configures a client.
    "aioredis.*",
];

/// Rust paths that build clients or pools (calls, and `deadpool_redis::Config { .. }`).
const RUST_DEFAULTS: &[&str] = &[
    "redis::Client::open",
    "redis::Client::build_with_tls",
    "redis::ClusterClient::new",
    "redis::ClusterClient::builder",
    "redis::ClusterClientBuilder::new",
    "redis::ConnectionManager::new",
    "redis::ConnectionManager::new_with_config",
    "redis::SentinelClient::build",
    "deadpool_redis::Config",
    "deadpool_redis::Config::default",
    "deadpool_redis::Config::from_url",
    "deadpool_redis::Config::from_connection_info",
    "deadpool_redis::Manager::new",
    "deadpool_redis::Pool::builder",
    "deadpool_redis::Config::from_urls",
    // `Config::create_pool(&config, runtime)`: the method called through its type.
    "deadpool_redis::Config::create_pool",
    "bb8_redis::RedisConnectionManager::new",
    "fred::Builder::from_config",
    "fred::Builder::default_centralized",
    "fred::Builder::default_clustered",
    "fred::Client::new",
    "fred::RedisClient::new",
    "fred::Pool::new",
    "fred::RedisPool::new",
];

/// The banned names in force for one run: defaults plus `extra-banned`.
#[derive(Debug)]
pub(crate) struct BannedNames {
    python: Vec<NamePattern>,
    rust: Vec<NamePattern>,
}

impl BannedNames {
    pub(crate) fn new(extra: &[NamePattern]) -> Self {
        let parse = |list: &[&str]| -> Vec<NamePattern> {
            list.iter()
                .map(|n| NamePattern::parse(n).expect("default names are valid"))
                .chain(extra.iter().cloned())
                .collect()
        };
        Self {
            python: parse(PYTHON_DEFAULTS),
            rust: parse(RUST_DEFAULTS),
        }
    }

    /// The package roots of the Python names.
    pub(crate) fn python_roots(&self) -> impl Iterator<Item = &str> {
        self.python.iter().map(NamePattern::root)
    }

    /// The package roots of the Python `pkg.*` patterns: below them any name can build a client.
    pub(crate) fn python_wildcard_roots(&self) -> impl Iterator<Item = &str> {
        self.python
            .iter()
            .filter(|p| p.is_wildcard())
            .map(NamePattern::root)
    }

    /// The last segments of the Python names other than `pkg.*` patterns.
    pub(crate) fn python_last_segments(&self) -> impl Iterator<Item = &str> {
        self.python.iter().filter_map(NamePattern::last)
    }

    fn python_match(&self, name: &[String]) -> bool {
        builds_client(&self.python, name)
    }

    fn rust_match(&self, name: &[String]) -> bool {
        builds_client(&self.rust, name)
    }

    /// The package roots of the Rust names.
    pub(crate) fn rust_roots(&self) -> impl Iterator<Item = &str> {
        self.rust.iter().map(NamePattern::root)
    }
}

/// Whether one of `patterns` matches `name`; a `pkg.*` pattern does not match exception
/// classes, which open no connection.
fn builds_client(patterns: &[NamePattern], name: &[String]) -> bool {
    let is_exception = name
        .last()
        .is_some_and(|last| last.ends_with("Error") || last.ends_with("Exception"));
    patterns
        .iter()
        .any(|p| p.matches(name) && !(is_exception && p.is_wildcard()))
}

/// What a construction builds, for choosing its replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builds {
    /// A sync client: replaced by `accessor`.
    SyncClient,
    /// An asyncio client (`redis.asyncio`, `aioredis`): replaced by `async-accessor`.
    AsyncClient,
    /// A connection pool or a Sentinel: no accessor stands for one, so no fix.
    PoolOrSentinel,
}

fn builds(name: &[String]) -> Builds {
    let pool = name.iter().skip(1).any(|s| {
        let lower = s.to_ascii_lowercase();
        lower.contains("pool") && s != "from_pool" || lower.contains("sentinel")
    });
    if pool {
        Builds::PoolOrSentinel
    } else if name[0] == "aioredis" || name.iter().any(|s| s == "asyncio") {
        Builds::AsyncClient
    } else {
        Builds::SyncClient
    }
}

/// The accessor that keeps what the construction builds: sync for sync, async for async.
fn accessor_for<'s>(ctx: &'s Context<'_>, name: &[String]) -> Option<&'s Accessor> {
    match builds(name) {
        Builds::SyncClient => ctx.settings.accessor.as_ref(),
        Builds::AsyncClient => ctx.settings.async_accessor.as_ref(),
        Builds::PoolOrSentinel => None,
    }
}

fn message(written: &str, resolved: &str) -> String {
    if written == resolved {
        format!("Redis client built outside the canonical module: `{resolved}`")
    } else {
        format!("Redis client built outside the canonical module: `{written}` is `{resolved}`")
    }
}

pub(crate) fn check_python(model: &PythonModel<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    if ctx.canonical {
        return;
    }
    for call in &model.calls {
        // A name reached through a re-export in the tree (`from . import redis`, with the
        // package's `__init__` importing `redis.asyncio` as `redis`) is what it imports.
        let Some(name) = model
            .candidates(call)
            .into_iter()
            .flat_map(|c| {
                let resolved = ctx.modules.resolve(&c);
                [c, resolved]
            })
            .find(|c| ctx.banned.python_match(c))
        else {
            continue;
        };
        let written = &ctx.source[call.callee()];
        let range = call.range();
        out.push(Finding {
            rule: Rule::DirectClient,
            start: range.start,
            end: range.end,
            message: message(written, &show(&name, false)),
            key: compact(written),
            scope: model.scope_path(call),
            // `await redis.asyncio.from_url(..)` awaits what the construction returns,
            // which the accessor's value need not be: no fix.
            fix: accessor_for(ctx, &name)
                .filter(|_| !ctx.source[..range.start].trim_end().ends_with("await"))
                .and_then(|a| python_accessor_fix(model, ctx, range.start, range.end, a)),
        });
    }
}

pub(crate) fn check_rust(model: &RustModel<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    if ctx.canonical {
        return;
    }
    for call in &model.calls {
        let Some(name) = model
            .candidates(call)
            .into_iter()
            .find(|c| ctx.banned.rust_match(c))
        else {
            continue;
        };
        let written = call.path.join("::");
        let (start, end) = (call.start.start_byte(), call.end.end_byte());
        out.push(Finding {
            rule: Rule::DirectClient,
            start,
            end,
            message: message(&written, &show(&name, true)),
            key: written,
            scope: model.scope_path(call).to_owned(),
            fix: None,
        });
    }
}
