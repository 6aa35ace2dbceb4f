//! Manager settings and polling shared by the test suites of every crate.

use std::future::Future;
use std::time::Duration;

/// Manager settings (TOML) that notice faults within a second: 400 ms command and connect
/// budgets, a health check every 100 ms, reconnects after 20-200 ms, and a breaker that
/// opens after 5 calls for 1 s. A suite that needs other budgets changes fields of the
/// parsed options.
pub fn fast_manager_toml(url: &str, app: &str) -> String {
    format!(
        r#"
        url = "{url}"
        app = "{app}"
        command-timeout-ms = 400
        connect-timeout-ms = 400
        health-interval-ms = 100
        reconnect-min-delay-ms = 20
        reconnect-max-delay-ms = 200
        [breaker]
        minimum-calls = 5
        open-duration-ms = 1000
        "#
    )
}

/// Polls `check` every 20 ms until it is true; panics naming `what` once `within` passed.
/// Returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
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
