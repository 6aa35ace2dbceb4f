//! The `http` agent against a small NDJSON service started here: events relayed; a hanging,
//! garbled, failing or absent service fails the run with a reason and the worker goes on.

use std::time::Duration;

use serde_json::{Value, json};
use ssot_testkit::RedisServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// Serves one POST per connection; what it answers depends on the message text.
async fn agent_service() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(socket));
        }
    });
    addr
}

async fn serve(socket: TcpStream) {
    let mut conn = BufReader::new(socket);
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.unwrap();
    let job: Value = serde_json::from_slice(&body).unwrap();
    let text = job["text"].as_str().unwrap().to_owned();
    let mut socket = conn.into_inner();
    if text == "unavailable" {
        let _ = socket
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    let _ = socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n")
        .await;
    let lines: Vec<String> = match text.as_str() {
        "garbage" => vec![
            json!({"event": "agent_thinking", "data": {"text": "hmm"}}).to_string(),
            "<html>oops</html>".to_owned(),
        ],
        "hang" => vec![json!({"event": "agent_thinking", "data": {"text": "hmm"}}).to_string()],
        _ => vec![
            json!({"event": "agent_started", "data": {}}).to_string(),
            json!({"event": "agent_thinking", "data": {"text": "calling the echo tool"}})
                .to_string(),
            json!({"event": "tool_executing", "data": {"tool": "echo", "input": text}}).to_string(),
            json!({"event": "tool_completed", "data": {"tool": "echo", "result": text}})
                .to_string(),
            json!({"event": "agent_completed", "data": {"answer": format!("echo: {text}")}})
                .to_string(),
        ],
    };
    for line in lines {
        let chunk = format!("{line}\n");
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if socket.write_all(framed.as_bytes()).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if text == "hang" {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_agent_relays_events_and_survives_a_bad_service() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let service = agent_service().await;
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();

    let mut opts = options("http-worker");
    opts.agent = Some("http".into());
    opts.agent_url = Some(format!("http://{service}/v1/run"));
    opts.agent_idle_timeout_ms = Some(400);
    opts.max_deliveries = Some(1);
    let worker = TestWorker::start(opts.clone(), manager(&server.url()).await);

    // One at a time, so the last good run proves the worker is still healthy.
    let cases = [
        ("first", "hello", "agent_completed", "echo: hello"),
        ("hang", "hang", "agent_failed", "sent nothing"),
        ("garbage", "garbage", "agent_failed", "invalid line"),
        ("status", "unavailable", "agent_failed", "503"),
        (
            "after",
            "still there?",
            "agent_completed",
            "echo: still there?",
        ),
    ];
    for (message_id, text, end, expect) in cases {
        let job = send(&jobs, "h", message_id, text).await;
        let run = &ended_run(&redis, "h", &job).await;
        assert_run(run, message_id, end);
        let last = &run.last().unwrap().data;
        let said = last["answer"].as_str().or(last["reason"].as_str()).unwrap();
        assert!(said.contains(expect), "{message_id}: {said:?}");
        if end == "agent_completed" {
            assert_eq!(
                names(run),
                [
                    "agent_started",
                    "agent_thinking",
                    "tool_executing",
                    "tool_completed",
                    "agent_completed"
                ]
            );
            assert_eq!(run[3].data["result"], text);
        }
    }
    worker.shutdown().await;

    // Nobody listening: the run fails with the connection error.
    opts.agent_url = Some(format!("http://{closed}/v1/run"));
    opts.consumer = Some("http-nowhere".into());
    let worker = TestWorker::start(opts, manager(&server.url()).await);
    let job = send(&jobs, "h", "refused", "hello").await;
    let run = &ended_run(&redis, "h", &job).await;
    assert_run(run, "refused", "agent_failed");
    let reason = run.last().unwrap().data["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("connecting to the agent service"),
        "{reason}"
    );
    assert_eq!(jobs.dead_letters(10).await.unwrap().len(), 4);
    worker.shutdown().await;
}
