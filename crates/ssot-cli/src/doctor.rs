//! `ssot doctor`: the effective configuration and a health report.

use std::time::{Duration, Instant};

use redis_ssot::redis;
use redis_ssot::{DomainHealth, RedisConfig, RedisManager};
use serde::Serialize;

/// What the doctor found.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    healthy: bool,
    reason: String,
    config: ConfigView,
    reachable: bool,
    latency_ms: Option<f64>,
    server_version: Option<String>,
    breaker: String,
    connections: Vec<String>,
    /// Each failure domain: the server, or each master of a Cluster.
    domains: Vec<DomainHealth>,
}

#[derive(Debug, Serialize)]
struct ConfigView {
    urls: Vec<String>,
    cluster: bool,
    text: String,
}

/// Connects with `config`, checks, and returns the report (never fails: problems are
/// findings). `effective` is the effective configuration of every table, as TOML.
pub(crate) async fn examine(config: RedisConfig, effective: String) -> Report {
    let view = ConfigView {
        urls: config.redacted_urls(),
        cluster: config.is_cluster(),
        text: effective,
    };
    let budget = config.connect_timeout + Duration::from_millis(500);
    let manager = match RedisManager::new(config) {
        Ok(m) => m,
        Err(err) => return unhealthy(view, err.to_string()),
    };
    if !manager.wait_ready(budget).await {
        let urls = view.urls.join(",");
        let reason = match manager.health().last_error {
            Some(cause) => format!(
                "cannot connect to {urls} within {budget:?}: {} ({cause})",
                connect_failure(&cause)
            ),
            None => format!("cannot connect to {urls} within {budget:?}: no answer"),
        };
        let mut report = unhealthy(view, reason);
        report.breaker = manager.breaker_state().as_str().to_owned();
        return report;
    }
    // The first health round fills in the failure domains (each master's PING).
    let mut rounds = manager.watch_health();
    rounds.borrow_and_update();
    let _ = tokio::time::timeout(budget, rounds.changed()).await;
    let start = Instant::now();
    let ping = manager.query::<String>(&redis::cmd("PING")).await;
    let latency = start.elapsed();
    let info: Option<String> = manager.query(redis::cmd("INFO").arg("server")).await.ok();
    let server_version = info.as_deref().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_owned())
    });
    let health = manager.health();
    let (healthy, reason) = match &ping {
        Ok(_) if health.breaker == redis_ssot::BreakerState::Closed => {
            (true, "redis answers".to_owned())
        }
        Ok(_) => (
            false,
            format!("circuit breaker is {}", health.breaker.as_str()),
        ),
        Err(err) => (false, format!("PING failed: {err}")),
    };
    Report {
        healthy,
        reason,
        config: view,
        reachable: ping.is_ok(),
        latency_ms: ping.is_ok().then_some(latency.as_secs_f64() * 1e3),
        server_version,
        breaker: manager.breaker_state().as_str().to_owned(),
        connections: manager.open_connections(),
        domains: manager.domains(),
    }
}

/// What kind of failure a connection error is, in the words an operator searches for.
fn connect_failure(cause: &str) -> &'static str {
    let cause = cause.to_ascii_lowercase();
    let kinds: [(&[&str], &str); 5] = [
        (&["refused"], "connection refused"),
        (
            &["noauth", "wrongpass", "auth", "invalid password"],
            "authentication failed",
        ),
        (&["certificate", "tls", "handshake", "ssl"], "TLS failed"),
        (
            &["lookup", "name or service", "dns", "resolve"],
            "DNS lookup failed",
        ),
        (&["timed out", "timeout"], "timed out"),
    ];
    kinds
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| cause.contains(n)))
        .map_or("failed", |(_, kind)| kind)
}

fn unhealthy(config: ConfigView, reason: String) -> Report {
    Report {
        healthy: false,
        reason,
        config,
        reachable: false,
        latency_ms: None,
        server_version: None,
        breaker: "closed".to_owned(),
        connections: Vec::new(),
        domains: Vec::new(),
    }
}

impl Report {
    /// True when Redis answered and the breaker is closed.
    pub(crate) fn healthy(&self) -> bool {
        self.healthy
    }

    /// Human-readable form.
    pub(crate) fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str("# effective configuration (secrets redacted)\n");
        out.push_str(&self.config.text);
        out.push_str("\n\n# health\n");
        out.push_str(&format!("reachable = {}\n", self.reachable));
        if let Some(ms) = self.latency_ms {
            out.push_str(&format!("latency-ms = {ms:.2}\n"));
        }
        if let Some(v) = &self.server_version {
            out.push_str(&format!("server-version = {v:?}\n"));
        }
        out.push_str(&format!("breaker = {:?}\n", self.breaker));
        out.push_str(&format!("connections = {:?}\n", self.connections));
        for domain in &self.domains {
            out.push_str(&format!("\n[[domain]]\nnode = {:?}\n", domain.node));
            out.push_str(&format!("breaker = {:?}\n", domain.breaker.as_str()));
            out.push_str(&format!("reachable = {}\n", domain.reachable));
            if let Some(ms) = domain.latency_ms {
                out.push_str(&format!("latency-ms = {ms:.2}\n"));
            }
            if domain.slots > 0 {
                out.push_str(&format!("slots = {}\n", domain.slots));
            }
            if let Some(err) = &domain.last_error {
                out.push_str(&format!("last-error = {err:?}\n"));
            }
        }
        let verdict = if self.healthy { "healthy" } else { "unhealthy" };
        out.push_str(&format!("\n{verdict}: {}\n", self.reason));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::connect_failure;

    #[test]
    fn connect_failures_are_named() {
        for (cause, kind) in [
            ("Connection refused (os error 111)", "connection refused"),
            (
                "WRONGPASS invalid username-password pair",
                "authentication failed",
            ),
            ("invalid peer certificate: UnknownIssuer", "TLS failed"),
            (
                "failed to lookup address information: Name or service not known",
                "DNS lookup failed",
            ),
            ("connect timed out", "timed out"),
            ("something else", "failed"),
        ] {
            assert_eq!(connect_failure(cause), kind, "{cause}");
        }
    }
}
