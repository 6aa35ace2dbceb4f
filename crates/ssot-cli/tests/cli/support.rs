//! Running the `ssot` binary.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const SECRET: &str = "cli-test-secret-0123456789abcdef";
pub(crate) const SERVICE_KEY: &str = "cli-service-key-0123456789";

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssot"));
    cmd.args(args)
        .env_remove("REDIS_URL")
        .env_remove("SSOT_JWT_SECRET")
        .env_remove("SSOT_SERVICE_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Never pick up a developer's ./ssot.toml.
    cmd.current_dir(std::env::temp_dir());
    cmd
}

/// Runs `ssot` to completion.
pub(crate) fn ssot(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("ssot runs")
}

/// Stdout and stderr together.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ssot serve`; killed on drop.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Served {
    pub(crate) fn start(redis_url: &str) -> Served {
        Served::start_with(redis_url, &[])
    }

    /// [`Served::start`] with more arguments (`--config <file>`).
    pub(crate) fn start_with(redis_url: &str, extra: &[&str]) -> Served {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--listen", &listen, "--redis", redis_url];
        args.extend_from_slice(extra);
        let child = command(
            &args,
            &[
                ("SSOT_JWT_SECRET", SECRET),
                ("SSOT_SERVICE_KEY", SERVICE_KEY),
                ("SSOT_REDIS_HEALTH_INTERVAL_MS", "100"),
                ("SSOT_LOG", "warn"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ssot serve starts");
        let served = Served { child, port };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "ssot serve did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        served
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/v1/ws", self.port)
    }

    /// SIGTERM or SIGKILL by pid, through kill(1).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token from `ssot token`.
pub(crate) fn token(user: &str) -> String {
    let out = ssot(
        &["token", "--user", user, "--ttl", "600"],
        &[("SSOT_JWT_SECRET", SECRET)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Publishes through a gateway's HTTP API with a blocking client; the event id.
pub(crate) fn publish(port: u16, user: &str, data: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let body = format!(r#"{{"event":"e","data":{data}}}"#);
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let request = format!(
        "POST /v1/users/{user}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVICE_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(answer);
    }
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(v["id"].as_str().unwrap().to_owned())
}

/// An event id of the wire format, parsed and ordered as the library does.
pub(crate) fn event_id(id: &str) -> redis_ssot::stores::events::EventId {
    id.parse().unwrap()
}

/// One request to a gateway's HTTP API with the service key, on a fresh connection
/// (`Connection: close`); the status and the body.
pub(crate) fn service_request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVICE_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}
