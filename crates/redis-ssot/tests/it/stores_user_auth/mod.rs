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

mod cache_sessions;
mod isolation;
mod rate_limit;
mod restart;
mod tokens;

use cache_sessions::*;
use isolation::*;
use rate_limit::*;
use tokens::*;

pub(super) const SECRET: &str = "test-secret-0123456789abcdef-0123456789";
pub(super) const RSA_PRIVATE: &str = include_str!("../keys/rsa-private.pem");
pub(super) const RSA_PUBLIC: &str = include_str!("../keys/rsa-public.pem");
pub(super) const ED_PRIVATE: &str = include_str!("../keys/ed25519-private.pem");
pub(super) const ED_PUBLIC: &str = include_str!("../keys/ed25519-public.pem");
pub(super) const MINUTE: Duration = Duration::from_secs(60);

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

pub(super) fn scope(raw: &str) -> UserScope {
    UserScope::parse(raw).unwrap()
}

/// A user id no other part of the run uses.
pub(super) fn fresh_user(what: &str) -> UserScope {
    scope(&format!("{what}-{:x}", rand::random::<u32>()))
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
