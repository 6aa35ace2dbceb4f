//! `ssot demo` as a person runs it: its embedded redis-server supervised (killed with
//! SIGKILL, restarted on the same port and data, announced), and one demo per data folder.
//! The browser side of the demo is in `browser.rs`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

/// How long the demo may take to bring a killed redis-server back.
const RESTART_BUDGET: Duration = Duration::from_secs(20);

#[test]
fn demo_restarts_its_killed_redis_server_and_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let demo = Demo::start(data.path());
    let before = demo.redis();
    assert!(
        running(before.pid),
        "the pid file names a running redis-server"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = runtime.block_on(chat(&demo, "m-before", "2 + 2"));
    assert_eq!(first.answer, "That makes 4.");

    kill(before.pid, "-KILL");
    let after = demo.wait_for_new_redis(before.pid);
    assert_eq!(after.port, before.port, "restarted on the same port");
    assert!(demo.running(), "the demo keeps running");
    let health = http_get(demo.port, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    // Same data: the message of before the kill is in the history (AOF), and a new one runs.
    let second = runtime.block_on(chat(&demo, "m-after", "3 * 3"));
    assert_eq!(second.answer, "That makes 9.");
    let names: Vec<&str> = second.history.iter().map(|(n, _)| n.as_str()).collect();
    let started: Vec<&serde_json::Value> = second
        .history
        .iter()
        .filter(|(n, _)| n == "agent_started")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        started
            .iter()
            .map(|d| (d["message_id"].as_str(), d["text"].as_str()))
            .collect::<Vec<_>>(),
        [
            (Some("m-before"), Some("2 + 2")),
            (Some("m-after"), Some("3 * 3"))
        ],
        "the history holds both messages with their text: {names:?}"
    );
    let notice = second
        .history
        .iter()
        .find(|(n, _)| n == "demo_redis_restarted")
        .unwrap_or_else(|| panic!("the user is told of the restart: {names:?}"));
    assert_eq!(notice.1["pid"], after.pid);
    assert_eq!(notice.1["restarts"], 1);

    let log = demo.log();
    assert!(
        log.contains("the demo's redis-server exited; restarting it on the same port and data")
            && log.contains("SIGKILL"),
        "the demo says the server died and how:\n{log}"
    );
    assert!(
        log.contains("the demo's redis-server is back"),
        "the demo says the server is back:\n{log}"
    );
    assert_eq!(demo.stop(), Some(0), "ssot demo exits 0 on SIGTERM");
    assert!(!running(after.pid), "its redis-server stops with it");
    assert!(
        !data.path().join("demo.pid").exists(),
        "the pid file is removed"
    );
}

