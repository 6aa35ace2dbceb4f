//! What the worker logs about Redis: nothing alarming while its connection comes up, one
//! WARN when Redis stays out of reach past the connect timeout.

use std::sync::Mutex;
use std::time::Duration;

use redis_ssot::stores::jobs::Jobs;
use redis_ssot::{RedisManager, RedisOptions};
use ssot_testkit::RedisServer;

use crate::support::*;

/// Log lines written by the process's `tracing` subscriber, into a file.
struct Captured(tempfile::NamedTempFile);

impl Captured {
    /// Installs the capture as the process's subscriber (each test runs in its own process).
    fn install() -> Captured {
        let file = tempfile::NamedTempFile::new().unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Mutex::new(file.reopen().unwrap()))
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        Captured(file)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.0.path()).unwrap()
    }
}

/// A manager that does not wait for its connection, as `ssot worker` starts one.
fn manager_not_yet_connected(url: &str) -> RedisManager {
    let options =
        RedisOptions::from_toml(&ssot_testkit::fast_manager_toml(url, "worker-logs")).unwrap();
    RedisManager::new(options.resolve().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_starting_with_its_connection_does_not_warn() {
    ssot_testkit::own_process!(a_worker_starting_with_its_connection_does_not_warn);
    let logs = Captured::install();
    let server = RedisServer::start();
    let worker = TestWorker::start(
        options("starting"),
        manager_not_yet_connected(&server.url()),
    );
    // The test's own manager, connected, so its enqueue does not race the worker's.
    let redis = manager(&server.url()).await;
    let jobs = Jobs::new(redis.clone(), ssot_worker::AGENT_QUEUE).unwrap();
    let job = send(&jobs, "u-start", "m1", "hello").await;
    assert_run(
        &ended_run(&redis, "u-start", &job).await,
        "m1",
        "agent_completed",
    );
    worker.shutdown().await;
    let text = logs.text();
    assert!(text.contains("worker started"), "{text}");
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert!(!text.contains("redis is back"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_never_reaches_redis_warns_once_after_the_connect_timeout() {
    ssot_testkit::own_process!(
        a_worker_that_never_reaches_redis_warns_once_after_the_connect_timeout
    );
    let logs = Captured::install();
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill(); // a port where nothing listens: every connect is refused
    let worker = TestWorker::start(options("unreached"), manager_not_yet_connected(&url));
    eventually(Duration::from_secs(5), "a warning", || async {
        logs.text().contains("cannot take jobs")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.shutdown().await;
    let text = logs.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("cannot take jobs"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
}
