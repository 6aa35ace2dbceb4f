//! The `http` agent against a small NDJSON service started here: events relayed; a hanging,
//! garbled, failing or absent service fails the run with a reason, the connection is let go,
//! and the worker goes on with the next job.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use ssot_testkit::RedisServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::support::*;

/// The agent's idle timeout in this test (silence between two lines).
const IDLE_TIMEOUT_MS: u64 = 400;

/// Serves one POST per connection; what it answers depends on the message text. Returns its
/// address and the number of connections open right now.
async fn agent_service() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&open);
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                serve(socket).await;
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

fn line(event: &str, data: Value) -> String {
    json!({ "event": event, "data": data }).to_string()
}

async fn serve(socket: TcpStream) {
    let mut conn = BufReader::new(socket);
    let mut length = 0;
    let mut header = String::new();
    loop {
        header.clear();
        if conn.read_line(&mut header).await.unwrap_or(0) == 0 {
            return;
        }
        if header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
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
    match text.as_str() {
        "unavailable" => {
            let _ = socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await;
            return;
        }
        // No status line ever: held until the worker gives up and closes.
        "mute" => return until_closed(&mut socket).await,
        _ => {}
    }
    let _ = socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n")
        .await;
    let hmm = line("agent_thinking", json!({"text": "hmm"}));
    let lines: Vec<String> = match text.as_str() {
        "hang" => vec![hmm],
        "html" => vec![hmm, "<html>oops</html>".to_owned()],
        "array" => vec![hmm, "[1, 2]".to_owned()],
        "unknown-event" => vec![hmm, line("agent_dancing", json!({}))],
        "no-answer" => vec![hmm, line("agent_completed", json!({}))],
        "cut-short" => vec![hmm],
        // A thought every 150 ms, never an answer: only the run's timeout ends it.
        "drip" => loop {
            if chunk(&mut socket, &hmm).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        },
        _ => vec![
            line("agent_started", json!({})),
            line("agent_thinking", json!({"text": "calling the echo tool"})),
            line("tool_executing", json!({"tool": "echo", "input": text})),
            line("tool_completed", json!({"tool": "echo", "result": text})),
            line(
                "agent_completed",
                json!({"answer": format!("echo: {text}")}),
            ),
        ],
    };
    for l in lines {
        if chunk(&mut socket, &l).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if text == "hang" {
        return until_closed(&mut socket).await;
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
}

/// Writes one NDJSON line as one HTTP chunk.
async fn chunk(socket: &mut TcpStream, line: &str) -> std::io::Result<()> {
    let data = format!("{line}\n");
    socket
        .write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
        .await
}

/// The error the dead letter of `job` records (written just after `agent_failed`).
async fn dead_error(jobs: &redis_ssot::stores::jobs::Jobs, job: &str) -> String {
    let find = || async {
        let dead = jobs.dead_letters(100).await.unwrap();
        dead.into_iter().find(|d| d.job_id == job).map(|d| d.error)
    };
    eventually(Duration::from_secs(2), "dead-lettered", || async {
        find().await.is_some()
    })
    .await;
    find().await.unwrap()
}

/// Waits until the peer closes the connection.
async fn until_closed(socket: &mut TcpStream) {
    let mut buf = [0; 64];
    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_agent_relays_events_and_survives_a_bad_service() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let (service, open) = agent_service().await;
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();

    let mut opts = options("http-worker");
    opts.agent = Some("http".into());
    opts.agent_url = Some(format!("http://{service}/v1/run"));
    opts.agent_idle_timeout_ms = Some(IDLE_TIMEOUT_MS);
    opts.max_deliveries = Some(1);
    let worker = TestWorker::start(opts.clone(), manager(&server.url()).await);
    let idle = Duration::from_millis(IDLE_TIMEOUT_MS);
    let run_budget = Duration::from_millis(opts.agent_timeout_ms.unwrap());

    // One at a time, so each good run proves the worker is still healthy. Each case: text,
    // what the answer or reason says, the events relayed before the end, and bounds on how
    // long the run took.
    let relayed = ["agent_thinking"].as_slice();
    let echo = ["agent_thinking", "tool_executing", "tool_completed"].as_slice();
    let quick = (Duration::ZERO, idle);
    let cases = [
        ("hello", "echo: hello", echo, quick),
        ("hang", "sent nothing for", relayed, (idle, run_budget)),
        (
            "mute",
            "sent no response within",
            [].as_slice(),
            (idle, run_budget),
        ),
        (
            "drip",
            "timed out after 1500 ms",
            relayed,
            (run_budget, run_budget * 2),
        ),
        ("between", "echo: between", echo, quick),
        (
            "html",
            "invalid line: \"<html>oops</html>\"",
            relayed,
            quick,
        ),
        ("array", "invalid line: \"[1, 2]\"", relayed, quick),
        ("unknown-event", "invalid line", relayed, quick),
        (
            "no-answer",
            "agent_completed without a string answer",
            relayed,
            quick,
        ),
        (
            "cut-short",
            "ended the stream before agent_completed",
            relayed,
            quick,
        ),
        ("unavailable", "503", [].as_slice(), quick),
        ("still there?", "echo: still there?", echo, quick),
    ];
    let mut failures = 0;
    for (i, (text, expect, middle, (at_least, below))) in cases.into_iter().enumerate() {
        let message_id = format!("case-{i}");
        let sent = Instant::now();
        let job = send(&jobs, "h", &message_id, text).await;
        let run = &ended_run(&redis, "h", &job).await;
        let took = sent.elapsed();
        let end = if expect.starts_with("echo:") {
            "agent_completed"
        } else {
            failures += 1;
            "agent_failed"
        };
        assert_run(run, &message_id, end);
        let mut want = vec!["agent_started"];
        want.extend(middle);
        want.push(end);
        // The drip relays a thought per line: repeats collapsed here, counted below.
        let mut collapsed = names(run);
        collapsed.dedup();
        assert_eq!(collapsed, want, "{text}: {:?}", names(run));
        if text == "drip" {
            assert!(
                run.len() >= 6,
                "thoughts relayed until the timeout: {:?}",
                names(run)
            );
        }
        // Users read a generic reason; the detail is the dead letter's.
        let last = &run.last().unwrap().data;
        let said = match last["answer"].as_str() {
            Some(answer) => answer.to_owned(),
            None => {
                assert_eq!(last["reason"], ssot_worker::FAILED_REASON, "{text}");
                dead_error(&jobs, &job).await
            }
        };
        assert!(said.contains(expect), "{text}: {said:?}");
        assert!(
            took >= at_least && took < below + Duration::from_millis(800),
            "{text}: ended after {took:?}, expected {at_least:?}..{below:?}"
        );
        if end == "agent_completed" {
            assert_eq!(run[3].data["result"], text);
        }
    }
    // A silent service holds one run, not the worker: a job sent with it completes first.
    let stuck = send(&jobs, "h", "stuck", "mute").await;
    let alongside = send(&jobs, "h", "alongside", "alongside").await;
    assert_run(
        &ended_run(&redis, "h", &alongside).await,
        "alongside",
        "agent_completed",
    );
    let still = runs(&redis, "h").await;
    assert!(!still.get(&stuck).is_some_and(|r| ended(r)), "{still:?}");
    assert_run(
        &ended_run(&redis, "h", &stuck).await,
        "stuck",
        "agent_failed",
    );
    failures += 1;

    // Every connection the worker opened to the service was let go, hanging ones included.
    eventually(
        Duration::from_secs(2),
        "connections to the service closed",
        || async { open.load(Ordering::SeqCst) == 0 },
    )
    .await;
    assert_eq!(jobs.dead_letters(100).await.unwrap().len(), failures);
    assert_eq!(jobs.pending().await.unwrap(), 0);
    worker.shutdown().await;

    // Nobody listening: the run fails with the connection error.
    opts.agent_url = Some(format!("http://{closed}/v1/run"));
    opts.consumer = Some("http-nowhere".into());
    let worker = TestWorker::start(opts, manager(&server.url()).await);
    let job = send(&jobs, "h", "refused", "hello").await;
    let run = &ended_run(&redis, "h", &job).await;
    assert_run(run, "refused", "agent_failed");
    let reason = dead_error(&jobs, &job).await;
    assert!(
        reason.contains("connecting to the agent service"),
        "{reason}"
    );
    assert_eq!(jobs.dead_letters(100).await.unwrap().len(), failures + 1);
    worker.shutdown().await;
}
