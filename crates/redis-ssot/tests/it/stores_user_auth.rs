//! UserCache, Sessions, Tokens and RateLimiter against a real server and a real cluster:
//! isolation between users (property test, checked by listing the server's keys), exact rate
//! limits, every token rejection kind, cross-process revocation, and a Redis restart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use redis_ssot::redis;
use redis_ssot::stores::agent_state::AgentState;
use redis_ssot::stores::cache::UserCache;
use redis_ssot::stores::events::{EventId, Events};
use redis_ssot::stores::jobs::{Jobs, NewJob};
use redis_ssot::stores::rate_limit::{Limit, RateLimiter};
use redis_ssot::stores::sessions::Sessions;
use redis_ssot::stores::tokens::{
    Claims, TokenAlgorithm, TokenConfig, TokenError, TokenOptions, Tokens,
};
use redis_ssot::{Error, RedisManager, UserId, UserScope};
use serde_json::{Value, json};
use ssot_testkit::RedisServer;

use crate::deployments::{Deployment, parts};
use crate::support::{connect, eventually};

const SECRET: &str = "test-secret-0123456789abcdef-0123456789";
const RSA_PRIVATE: &str = include_str!("keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa-public.pem");
const ED_PRIVATE: &str = include_str!("keys/ed25519-private.pem");
const ED_PUBLIC: &str = include_str!("keys/ed25519-public.pem");
const MINUTE: Duration = Duration::from_secs(60);

parts! {
    manager, deployment, connect;
    cache_basics => cache_basics(&manager);
    sessions_lifecycle => sessions_lifecycle(&manager);
    rate_limit_decisions => rate_limit_decisions(&manager, &deployment);
    rate_limit_is_exact_under_contention => rate_limit_is_exact_under_contention(&manager);
    token_rejections => token_rejections(&manager);
    token_revocation_reaches_other_processes =>
        token_revocation_reaches_other_processes(&manager);
    isolation_property => async {
        deployment.flush();
        isolation_property(&manager, &deployment).await
    };
}

fn scope(raw: &str) -> UserScope {
    UserScope::parse(raw).unwrap()
}

