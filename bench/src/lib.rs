//! ssot-bench: the load generators behind `BENCHMARKS.md`.
//!
//! Every figure comes from a closed loop: `concurrency` tasks in one process, each sending
//! one command and waiting for its reply before sending the next, for a fixed time. Each
//! measured cell is printed as one JSON line ([`Cell`]); `bench/manager/run.sh` collects the
//! lines of every contender (the Python one writes the same shape) and [`report`] turns them
//! into the Markdown table.
//!
//! # Layout
//! - [`load`]: the closed-loop driver and its latency statistics ([`Cell`], [`Stats`]);
//!   [`load::drive_items`] drives any [`Workload`] (the `stores` binary's store calls).
//! - [`contenders`]: GET/SET through the manager, through a raw redis-rs
//!   `MultiplexedConnection`, and through `redis-benchmark` as a subprocess.
//! - [`metrics`]: the gateway's metrics recorder, installed unless a run is named metrics-off.
//! - [`report`]: JSON lines in, Markdown table and ratios out.
//! - [`chaos`]: randomized faults against real gateways, worker and Redis, with exact
//!   accounting of every acknowledged event and chat message (`bench/chaos/run.sh`).

pub mod chaos;
pub mod contenders;
pub mod load;
pub mod metrics;
pub mod report;

pub use contenders::{Contender, RunSettings, run};
pub use load::{Cell, Measured, Op, Stats, Workload};
pub use metrics::Metrics;

/// An HS256 JWT for `user` valid 6 hours, as `ssot serve` accepts with `SSOT_JWT_SECRET` =
/// `secret` (the load generators' users).
pub fn hs256_token(secret: &str, user: &str) -> String {
    let exp = redis_ssot::clock::unix_secs() + 6 * 3600;
    let claims = serde_json::json!({ "sub": user, "exp": exp });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("an HS256 token encodes")
}
