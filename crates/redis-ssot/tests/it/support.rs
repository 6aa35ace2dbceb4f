//! Shared helpers: fast settings for tests and polling.

use std::time::Duration;

use redis_ssot::{RedisConfig, RedisManager, RedisOptions};

/// Settings with short budgets so fault tests run in seconds.
pub(crate) fn fast_config(url: &str) -> RedisConfig {
    fast_options(url).resolve().unwrap()
}

/// [`fast_config`] before validation, to add to.
pub(crate) fn fast_options(url: &str) -> RedisOptions {
    RedisOptions::from_toml(&format!(
        r#"
        url = "{url}"
        app = "test"
        command-timeout-ms = 300
        connect-timeout-ms = 300
        health-interval-ms = 100
        reconnect-min-delay-ms = 20
        reconnect-max-delay-ms = 200
        blocking-pool-size = 2
        [breaker]
        window-size = 20
        minimum-calls = 5
        open-duration-ms = 1000
        slow-call-duration-ms = 250
        half-open-calls = 2
        "#
    ))
    .unwrap()
}

/// A connected manager with fast settings.
pub(crate) async fn connect(url: &str) -> RedisManager {
    RedisManager::connect(fast_config(url))
        .await
        .expect("manager connects")
}

/// Polls `check` every 20 ms until it is true or `within` passed; returns the time it took.
pub(crate) async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Alive tasks of the current runtime.
pub(crate) fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}
