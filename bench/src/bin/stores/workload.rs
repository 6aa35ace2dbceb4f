//! The stores and keys every task shares, set up once, and each contender's call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure};
use futures_util::{StreamExt, TryStreamExt};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use redis::aio::MultiplexedConnection;
use redis_ssot::stores::cache::UserCache;
use redis_ssot::stores::events::Events;
use redis_ssot::stores::rate_limit::{Limit, RateLimiter};
use redis_ssot::stores::tokens::{TokenConfig, Tokens};
use redis_ssot::{RedisManager, UserScope};
use serde::Deserialize;
use serde_json::value::RawValue;
use ssot_bench::load::Workload;

use crate::{
    CACHE_NAME, CACHE_TTL, COUNTER_SCRIPT, Contender, EVENT_DATA, EVENT_NAME, PROFILE, SECRET,
    TOKENS, USERS,
};

/// Everything the tasks share: the stores (all on one manager, as in an application) and
/// the keys and tokens they walk.
pub(super) struct Shared {
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
    pub(super) async fn new(
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
pub(super) struct Task {
    pub(super) who: Contender,
    pub(super) shared: Arc<Shared>,
    pub(super) raw: MultiplexedConnection,
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
