//! Shared helpers: fast settings for tests; polling comes from the kit.

use redis_ssot::{RedisConfig, RedisManager, RedisOptions};
pub(crate) use ssot_testkit::eventually;
use ssot_testkit::fast_manager_toml;

/// Settings with short budgets so fault tests run in seconds.
pub(crate) fn fast_config(url: &str) -> RedisConfig {
    fast_options(url).resolve().unwrap()
}

/// [`fast_config`] before validation, to add to: the kit's fast settings with tighter
/// budgets, a window of 20 calls and a blocking pool of 2.
pub(crate) fn fast_options(url: &str) -> RedisOptions {
    let mut options = RedisOptions::from_toml(&fast_manager_toml(url, "test")).unwrap();
    options.command_timeout_ms = Some(300);
    options.connect_timeout_ms = Some(300);
    options.blocking_pool_size = Some(2);
    let breaker = options.breaker.as_mut().unwrap();
    breaker.window_size = Some(20);
    breaker.slow_call_duration_ms = Some(250);
    breaker.half_open_calls = Some(2);
    options
}

/// A connected manager with fast settings.
pub(crate) async fn connect(url: &str) -> RedisManager {
    RedisManager::connect(fast_config(url))
        .await
        .expect("manager connects")
}

/// Alive tasks of the current runtime.
pub(crate) fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Appends once the user's shard serves again (after a failover), retrying transient errors.
pub(crate) async fn append_when_served(
    events: &redis_ssot::stores::events::Events,
    user: &redis_ssot::UserScope,
    data: &serde_json::value::RawValue,
) -> redis_ssot::stores::events::EventId {
    loop {
        match events.append(user, "tick", data).await {
            Ok(id) => return id,
            Err(err) => {
                assert!(err.is_transient(), "{err}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
