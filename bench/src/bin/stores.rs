//! `stores`: each typed store's hot call beside the raw command it wraps, at one concurrency,
//! all in one process against one server (`run`), and the Markdown table of the collected
//! results (`report`). Driven by `bench/stores/run.sh`.
//!
//! Every operation ("pair") is measured through the store and through the raw redis-rs
//! equivalent (the baseline of its ratio). Script-backed stores get one more contender, the
//! store's own script sent raw (`EVALSHA` with the SHA the store used, read off `MONITOR` at
//! setup): store ÷ that is the cost of the manager and the store's Rust code, and that ÷ the
//! plain command is the cost of the script on the server.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use futures_util::{StreamExt, TryStreamExt};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use redis::aio::MultiplexedConnection;
use redis_ssot::stores::cache::UserCache;
use redis_ssot::stores::events::Events;
use redis_ssot::stores::rate_limit::{Limit, RateLimiter};
use redis_ssot::stores::tokens::{TokenConfig, Tokens};
use redis_ssot::{RedisConfig, RedisManager, UserScope};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ssot_bench::load::{self, Measured, Stats, Workload};
use ssot_bench::report::thousands;

/// Users whose keys the cache, rate-limit and event pairs walk.
const USERS: u64 = 10_000;
/// Distinct tokens the verify pairs walk; well under the store's default cache size (10,000
/// in two generations), so the cached pair hits on every call after warm-up.
const TOKENS: u64 = 1_000;
/// The cache entry every user has.
const CACHE_NAME: &str = "profile";
/// TTL of cache entries, here and in the raw `SET EX`.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// A cached JSON document of 76 bytes, the same for every user.
const PROFILE: &str =
    r#"{"user":"bench","plan":"team","seats":12,"locale":"en-GB","beta":true,"v":1}"#;
/// Name and payload of every appended event.
const EVENT_NAME: &str = "message";
const EVENT_DATA: &str = r#"{"role":"assistant","text":"hello from the benchmark","seq":1}"#;
/// Shared HS256 secret of the token pairs.
const SECRET: &[u8] = b"stores-benchmark-secret-of-32-bytes!";
/// The plain-command stand-in for the GCRA script: a fixed-window counter.
const COUNTER_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// Store calls against the raw commands they wrap.
#[derive(Debug, Parser)]
#[command(name = "stores")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure every pair for several rounds; prints one JSON line per cell.
    Run {
        /// The server (the script starts its own; never point this at a shared Redis: the
        /// run writes thousands of `ssot:*` keys).
        #[arg(long)]
        url: String,
        /// Concurrent tasks.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Rounds; each runs every contender of every pair once.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Measured window of each cell, milliseconds.
        #[arg(long, default_value_t = 2000)]
        duration_ms: u64,
        /// Unmeasured warm-up before each window, milliseconds.
        #[arg(long, default_value_t = 500)]
        warmup_ms: u64,
        /// Tokio worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        worker_threads: usize,
        /// The gateway's metrics recorder: on (the real path) or off. The script runs both
        /// and reports them apart.
        #[arg(long, value_enum, default_value = "on")]
        metrics: ssot_bench::Metrics,
    },
    /// Print the Markdown table of JSON-lines result files.
    Report {
        /// Files of JSON lines written by `run`.
        files: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            url,
            concurrency,
            rounds,
            duration_ms,
            warmup_ms,
            worker_threads,
            metrics,
        } => {
            metrics.install()?;
            let settings = Settings {
                url,
                concurrency,
                rounds,
                warmup: Duration::from_millis(warmup_ms),
                window: Duration::from_millis(duration_ms),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(worker_threads)
                .enable_all()
                .build()?;
            let stdout = std::io::stdout();
            runtime.block_on(run(&settings, |row| {
                let line = serde_json::to_string(row).expect("a row serialises");
                let mut out = stdout.lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }))
        }
        Command::Report { files } => {
            let mut rows = Vec::new();
            for file in files {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                rows.extend(ssot_bench::report::parse_json_lines::<Row>(&text)?);
            }
            print!("{}", render(&rows));
            Ok(())
        }
    }
}