/// A user id no other part of the run uses.
fn fresh_user(what: &str) -> UserScope {
    scope(&format!("{what}-{:x}", rand::random::<u32>()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------
// UserCache

async fn cache_basics(manager: &RedisManager) {
    let cache = UserCache::new(manager.clone());
    let alice = fresh_user("alice");
    assert_eq!(cache.get(&alice, "profile").await.unwrap(), None);
    assert!(!cache.exists(&alice, "profile").await.unwrap());
    assert_eq!(cache.ttl(&alice, "profile").await.unwrap(), None);

    cache.set(&alice, "profile", "v1", MINUTE).await.unwrap();
    assert_eq!(
        cache.get(&alice, "profile").await.unwrap(),
        Some(b"v1".to_vec())
    );
    assert!(cache.exists(&alice, "profile").await.unwrap());
    let ttl = cache.ttl(&alice, "profile").await.unwrap().unwrap();
    assert!(ttl > Duration::from_secs(55) && ttl <= MINUTE, "{ttl:?}");

    cache
        .set_json(&alice, "prefs:v1", &json!({"theme": "dark"}), MINUTE)
        .await
        .unwrap();
    let prefs: Option<Value> = cache.get_json(&alice, "prefs:v1").await.unwrap();
    assert_eq!(prefs, Some(json!({"theme": "dark"})));

    // Entries expire on their own.
    cache
        .set(&alice, "short", "x", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(!cache.exists(&alice, "short").await.unwrap());

    assert!(cache.delete(&alice, "profile").await.unwrap());
    assert!(!cache.delete(&alice, "profile").await.unwrap());

    // clear() removes every entry (more than one script batch), and only entries.
    for i in 0..300 {
        cache
            .set(&alice, &format!("item:{i}"), i.to_string(), MINUTE)
            .await
            .unwrap();
    }
    assert_eq!(cache.clear(&alice).await.unwrap(), 301); // 300 items + prefs
    assert_eq!(cache.get(&alice, "item:7").await.unwrap(), None);
    assert_eq!(cache.clear(&alice).await.unwrap(), 0);

    // Names and TTLs are checked before anything reaches Redis.
    for bad in ["", "*", "a b", "{x}", "é"] {
        let err = cache.set(&alice, bad, "x", MINUTE).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err}");
    }
    let err = cache
        .set(&alice, "k", "x", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Sessions

async fn sessions_lifecycle(manager: &RedisManager) {
    let sessions = Sessions::new(manager.clone(), Duration::from_secs(5)).unwrap();
    let bob = fresh_user("bob");
    let meta = BTreeMap::from([("agent".to_owned(), "test".to_owned())]);
    let first = sessions.create(&bob, meta.clone()).await.unwrap();
    assert_eq!(first.id.len(), 32);
    assert_eq!(first.user, *bob.user());
    assert_eq!(first.meta, meta);
    assert_eq!(first.created, first.last_seen);
    assert_eq!(
        sessions.get(&bob, &first.id).await.unwrap(),
        Some(first.clone())
    );

    // touch() moves last_seen and restarts the idle time.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = sessions.expires_in(&bob, &first.id).await.unwrap().unwrap();
    assert!(before <= Duration::from_millis(4400), "{before:?}");
    let touched = sessions.touch(&bob, &first.id).await.unwrap().unwrap();
    assert!(touched.last_seen > first.last_seen);
    assert_eq!(touched.created, first.created);
    let after = sessions.expires_in(&bob, &first.id).await.unwrap().unwrap();
    assert!(after > before, "{after:?} after touch, {before:?} before");

    let second = sessions.create(&bob, BTreeMap::new()).await.unwrap();
    let third = sessions.create(&bob, BTreeMap::new()).await.unwrap();
    let ids = session_ids(&sessions, &bob).await;
    let expected = BTreeSet::from([first.id.clone(), second.id.clone(), third.id.clone()]);
    assert_eq!(ids, expected);

    assert!(sessions.revoke(&bob, &second.id).await.unwrap());
    assert!(!sessions.revoke(&bob, &second.id).await.unwrap());
    assert_eq!(sessions.get(&bob, &second.id).await.unwrap(), None);
    assert_eq!(sessions.touch(&bob, &second.id).await.unwrap(), None);
    assert_eq!(sessions.list(&bob).await.unwrap().len(), 2);

    assert_eq!(sessions.revoke_all(&bob).await.unwrap(), 2);
    assert!(sessions.list(&bob).await.unwrap().is_empty());
    assert_eq!(sessions.get(&bob, &first.id).await.unwrap(), None);

    // An untouched session expires and drops out of the list.
    let idle = sessions.create(&bob, BTreeMap::new()).await.unwrap();
    let short = Sessions::new(manager.clone(), Duration::from_millis(100)).unwrap();
    let brief = short.create(&bob, BTreeMap::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        session_ids(&sessions, &bob).await,
        BTreeSet::from([idle.id.clone()])
    );
    assert_eq!(sessions.get(&bob, &brief.id).await.unwrap(), None);
    sessions.revoke_all(&bob).await.unwrap();

    let err = sessions.get(&bob, "../x y").await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(Sessions::new(manager.clone(), Duration::ZERO).is_err());
}

async fn session_ids(sessions: &Sessions, user: &UserScope) -> BTreeSet<String> {
    let listed = sessions.list(user).await.unwrap();
    listed.into_iter().map(|s| s.id).collect()
}

// ---------------------------------------------------------------------------------------
// RateLimiter

async fn rate_limit_decisions(manager: &RedisManager, deployment: &Deployment) {
    let limiter = RateLimiter::new(manager.clone());
    let carol = fresh_user("carol");
    let limit = Limit::new("msgs", 3, Duration::from_secs(6));
    for expected_remaining in [2, 1, 0] {
        let d = limiter.check(&carol, &limit).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, expected_remaining);
        assert_eq!(d.retry_after, Duration::ZERO);
    }
    let denied = limiter.check(&carol, &limit).await.unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    assert!(
        denied.retry_after > Duration::ZERO && denied.retry_after <= Duration::from_secs(2),
        "{denied:?}"
    );
    assert!(denied.reset_after <= Duration::from_secs(6), "{denied:?}");
    // One more request per emission interval (2 s here).
    tokio::time::sleep(denied.retry_after + Duration::from_millis(20)).await;
    assert!(limiter.check(&carol, &limit).await.unwrap().allowed);
    assert!(!limiter.check(&carol, &limit).await.unwrap().allowed);

    // Costs, bounded by the burst.
    let tools = Limit::new("tools", 10, MINUTE).with_burst(5);
    let d = limiter.check_n(&carol, &tools, 4).await.unwrap();
    assert!(d.allowed && d.remaining == 1, "{d:?}");
    let d = limiter.check_n(&carol, &tools, 2).await.unwrap();
    assert!(!d.allowed && d.remaining == 1, "{d:?}");
    for cost in [0, 6] {
        let err = limiter.check_n(&carol, &tools, cost).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }
    for bad in [
        Limit::new("zero", 0, MINUTE),
        Limit::new("nothing", 1, Duration::ZERO),
        Limit::new("bad name", 1, MINUTE),
    ] {
        let err = limiter.check(&carol, &bad).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{bad:?}: {err}");
    }

    // Global limits have their own key, outside every user's prefix.
    let ip = format!("10.0.0.{}", rand::random::<u8>());
    let global = Limit::new("connect", 2, MINUTE);
    assert!(limiter.check_global(&ip, &global).await.unwrap().allowed);
    assert!(limiter.check_global(&ip, &global).await.unwrap().allowed);
    assert!(!limiter.check_global(&ip, &global).await.unwrap().allowed);
    let keys = deployment.keys("*");
    assert!(
        keys.contains(&format!("ssot:rl:{{connect:{ip}}}")),
        "{keys:?}"
    );
    assert!(
        keys.contains(&format!("{}rl:msgs", carol.prefix())),
        "{keys:?}"
    );
}

/// 64 tasks hammer a limit of 100 per minute (burst 100): exactly 100 pass, plus one per
/// emission interval (0.6 s) that elapsed between the first and the last call.
async fn rate_limit_is_exact_under_contention(manager: &RedisManager) {
    const TASKS: usize = 64;
    const CALLS_PER_TASK: usize = 5;
    let limiter = RateLimiter::new(manager.clone());
    let user = fresh_user("hammer");
    let limit = Limit::new("chat", 100, MINUTE).with_burst(100);
    let gate = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
    let allowed = Arc::new(AtomicU64::new(0));
    let mut joins = Vec::new();
    for _ in 0..TASKS {
        let (limiter, user, limit) = (limiter.clone(), user.clone(), limit.clone());
        let (gate, allowed) = (Arc::clone(&gate), Arc::clone(&allowed));
        joins.push(tokio::spawn(async move {
            gate.wait().await;
            for _ in 0..CALLS_PER_TASK {
                if limiter.check(&user, &limit).await.unwrap().allowed {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    gate.wait().await;
    let start = Instant::now();
    for join in joins {
        join.await.unwrap();
    }
    let elapsed = start.elapsed();
    let interval = limit.emission_interval();
    assert_eq!(interval, Duration::from_millis(600));
    let extra = (elapsed.as_micros() / interval.as_micros()) as u64;
    eprintln!("{} calls in {elapsed:?}", TASKS * CALLS_PER_TASK);
    assert_eq!(
        allowed.load(Ordering::Relaxed),
        100 + extra,
        "elapsed {elapsed:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Tokens

fn hs_config() -> TokenConfig {
    TokenConfig::hs256(SECRET.as_bytes())
        .unwrap()
        .with_audience(["chat"])
        .with_issuer(["ssot-test"])
}

/// Claims of a good token for `sub`, with a fresh `jti`.
fn good_claims(sub: &str) -> Value {
    let now = unix_now();
    json!({
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "jti": format!("t-{:x}", rand::random::<u64>()),
        "aud": "chat",
        "iss": "ssot-test",
    })
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(field);
    } else {
        claims[field] = value;
    }
    claims
}

/// Asserts that `tokens` rejects `token` with `kind`.
async fn rejects(tokens: &Tokens, token: &str, kind: TokenError) {
    assert_eq!(rejection(tokens.verify(token).await), kind, "{token:.40}");
}

/// The subject of a token `tokens` accepts.
async fn accepts(tokens: &Tokens, token: &str) -> String {
    tokens.verify(token).await.unwrap().sub.as_str().to_owned()
}

fn rejection(result: redis_ssot::Result<Claims>) -> TokenError {
    match result {
        Err(Error::Token(kind)) => kind,
        other => panic!("expected a token rejection, got {other:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens with `config` for the audience `chat`.
async fn tokens_for_chat(
    manager: &RedisManager,
    config: redis_ssot::Result<TokenConfig>,
) -> Tokens {
    let config = config.unwrap().with_audience(["chat"]);
    Tokens::new(manager.clone(), config).await.unwrap()
}

async fn token_rejections(manager: &RedisManager) {
    let tokens = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    let now = unix_now();
    let claims = good_claims("dave");
    let good = hs(&claims);
    let verified = tokens.verify(&good).await.unwrap();
    assert_eq!(verified.sub, UserId::new("dave").unwrap());
    assert_eq!(verified.aud, vec!["chat".to_owned()]);
    assert_eq!(verified.iss.as_deref(), Some("ssot-test"));
    assert_eq!(verified.jti.as_deref(), claims["jti"].as_str());
    // Cached: the same answer again.
    assert_eq!(tokens.verify(&good).await.unwrap(), verified);

    // alg none, with and without a signature part.
    let payload = b64(claims.to_string().as_bytes());
    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#] {
        let unsigned = format!("{}.{payload}.", b64(header.as_bytes()));
        rejects(&tokens, &unsigned, TokenError::Unsigned).await;
    }
    // Another algorithm of the same family is not on the allowlist either.
    let hs512 = sign(
        Algorithm::HS512,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &claims,
    );
    rejects(&tokens, &hs512, TokenError::Algorithm).await;

    // HS/RS confusion: the RSA public key used as an HS256 secret.
    let rs_tokens = tokens_for_chat(manager, TokenConfig::rs256_pem(RSA_PUBLIC)).await;
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        &claims,
    );
    rejects(&rs_tokens, &confused, TokenError::KeyConfusion).await;
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let rs_good = sign(Algorithm::RS256, &rsa_key, &good_claims("erin"));
    assert_eq!(accepts(&rs_tokens, &rs_good).await, "erin");
    // ...and an RS256 token is not accepted where HS256 is configured.
    rejects(&tokens, &rs_good, TokenError::KeyConfusion).await;

    // EdDSA by configuration.
    let ed_tokens = tokens_for_chat(manager, TokenConfig::eddsa_pem(ED_PUBLIC)).await;
    let ed_key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let ed_good = sign(Algorithm::EdDSA, &ed_key, &good_claims("frank"));
    assert_eq!(accepts(&ed_tokens, &ed_good).await, "frank");
    rejects(&ed_tokens, &rs_good, TokenError::Algorithm).await;
    assert!(TokenConfig::eddsa_pem(RSA_PUBLIC).is_err());
    assert!(TokenConfig::hs256(b"short").is_err());

    // Time: past exp and future nbf beyond the 5 s leeway; within it passes.
    let expired = hs(&with(good_claims("dave"), "exp", json!(now - 60)));
    rejects(&tokens, &expired, TokenError::Expired).await;
    let in_leeway = hs(&with(good_claims("dave"), "exp", json!(now - 2)));
    assert!(tokens.verify(&in_leeway).await.is_ok());
    let early = hs(&with(good_claims("dave"), "nbf", json!(now + 60)));
    rejects(&tokens, &early, TokenError::NotYetValid).await;

    // Audience and issuer.
    let wrong_aud = hs(&with(good_claims("dave"), "aud", json!(["billing"])));
    rejects(&tokens, &wrong_aud, TokenError::WrongAudience).await;
    let wrong_iss = hs(&with(good_claims("dave"), "iss", json!("someone-else")));
    rejects(&tokens, &wrong_iss, TokenError::WrongIssuer).await;

    // Tampering: a changed signature, a changed payload, another secret.
    let (body, signature) = good.rsplit_once('.').unwrap();
    let mut sig = signature.as_bytes().to_vec();
    sig[4] = if sig[4] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{body}.{}", String::from_utf8(sig).unwrap());
    rejects(&tokens, &tampered, TokenError::BadSignature).await;
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = b64(with(claims.clone(), "sub", json!("mallory"))
        .to_string()
        .as_bytes());
    parts[1] = &forged_payload;
    rejects(&tokens, &parts.join("."), TokenError::BadSignature).await;
    let other_secret = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-0123456789abcdef-0123456789"),
        &claims,
    );
    rejects(&tokens, &other_secret, TokenError::BadSignature).await;

    // Malformed and missing.
    rejects(&tokens, "", TokenError::Missing).await;
    for junk in [
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "....",
        &"x".repeat(10_000),
    ] {
        rejects(&tokens, junk, TokenError::Malformed).await;
    }

    // Claims: sub missing or not a valid user id, exp missing, jti unusable.
    let no_sub = hs(&with(good_claims("dave"), "sub", Value::Null));
    rejects(&tokens, &no_sub, TokenError::Claim("sub")).await;
    for bad_sub in ["a:b", "*", "{x}", ""] {
        let token = hs(&with(good_claims("dave"), "sub", json!(bad_sub)));
        rejects(&tokens, &token, TokenError::Claim("sub")).await;
    }
    let no_exp = hs(&with(good_claims("dave"), "exp", Value::Null));
    rejects(&tokens, &no_exp, TokenError::Claim("exp")).await;
    let bad_jti = hs(&with(good_claims("dave"), "jti", json!("a b*")));
    rejects(&tokens, &bad_jti, TokenError::Claim("jti")).await;

    // Revocation: a verified (cached) token is rejected right after revoke.
    let jti = verified.jti.clone().unwrap();
    tokens.revoke(&jti, verified.exp).await.unwrap();
    rejects(&tokens, &good, TokenError::Revoked).await;
    // The marker lives until the token could no longer pass: exp plus the 5 s leeway.
    let ttl: i64 = manager
        .query(redis::cmd("TTL").arg(format!("ssot:revoked:{jti}")))
        .await
        .unwrap();
    let until = (verified.exp + 5).saturating_sub(unix_now()) as i64;
    assert!(
        (until - 2..=until).contains(&ttl),
        "TTL {ttl}, expected about {until}"
    );
    // A fresh instance without local knowledge asks Redis.
    let fresh = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    rejects(&fresh, &good, TokenError::Revoked).await;

    // issue(): HS256 only, verifiable by any instance with the same secret.
    let user = UserId::new("gina").unwrap();
    let issued = tokens.issue(&user, Duration::from_secs(60)).unwrap();
    let claims = fresh.verify(&issued).await.unwrap();
    assert_eq!(claims.sub, user);
    assert!(claims.jti.is_some());
    assert!(claims.exp >= now + 59);
    let err = rs_tokens.issue(&user, Duration::from_secs(60)).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

/// Token settings from TOML: defaults, errors naming the setting, secrets kept out of Debug.
#[test]
fn token_options_resolve() {
    let parse = |text: &str| toml::from_str::<TokenOptions>(text).unwrap().resolve();
    let config = parse(&format!("secret = \"{SECRET}\"\naudience = [\"chat\"]")).unwrap();
    assert_eq!(config.algorithm(), TokenAlgorithm::HS256);
    assert!(!config.is_strict());
    assert!(!format!("{config:?}").contains(SECRET));
    let options: TokenOptions = toml::from_str(&format!("secret = \"{SECRET}\"")).unwrap();
    assert!(!format!("{options:?}").contains(SECRET));

    let rs = format!(
        "algorithm = \"RS256\"\npublic-key = '''\n{RSA_PUBLIC}'''\nstrict-revocation = true"
    );
    let config = parse(&rs).unwrap();
    assert_eq!(config.algorithm(), TokenAlgorithm::RS256);
    assert!(config.is_strict());

    for (text, key) in [
        ("", "tokens.secret"),
        ("secret = \"short\"", "tokens.secret"),
        ("algorithm = \"EdDSA\"", "tokens.public-key"),
        (
            "algorithm = \"EdDSA\"\npublic-key = \"not a pem\"",
            "tokens.public-key",
        ),
    ] {
        match parse(text) {
            Err(Error::Config { key: got, .. }) => assert_eq!(got, key, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(toml::from_str::<TokenOptions>("algorithm = \"none\"").is_err());
    assert!(toml::from_str::<TokenOptions>("secrett = \"x\"").is_err());
}

/// A revocation made by one process (its own manager) reaches another within a second.
async fn token_revocation_reaches_other_processes(manager: &RedisManager) {
    let other_manager = RedisManager::connect(manager.config().clone())
        .await
        .unwrap();
    assert_ne!(other_manager.instance_id(), manager.instance_id());
    let here = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    let there = Tokens::new(other_manager.clone(), hs_config())
        .await
        .unwrap();
    let mut announced = there.revocations();
    let token = hs(&good_claims("henry"));
    let claims = there.verify(&token).await.unwrap();
    let jti = claims.jti.clone().unwrap();

    let start = Instant::now();
    here.revoke(&jti, claims.exp).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(1), announced.recv())
        .await
        .expect("revocation announced within 1 s")
        .unwrap();
    assert_eq!(got, jti);
    eprintln!(
        "revocation seen by the other process after {:?}",
        start.elapsed()
    );
    rejects(&there, &token, TokenError::Revoked).await;
}

// ---------------------------------------------------------------------------------------
// Isolation (property test)

const HOSTILE: &[&str] = &[
    "a:b",
    "*",
    "a*",
    "{x}",
    "}{",
    "",
    "a b",
    "é",
    "用户",
    "a\0b",
    "a?",
    "[a]",
    "a\\b",
    "ssot:{u:a}",
    "a}:cache:x",
    "\n",
];

/// User ids: mostly valid ones that prefix each other (`a`, `ab`, `a.`, `..`), the hostile
/// list, arbitrary unicode, and a 10 KB id.
fn user_id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[ab.@_-]{1,3}",
        1 => Just("..".to_owned()),
        3 => prop::sample::select(HOSTILE).prop_map(str::to_owned),
        1 => any::<String>(),
        1 => Just("a".repeat(10 * 1024)),
    ]
}

fn is_valid_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 128
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-'))
}

/// A key's type and content, read through the manager (which routes it in a cluster).
async fn fingerprint(manager: &RedisManager, key: &str) -> String {
    let kind: String = manager.query(redis::cmd("TYPE").arg(key)).await.unwrap();
    let content = match kind.as_str() {
        "string" => format!(
            "{:?}",
            manager.query::<Vec<u8>>(redis::cmd("GET").arg(key)).await
        ),
        "hash" => format!(
            "{:?}",
            manager
                .query::<BTreeMap<String, String>>(redis::cmd("HGETALL").arg(key))
                .await
        ),
        "set" => format!(
            "{:?}",
            manager
                .query::<BTreeSet<String>>(redis::cmd("SMEMBERS").arg(key))
                .await
        ),
        "zset" => format!(
            "{:?}",
            manager
                .query::<Vec<(String, f64)>>(
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                )
                .await
        ),
        other => other.to_owned(),
    };
    format!("{kind}:{content}")
}

async fn fingerprints(
    manager: &RedisManager,
    keys: &BTreeSet<String>,
    prefix: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for key in keys.iter().filter(|k| k.starts_with(prefix)) {
        out.insert(key.clone(), fingerprint(manager, key).await);
    }
    out
}

fn expect_invalid<T: std::fmt::Debug>(result: redis_ssot::Result<T>, what: &str) {
    match result {
        Err(Error::Invalid { .. }) => {}
        other => panic!("{what}: expected Error::Invalid, got {other:?}"),
    }
}

/// For pairs of distinct ids: hostile ids are rejected; every operation through user A's
/// scope leaves user B's keys exactly as they were, and creates or deletes only A's keys.
async fn isolation_property(manager: &RedisManager, deployment: &Deployment) {
    let handle = tokio::runtime::Handle::current();
    let case = AtomicU64::new(0);
    let both_valid = AtomicU64::new(0);
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(ProptestConfig {
            cases: 64,
            max_shrink_iters: 32,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let pairs = (user_id(), user_id()).prop_filter("distinct", |(a, b)| a != b);
        runner
            .run(&pairs, |(a, b)| {
                let n = case.fetch_add(1, Ordering::Relaxed);
                if handle.block_on(isolation_case(manager, deployment, &a, &b, n)) {
                    both_valid.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
            .unwrap();
    });
    let (cases, both_valid) = (case.into_inner(), both_valid.into_inner());
    eprintln!("isolation: {cases} cases, {both_valid} with two valid ids");
    // Two valid ids are the cases where isolation is checked in full: a useful share, not
    // one case in the run (the strategy makes about two in five).
    assert!(
        both_valid * 4 >= cases,
        "only {both_valid} of {cases} cases had two valid ids"
    );
}

/// One case; returns whether both ids were valid (so the isolation checks ran in full).
async fn isolation_case(
    manager: &RedisManager,
    deployment: &Deployment,
    a_raw: &str,
    b_raw: &str,
    n: u64,
) -> bool {
    let cache = UserCache::new(manager.clone());
    let sessions = Sessions::new(manager.clone(), MINUTE).unwrap();
    let limiter = RateLimiter::new(manager.clone());
    // A fresh limit name per case, so earlier cases' counts do not matter.
    let limit = Limit::new(&format!("msgs-{n}"), 10, Duration::from_secs(3600));
    let agents = AgentState::new(manager.clone());
    let events = Events::new(manager.clone());
    // The job queue is shared by every user (its keys carry the queue's hash tag); what
    // must not leak is the per-user idempotency of enqueueing.
    let jobs = Jobs::new(manager.clone(), "iso").unwrap();
    let queue_prefix = "ssot:{jobs:iso}:";
    let event = |text: &str| serde_json::value::RawValue::from_string(format!("{text:?}")).unwrap();
    let job = |user: &UserScope| NewJob {
        user: user.user().clone(),
        kind: "chat".into(),
        payload: json!({"case": n}),
        idempotency_key: Some(format!("msg-{n}")),
    };

    let parse = |raw: &str| match UserScope::parse(raw) {
        Ok(scope) => {
            assert!(is_valid_id(raw), "{raw:?} accepted");
            Some(scope)
        }
        Err(err) => {
            assert!(!is_valid_id(raw), "{raw:?} rejected: {err}");
            assert!(matches!(err, Error::Invalid { .. }), "{raw:?}: {err}");
            None
        }
    };
    let (a, b) = (parse(a_raw), parse(b_raw));

    // The victim's data.
    let mut b_session = None;
    let mut b_job = None;
    if let Some(b) = &b {
        cache.set(b, "shared", "b-value", MINUTE).await.unwrap();
        cache.set(b, "only-b", "b", MINUTE).await.unwrap();
        b_session = Some(sessions.create(b, BTreeMap::new()).await.unwrap());
        assert!(limiter.check(b, &limit).await.unwrap().allowed);
        agents
            .put(b, "run-1", 0, &json!({"owner": "b"}))
            .await
            .unwrap();
        events
            .append(b, &format!("b-event-{n}"), &event("for b"))
            .await
            .unwrap();
        b_job = Some(jobs.enqueue(job(b)).await.unwrap().id);
    }
    let before = deployment.keys("*");
    let b_before = match &b {
        Some(b) => fingerprints(manager, &before, b.prefix()).await,
        None => BTreeMap::new(),
    };

    // Everything user A can do.
    if let Some(a) = &a {
        cache.set(a, "shared", "a-value", MINUTE).await.unwrap();
        assert_eq!(
            cache.get(a, "shared").await.unwrap(),
            Some(b"a-value".to_vec())
        );
        assert_eq!(cache.get(a, "only-b").await.unwrap(), None);
        assert!(!cache.exists(a, "only-b").await.unwrap());
        assert!(!cache.delete(a, "only-b").await.unwrap());
        assert!(cache.delete(a, "shared").await.unwrap());
        // B's raw id as a cache name: stays inside A's prefix, or is rejected.
        let named = cache.set(a, b_raw, "x", MINUTE).await;
        if is_valid_name(b_raw) {
            named.unwrap();
            assert!(cache.exists(a, b_raw).await.unwrap());
        } else {
            expect_invalid(named, "hostile cache name");
        }
        cache.set(a, "another", "y", MINUTE).await.unwrap();
        assert!(cache.clear(a).await.unwrap() >= 1);
        assert!(!cache.exists(a, "another").await.unwrap());

        let mine = sessions.create(a, BTreeMap::new()).await.unwrap();
        if let Some(theirs) = &b_session {
            assert_eq!(sessions.get(a, &theirs.id).await.unwrap(), None);
            assert_eq!(sessions.touch(a, &theirs.id).await.unwrap(), None);
            assert!(!sessions.revoke(a, &theirs.id).await.unwrap());
        }
        let listed = sessions.list(a).await.unwrap();
        assert_eq!(
            listed.iter().map(|s| &s.id).collect::<Vec<_>>(),
            vec![&mine.id]
        );
        assert_eq!(sessions.revoke_all(a).await.unwrap(), 1);

        let d = limiter.check(a, &limit).await.unwrap();
        assert!(
            d.allowed && d.remaining == 9,
            "B's request counted for A: {d:?}"
        );

        // B's run of the same name is invisible: A starts its own at version 1.
        assert!(agents.get::<Value>(a, "run-1").await.unwrap().is_none());
        assert_eq!(
            agents
                .put(a, "run-1", 0, &json!({"owner": "a"}))
                .await
                .unwrap(),
            1
        );
        assert!(agents.delete(a, "run-1").await.unwrap());
        assert!(!agents.delete(a, "run-1").await.unwrap());

        // A's log holds A's events only (ids recur across cases, so earlier ones may be
        // there); A's append lands in A's log alone.
        let names = |log: Vec<redis_ssot::stores::events::Event>| -> Vec<String> {
            log.into_iter().map(|e| e.name).collect()
        };
        let a_before = names(
            events
                .replay_after(a, EventId::ZERO, 1000)
                .await
                .unwrap()
                .events,
        );
        assert!(
            !a_before.contains(&format!("b-event-{n}")),
            "B's event in A's log"
        );
        let mine = events
            .append(a, &format!("a-event-{n}"), &event("for a"))
            .await
            .unwrap();
        let replay = events
            .replay_after(a, EventId::ZERO, 1000)
            .await
            .unwrap()
            .events;
        assert_eq!(replay.last().map(|e| e.id), Some(mine));
        assert_eq!(replay.len(), a_before.len() + 1);

        // The same client message id as B's is a new job for A, not B's duplicate.
        let enqueued = jobs.enqueue(job(a)).await.unwrap();
        assert!(!enqueued.duplicate, "A's job taken for B's duplicate");
        assert_ne!(Some(&enqueued.id), b_job.as_ref());
        assert!(jobs.enqueue(job(a)).await.unwrap().duplicate);
    }

    let after = deployment.keys("*");
    for changed in before.symmetric_difference(&after) {
        let own = a.as_ref().is_some_and(|a| {
            changed.starts_with(a.prefix())
                || *changed == format!("{queue_prefix}idem:{}:msg-{n}", a.user().as_str())
                // Created by A's first job when no valid B enqueued before it.
                || *changed == format!("{queue_prefix}stream")
                || *changed == format!("{queue_prefix}users")
        });
        assert!(
            own,
            "{a_raw:?} changed a key outside its prefix: {changed:?}"
        );
    }
    if let Some(b) = &b {
        // B's idempotency marker still names B's job.
        let marker = format!("{queue_prefix}idem:{}:msg-{n}", b.user().as_str());
        assert!(after.contains(&marker), "{marker} missing");
        assert_eq!(
            manager
                .query::<Option<String>>(redis::cmd("GET").arg(&marker))
                .await
                .unwrap(),
            b_job
        );
    }
    if let Some(b) = &b {
        assert_eq!(
            fingerprints(manager, &after, b.prefix()).await,
            b_before,
            "{a_raw:?} changed keys of {b_raw:?}"
        );
        assert_eq!(
            cache.get(b, "shared").await.unwrap(),
            Some(b"b-value".to_vec())
        );
        assert_eq!(sessions.list(b).await.unwrap().len(), 1);
        let run = agents.get::<Value>(b, "run-1").await.unwrap().unwrap();
        assert_eq!((run.version, run.value), (1, json!({"owner": "b"})));
        let b_events: Vec<String> = events
            .replay_after(b, EventId::ZERO, 1000)
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(b_events.contains(&format!("b-event-{n}")));
        assert!(
            !b_events.contains(&format!("a-event-{n}")),
            "A's event in B's log"
        );
        cache.clear(b).await.unwrap();
        sessions.revoke_all(b).await.unwrap();
        agents.delete(b, "run-1").await.unwrap();
    }
    a.is_some() && b.is_some()
}

/// Whether a cache entry name is allowed, written from the documented rule (1-256
/// characters of `[A-Za-z0-9_.:/@-]`), not from the library's own check.
fn is_valid_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/@-".contains(&b))
}

// ---------------------------------------------------------------------------------------
// Restart

/// Runs a call that must fail; returns how long it took and its error.
async fn fails_fast<T: std::fmt::Debug>(
    call: impl Future<Output = redis_ssot::Result<T>>,
) -> (Duration, Error) {
    let start = Instant::now();
    let result = call.await;
    (start.elapsed(), result.unwrap_err())
}

/// Every store fails fast while Redis is down and works again after it is back, without
/// being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_auth_stores_survive_a_restart() {
    let mut server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let cache = UserCache::new(manager.clone());
    let sessions = Sessions::new(manager.clone(), MINUTE).unwrap();
    let limiter = RateLimiter::new(manager.clone());
    let tokens = Tokens::new(manager.clone(), hs_config()).await.unwrap();
    let strict = Tokens::new(manager.clone(), hs_config().strict(true))
        .await
        .unwrap();
    let ivan = scope("ivan");
    let limit = Limit::new("msgs", 1000, MINUTE);
    let token = hs(&good_claims("ivan"));
    let revoked_token = hs(&good_claims("ivan"));
    let revoked = tokens.verify(&revoked_token).await.unwrap();
    tokens
        .revoke(revoked.jti.as_deref().unwrap(), revoked.exp)
        .await
        .unwrap();
    cache.set(&ivan, "k", "v", MINUTE).await.unwrap();
    sessions.create(&ivan, BTreeMap::new()).await.unwrap();
    limiter.check(&ivan, &limit).await.unwrap();
    tokens.verify(&token).await.unwrap();
    strict.verify(&token).await.unwrap();

    server.kill();
    let budget = manager.config().command_timeout + Duration::from_millis(200);
    for round in 0..3 {
        let checks = [
            ("cache get", fails_fast(cache.get(&ivan, "k")).await),
            (
                "cache set",
                fails_fast(cache.set(&ivan, "k", "v", MINUTE)).await,
            ),
            (
                "sessions",
                fails_fast(sessions.create(&ivan, BTreeMap::new())).await,
            ),
            ("rate limit", fails_fast(limiter.check(&ivan, &limit)).await),
            (
                "revoke",
                fails_fast(tokens.revoke("some-jti", unix_now() + 60)).await,
            ),
            ("strict verify", fails_fast(strict.verify(&token)).await),
        ];
        for (what, (took, err)) in checks {
            assert!(err.is_transient(), "round {round}, {what}: {err}");
            assert!(took <= budget, "round {round}, {what} took {took:?}");
        }
        // Best effort: a good token still passes, a locally known revocation still holds.
        assert!(tokens.verify(&token).await.is_ok());
        rejects(&tokens, &revoked_token, TokenError::Revoked).await;
    }

    server.restart();
    eventually(Duration::from_secs(5), "cache works again", || {
        let (cache, ivan) = (cache.clone(), ivan.clone());
        async move { cache.set(&ivan, "k", "v2", MINUTE).await.is_ok() }
    })
    .await;
    assert_eq!(cache.get(&ivan, "k").await.unwrap(), Some(b"v2".to_vec()));
    let session = sessions.create(&ivan, BTreeMap::new()).await.unwrap();
    assert_eq!(sessions.list(&ivan).await.unwrap(), vec![session]);
    assert!(limiter.check(&ivan, &limit).await.unwrap().allowed);
    strict.verify(&token).await.unwrap();

    // Revocations flow again once the subscriber is back.
    eventually(Duration::from_secs(5), "subscriber back", || {
        let m = manager.clone();
        async move { m.health().subscriber_up }
    })
    .await;
    let mut announced = strict.revocations();
    let claims = tokens.verify(&token).await.unwrap();
    tokens
        .revoke(claims.jti.as_deref().unwrap(), claims.exp)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(1), announced.recv())
        .await
        .expect("revocation announced after the restart")
        .unwrap();
    assert_eq!(Some(got.as_str()), claims.jti.as_deref());
    rejects(&strict, &token, TokenError::Revoked).await;
}
