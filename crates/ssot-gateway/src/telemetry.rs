//! The process's Prometheus recorder: installed once, every family described, latencies as
//! histograms.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds (seconds) of every `*_seconds` family: local Redis round trips sit in the
/// sub-millisecond buckets, a publish through a busy Redis in the tens of milliseconds, and
/// the last bounds catch call timeouts.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the process's Prometheus recorder once; later gateways in the process share it.
pub(crate) fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .and_then(PrometheusBuilder::install_recorder);
    match builder {
        Ok(handle) => {
            // Descriptions go to the recorder current when they are made: after installing.
            redis_ssot::describe_metrics();
            describe_gateway_metrics();
            Some(handle)
        }
        Err(err) => {
            tracing::warn!(cause = %err, "metrics recorder not installed; /metrics disabled");
            None
        }
    }
}

fn describe_gateway_metrics() {
    describe_gauge!("ssot_gateway_connections", "Open WebSocket connections");
    describe_counter!(
        "ssot_gateway_events_delivered_total",
        "Events written to sockets, live and replayed"
    );
    describe_counter!(
        "ssot_gateway_events_replayed_total",
        "Events written to sockets from history on resume"
    );
    describe_counter!(
        "ssot_gateway_events_published_total",
        "Events accepted by POST /v1/users/{id}/events"
    );
    describe_histogram!(
        "ssot_gateway_publish_seconds",
        Unit::Seconds,
        "Duration of an accepted publish, from request to the event's append"
    );
    describe_counter!(
        "ssot_gateway_rejected_handshakes_total",
        "WebSocket handshakes refused (token, origin, limits)"
    );
    describe_counter!(
        "ssot_gateway_budget_refusals_total",
        "Requests or frames refused by a per-user or per-socket budget, by `budget`"
    );
    describe_counter!(
        "ssot_gateway_closes_total",
        "Closed WebSocket connections, by close `code` (unknown client codes as `other`)"
    );
}