/// One store operation and what it is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Pair {
    CacheGet,
    CacheSet,
    RateCheck,
    EventsAppend,
    VerifyUncached,
    VerifyCached,
}

impl Pair {
    const ALL: [Pair; 6] = [
        Pair::CacheGet,
        Pair::CacheSet,
        Pair::RateCheck,
        Pair::EventsAppend,
        Pair::VerifyUncached,
        Pair::VerifyCached,
    ];

    fn label(self) -> &'static str {
        match self {
            Pair::CacheGet => "UserCache get",
            Pair::CacheSet => "UserCache set",
            Pair::RateCheck => "RateLimiter check",
            Pair::EventsAppend => "Events append",
            Pair::VerifyUncached => "Tokens verify, uncached",
            Pair::VerifyCached => "Tokens verify, cached",
        }
    }

    /// The store call first; [`Pair::baseline`] among the rest.
    fn contenders(self) -> &'static [Contender] {
        use Contender::*;
        match self {
            Pair::CacheGet => &[CacheGet, CacheGetJson, RawGet],
            Pair::CacheSet => &[CacheSet, RawSetEx, RawCacheSetScript],
            Pair::RateCheck => &[RateCheck, RawCounterScript, RawIncr, RawGcraScript],
            Pair::EventsAppend => &[EventsAppend, RawXaddPublish, RawAppendScript],
            Pair::VerifyUncached => &[VerifyUncached, RawDecodeExists],
            Pair::VerifyCached => &[VerifyCached, RawExists],
        }
    }

    /// The raw command the store call wraps: the denominator of the ratios.
    fn baseline(self) -> Contender {
        match self {
            Pair::CacheGet => Contender::RawGet,
            Pair::CacheSet => Contender::RawSetEx,
            Pair::RateCheck => Contender::RawCounterScript,
            Pair::EventsAppend => Contender::RawXaddPublish,
            Pair::VerifyUncached => Contender::RawDecodeExists,
            Pair::VerifyCached => Contender::RawExists,
        }
    }

    fn items(self) -> u64 {
        match self {
            Pair::VerifyUncached | Pair::VerifyCached => TOKENS,
            _ => USERS,
        }
    }
}

/// One way of doing a pair's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Contender {
    CacheGet,
    CacheGetJson,
    RawGet,
    CacheSet,
    RawSetEx,
    RawCacheSetScript,
    RateCheck,
    RawCounterScript,
    RawIncr,
    RawGcraScript,
    EventsAppend,
    RawXaddPublish,
    RawAppendScript,
    VerifyUncached,
    RawDecodeExists,
    VerifyCached,
    RawExists,
}

impl Contender {
    fn label(self) -> &'static str {
        match self {
            Contender::CacheGet => "store `UserCache::get`",
            Contender::CacheGetJson => "store `UserCache::get_json` (serde struct)",
            Contender::RawGet => "raw `GET`",
            Contender::CacheSet => "store `UserCache::set` (script: SET PX + index ZSET)",
            Contender::RawSetEx => "raw `SET EX`",
            Contender::RawCacheSetScript => "raw `EVALSHA` of the store's script",
            Contender::RateCheck => "store `RateLimiter::check` (GCRA script)",
            Contender::RawCounterScript => "raw `EVALSHA` INCR + PEXPIRE script",
            Contender::RawIncr => "raw `INCR`",
            Contender::RawGcraScript => "raw `EVALSHA` of the store's script",
            Contender::EventsAppend => "store `Events::append` (script)",
            Contender::RawXaddPublish => "raw `XADD` + `PUBLISH`, one pipeline",
            Contender::RawAppendScript => "raw `EVALSHA` of the store's script",
            Contender::VerifyUncached => "store `Tokens::verify`, cache off",
            Contender::RawDecodeExists => "raw `jsonwebtoken::decode` + `EXISTS`",
            Contender::VerifyCached => "store `Tokens::verify`, cache on",
            Contender::RawExists => "raw `EXISTS`",
        }
    }
}

/// One measured cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    pair: Pair,
    contender: Contender,
    round: usize,
    concurrency: usize,
    #[serde(flatten)]
    stats: Stats,
    /// redis-server CPU time (user + sys, from `INFO cpu`) per operation over the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_cpu_us_per_op: Option<f64>,
}

