//! Fuzz target of the `http` agent's NDJSON (issue 12): a service streams arbitrary lines,
//! cut into arbitrary chunks; the run relays exactly the progress events an independent
//! reading of the stream expects, then ends once, completed or failed with the generic
//! reason, and the worker goes on. Run by `ssot_testkit::fuzz`.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use ssot_testkit::RedisServer;
use ssot_testkit::fuzz::fuzz_with_cases;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// Response chunks to send, by the message text that asks for them.
type Bodies = Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>>;

const PROGRESS: [&str; 3] = ["agent_thinking", "tool_executing", "tool_completed"];

/// One NDJSON line of any kind: mostly well-formed progress, sometimes an end, garbage,
/// blank space or a near miss.
fn ndjson_line() -> impl Strategy<Value = String> {
    let small = prop_oneof![
        ".{0,8}".prop_map(Value::from),
        any::<i32>().prop_map(Value::from)
    ];
    let data = prop::collection::btree_map(
        prop::sample::select(vec!["text", "tool", "seq", "job", "message_id", "x"]),
        small,
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    let line = |event: &str, data: Value| json!({ "event": event, "data": data }).to_string();
    prop_oneof![
        8 => (prop::sample::select(PROGRESS.to_vec()), data).prop_map(move |(e, d)| line(e, d)),
        1 => Just(r#"{"event":"agent_started"}"#.to_owned()),
        1 => ".{0,12}".prop_map(move |a| line("agent_completed", json!({ "answer": a }))),
        1 => Just(line("agent_completed", json!({ "answer": 7 }))),
        1 => ".{0,12}".prop_map(move |r| line("agent_failed", json!({ "reason": r }))),
        1 => Just(r#"{"event":"agent_thinking","data":null}"#.to_owned()),
        1 => Just(r#"{"event":"agent_thinking","data":[1]}"#.to_owned()),
        1 => Just(r#"{"event":"agent_dancing","data":{}}"#.to_owned()),
        1 => Just(r#"{"data":{}}"#.to_owned()),
        1 => "[ \t\r]{0,3}".prop_map(|s| s.to_owned()),
        1 => any::<String>(),
    ]
}

/// What the run must show: relayed progress events, then `Ok(answer)` or `Err(())` (failed).
type Expected = (Vec<(String, Map<String, Value>)>, Result<String, ()>);

/// Reads `body` the way the behaviour of `HttpAgent` documents, independently of its code.
fn expected(body: &[u8]) -> Expected {
    let mut relayed = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
            return (relayed, Err(()));
        };
        let data = match object.remove("data") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(data)) => data,
            Some(_) => return (relayed, Err(())),
        };
        let Some(Value::String(event)) = object.remove("event") else {
            return (relayed, Err(()));
        };
        match event.as_str() {
            "agent_started" => {}
            "agent_completed" => {
                return match data.get("answer") {
                    Some(Value::String(answer)) => (relayed, Ok(answer.clone())),
                    _ => (relayed, Err(())),
                };
            }
            e if PROGRESS.contains(&e) => relayed.push((event, data)),
            _ => return (relayed, Err(())),
        }
    }
    (relayed, Err(()))
}

async fn service(bodies: Bodies) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(answer(socket, Arc::clone(&bodies)));
        }
    });
    addr
}

/// Reads one request (headers, then a JSON body of `content-length` bytes) and streams the
/// chunks registered for its text.
async fn answer(mut socket: TcpStream, bodies: Bodies) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let job: Value = loop {
        match socket.read(&mut buf).await {
            Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
            _ => return,
        }
        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        if let Ok(job) = serde_json::from_slice(&request[end + 4..]) {
            break job;
        }
    };
    let chunks = bodies.lock().unwrap()[job["text"].as_str().unwrap()].clone();
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n\
                transfer-encoding: chunked\r\n\r\n";
    let mut out = head.as_bytes().to_vec();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    let _ = socket.write_all(&out).await;
}

#[test]
fn fuzz_http_agent_ndjson() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bodies = Bodies::default();
    let (redis, jobs, _worker) = runtime.block_on(async {
        let (redis, jobs) = setup(&server).await;
        let mut opts = options("fuzz-worker");
        opts.agent = Some("http".into());
        let addr = service(Arc::clone(&bodies)).await;
        opts.agent_url = Some(format!("http://{addr}/run"));
        opts.max_deliveries = Some(1);
        let worker = TestWorker::start(opts, manager(&server.url()).await);
        (redis, jobs, worker)
    });
    let body = (
        prop::collection::vec(ndjson_line(), 0..8),
        any::<bool>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    )
        .prop_map(|(lines, newline_at_end, cuts)| {
            let mut body = lines.join("\n").into_bytes();
            if newline_at_end {
                body.push(b'\n');
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            cuts.sort();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([body.len()]) {
                chunks.push(body[from..cut].to_vec());
                from = cut;
            }
            chunks
        });
    let case = Cell::new(0u64);
    fuzz_with_cases("worker-ndjson", 48, body, |chunks| {
        case.set(case.get() + 1);
        let (user, message_id) = (format!("n{}", case.get()), format!("m{}", case.get()));
        let (relayed, end) = expected(&chunks.concat());
        bodies.lock().unwrap().insert(message_id.clone(), chunks);
        let run = runtime.block_on(async {
            let job = send(&jobs, &user, &message_id, &message_id).await;
            ended_run(&redis, &user, &job).await
        });
        let end_name = if end.is_ok() {
            "agent_completed"
        } else {
            "agent_failed"
        };
        assert_run(&run, &message_id, end_name);
        prop_assert_eq!(run.len(), relayed.len() + 2, "{:?}", names(&run));
        for (seen, (name, data)) in run[1..].iter().zip(&relayed) {
            prop_assert_eq!(&seen.name, name);
            for (key, value) in data {
                if !["job", "seq", "message_id"].contains(&key.as_str()) {
                    prop_assert_eq!(&seen.data[key], value, "{}", key);
                }
            }
        }
        let last = &run.last().unwrap().data;
        match end {
            Ok(answer) => prop_assert_eq!(&last["answer"], &Value::from(answer)),
            Err(()) => prop_assert_eq!(&last["reason"], ssot_worker::FAILED_REASON),
        }
        Ok(())
    });
}
