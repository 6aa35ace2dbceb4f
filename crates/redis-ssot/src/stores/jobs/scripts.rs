//! The queue's scripts (`stores/lua/jobs_*.lua`). Each keeps one partition's keys in one
//! hash tag (the stream, and the dead letters, the per-user counts or the idempotency
//! marker), so it is legal on a Cluster. `jobs_count.lua` defines `uncount`, which every
//! script that deletes a job calls; `jobs_bury.lua` the `bury` function fail and reclaim
//! share; `jobs_status.lua` the `set_status` that records each job's state.

use std::sync::LazyLock;

use redis::Script;

use crate::stores::lua::lua;

/// Adds a job once per idempotency key, unless the partition or its user's share is full.
pub(super) static ENQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("jobs_enqueue")));
/// Marks a job `running` (from `queued` or `failed` only).
pub(super) static START: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("jobs_start")));
/// Acknowledges and deletes a job.
pub(super) static ACK: LazyLock<Script> =
    LazyLock::new(|| Script::new(lua!("jobs_status", "jobs_count", "jobs_ack")));
/// Records a failed delivery: retry, or dead-letter on the last one.
pub(super) static FAIL: LazyLock<Script> =
    LazyLock::new(|| Script::new(lua!("jobs_status", "jobs_count", "jobs_bury", "jobs_fail")));
/// Takes over idle jobs, dead-lettering those delivered too often.
pub(super) static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        "jobs_status",
        "jobs_count",
        "jobs_bury",
        "jobs_reclaim"
    ))
});