struct Settings {
    url: String,
    concurrency: usize,
    rounds: usize,
    warmup: Duration,
    window: Duration,
}

/// Sets up the stores and the keys, then measures every contender of every pair in each
/// round, in an order rotated every round.
async fn run(settings: &Settings, mut on_row: impl FnMut(&Row)) -> anyhow::Result<()> {
    let client = redis::Client::open(settings.url.as_str())?;
    let raw = client.get_multiplexed_async_connection().await?;
    let mut probe = client.get_multiplexed_async_connection().await?;
    let manager = RedisManager::connect(RedisConfig::for_url(&settings.url)?).await?;
    let shared = Arc::new(Shared::new(manager, &client, raw.clone()).await?);
    let task = |who| Task {
        who,
        shared: Arc::clone(&shared),
        raw: raw.clone(),
    };
    for round in 1..=settings.rounds {
        for pair in Pair::ALL {
            let contenders = pair.contenders();
            for i in 0..contenders.len() {
                let who = contenders[(i + round - 1) % contenders.len()];
                eprintln!(
                    "stores: round {round}/{}: {} / {}",
                    settings.rounds,
                    pair.label(),
                    who.label()
                );
                let (measured, server_cpu) =
                    measure(&task(who), pair.items(), settings, &mut probe)
                        .await
                        .with_context(|| format!("{} / {}", pair.label(), who.label()))?;
                let stats = Stats::new(settings.window, measured);
                let server_cpu_us_per_op = server_cpu
                    .filter(|_| stats.ops > 0)
                    .map(|cpu| cpu * 1e6 / stats.ops as f64);
                on_row(&Row {
                    pair,
                    contender: who,
                    round,
                    concurrency: settings.concurrency,
                    stats,
                    server_cpu_us_per_op,
                });
            }
        }
    }
    Ok(())
}

/// Drives one cell and reads redis-server's CPU time at the start and end of its window.
async fn measure(
    task: &Task,
    items: u64,
    settings: &Settings,
    probe: &mut MultiplexedConnection,
) -> anyhow::Result<(Measured, Option<f64>)> {
    let drive = load::drive_items(
        task,
        items,
        settings.concurrency,
        settings.warmup,
        settings.window,
    );
    let probe_start = async {
        tokio::time::sleep(settings.warmup).await;
        server_cpu(probe).await
    };
    let (measured, before) = tokio::join!(drive, probe_start);
    let measured = measured?;
    let after = server_cpu(probe).await?;
    Ok((measured, Some(after - before?)))
}

