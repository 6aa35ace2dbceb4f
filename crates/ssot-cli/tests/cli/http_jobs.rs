//! Jobs over HTTP, as processes: a backend posts a job to `ssot serve`, `ssot worker` runs it
//! once, its events reach the user's socket, and `GET …/jobs/{job}` reports `completed`.

use std::time::{Duration, Instant};

use ssot_testkit::RedisServer;

use crate::pipeline::{assert_complete_runs, open};
use crate::support::*;
use crate::worker::{WorkerProcess, config_file};

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// The job is posted twice with one idempotency key (one job), runs once on the worker, its
/// six events reach the socket in order, and its state ends `completed`. Unknown, foreign and
/// malformed job ids are refused with their codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_posted_over_http_runs_once_and_reports_completed() {
    let server = RedisServer::start();
    let gateway = Served::start(&server.url());
    let config = config_file(
        "[worker]\nagent = \"demo\"\ndemo-step-ms = 5\nagent-timeout-ms = 1000\nreclaim-idle-ms = 2000\n",
    );
    let _worker = WorkerProcess::start(&server.url(), config.path());
    let user = "http-jobs-user";
    let (_sink, seen) = open(&gateway.ws_url(), &token(user)).await;

    let body = r#"{"kind":"report","payload":{"text":"what is 2 + 2?"},"idempotency_key":"daily-report/2026-12-05"}"#;
    let path = format!("/v1/users/{user}/jobs");
    let (status, first) = service_request(gateway.port, "POST", &path, body);
    assert_eq!(status, 200, "{first}");
    let job = json(&first)["job"].as_str().unwrap().to_owned();
    let (status, again) = service_request(gateway.port, "POST", &path, body);
    assert_eq!(
        (status, json(&again)["job"].as_str()),
        (200, Some(job.as_str()))
    );

    let state_path = format!("/v1/users/{user}/jobs/{job}");
    let start = Instant::now();
    let state = loop {
        let (status, answer) = service_request(gateway.port, "GET", &state_path, "");
        assert_eq!(status, 200, "{answer}");
        let state = json(&answer)["state"].as_str().unwrap().to_owned();
        assert!(
            ["queued", "running", "completed"].contains(&state.as_str()),
            "{state}"
        );
        if state == "completed" || start.elapsed() > Duration::from_secs(20) {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state, "completed");
    // Time for a second run or a duplicate event, if there were one, to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap();
    // A job without a `message_id` runs under its job id.
    let runs = assert_complete_runs(user, &[&seen], std::slice::from_ref(&job));
    assert_eq!(runs[&job], job, "the run is the posted job's");
    drop(seen);

    let code = |path: &str| {
        let (status, body) = service_request(gateway.port, "GET", path, "");
        (
            status,
            json(&body)["error"]["code"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        code(&format!("/v1/users/someone-else/jobs/{job}")),
        (404, "job_not_found".into())
    );
    assert_eq!(
        code(&format!("/v1/users/{user}/jobs/1-1")),
        (404, "job_not_found".into())
    );
    assert_eq!(
        code(&format!("/v1/users/{user}/jobs/nope")),
        (400, "invalid_job_id".into())
    );
}
