//! What operators see: the health monitor's metrics and log events, and the one warning of
//! each deprecated alias.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use redis_ssot::BreakerState;
use ssot_testkit::RedisServer;

use crate::support::{connect, eventually};

/// Log lines written by a `tracing` subscriber, for assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        let sink = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide recorder and log capture (the test using them runs in a process of its
/// own, so no other test's manager records into them).
fn global() -> &'static (PrometheusHandle, Captured) {
    static GLOBAL: OnceLock<(PrometheusHandle, Captured)> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .expect("the only metrics recorder of this test binary");
        let logs = Captured::default();
        tracing::subscriber::set_global_default(logs.subscriber())
            .expect("the only global subscriber of this test binary");
        (handle, logs)
    })
}

/// The value of the first sample of `name` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let rest = series.strip_prefix(name)?;
        let matches = (rest.is_empty() && labels.is_empty())
            || (rest.starts_with('{') && rest.contains(labels));
        matches.then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_monitor_exports_metrics_and_logs_each_transition() {
    ssot_testkit::own_process!(health_monitor_exports_metrics_and_logs_each_transition);
    let (metrics, logs) = global();
    let mut server = RedisServer::start();
    let manager = connect(&server.url()).await;
    eventually(Duration::from_secs(3), "healthy and exported", || async {
        let text = metrics.render();
        manager.health().healthy
            && sample(&text, "ssot_redis_up", "") == Some(1.0)
            && sample(&text, "ssot_redis_ping_seconds_count", "").unwrap_or(0.0) >= 1.0
    })
    .await;
    let text = metrics.render();
    assert_eq!(sample(&text, "ssot_breaker_state", ""), Some(0.0), "{text}");
    assert_eq!(
        sample(&text, "ssot_redis_link_up", r#"role="command""#),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "ssot_redis_calls_total", r#"outcome="ok""#).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(logs.text().contains("redis healthy"), "{}", logs.text());

    server.kill();
    let mut breaker = manager.watch_breaker();
    tokio::time::timeout(
        Duration::from_secs(5),
        breaker.wait_for(|s| *s == BreakerState::Open),
    )
    .await
    .expect("the breaker opens while Redis is gone")
    .unwrap();
    eventually(Duration::from_secs(3), "outage exported", || async {
        let text = metrics.render();
        sample(&text, "ssot_redis_up", "") == Some(0.0)
            && sample(&text, "ssot_breaker_state", "") == Some(BreakerState::Open.gauge())
    })
    .await;
    let text = metrics.render();
    assert!(
        sample(&text, "ssot_breaker_transitions_total", r#"to="open""#).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "ssot_redis_link_up", r#"role="command""#),
        Some(0.0),
        "{text}"
    );
    let during = logs.text();
    for line in [
        "redis connection down",
        "redis unhealthy",
        "circuit breaker transition",
    ] {
        assert!(during.contains(line), "missing {line:?} in\n{during}");
    }

    server.restart();
    eventually(Duration::from_secs(5), "recovery exported", || async {
        let text = metrics.render();
        manager.health().healthy
            && sample(&text, "ssot_redis_up", "") == Some(1.0)
            && sample(&text, "ssot_breaker_state", "") == Some(0.0)
    })
    .await;
    let text = metrics.render();
    assert!(
        sample(&text, "ssot_redis_reconnects_total", r#"role="command""#).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    let after = logs.text();
    assert!(
        after[during.len()..].contains("redis connection restored")
            && after[during.len()..].contains("redis healthy"),
        "recovery not logged:\n{}",
        &after[during.len()..]
    );
    assert!(manager.health().reconnects >= 1);
    // Opening is a WARN; half-open and closed are the recovery, at INFO.
    let transitions: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("circuit breaker transition"))
        .collect();
    assert!(transitions.len() >= 3, "{transitions:?}");
    for line in &transitions {
        let level = if line.contains(r#"to="open""#) {
            " WARN "
        } else {
            " INFO "
        };
        assert!(line.contains(level), "{line}");
    }
    assert!(
        transitions.iter().any(|l| l.contains(r#"to="closed""#)),
        "{transitions:?}"
    );
    // Durations are rounded to hundredths of a millisecond.
    let latencies: Vec<&str> = after
        .lines()
        .filter_map(|l| l.split("latency_ms=").nth(1)?.split_whitespace().next())
        .collect();
    assert!(latencies.len() >= 2, "{after}");
    for value in latencies {
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            decimals <= 2 && value.parse::<f64>().is_ok(),
            "latency_ms={value}"
        );
    }
}

#[test]
#[allow(deprecated)]
fn each_deprecated_alias_warns_once_per_process() {
    ssot_testkit::own_process!(each_deprecated_alias_warns_once_per_process);
    let logs = Captured::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    // Nothing here talks to Redis: the aliases only hand out the process-wide manager.
    redis_ssot::init(crate::support::fast_config("redis://127.0.0.1:1")).unwrap();
    // The aliases warn on the calling thread; a thread-local subscriber sees exactly theirs.
    tracing::subscriber::with_default(logs.subscriber(), || {
        for _ in 0..3 {
            redis_ssot::compat::auth_manager();
            redis_ssot::compat::cache_manager();
        }
        redis_ssot::compat::get_redis_manager();
    });
    let text = logs.text();
    let warnings = |alias: &str| {
        text.lines()
            .filter(|l| l.contains("WARN") && l.contains("deprecated") && l.contains(alias))
            .count()
    };
    assert_eq!(warnings("auth_manager"), 1, "{text}");
    assert_eq!(warnings("cache_manager"), 1, "{text}");
    assert_eq!(warnings("get_redis_manager"), 1, "{text}");
    assert!(
        text.contains("redis_ssot::manager()"),
        "names the replacement: {text}"
    );
}
