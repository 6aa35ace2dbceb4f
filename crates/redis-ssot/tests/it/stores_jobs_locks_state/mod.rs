//! AgentState, Locks and Jobs against a real server and a real 3-master cluster: each part
//! a test on both, plus a restart of a single server under every store.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_ssot::stores::agent_state::{AgentState, Versioned};
use redis_ssot::stores::jobs::{FailOutcome, Job, Jobs, JobsConfig, NewJob};
use redis_ssot::stores::lock::{Lease, Locks};
use redis_ssot::{Error, RedisConfig, RedisManager, UserId, UserScope};
use serde_json::json;
use ssot_testkit::RedisServer;

use crate::deployments::{Deployment, parts};
use crate::support::{connect, eventually, fast_config};

mod agent_state;
mod jobs;
mod locks;
mod restart;

use agent_state::*;
use jobs::*;
use locks::*;

/// The test settings with budgets loose enough for 100 concurrent tasks on a small machine:
/// this suite tests the stores, not the breaker.
pub(super) fn suite_config(url: &str) -> RedisConfig {
    let mut config = fast_config(url);
    config.command_timeout = Duration::from_secs(3);
    config.connect_timeout = Duration::from_secs(3);
    config.blocking_pool_size = 4;
    config.breaker.slow_call_duration = Duration::from_secs(3);
    config
}

/// A manager with [`suite_config`].
pub(super) async fn suite_manager(url: &str) -> RedisManager {
    RedisManager::connect(suite_config(url))
        .await
        .expect("manager connects")
}

parts! {
    manager, deployment, suite_manager;
    agent_state_cas => agent_state_cas(&manager);
    agent_state_isolation => agent_state_isolation(&manager, &deployment);
    lock_exclusion_and_fencing => lock_exclusion_and_fencing(&manager);
    lock_expired_and_foreign_holders => lock_expired_and_foreign_holders(&manager);
    lock_with_lock => lock_with_lock(&manager);
    jobs_reclaim_after_worker_death => jobs_reclaim_after_worker_death(&manager);
    jobs_idempotent_enqueue => jobs_idempotent_enqueue(&manager);
    jobs_dead_letter_after_failures => jobs_dead_letter_after_failures(&manager);
    jobs_dead_letter_after_repeated_deaths => jobs_dead_letter_after_repeated_deaths(&manager);
    jobs_states => jobs_states(&manager);
}

pub(super) fn scope(user: &str) -> UserScope {
    UserScope::parse(user).unwrap()
}
