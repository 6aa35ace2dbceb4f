//! The `http` agent: POSTs the job to a service and relays the NDJSON events it streams back.
//!
//! The client is hyper's HTTP/1.1 connection API over one `TcpStream` per run: it handles
//! chunked and length-delimited bodies correctly and adds no dependency to the workspace
//! (hyper is already there for the gateway). No pool and no TLS: agent services are
//! expected next to the workers (`http://` only, checked when the config is resolved).

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use hyper::body::Body;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::{
    AGENT_COMPLETED, AGENT_FAILED, AGENT_STARTED, Agent, AgentError, AgentFuture, PROGRESS_EVENTS,
    Run,
};

/// Longest NDJSON line accepted from the service.
const MAX_LINE_BYTES: usize = 256 * 1024;

/// An agent that runs in another service.
///
/// ## Behavior
/// - POSTs `{"job", "user", "kind", "message_id", "text", "payload", "attempt", "delivered"}`
///   as JSON to the URL. `delivered` is the highest sequence number an earlier attempt
///   already delivered, so a service may skip that far; events it sends again are dropped.
/// - Reads the answer as NDJSON, one `{"event": "...", "data": {...}}` per line:
///   `agent_thinking`, `tool_executing`, `tool_completed` are relayed; `agent_completed`
///   (with a string `data.answer`) ends the run; `agent_failed` (with `data.reason`) fails
///   it; `agent_started` is ignored (the worker sent it already).
/// - Fails the attempt with a reason on: connection failure, a non-2xx status, a line that
///   is not such an object or names another event, a line longer than 256 KiB, no line
///   within the idle timeout, or the end of the stream before the run ended. The worker's
///   run timeout bounds the whole exchange.
/// - Never sends or shows the URL's userinfo (`user:password@`): the `Host` header and every
///   error name only `http://host:port/path`. (The worker's config refuses such URLs anyway.)
#[derive(Debug, Clone)]
pub struct HttpAgent {
    url: Uri,
    /// `host[:port]` of `url`, without userinfo.
    host_port: String,
    idle_timeout: Duration,
}

impl HttpAgent {
    /// An agent POSTing to `url` (`http://`), giving up after `idle_timeout` of silence.
    pub fn new(url: Uri, idle_timeout: Duration) -> HttpAgent {
        let host = url.host().unwrap_or_default();
        let host_port = match url.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        HttpAgent {
            url,
            host_port,
            idle_timeout,
        }
    }

    /// The URL as errors show it: without userinfo.
    fn shown(&self) -> String {
        let path = self.url.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{}{path}", self.host_port)
    }

    async fn exchange(&self, run: &mut Run) -> Result<String, AgentError> {
        let failed = |reason: String| AgentError::Failed(reason);
        let host = self.url.host().unwrap_or_default().trim_matches(['[', ']']);
        let port = self.url.port_u16().unwrap_or(80);
        let stream = timeout(self.idle_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                failed(format!(
                    "connecting to the agent service at {}: timed out",
                    self.shown()
                ))
            })?
            .map_err(|e| {
                failed(format!(
                    "connecting to the agent service at {}: {e}",
                    self.shown()
                ))
            })?;
        stream.set_nodelay(true).ok();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(format!("agent service handshake: {e}")))?;
        let _connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));

        let job = run.job();
        let body = json!({
            "job": job.id,
            "user": job.user.as_str(),
            "kind": job.kind,
            "message_id": run.message_id(),
            "text": run.text(),
            "payload": job.payload,
            "attempt": job.deliveries,
            "delivered": run.delivered(),
        })
        .to_string();
        let path = self
            .url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let request = Request::post(path)
            .header(HOST, &self.host_port)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/x-ndjson")
            .body(body)
            .map_err(|e| failed(format!("building the request: {e}")))?;
        let response = timeout(self.idle_timeout, sender.send_request(request))
            .await
            .map_err(|_| {
                failed(format!(
                    "agent service sent no response within {:?}",
                    self.idle_timeout
                ))
            })?
            .map_err(|e| failed(format!("agent service request: {e}")))?;
        if !response.status().is_success() {
            return Err(failed(format!(
                "agent service answered {}",
                response.status()
            )));
        }

        let mut body = response.into_body();
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if let Some(answer) = relay(run, &line).await? {
                    return Ok(answer);
                }
            }
            if buffer.len() > MAX_LINE_BYTES {
                return Err(failed(format!(
                    "agent service sent a line longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            let frame = timeout(
                self.idle_timeout,
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)),
            )
            .await
            .map_err(|_| {
                failed(format!(
                    "agent service sent nothing for {:?}",
                    self.idle_timeout
                ))
            })?;
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(failed(format!("reading the agent service's stream: {e}")));
                }
                None => {
                    // A last line without its newline still counts.
                    if let Some(answer) = relay(run, &buffer).await? {
                        return Ok(answer);
                    }
                    return Err(failed(
                        "agent service ended the stream before agent_completed".into(),
                    ));
                }
            }
        }
    }
}

impl Agent for HttpAgent {
    fn run<'a>(&'a self, run: &'a mut Run) -> AgentFuture<'a> {
        Box::pin(self.exchange(run))
    }
}

/// Relays one NDJSON line; `Some(answer)` when it ended the run.
async fn relay(run: &mut Run, line: &[u8]) -> Result<Option<String>, AgentError> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let garbage = || {
        let shown: String = text.chars().take(80).collect();
        AgentError::Failed(format!("agent service sent an invalid line: {shown:?}"))
    };
    let Ok(Value::Object(mut line)) = serde_json::from_str::<Value>(text) else {
        return Err(garbage());
    };
    let (Some(Value::String(event)), data) = (line.remove("event"), line.remove("data")) else {
        return Err(garbage());
    };
    let data = match data {
        Some(Value::Object(data)) => data,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(garbage()),
    };
    match event.as_str() {
        AGENT_STARTED => Ok(None),
        AGENT_COMPLETED => match data.get("answer") {
            Some(Value::String(answer)) => Ok(Some(answer.clone())),
            _ => Err(AgentError::Failed(
                "agent service sent agent_completed without a string answer".into(),
            )),
        },
        AGENT_FAILED => {
            let reason = data
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            Err(AgentError::Failed(format!(
                "agent service failed: {reason}"
            )))
        }
        name if PROGRESS_EVENTS.contains(&name) => {
            run.emit(name, data).await?;
            Ok(None)
        }
        _ => Err(garbage()),
    }
}

/// Stops the connection task when the exchange ends, however it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
