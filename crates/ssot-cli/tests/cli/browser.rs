//! The status page and the demo's chat page in a real headless Chromium (Debian's
//! `chromium`, driven by `playwright-core` from `tests/browser/`), against `ssot serve` and
//! a real redis-server, and against `ssot demo` with its embedded Redis and worker.
//!
//! The Node script does the browser side and asks this test, one line at a time, to act
//! on the world (publish, kill or restart Redis): see `tests/browser/lib.mjs`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ssot_testkit::RedisServer;

use crate::demo::{Demo, kill, running};
use crate::support::*;

/// The longest a whole browser script may take before the test kills it.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn status_page_in_chromium_survives_a_redis_restart_and_a_dropped_socket() {
    let browser = BrowserTools::require();
    let mut redis = RedisServer::builder().aof(true).start();
    let served = Served::start(&redis.url());
    let token = token("pat");
    let url = format!("http://127.0.0.1:{}", served.port);
    let screenshot = browser.screenshot("status_page");
    let mut n = 0;
    browser.run(
        "status_page.mjs",
        &[
            "--url",
            &url,
            "--token",
            &token,
            "--screenshot",
            path_str(&screenshot),
        ],
        |request| match request.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["publish", count] => {
                let count: usize = count.parse().map_err(|_| format!("bad count {count}"))?;
                let mut ids = Vec::new();
                for _ in 0..count {
                    n += 1;
                    ids.push(publish_retrying(
                        served.port,
                        "pat",
                        &format!(r#"{{"n":{n}}}"#),
                    )?);
                }
                Ok(ids.join(" "))
            }
            ["kill-redis"] => {
                redis.kill();
                Ok(String::new())
            }
            ["start-redis"] => {
                redis.restart();
                Ok(String::new())
            }
            _ => Err(format!("unknown request {request:?}")),
        },
    );
    assert_screenshot(&screenshot);
}

/// `ssot demo` (embedded Redis, gateway, worker) as a person runs it: open the URL it
/// prints, type a message, watch the agent's steps stream in and the answer arrive as a
/// bubble; the raw frames behind their toggle; a reload shows the conversation again.
#[test]
fn demo_page_in_chromium_streams_an_agent_run_and_a_reload_shows_the_history() {
    let browser = BrowserTools::require();
    let data = tempfile::tempdir().unwrap();
    let demo = Demo::start(data.path());
    let screenshot = browser.screenshot("chat_demo");
    browser.run(
        "chat_demo.mjs",
        &["--url", &demo.url, "--screenshot", path_str(&screenshot)],
        |request| Err(format!("chat_demo.mjs needs no requests, got {request:?}")),
    );
    assert_screenshot(&screenshot);
    assert_eq!(demo.stop(), Some(0), "ssot demo exits 0 on SIGTERM");
}

/// A message sent while the demo's redis-server is frozen (SIGSTOP) and then killed: the
/// page keeps it as pending, the demo restarts the server, the page resends the message
/// with its id and it runs exactly once.
#[test]
fn demo_page_in_chromium_keeps_a_message_sent_while_redis_is_down_and_runs_it_once() {
    let browser = BrowserTools::require();
    let data = tempfile::tempdir().unwrap();
    let demo = Demo::start(data.path());
    let screenshot = browser.screenshot("chat_demo_outage");
    let mut killed = None;
    browser.run(
        "chat_demo_outage.mjs",
        &["--url", &demo.url, "--screenshot", path_str(&screenshot)],
        |request| match request {
            "stop-redis" => {
                kill(demo.redis().pid, "-STOP");
                Ok(String::new())
            }
            "kill-redis" => {
                let pid = demo.redis().pid;
                kill(pid, "-KILL");
                killed = Some(pid);
                Ok(pid.to_string())
            }
            _ => Err(format!("unknown request {request:?}")),
        },
    );
    assert_screenshot(&screenshot);
    let killed = killed.expect("the script asked for kill-redis");
    let now = demo.redis();
    assert!(
        now.pid != killed && running(now.pid),
        "the demo restarted its redis-server: {now:?}"
    );
    assert_eq!(demo.stop(), Some(0), "ssot demo exits 0 on SIGTERM");
}