#[test]
fn a_second_demo_on_the_same_data_refuses_to_start_a_second_server() {
    let data = tempfile::tempdir().unwrap();
    let demo = Demo::start(data.path());
    let server = demo.redis();
    let mut second = Command::new(env!("CARGO_BIN_EXE_ssot"))
        .args(["demo", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data")
        .arg(data.path())
        .env_remove("REDIS_URL")
        .current_dir(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A second demo that starts instead of refusing would run until stopped.
    let start = Instant::now();
    while second.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(15) {
            kill(second.id(), "-TERM");
            let out = second.wait_with_output().unwrap();
            panic!(
                "a second demo on the same data started instead of refusing:\n{}",
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = second.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!("another `ssot demo` (pid {})", demo.pid()))
            && said.contains(&format!("pid {}, port {}", server.pid, server.port)),
        "names the running demo and its server: {said}"
    );
    assert_eq!(redis_servers_in(data.path()), 1, "one server on the data");
    assert_eq!(
        demo.redis().pid,
        server.pid,
        "the first demo's server is untouched"
    );
    assert!(demo.running());
    assert_eq!(demo.stop(), Some(0));
}

/// The demo's redis-server, from `<data>/demo.pid`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Server {
    pub(crate) pid: u32,
    pub(crate) port: u16,
}

/// A running `ssot demo`; stopped with SIGTERM on drop (so its embedded Redis stops too).
pub(crate) struct Demo {
    child: Option<Child>,
    /// The URL it printed, with its token: `http://<addr>/demo#token=<jwt>`.
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) port: u16,
    data: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Demo {
    pub(crate) fn start(data: &Path) -> Demo {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_ssot"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .env_remove("REDIS_URL")
            .env_remove("SSOT_REDIS_URL")
            .env_remove("SSOT_JWT_SECRET")
            .env_remove("SSOT_SERVICE_KEY")
            .env("SSOT_LOG", "info")
            // Never pick up a developer's ./ssot.toml.
            .current_dir(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssot demo starts");
        let mut demo = Demo {
            child: Some(child),
            url: String::new(),
            token: String::new(),
            port,
            data: data.to_owned(),
            log: Arc::default(),
        };
        let stderr = demo.child.as_mut().unwrap().stderr.take().unwrap();
        let log = Arc::clone(&demo.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("ssot demo: {line}");
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = demo.child.as_mut().unwrap().stdout.take().unwrap();
        let (lines, printed) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the URL is read: a closed pipe would make the
            // demo's next print fail.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let start = Instant::now();
        while demo.url.is_empty() {
            let left = Duration::from_secs(30).saturating_sub(start.elapsed());
            let line = printed
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("ssot demo printed no `open:` line ({e})"));
            if let Some(url) = line.trim().strip_prefix("open:") {
                demo.url = url.trim().to_owned();
            }
        }
        let prefix = format!("http://127.0.0.1:{port}/demo#token=");
        demo.token = demo
            .url
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("the demo's URL is {prefix}<jwt>: {}", demo.url))
            .to_owned();
        demo
    }

    /// The demo's own pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// True while the demo process runs.
    pub(crate) fn running(&self) -> bool {
        running(self.pid())
    }

    /// Its current redis-server, from the pid file.
    pub(crate) fn redis(&self) -> Server {
        let path = self.data.join("demo.pid");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        Server {
            pid: v["redis"]["pid"].as_u64().expect("a redis pid") as u32,
            port: v["port"].as_u64().unwrap() as u16,
        }
    }

    /// Waits until the pid file names a running redis-server other than `old`.
    pub(crate) fn wait_for_new_redis(&self, old: u32) -> Server {
        let start = Instant::now();
        loop {
            let now = self.redis();
            if now.pid != old && running(now.pid) {
                return now;
            }
            assert!(
                start.elapsed() < RESTART_BUDGET,
                "the demo did not restart its redis-server within {RESTART_BUDGET:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code (killed after 10 s).
    pub(crate) fn stop(mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        kill(child.id(), "-TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let demo = Demo {
                child: Some(child),
                url: String::new(),
                token: String::new(),
                port: 0,
                data: PathBuf::new(),
                log: Arc::default(),
            };
            let _ = demo.stop();
        }
    }
}

/// `kill <signal> <pid>` (the workspace forbids the unsafe libc call).
pub(crate) fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}: {status}");
}

/// True while `pid` runs (a zombie does not).
pub(crate) fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .next()?
                .to_owned();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Running redis-server processes working in `<data>/redis` (redis-server changes into its
/// `--dir`, and rewrites its command line, so the working directory tells).
fn redis_servers_in(data: &Path) -> usize {
    let dir = data.join("redis").canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            (comm.trim() == "redis-server" && cwd == dir && running(pid)).then_some(())
        })
        .count()
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// What one chat message got back.
struct Chat {
    answer: String,
    /// Every event of the user's log (replayed after `0-0`, then live): name and data.
    history: Vec<(String, serde_json::Value)>,
}

/// Opens a socket that replays the whole history, sends `text` as message `id` (again
/// after each `redis_unavailable`, as the chat page does) and waits for its answer.
async fn chat(demo: &Demo, id: &str, text: &str) -> Chat {
    let url = format!("ws://127.0.0.1:{}/v1/ws?after=0-0", demo.port);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", demo.token).parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let frame = serde_json::json!({"type": "message", "id": id, "text": text}).to_string();
    let mut history = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut sent = false;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no answer to {id} within 30 s; saw {history:?}"))
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(raw) = next else { continue };
        let v: serde_json::Value = serde_json::from_str(raw.as_str()).unwrap();
        match v["type"].as_str() {
            // Sent once the socket caught up (`ok`), and again if Redis refused it.
            Some("status") if v["redis"] == "ok" && !sent => {
                sink.send(Message::Text(frame.clone().into()))
                    .await
                    .unwrap();
                sent = true;
            }
            Some("error") if v["code"] == "redis_unavailable" => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                sink.send(Message::Text(frame.clone().into()))
                    .await
                    .unwrap();
            }
            Some("event") => {
                let name = v["event"].as_str().unwrap().to_owned();
                let data = v["data"].clone();
                let done = name == "agent_completed" && data["message_id"] == id;
                history.push((name, data));
                if done {
                    let answer = history.last().unwrap().1["answer"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    return Chat { answer, history };
                }
            }
            _ => {}
        }
    }
}
