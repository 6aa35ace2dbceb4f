//! The agent pipeline as processes: 2 gateways, 2 workers, users chatting; a worker killed
//! mid-run; the same message id sent twice across a reconnect.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ssot_testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

/// A running `ssot worker`; killed on drop.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn start(redis_url: &str, config: &std::path::Path) -> WorkerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_ssot"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "worker",
                "--redis",
                redis_url,
            ])
            .env("SSOT_LOG", "warn")
            .env("SSOT_REDIS_HEALTH_INTERVAL_MS", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ssot worker starts");
        WorkerProcess(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn worker_config(step_ms: u64) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        format!(
            "[worker]\nagent = \"demo\"\ndemo-step-ms = {step_ms}\nagent-timeout-ms = 1000\nreclaim-idle-ms = 2000\nconcurrency = 16\n"
        ),
    )
    .unwrap();
    file
}

/// What one socket saw: acks by message id, and agent events by job.
#[derive(Default, Debug)]
struct Seen {
    acks: Vec<(String, String)>,
    /// job -> [(seq, event name, message id)]
    runs: BTreeMap<String, Vec<(u64, String, String)>>,
    closed: bool,
}

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

async fn open(url: &str, token: &str) -> (Sink, Arc<Mutex<Seen>>) {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (sink, mut stream) = ws.split();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(text) = msg else { continue };
            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            let mut seen = record.lock().unwrap();
            match v["type"].as_str() {
                Some("ack") => seen.acks.push((
                    v["ref"].as_str().unwrap().into(),
                    v["job"].as_str().unwrap().into(),
                )),
                Some("event") => {
                    let data = &v["data"];
                    let job = data["job"].as_str().unwrap_or("?").to_owned();
                    seen.runs.entry(job).or_default().push((
                        data["seq"].as_u64().unwrap_or(0),
                        v["event"].as_str().unwrap().to_owned(),
                        data["message_id"].as_str().unwrap_or("?").to_owned(),
                    ));
                }
                _ => {}
            }
        }
        record.lock().unwrap().closed = true;
    });
    (sink, seen)
}

async fn say(sink: &mut Sink, id: &str, text: &str) {
    let frame = serde_json::json!({"type": "message", "id": id, "text": text}).to_string();
    sink.send(Message::Text(frame.into())).await.unwrap();
}

/// Each run: started first, completed last, sequence strictly increasing, no duplicates.
fn assert_complete_runs(who: &str, seen: &Seen, expected_messages: &[String]) {
    assert!(!seen.closed, "{who}: socket closed");
    let mut by_message: HashMap<&str, &String> = HashMap::new();
    for (job, events) in &seen.runs {
        let first = &events[0];
        let last = events.last().unwrap();
        assert_eq!(
            first.1, "agent_started",
            "{who}: run {job} starts with agent_started: {events:?}"
        );
        assert_eq!(
            last.1, "agent_completed",
            "{who}: run {job} ends with agent_completed: {events:?}"
        );
        assert!(
            events.windows(2).all(|w| w[0].0 < w[1].0),
            "{who}: run {job} in order, once: {events:?}"
        );
        assert!(
            by_message.insert(first.2.as_str(), job).is_none(),
            "{who}: message {} ran twice",
            first.2
        );
    }
    let mut got: Vec<&str> = by_message.keys().copied().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = expected_messages.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "{who}: exactly its own messages' runs");
}