/// Publishes, retrying a 503 for a few seconds: right after a Redis restart the gateway's
/// breaker may still be half-open, and a 503 is the documented "retry" answer.
fn publish_retrying(port: u16, user: &str, data: &str) -> Result<String, String> {
    let start = Instant::now();
    loop {
        match publish(port, user, data) {
            Err(answer)
                if answer.starts_with("HTTP/1.1 503")
                    && start.elapsed() < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn assert_screenshot(path: &Path) {
    let len = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", path.display()))
        .len();
    assert!(
        len > 1000,
        "screenshot {} is only {len} bytes",
        path.display()
    );
}

/// Node, Chromium and `tests/browser/node_modules`, checked before anything starts.
pub(crate) struct BrowserTools {
    root: PathBuf,
    chromium: PathBuf,
}

impl BrowserTools {
    /// # Panics
    /// When something is missing, with what to run: a browser test never skips itself.
    pub(crate) fn require() -> BrowserTools {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .expect("the repository root");
        let chromium = std::env::var_os("SSOT_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        let fix = "run scripts/ensure-deps (it installs chromium, nodejs/npm and tests/browser/node_modules)";
        let node = Command::new("node").arg("--version").output();
        assert!(
            matches!(&node, Ok(out) if out.status.success()),
            "browser tests need `node` on PATH ({node:?}): {fix}"
        );
        assert!(
            chromium.is_file(),
            "browser tests need Chromium at {}: {fix}",
            chromium.display()
        );
        let playwright = root.join("tests/browser/node_modules/playwright-core/package.json");
        assert!(
            playwright.is_file(),
            "browser tests need {}: {fix}",
            playwright.display()
        );
        BrowserTools { root, chromium }
    }

    /// `target/browser-artifacts/<name>.png` under the repository root, with any old copy
    /// (and old failure picture, `<name>-failure.png`) removed.
    pub(crate) fn screenshot(&self, name: &str) -> PathBuf {
        let dir = self.root.join("target/browser-artifacts");
        std::fs::create_dir_all(&dir).expect("target/browser-artifacts");
        let _ = std::fs::remove_file(dir.join(format!("{name}-failure.png")));
        let path = dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// Runs `node tests/browser/<script> <args> --chromium <path>`, answers each
    /// `driver> <request>` line with `handle`, and asserts the script exits 0.
    pub(crate) fn run(
        &self,
        script: &str,
        args: &[&str],
        mut handle: impl FnMut(&str) -> Result<String, String>,
    ) {
        let started = Instant::now();
        let child = Command::new("node")
            .arg(self.root.join("tests/browser").join(script))
            .args(args)
            .arg("--chromium")
            .arg(&self.chromium)
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let mut node = KillOnDrop(child);
        let mut stdin = node.0.stdin.take().unwrap();
        let stdout = node.0.stdout.take().unwrap();
        let (lines, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let left = SCRIPT_DEADLINE.saturating_sub(started.elapsed());
            let line = match requests.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{script} did not finish within {SCRIPT_DEADLINE:?}")
                }
            };
            let Some(request) = line.strip_prefix("driver> ") else {
                eprintln!("{script} (stdout): {line}");
                continue;
            };
            let answer = match handle(request) {
                Ok(values) => format!("ok {values}\n"),
                Err(reason) => format!("error {}\n", reason.replace('\n', " ")),
            };
            // A script that already died shows up in its exit status below.
            let _ = stdin
                .write_all(answer.as_bytes())
                .and_then(|()| stdin.flush());
        }
        drop(stdin);
        let status = loop {
            if let Some(status) = node.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < SCRIPT_DEADLINE + Duration::from_secs(10),
                "{script} did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        eprintln!("{script}: {status} after {:.1?}", started.elapsed());
        assert!(
            status.success(),
            "{script} failed ({status}); its reason is printed above as `FAIL:`"
        );
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
