//! The agent pipeline as processes: 2 gateways, 2 workers, users chatting; a worker killed
//! mid-run; the same message id sent twice across a reconnect.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ssot_testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;
use crate::worker::{WorkerProcess, config_file};

fn worker_config(step_ms: u64) -> tempfile::NamedTempFile {
    config_file(&format!(
        "[worker]\nagent = \"demo\"\ndemo-step-ms = {step_ms}\nagent-timeout-ms = 1000\nreclaim-idle-ms = 2000\nconcurrency = 16\n"
    ))
}

/// The events of one run of the demo agent, in order.
const DEMO_RUN: [&str; 6] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_thinking",
    "agent_completed",
];

/// One agent event as a socket received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ev {
    /// The stream id (`<ms>-<seq>`).
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) name: String,
    pub(crate) message_id: String,
}

/// What one socket saw: acks by message id, and agent events in arrival order.
#[derive(Default, Debug)]
pub(crate) struct Seen {
    acks: Vec<(String, String)>,
    /// (job, event) in the order received.
    pub(crate) events: Vec<(String, Ev)>,
    closed: bool,
}

impl Seen {
    /// Events grouped by job, each group in arrival order.
    fn runs(&self) -> BTreeMap<String, Vec<Ev>> {
        let mut runs: BTreeMap<String, Vec<Ev>> = BTreeMap::new();
        for (job, ev) in &self.events {
            runs.entry(job.clone()).or_default().push(ev.clone());
        }
        runs
    }

    fn completed(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| e.name == "agent_completed")
            .count()
    }

    fn last_id(&self) -> Option<String> {
        self.events.last().map(|(_, e)| e.id.clone())
    }

    /// The job the gateway acknowledged for `message_id`; panics on two different ones.
    fn acked_job(&self, message_id: &str) -> Option<String> {
        let jobs: Vec<&String> = self
            .acks
            .iter()
            .filter(|(m, _)| m == message_id)
            .map(|(_, j)| j)
            .collect();
        assert!(
            jobs.windows(2).all(|w| w[0] == w[1]),
            "{message_id} acknowledged with different jobs: {jobs:?}"
        );
        jobs.first().map(|j| (*j).clone())
    }
}

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// One client socket: the sending half, what the reading half recorded, and the reader.
struct Socket {
    sink: Sink,
    seen: Arc<Mutex<Seen>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Socket {
    /// Drops the connection without a close frame, as a lost network does.
    fn drop_connection(self) {
        self.reader.abort();
        drop(self.sink);
    }
}

pub(crate) async fn open(url: &str, token: &str) -> (Sink, Arc<Mutex<Seen>>) {
    let socket = connect(url, token).await;
    (socket.sink, socket.seen)
}

async fn connect(url: &str, token: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (sink, mut stream) = ws.split();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    let reader = tokio::spawn(async move {
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
                    seen.events.push((
                        job,
                        Ev {
                            id: v["id"].as_str().unwrap().to_owned(),
                            seq: data["seq"].as_u64().unwrap_or(0),
                            name: v["event"].as_str().unwrap().to_owned(),
                            message_id: data["message_id"].as_str().unwrap_or("?").to_owned(),
                        },
                    ));
                }
                _ => {}
            }
        }
        record.lock().unwrap().closed = true;
    });
    Socket { sink, seen, reader }
}

async fn say(sink: &mut Sink, id: &str, text: &str) {
    let frame = serde_json::json!({"type": "message", "id": id, "text": text}).to_string();
    sink.send(Message::Text(frame.into())).await.unwrap();
}

/// What a client saw over one or more sockets, taken in turn: every event id once and in
/// increasing order; each run exactly the demo run with sequence numbers 1..=6 and one
/// message id; exactly one run for each of `expected_messages` and none for another.
/// Returns the job of each message.
pub(crate) fn assert_complete_runs(
    who: &str,
    sockets: &[&Seen],
    expected_messages: &[String],
) -> HashMap<String, String> {
    let events: Vec<&(String, Ev)> = sockets.iter().flat_map(|s| &s.events).collect();
    assert!(
        events
            .windows(2)
            .all(|w| event_id(&w[0].1.id) < event_id(&w[1].1.id)),
        "{who}: event ids once each, in order: {events:?}"
    );
    let mut runs: BTreeMap<&str, Vec<&Ev>> = BTreeMap::new();
    for (job, ev) in events {
        runs.entry(job).or_default().push(ev);
    }
    let mut job_of: HashMap<String, String> = HashMap::new();
    for (job, run) in &runs {
        let names: Vec<&str> = run.iter().map(|e| e.name.as_str()).collect();
        let seqs: Vec<u64> = run.iter().map(|e| e.seq).collect();
        assert_eq!(names, DEMO_RUN, "{who}: run {job}: {run:?}");
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6], "{who}: run {job}: {run:?}");
        let message = &run[0].message_id;
        assert!(
            run.iter().all(|e| &e.message_id == message),
            "{who}: run {job} names one message: {run:?}"
        );
        assert!(
            job_of.insert(message.clone(), (*job).to_owned()).is_none(),
            "{who}: message {message} ran twice"
        );
    }
    let mut got: Vec<&str> = job_of.keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = expected_messages.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "{who}: exactly its own messages' runs");
    job_of
}

