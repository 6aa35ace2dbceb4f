//! The manager's metric families, described once so an exporter can print `# HELP` lines.

/// Registers the description (and unit) of every metric family this crate records with the
/// process's current `metrics` recorder. Call it once, after the recorder is installed; a
/// family recorded before it is still exported, only without its help text.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "ssot_redis_up",
        "1 when the last health check (PING) succeeded; per failure domain with `domain`"
    );
    describe_histogram!(
        "ssot_redis_ping_seconds",
        Unit::Seconds,
        "Round trip of the health monitor's PING"
    );
    describe_gauge!(
        "ssot_breaker_state",
        "Circuit breaker state: 0 closed, 1 half-open, 2 open; per failure domain with `domain`"
    );
    describe_counter!(
        "ssot_breaker_transitions_total",
        "Circuit breaker transitions, by target state `to` (and `domain` in Cluster)"
    );
    describe_counter!(
        "ssot_redis_calls_total",
        "Calls through the manager, by `outcome` (ok, error, timeout, down, rejected, bulk_busy)"
    );
    describe_histogram!(
        "ssot_redis_call_seconds",
        Unit::Seconds,
        "Duration of a call through the manager, by connection `role`"
    );
    describe_gauge!(
        "ssot_redis_link_up",
        "1 while the named connection (`role`) is connected"
    );
    describe_counter!(
        "ssot_redis_reconnects_total",
        "Reconnections of a named connection, by `role`"
    );
    describe_counter!(
        "ssot_redis_not_replicated_total",
        "Acknowledged writes that WAIT reported as not replicated in time"
    );
    describe_counter!(
        "ssot_deprecated_alias_used_total",
        "Calls of a deprecated manager entry point, by `alias`"
    );
}