async fn wait_runs(sockets: &[(String, Arc<Mutex<Seen>>)], per_user: usize, within: Duration) {
    let start = Instant::now();
    loop {
        let done = sockets.iter().all(|(_, seen)| {
            let seen = seen.lock().unwrap();
            seen.runs
                .values()
                .filter(|r| r.last().is_some_and(|e| e.1 == "agent_completed"))
                .count()
                >= per_user
        });
        if done {
            return;
        }
        assert!(
            start.elapsed() < within,
            "runs did not complete within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 2 gateways, 2 workers, 50 users × 20 messages: one ack each, one complete ordered run on
/// every socket of its user, none on others'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_users_twenty_messages_two_gateways_two_workers() {
    let server = RedisServer::builder().aof(true).start();
    let gateways = [Served::start(&server.url()), Served::start(&server.url())];
    let config = worker_config(5);
    let _workers = [
        WorkerProcess::start(&server.url(), config.path()),
        WorkerProcess::start(&server.url(), config.path()),
    ];
    let mut senders = Vec::new();
    let mut sockets = Vec::new();
    for u in 0..50 {
        let user = format!("chat{u}");
        let token = token(&user);
        let (sink, seen_a) = open(&gateways[0].ws_url(), &token).await;
        let (_, seen_b) = open(&gateways[1].ws_url(), &token).await;
        sockets.push((user.clone(), seen_a.clone()));
        sockets.push((user.clone(), seen_b));
        senders.push((user, sink, seen_a));
    }
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for n in 0..20 {
        for (user, sink, _) in &mut senders {
            let id = format!("{user}-m{n}");
            say(sink, &id, &format!("what is {n} + {n}?")).await;
            expected.entry(user.clone()).or_default().push(id);
        }
    }
    wait_runs(&sockets, 20, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (user, _, seen) in &senders {
        let seen = seen.lock().unwrap();
        let mut acked: Vec<&str> = seen.acks.iter().map(|(m, _)| m.as_str()).collect();
        acked.sort_unstable();
        let mut want: Vec<&str> = expected[user].iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(acked, want, "{user}: exactly one ack per message");
    }
    for (user, seen) in &sockets {
        assert_complete_runs(user, &seen.lock().unwrap(), &expected[user]);
    }
}

/// A worker SIGKILLed in the middle of runs: every run still completes once, and no event
/// reaches a client twice. The same message id twice, across a reconnect: one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_run_and_duplicate_message_ids() {
    let server = RedisServer::builder().aof(true).start();
    let gateway = Served::start(&server.url());
    let config = worker_config(100);
    let mut doomed = WorkerProcess::start(&server.url(), config.path());
    let mut sockets = Vec::new();
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for u in 0..10 {
        let user = format!("crash{u}");
        let (mut sink, seen) = open(&gateway.ws_url(), &token(&user)).await;
        for n in 0..3 {
            let id = format!("{user}-m{n}");
            say(&mut sink, &id, "count the words in this sentence please").await;
            expected.entry(user.clone()).or_default().push(id);
        }
        sockets.push((user, seen));
    }
    // Let runs get going on the doomed worker only, then kill it mid-run.
    let start = Instant::now();
    loop {
        let started = sockets
            .iter()
            .any(|(_, s)| !s.lock().unwrap().runs.is_empty());
        if started {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no run started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    doomed.kill9();
    let in_flight = sockets
        .iter()
        .map(|(_, s)| {
            let s = s.lock().unwrap();
            s.runs
                .values()
                .filter(|r| r.last().is_some_and(|e| e.1 != "agent_completed"))
                .count()
        })
        .sum::<usize>();
    assert!(in_flight > 0, "the worker was killed with runs in flight");
    let _survivor = WorkerProcess::start(&server.url(), config.path());
    wait_runs(&sockets, 3, Duration::from_secs(30)).await;

    // The same message id again, from a fresh socket: acknowledged with the same job, no new run.
    let (user, seen) = &sockets[0];
    let first_job = {
        let seen = seen.lock().unwrap();
        seen.acks
            .iter()
            .find(|(m, _)| m == &format!("{user}-m0"))
            .unwrap()
            .1
            .clone()
    };
    let (mut sink, again) = open(&gateway.ws_url(), &token(user)).await;
    say(
        &mut sink,
        &format!("{user}-m0"),
        "count the words in this sentence please",
    )
    .await;
    let start = Instant::now();
    while again.lock().unwrap().acks.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no ack for the repeated id"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(again.lock().unwrap().acks[0].1, first_job, "the same job");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        again.lock().unwrap().runs.is_empty(),
        "no second run for a repeated id"
    );
    for (user, seen) in &sockets {
        assert_complete_runs(user, &seen.lock().unwrap(), &expected[user]);
    }
}