/// `used_cpu_user + used_cpu_sys` of the server, seconds.
async fn server_cpu(conn: &mut MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("INFO cpu has no {name}"))?;
        Ok(line.trim().parse()?)
    };
    Ok(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// Everything the tasks share: the stores (all on one manager, as in an application) and
/// the keys and tokens they walk.
struct Shared {
    cache: UserCache,
    limiter: RateLimiter,
    events: Events,
    tokens_uncached: Tokens,
    tokens_cached: Tokens,
    limit: Limit,
    scopes: Vec<UserScope>,
    profile: Box<RawValue>,
    event_data: Box<RawValue>,
    /// Per user, the keys the store derives (checked against the server at setup).
    cache_keys: Vec<String>,
    cache_index_keys: Vec<String>,
    rate_keys: Vec<String>,
    event_keys: Vec<String>,
    /// Per user, the key of the raw counter contenders.
    counter_keys: Vec<String>,
    tokens: Vec<String>,
    /// Per token, `ssot:revoked:<jti>`.
    revoked_keys: Vec<String>,
    decoding: DecodingKey,
    validation: Validation,
    /// SHAs of the store scripts (as captured from the store's own calls) and the counter.
    cache_set_sha: String,
    gcra_sha: String,
    append_sha: String,
    /// `EVENT_NAME` as a JSON string, as the store passes it to its script.
    event_name_json: String,
    counter_sha: String,
}

/// What the raw decode keeps of a token: as much as the store needs for its revocation check.
#[derive(Deserialize)]
struct RawClaims {
    #[allow(dead_code)] // deserialised (and required) like the store's, not read afterwards
    sub: String,
    jti: String,
}

/// The cached document, as an application would read it with `get_json`.
#[derive(Deserialize)]
#[allow(dead_code)] // the fields are what is being deserialised; nothing reads them
struct Profile {
    user: String,
    plan: String,
    seats: u32,
    locale: String,
    beta: bool,
    v: u32,
}

impl Shared {
    async fn new(
        manager: RedisManager,
        client: &redis::Client,
        mut raw: MultiplexedConnection,
    ) -> anyhow::Result<Shared> {
        eprintln!("stores: setting up {USERS} users and {TOKENS} tokens");
        let cache = UserCache::new(manager.clone());
        let limiter = RateLimiter::new(manager.clone());
        let events = Events::new(manager.clone());
        // Both token stores run the same checks; the first never caches.
        let tokens_uncached = Tokens::new(
            manager.clone(),
            TokenConfig::hs256(SECRET)?.with_cache(0, Duration::ZERO),
        )
        .await?;
        let tokens_cached = Tokens::new(manager.clone(), TokenConfig::hs256(SECRET)?).await?;
        let limit = Limit::new("chat", 100, Duration::from_secs(1));

        let scopes: Vec<UserScope> = (0..USERS)
            .map(|n| UserScope::parse(&format!("bench-{n:05}")))
            .collect::<Result<_, _>>()?;
        let per_user = |suffix: &str| -> Vec<String> {
            scopes
                .iter()
                .map(|s| format!("{}{suffix}", s.prefix()))
                .collect()
        };
        let cache_keys = per_user(&format!("cache:{CACHE_NAME}"));
        let cache_index_keys = per_user("cache");
        let rate_keys = per_user(&format!("rl:{}", limit.name));
        let event_keys = per_user("events");
        let counter_keys = per_user("bench-counter");

        let profile = RawValue::from_string(PROFILE.to_owned())?;
        let event_data = RawValue::from_string(EVENT_DATA.to_owned())?;

        // Every user's cache entry exists before the first GET.
        futures_util::stream::iter(&scopes)
            .map(|scope| cache.set(scope, CACHE_NAME, PROFILE, CACHE_TTL))
            .buffer_unordered(64)
            .try_collect::<Vec<()>>()
            .await?;
        let tokens: Vec<String> = scopes[..TOKENS as usize]
            .iter()
            .map(|scope| tokens_cached.issue(scope.user(), Duration::from_secs(3600)))
            .collect::<Result<_, _>>()?;

        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let decoding = DecodingKey::from_secret(SECRET);
        let revoked_keys = tokens
            .iter()
            .map(|t| {
                let claims = jsonwebtoken::decode::<RawClaims>(t, &decoding, &validation)?.claims;
                Ok(format!("ssot:revoked:{}", claims.jti))
            })
            .collect::<anyhow::Result<Vec<String>>>()?;

        // The raw contenders must touch exactly the keys the stores do.
        let scope = &scopes[0];
        let got: Option<String> = redis::cmd("GET")
            .arg(&cache_keys[0])
            .query_async(&mut raw)
            .await?;
        ensure!(
            got.as_deref() == Some(PROFILE),
            "cache key {} not where the store wrote",
            cache_keys[0]
        );
        let cache_set_sha = script_sha(client, async {
            Ok(cache.set(scope, CACHE_NAME, PROFILE, CACHE_TTL).await?)
        })
        .await?;
        let gcra_sha = script_sha(client, async {
            limiter.check(scope, &limit).await?;
            Ok(())
        })
        .await?;
        let exists: bool = redis::cmd("EXISTS")
            .arg(&rate_keys[0])
            .query_async(&mut raw)
            .await?;
        ensure!(
            exists,
            "rate key {} not where the store wrote",
            rate_keys[0]
        );
        let append_sha = script_sha(client, async {
            events.append(scope, EVENT_NAME, &event_data).await?;
            Ok(())
        })
        .await?;
        let len: u64 = redis::cmd("XLEN")
            .arg(&event_keys[0])
            .query_async(&mut raw)
            .await?;
        ensure!(
            len > 0,
            "event stream {} not where the store wrote",
            event_keys[0]
        );
        tokens_cached.verify(&tokens[0]).await?;
        let counter_sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(COUNTER_SCRIPT)
            .query_async(&mut raw)
            .await?;

        Ok(Shared {
            cache,
            limiter,
            events,
            tokens_uncached,
            tokens_cached,
            limit,
            scopes,
            profile,
            event_data,
            cache_keys,
            cache_index_keys,
            rate_keys,
            event_keys,
            counter_keys,
            tokens,
            revoked_keys,
            decoding,
            validation,
            cache_set_sha,
            gcra_sha,
            append_sha,
            event_name_json: serde_json::to_string(EVENT_NAME)?,
            counter_sha,
        })
    }
}

/// Runs `call` (one store call, not started yet) while watching the server with `MONITOR`,
/// and returns the SHA of the script it ran. The script text stays private to the store; the
/// raw contender replays exactly what the server cached.
async fn script_sha(
    client: &redis::Client,
    call: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<String> {
    let monitor = client.get_async_monitor().await?;
    let mut lines = monitor.into_on_message::<String>();
    call.await?;
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        // `<time> [0 127.0.0.1:<port>] "EVALSHA" "<sha>" "<numkeys>" ...`
        while let Some(line) = lines.next().await {
            if let Some(rest) = line.split_once(r#""EVALSHA" ""#).map(|(_, rest)| rest)
                && let Some(sha) = rest.get(..40)
            {
                return Some(sha.to_owned());
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(sha)) => Ok(sha),
        Ok(None) | Err(_) => bail!("no EVALSHA seen on MONITOR"),
    }
}

/// One task's handle: which contender it runs, the shared stores and keys, and its own
/// clone of the raw connection.
#[derive(Clone)]
struct Task {
    who: Contender,
    shared: Arc<Shared>,
    raw: MultiplexedConnection,
}

impl Workload for Task {
    async fn call(&mut self, item: usize) -> anyhow::Result<()> {
        let s = &*self.shared;
        let raw = &mut self.raw;
        match self.who {
            Contender::CacheGet => {
                s.cache.get(&s.scopes[item], CACHE_NAME).await?;
            }
            Contender::CacheGetJson => {
                s.cache
                    .get_json::<Profile>(&s.scopes[item], CACHE_NAME)
                    .await?;
            }
            Contender::RawGet => {
                redis::cmd("GET")
                    .arg(&s.cache_keys[item])
                    .query_async::<Option<Vec<u8>>>(raw)
                    .await?;
            }
            Contender::CacheSet => {
                s.cache
                    .set(&s.scopes[item], CACHE_NAME, s.profile.get(), CACHE_TTL)
                    .await?
            }
            Contender::RawSetEx => {
                redis::cmd("SET")
                    .arg(&s.cache_keys[item])
                    .arg(s.profile.get())
                    .arg("EX")
                    .arg(CACHE_TTL.as_secs())
                    .query_async::<()>(raw)
                    .await?
            }
            Contender::RawCacheSetScript => {
                // KEYS: entry, index. ARGV: value, ttl (ms), name.
                redis::cmd("EVALSHA")
                    .arg(&s.cache_set_sha)
                    .arg(2)
                    .arg(&s.cache_keys[item])
                    .arg(&s.cache_index_keys[item])
                    .arg(s.profile.get())
                    .arg(CACHE_TTL.as_millis() as u64)
                    .arg(CACHE_NAME)
                    .query_async::<i64>(raw)
                    .await?;
            }
            Contender::RateCheck => {
                s.limiter.check(&s.scopes[item], &s.limit).await?;
            }
            Contender::RawCounterScript => {
                redis::cmd("EVALSHA")
                    .arg(&s.counter_sha)
                    .arg(1)
                    .arg(&s.counter_keys[item])
                    .arg(1000)
                    .query_async::<i64>(raw)
                    .await?;
            }
            Contender::RawIncr => {
                redis::cmd("INCR")
                    .arg(&s.counter_keys[item])
                    .query_async::<i64>(raw)
                    .await?;
            }
            Contender::RawGcraScript => {
                // KEYS: the limit's key. ARGV: emission interval (µs), burst, cost.
                redis::cmd("EVALSHA")
                    .arg(&s.gcra_sha)
                    .arg(1)
                    .arg(&s.rate_keys[item])
                    .arg(s.limit.emission_interval().as_micros() as u64)
                    .arg(s.limit.burst)
                    .arg(1)
                    .query_async::<(i64, i64, i64, i64)>(raw)
                    .await?;
            }
            Contender::EventsAppend => {
                s.events
                    .append(&s.scopes[item], EVENT_NAME, &s.event_data)
                    .await?;
            }
            Contender::RawXaddPublish => {
                // Not atomic, and the notification cannot carry the id XADD assigns: the
                // cheapest way to do both with plain commands.
                let key = &s.event_keys[item];
                redis::pipe()
                    .cmd("XADD")
                    .arg(key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(s.events.config().max_len)
                    .arg("*")
                    .arg("e")
                    .arg(EVENT_NAME)
                    .arg("d")
                    .arg(s.event_data.get())
                    .cmd("PUBLISH")
                    .arg(key)
                    .arg(s.event_data.get())
                    .query_async::<(String, i64)>(raw)
                    .await?;
            }
            Contender::RawAppendScript => {
                // KEYS: stream. ARGV: max_len, max_age (ms), name, data, name as a JSON
                // string (the live notification is the event's JSON frame, built in Lua).
                let config = s.events.config();
                redis::cmd("EVALSHA")
                    .arg(&s.append_sha)
                    .arg(1)
                    .arg(&s.event_keys[item])
                    .arg(config.max_len)
                    .arg(config.max_age.as_millis() as u64)
                    .arg(EVENT_NAME)
                    .arg(s.event_data.get())
                    .arg(&s.event_name_json)
                    .query_async::<(String, i64)>(raw)
                    .await?;
            }
            Contender::VerifyUncached => {
                s.tokens_uncached.verify(&s.tokens[item]).await?;
            }
            Contender::RawDecodeExists => {
                let claims =
                    jsonwebtoken::decode::<RawClaims>(&s.tokens[item], &s.decoding, &s.validation)?
                        .claims;
                let revoked: i64 = redis::cmd("EXISTS")
                    .arg(format!("ssot:revoked:{}", claims.jti))
                    .query_async(raw)
                    .await?;
                ensure!(revoked == 0, "token {item} revoked");
            }
            Contender::VerifyCached => {
                s.tokens_cached.verify(&s.tokens[item]).await?;
            }
            Contender::RawExists => {
                let revoked: i64 = redis::cmd("EXISTS")
                    .arg(&s.revoked_keys[item])
                    .query_async(raw)
                    .await?;
                ensure!(revoked == 0, "token {item} revoked");
            }
        }
        Ok(())
    }
}

/// The table: one row per contender, grouped by pair, each cell its median round (by
/// ops/s). The ratio is taken within each round, against the baseline measured seconds
/// before or after it, and shown as the median of the rounds with their range: background
/// load on a shared machine moves whole rounds, which a ratio of medians would mix.
fn render(rows: &[Row]) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    let mut rounds: BTreeMap<(Pair, Contender), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        rounds
            .entry((row.pair, row.contender))
            .or_default()
            .push(row);
    }
    let median: BTreeMap<(Pair, Contender), &Row> = rounds
        .iter_mut()
        .map(|(key, cells)| {
            cells.sort_by(|a, b| a.stats.ops_per_sec.total_cmp(&b.stats.ops_per_sec));
            (*key, cells[cells.len() / 2])
        })
        .collect();
    let n_rounds = rounds.values().map(Vec::len).max().unwrap_or(0);
    let concurrency = rows.first().map_or(0, |r| r.concurrency);

    let by_round: BTreeMap<(Pair, Contender, usize), f64> = rows
        .iter()
        .map(|r| ((r.pair, r.contender, r.round), r.stats.ops_per_sec))
        .collect();
    let ratios = |pair: Pair, who: Contender| -> Vec<f64> {
        let mut ratios: Vec<f64> = by_round
            .iter()
            .filter(|((p, c, _), _)| *p == pair && *c == who)
            .filter_map(|((_, _, round), ops)| {
                Some(ops / by_round.get(&(pair, pair.baseline(), *round))?)
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{concurrency} concurrent tasks; each figure is the median of {n_rounds} round(s) by ops/s. \
         ÷ raw: ops/s over the pair's raw baseline (marked *) in the same round, median \
         (lowest–highest) of the rounds. CPU: µs per operation, client process / redis-server.\n"
    );
    let _ = writeln!(
        out,
        "| operation | contender | ops/s | p50 µs | p99 µs | CPU client / server | ÷ raw |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for pair in Pair::ALL {
        let mut first = true;
        for &who in pair.contenders() {
            let Some(row) = median.get(&(pair, who)) else {
                continue;
            };
            let st = &row.stats;
            let cpu = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
            let ratios = ratios(pair, who);
            let ratio = match ratios.as_slice() {
                [] => "–".to_owned(),
                [only] => format!("{only:.2}×"),
                _ if who == pair.baseline() => "1.00×".to_owned(),
                [low, .., high] => {
                    let median = ratios[ratios.len() / 2];
                    format!("{median:.2}× ({low:.2}–{high:.2})")
                }
            };
            let _ = writeln!(
                out,
                "| {} | {}{} | {} | {:.0} | {:.0} | {} / {} | {} |",
                if first { pair.label() } else { "" },
                who.label(),
                if who == pair.baseline() { " *" } else { "" },
                thousands(st.ops_per_sec),
                st.p50_us,
                st.p99_us,
                cpu(st.cpu_us_per_op),
                cpu(row.server_cpu_us_per_op),
                ratio,
            );
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pair: Pair, contender: Contender, round: usize, ops_per_sec: f64) -> Row {
        Row {
            pair,
            contender,
            round,
            concurrency: 64,
            stats: Stats {
                ops: 1,
                seconds: 1.0,
                ops_per_sec,
                p50_us: ops_per_sec / 1000.0,
                p99_us: 20.0,
                cpu_us_per_op: Some(5.0),
            },
            server_cpu_us_per_op: None,
        }
    }

    #[test]
    fn every_pair_measures_its_baseline() {
        for pair in Pair::ALL {
            assert!(pair.contenders().contains(&pair.baseline()), "{pair:?}");
            assert_ne!(
                pair.contenders()[0],
                pair.baseline(),
                "{pair:?}: store first"
            );
            assert!(!pair.items().is_multiple_of(7_919));
        }
    }

    #[test]
    fn median_round_and_ratio_to_the_baseline() {
        let rows = vec![
            row(Pair::CacheGet, Contender::CacheGet, 1, 40_000.0),
            row(Pair::CacheGet, Contender::CacheGet, 2, 45_000.0),
            row(Pair::CacheGet, Contender::CacheGet, 3, 10_000.0),
            row(Pair::CacheGet, Contender::RawGet, 1, 50_000.0),
            row(Pair::CacheGet, Contender::RawGet, 2, 50_000.0),
            row(Pair::CacheGet, Contender::RawGet, 3, 20_000.0),
        ];
        let text = render(&rows);
        // Rounds 1-3 give 0.80, 0.90 and 0.50.
        assert!(
            text.contains(
                "| UserCache get | store `UserCache::get` | 40,000 | 40 | 20 | 5.0 / – | 0.80× (0.50–0.90) |"
            ),
            "{text}"
        );
        assert!(
            text.contains("|  | raw `GET` * | 50,000 | 50 | 20 | 5.0 / – | 1.00× |"),
            "{text}"
        );
        assert!(text.contains("median of 3 round(s)"), "{text}");
    }

    #[test]
    fn rows_round_trip_through_json_lines() {
        let mut original = row(Pair::VerifyCached, Contender::RawExists, 2, 1.0);
        original.server_cpu_us_per_op = Some(3.5);
        let line = serde_json::to_string(&original).unwrap();
        assert!(
            line.contains(r#""pair":"verify-cached","contender":"raw-exists""#),
            "{line}"
        );
        let parsed: Vec<Row> =
            ssot_bench::report::parse_json_lines(&format!("# header\n{line}\n")).unwrap();
        assert_eq!(parsed, vec![original]);
    }
}