/// Every socket of one user saw the same events (ids, names, sequence numbers), and the
/// runs are those of the jobs its messages were acknowledged with.
fn assert_same_on_every_socket(user: &str, sockets: &[&Seen], acks: &Seen, expected: &[String]) {
    let first = assert_complete_runs(user, &sockets[..1], expected);
    for message in expected {
        assert_eq!(
            acks.acked_job(message).as_ref(),
            Some(&first[message]),
            "{user}: {message} acknowledged with the job that ran"
        );
    }
    for (i, other) in sockets.iter().enumerate().skip(1) {
        assert!(!other.closed, "{user}: socket {i} closed");
        assert_complete_runs(user, &[other], expected);
        assert_eq!(
            other.events, sockets[0].events,
            "{user}: socket {i} saw what socket 0 saw"
        );
    }
    assert!(!sockets[0].closed, "{user}: socket 0 closed");
}

async fn wait_runs(sockets: &[(String, Arc<Mutex<Seen>>)], per_user: usize, within: Duration) {
    let start = Instant::now();
    loop {
        let done = sockets
            .iter()
            .all(|(_, seen)| seen.lock().unwrap().completed() >= per_user);
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

/// Polls `check` on `seen` every 20 ms; panics with `what` after `within`.
async fn wait_for(seen: &Mutex<Seen>, within: Duration, what: &str, check: impl Fn(&Seen) -> bool) {
    let start = Instant::now();
    while !check(&seen.lock().unwrap()) {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
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
    let mut users = Vec::new();
    let mut sockets = Vec::new();
    for u in 0..50 {
        let user = format!("chat{u}");
        let token = token(&user);
        let (sink, seen_a) = open(&gateways[0].ws_url(), &token).await;
        let (_, seen_b) = open(&gateways[1].ws_url(), &token).await;
        sockets.push((user.clone(), seen_a.clone()));
        sockets.push((user.clone(), seen_b.clone()));
        users.push((user, sink, seen_a, seen_b));
    }
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for n in 0..20 {
        for (user, sink, _, _) in &mut users {
            let id = format!("{user}-m{n}");
            say(sink, &id, &format!("what is {n} + {n}?")).await;
            expected.entry(user.clone()).or_default().push(id);
        }
    }
    wait_runs(&sockets, 20, Duration::from_secs(60)).await;
    // Time for a duplicate or a stray event, if there were one, to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (user, _, seen_a, seen_b) in &users {
        let (a, b) = (seen_a.lock().unwrap(), seen_b.lock().unwrap());
        let mut acked: Vec<&str> = a.acks.iter().map(|(m, _)| m.as_str()).collect();
        acked.sort_unstable();
        let mut want: Vec<&str> = expected[user].iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(acked, want, "{user}: exactly one ack per message");
        assert!(
            b.acks.is_empty(),
            "{user}: acks go to the sending socket only"
        );
        assert_same_on_every_socket(user, &[&a, &b], &a, &expected[user]);
    }
}

/// A worker SIGKILLed in the middle of runs: every run still completes once, and no event
/// reaches a client twice. The same message id again from a second socket: one run.
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
    while !sockets
        .iter()
        .any(|(_, s)| !s.lock().unwrap().events.is_empty())
    {
        assert!(start.elapsed() < Duration::from_secs(10), "no run started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    doomed.kill9();
    let in_flight = sockets
        .iter()
        .map(|(_, s)| {
            s.lock()
                .unwrap()
                .runs()
                .values()
                .filter(|r| r.last().is_some_and(|e| e.name != "agent_completed"))
                .count()
        })
        .sum::<usize>();
    assert!(in_flight > 0, "the worker was killed with runs in flight");
    let _survivor = WorkerProcess::start(&server.url(), config.path());
    wait_runs(&sockets, 3, Duration::from_secs(30)).await;

    // The same message id again, from a fresh socket: acknowledged with the same job, no new run.
    let (user, seen) = &sockets[0];
    let first_job = seen
        .lock()
        .unwrap()
        .acked_job(&format!("{user}-m0"))
        .unwrap();
    let (mut sink, again) = open(&gateway.ws_url(), &token(user)).await;
    say(
        &mut sink,
        &format!("{user}-m0"),
        "count the words in this sentence please",
    )
    .await;
    wait_for(
        &again,
        Duration::from_secs(5),
        "ack of the repeated id",
        |s| !s.acks.is_empty(),
    )
    .await;
    assert_eq!(again.lock().unwrap().acks[0].1, first_job, "the same job");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        again.lock().unwrap().events.is_empty(),
        "no second run for a repeated id"
    );
    for (user, seen) in &sockets {
        let seen = seen.lock().unwrap();
        assert_same_on_every_socket(user, &[&seen], &seen, &expected[user]);
    }
}

/// The same client message id across a reconnect, twice per user: sent, then the connection
/// lost before the ack; sent, then the socket closed while the run is in flight. Each time the
/// client reconnects with its last event id and sends the message again. Each message runs
/// once, the acks name that run's job, and over its sockets the client sees each run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_id_across_a_reconnect_runs_once() {
    const TEXT: &str = "count the words in this sentence please";
    const WITHIN: Duration = Duration::from_secs(15);
    let server = RedisServer::start();
    let gateway = Served::start(&server.url());
    let config = worker_config(100);
    let _worker = WorkerProcess::start(&server.url(), config.path());
    let resume = |after: Option<String>| match after {
        Some(id) => format!("{}?after={id}", gateway.ws_url()),
        None => gateway.ws_url(),
    };
    let mut clients = Vec::new();
    for u in 0..4 {
        let user = format!("again{u}");
        let token = token(&user);
        let (warm, lost, cut) = (
            format!("{user}-warm"),
            format!("{user}-lost"),
            format!("{user}-cut"),
        );

        // A: a first message runs to the end, so the client has a last event id; the next
        // message is sent and the connection dropped at once, before its ack.
        let mut a = connect(&gateway.ws_url(), &token).await;
        say(&mut a.sink, &warm, TEXT).await;
        wait_for(&a.seen, WITHIN, "first run", |s| s.completed() == 1).await;
        say(&mut a.sink, &lost, TEXT).await;
        let a_seen = Arc::clone(&a.seen);
        a.drop_connection();
        let a_last = a_seen.lock().unwrap().last_id();

        // B: resumes after A's last event and sends the lost message again; the next message is
        // sent and the socket closed once its run has started.
        let mut b = connect(&resume(a_last), &token).await;
        say(&mut b.sink, &lost, TEXT).await;
        wait_for(&b.seen, WITHIN, "ack of the resent message", |s| {
            s.acked_job(&lost).is_some()
        })
        .await;
        say(&mut b.sink, &cut, TEXT).await;
        wait_for(&b.seen, WITHIN, "run of the next message in flight", |s| {
            s.events
                .iter()
                .any(|(_, e)| e.message_id == cut && e.name == "agent_thinking")
        })
        .await;
        b.sink.close().await.unwrap();
        let _ = b.reader.await;
        let b_seen = b.seen;
        assert!(
            b_seen
                .lock()
                .unwrap()
                .events
                .iter()
                .all(|(_, e)| e.message_id != cut || e.name != "agent_completed"),
            "closed while the run was in flight"
        );
        let b_last = b_seen.lock().unwrap().last_id();

        // C: resumes after B's last event and sends the in-flight message again.
        let mut c = connect(&resume(b_last), &token).await;
        say(&mut c.sink, &cut, TEXT).await;
        clients.push((user, [warm, lost, cut], a_seen, b_seen, c));
    }
    for (_, messages, _, _, c) in &clients {
        wait_for(&c.seen, WITHIN, "the in-flight run ended", |s| {
            s.events
                .iter()
                .any(|(_, e)| e.message_id == messages[2] && e.name == "agent_completed")
        })
        .await;
    }
    // Time for a second run, if there were one, to show.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for (user, messages, a, b, c) in &clients {
        let (a, b, c) = (a.lock().unwrap(), b.lock().unwrap(), c.seen.lock().unwrap());
        let jobs = assert_complete_runs(user, &[&a, &b, &c], messages);
        let (warm, lost, cut) = (&messages[0], &messages[1], &messages[2]);
        assert_eq!(a.acked_job(warm).as_ref(), Some(&jobs[warm]), "{user}");
        assert_eq!(b.acked_job(lost).as_ref(), Some(&jobs[lost]), "{user}");
        if let Some(job) = a.acked_job(lost) {
            assert_eq!(job, jobs[lost], "{user}: the ack A got names the same job");
        }
        assert_eq!(b.acked_job(cut).as_ref(), Some(&jobs[cut]), "{user}");
        assert_eq!(c.acked_job(cut).as_ref(), Some(&jobs[cut]), "{user}");
        assert!(!c.closed, "{user}");
    }
    // The whole history, replayed from the start: one run per message id.
    for (user, messages, ..) in &clients {
        let all = connect(&resume(Some("0-0".into())), &token(user)).await;
        wait_for(&all.seen, WITHIN, "full replay", |s| s.completed() == 3).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_complete_runs(user, &[&all.seen.lock().unwrap()], messages);
    }
}
