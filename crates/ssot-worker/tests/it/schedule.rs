//! Periodic jobs: the heartbeat's record shows every run it is handed, so a tick run twice or
//! a stale token cannot hide. Three `ssot worker` processes running one job every second for
//! 30 s are in `crates/ssot-cli/tests/cli/worker.rs`.

use ssot_testkit::RedisServer;
use ssot_worker::{Heartbeat, ScheduleOptions, ScheduledJob, Tick, Worker};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_records_refused_runs_too() {
    let server = RedisServer::start();
    let redis = manager(&server.url()).await;
    let heartbeat = Heartbeat::new(redis.clone());
    let tick = |tick: u64, token: u64, worker: &str| Tick {
        name: "hb".into(),
        tick,
        token,
        worker: worker.into(),
    };
    // In order; then a stale holder of tick 11 (older token); then tick 12 twice.
    let handed = [
        (tick(10, 5, "a"), true),
        (tick(11, 7, "b"), true),
        (tick(11, 6, "c"), false),
        (tick(12, 8, "a"), true),
        (tick(12, 8, "b"), false),
    ];
    for (run, accepted) in &handed {
        let outcome = heartbeat.run(run).await;
        assert_eq!(outcome.is_ok(), *accepted, "{run:?}: {outcome:?}");
    }
    let recorded = heartbeat.runs("hb", 100).await.unwrap();
    let seen: Vec<(u64, u64, &str, bool)> = recorded
        .iter()
        .map(|r| (r.tick, r.token, r.worker.as_str(), r.refused))
        .collect();
    assert_eq!(
        seen,
        [
            (10, 5, "a", false),
            (11, 7, "b", false),
            (11, 6, "c", true),
            (12, 8, "a", false),
            (12, 8, "b", true),
        ]
    );
    assert!(heartbeat.runs("other", 100).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_naming_an_unknown_job_is_refused() {
    let server = RedisServer::start();
    let mut opts = options("x");
    opts.schedule = Some(vec![ScheduleOptions {
        name: Some("nightly".into()),
        every_ms: Some(1000),
        lease_ms: None,
    }]);
    let err = Worker::new(opts.resolve().unwrap(), manager(&server.url()).await)
        .run(std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: worker.schedule[0].name: no scheduled job \"nightly\" (known: heartbeat)"
    );
}
