//! Issue 12, finding 6: what went wrong in a run (an agent service's error text, its URL with
//! credentials) never reaches the user; they read a generic reason, the detail goes to the
//! log and the dead letter with URL credentials redacted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use ssot_testkit::RedisServer;
use ssot_worker::{FAILED_REASON, HttpAgent, WorkerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

const SECRET: &str = "hunter2-secret";

/// Answers every POST with an NDJSON `agent_failed` whose reason holds the secret.
async fn leaky_service() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut socket = socket;
                read_request(&mut socket).await;
                let line = json!({
                    "event": "agent_failed",
                    "data": { "reason": format!("db login svc-user:{SECRET} refused") },
                })
                .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n{line}\n",
                    line.len() + 1
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// Reads one request, head and body (by its `content-length`), so the answer never races
/// the client's upload.
async fn read_request(socket: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if seen.len() >= head_end + 4 + length {
                return;
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn an_agent_url_with_credentials_is_refused_by_name_without_echoing_them() {
    let options = WorkerOptions {
        agent: Some("http".into()),
        agent_url: Some(format!("http://svc-user:{SECRET}@127.0.0.1:9/run")),
        ..WorkerOptions::default()
    };
    let err = options.resolve().unwrap_err();
    assert_eq!(err.key, "worker.agent-url");
    assert!(!err.to_string().contains(SECRET), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_read_a_generic_reason_and_never_the_secret() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let service = leaky_service().await;
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut opts = options("secrets");
    opts.max_deliveries = Some(1);
    let mut dead_letters = Vec::new();
    // An agent built in code can still carry userinfo (the config refuses it): the service
    // down, then the service failing with the secret in its reason.
    for (i, addr) in [closed, service].into_iter().enumerate() {
        let url = format!("http://svc-user:{SECRET}@{addr}/v1/run");
        let agent = HttpAgent::new(url.parse().unwrap(), Duration::from_millis(800));
        opts.consumer = Some(format!("secrets-{i}"));
        let worker = TestWorker::start_with(
            opts.clone(),
            manager(&server.url()).await,
            Some(Arc::new(agent)),
        );
        let message_id = format!("leak-{i}");
        let job = send(&jobs, "victim", &message_id, "hello").await;
        let run = ended_run(&redis, "victim", &job).await;
        assert_run(&run, &message_id, "agent_failed");
        let failed = &run.last().unwrap().data;
        assert_eq!(failed["reason"], FAILED_REASON);
        assert_eq!(failed["attempts"], 1);
        worker.shutdown().await;
        let dead = jobs.dead_letters(10).await.unwrap();
        dead_letters.push(dead.last().unwrap().error.clone());
    }
    // Nothing the user can read holds the secret, in any event of the stream.
    for event in events(&redis, "victim").await {
        let text = event.data.to_string();
        assert!(!text.contains(SECRET), "{}: {text}", event.name);
    }
    // Operators keep the detail, minus URL credentials.
    assert_eq!(dead_letters.len(), 2);
    assert!(
        dead_letters[0].starts_with(&format!(
            "connecting to the agent service at http://{closed}/v1/run: "
        )),
        "{}",
        dead_letters[0]
    );
    assert!(!dead_letters[0].contains(SECRET), "{}", dead_letters[0]);
    // Text the service chose is kept as written for operators: only URL userinfo is
    // recognisably a secret.
    assert_eq!(
        dead_letters[1],
        format!("agent service failed: db login svc-user:{SECRET} refused")
    );
}
