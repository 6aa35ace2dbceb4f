//! After the faults: wait until everything arrived, then check every acknowledged event and
//! chat message against the streams in Redis and what each socket received.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use redis_ssot::stores::events::EventId;

use super::clients::{Publishes, Record, lock};
use super::faults::Episode;
use super::topology::Redis;
use super::{ChaosConfig, LOSS_WINDOW, Topology};

/// How far (in event time) a lost write may lie ahead of the new master's events it makes a
/// socket skip: a pause (at most 4 s here) plus the failover.
const SPLIT_BRAIN: Duration = Duration::from_secs(10);

/// One entry of a user's stream, as far as the checks need it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: EventId,
    pub(crate) name: String,
    /// For agent events: (job, step, message id).
    pub(crate) run: Option<(String, u64, String)>,
}

/// The streams once everything arrived (or the settle time ran out).
pub(crate) struct Settled {
    streams: Vec<Vec<Entry>>,
    waited: Duration,
    complete: bool,
}

/// Waits until every socket holds its user's whole stream and every acknowledged chat
/// message has finished, re-reading the streams each second, for at most `max`.
pub(crate) async fn settle(
    redis: &Redis,
    record: &Record,
    max: Duration,
    topology: Topology,
) -> anyhow::Result<Settled> {
    let start = Instant::now();
    let reader = Reader::connect(redis, topology).await?;
    loop {
        let mut streams = Vec::new();
        for user in &record.users {
            streams.push(reader.stream(&user.name).await?);
        }
        let complete = record.users.iter().zip(&streams).all(|(user, stream)| {
            let ids: BTreeSet<EventId> = stream.iter().map(|e| e.id).collect();
            let sockets_have_all = user.sockets.iter().all(|s| {
                let log = lock(s);
                let got: BTreeSet<&EventId> = log.received.iter().collect();
                ids.iter().all(|id| got.contains(id))
            });
            let finished: BTreeSet<&str> = stream
                .iter()
                .filter(|e| is_terminal(&e.name))
                .filter_map(|e| e.run.as_ref().map(|r| r.2.as_str()))
                .collect();
            let chats = lock(&user.chats);
            let chats_done = chats.pending.is_empty()
                && chats.acked.keys().all(|m| finished.contains(m.as_str()));
            sockets_have_all && chats_done
        });
        if complete || start.elapsed() >= max {
            return Ok(Settled {
                streams,
                waited: start.elapsed(),
                complete,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Settled {
    /// Whether everything arrived within the settle time.
    pub(crate) fn complete(&self) -> bool {
        self.complete
    }
}

fn is_terminal(name: &str) -> bool {
    name == "agent_completed" || name == "agent_failed"
}

/// The driver's own reads of the streams, straight to the nodes (no proxy).
enum Reader {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Reader {
    async fn connect(redis: &Redis, topology: Topology) -> anyhow::Result<Reader> {
        let urls = redis.direct_urls();
        Ok(match topology {
            Topology::Single => Reader::Single(
                redis::Client::open(urls[0].as_str())?
                    .get_multiplexed_async_connection()
                    .await?,
            ),
            Topology::Cluster => Reader::Cluster(
                redis::cluster::ClusterClient::new(urls)?
                    .get_async_connection()
                    .await?,
            ),
        })
    }

    async fn stream(&self, user: &str) -> anyhow::Result<Vec<Entry>> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(format!("ssot:{{u:{user}}}:events"))
            .arg("-")
            .arg("+");
        let raw: Vec<(String, Vec<(String, String)>)> = match self {
            Reader::Single(conn) => cmd.query_async(&mut conn.clone()).await?,
            Reader::Cluster(conn) => cmd.query_async(&mut conn.clone()).await?,
        };
        let mut entries = Vec::with_capacity(raw.len());
        for (id, fields) in raw {
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            let name = field("e").unwrap_or("").to_owned();
            let data: serde_json::Value =
                serde_json::from_str(field("d").unwrap_or("null")).unwrap_or_default();
            let run = match (
                data["job"].as_str(),
                data["seq"].as_u64(),
                data["message_id"].as_str(),
            ) {
                (Some(job), Some(seq), Some(message)) => {
                    Some((job.to_owned(), seq, message.to_owned()))
                }
                _ => None,
            };
            entries.push(Entry {
                id: id.parse()?,
                name,
                run,
            });
        }
        Ok(entries)
    }
}

/// The outcome of a run: figures and, when it failed, why.
#[derive(Debug)]
pub struct Report {
    /// The run's figures, one per line.
    pub figures: Vec<String>,
    /// Broken guarantees; empty when the run passed.
    pub failures: Vec<String>,
    /// Acknowledged events and chat messages lost inside the failover window, and events
    /// skipped behind a lost one (Cluster only).
    pub lost_in_window: usize,
    /// Acknowledged publishes.
    pub acked_events: usize,
    /// Acknowledged chat messages.
    pub acked_chats: usize,
    /// Faults applied.
    pub faults: usize,
}

impl Report {
    /// True when every guarantee held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub(crate) fn new(
        config: &ChaosConfig,
        record: &Record,
        settled: &Settled,
        episodes: &[Episode],
        publishes: Publishes,
        elapsed: Duration,
    ) -> Report {
        let mut failures = Vec::new();
        let mut figures = Vec::new();
        let cluster = config.topology == Topology::Cluster;
        // An acknowledged write may be lost only on a Cluster, and only when it was
        // acknowledged during a fault of a Redis node or within the window around it.
        let in_window = |at: Instant| {
            cluster
                && episodes.iter().any(|e| {
                    e.redis_node && at + LOSS_WINDOW >= e.start && at <= e.end + LOSS_WINDOW
                })
        };
        let (mut acked_events, mut lost_in_window, mut delivered) = (0, 0, 0u64);
        let (mut acked_chats, mut chats_lost_in_window, mut not_in_stream) = (0, 0, 0usize);
        let mut skipped_behind_lost = 0usize;
        let mut closes: BTreeMap<u16, u64> = BTreeMap::new();
        let mut refusals: BTreeMap<u16, u64> = BTreeMap::new();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let (mut connects, mut degraded) = (0u64, 0u64);
        for (user, stream) in record.users.iter().zip(&settled.streams) {
            let ids: BTreeSet<EventId> = stream.iter().map(|e| e.id).collect();
            // 1. Every acknowledged publish is in the stream (or lost in the window).
            for acked in lock(&user.acked).iter() {
                acked_events += 1;
                if !ids.contains(&acked.id) {
                    if in_window(acked.at) {
                        lost_in_window += 1;
                    } else {
                        failures.push(format!(
                            "{}: acknowledged event {} is not in the stream (no Redis fault within {LOSS_WINDOW:?} after its acknowledgement)",
                            user.name, acked.id
                        ));
                    }
                }
            }
            // 2. Every socket has the whole stream, each event once, in order.
            for (s, socket) in user.sockets.iter().enumerate() {
                let log = lock(socket);
                delivered += log.received.len() as u64;
                connects += log.connects;
                degraded += log.degraded;
                for (code, n) in &log.closes {
                    *closes.entry(*code).or_default() += n;
                }
                for (status, n) in &log.refusals {
                    *refusals.entry(*status).or_default() += n;
                }
                for (code, n) in &log.errors {
                    *errors.entry(code.clone()).or_default() += n;
                }
                for d in log.disorder.iter().take(5) {
                    failures.push(format!(
                        "{} socket {s} (gateway{}): {d}",
                        user.name, log.gateway
                    ));
                }
                if log.disorder.len() > 5 {
                    failures.push(format!(
                        "{} socket {s}: {} more events again or out of order",
                        user.name,
                        log.disorder.len() - 5
                    ));
                }
                let got: BTreeSet<EventId> = log.received.iter().copied().collect();
                // On a Cluster, a master that was paused and resumed after its replica took
                // over still runs (and announces) what was queued for it before it learns
                // that: writes that are then lost with ids above what the new master stored
                // meanwhile. A socket that received such a write resumes after it, so it
                // skips the new master's events below it: part of the same failover window.
                let doomed: BTreeSet<EventId> =
                    got.iter().filter(|id| !ids.contains(id)).copied().collect();
                let behind_doomed = |id: &EventId| {
                    doomed
                        .range(id..)
                        .next()
                        .is_some_and(|d| d.ms - id.ms <= SPLIT_BRAIN.as_millis() as u64)
                };
                let (skipped, missing): (Vec<EventId>, Vec<EventId>) = ids
                    .iter()
                    .filter(|id| !got.contains(id))
                    .partition(|id| cluster && behind_doomed(id));
                skipped_behind_lost += skipped.len();
                if !missing.is_empty() {
                    failures.push(format!(
                        "{} socket {s} (gateway{}, last status {}): {} events of the stream never delivered: {}",
                        user.name,
                        log.gateway,
                        log.last_status.as_deref().unwrap_or("none"),
                        missing.len(),
                        ranges(stream, &missing)
                    ));
                }
                let extra = got.iter().filter(|id| !ids.contains(id)).count();
                if extra > 0 {
                    not_in_stream += extra;
                    if !cluster {
                        failures.push(format!(
                            "{} socket {s}: {extra} events delivered that are not in the stream",
                            user.name
                        ));
                    }
                }
                if log.closes.contains_key(&1011) {
                    failures.push(format!(
                        "{} socket {s} (gateway{}): closed with 1011 ({} times)",
                        user.name, log.gateway, log.closes[&1011]
                    ));
                }
                if log.refusals.contains_key(&500) {
                    failures.push(format!("{} socket {s}: handshake answered 500", user.name));
                }
            }
            // 3. Every acknowledged chat message ran exactly once.
            let chats = lock(&user.chats);
            for conflict in &chats.job_conflicts {
                failures.push(format!("{}: message {conflict}", user.name));
            }
            for message in chats.pending.keys() {
                failures.push(format!(
                    "{}: message {message} was never acknowledged (resent every {:?})",
                    user.name,
                    Duration::from_secs(2)
                ));
            }
            let mut terminals: HashMap<&str, usize> = HashMap::new();
            let mut steps: HashMap<(&str, u64), usize> = HashMap::new();
            for entry in stream {
                if let Some((job, seq, message)) = &entry.run {
                    *steps.entry((job.as_str(), *seq)).or_default() += 1;
                    if is_terminal(&entry.name) {
                        *terminals.entry(message.as_str()).or_default() += 1;
                    }
                }
            }
            for ((job, seq), n) in &steps {
                if *n > 1 {
                    failures.push(format!(
                        "{}: job {job} step {seq} is {n} times in the stream",
                        user.name
                    ));
                }
            }
            for (message, (job, at)) in &chats.acked {
                acked_chats += 1;
                match terminals.get(message.as_str()).copied().unwrap_or(0) {
                    1 => {}
                    0 if in_window(*at) => chats_lost_in_window += 1,
                    0 => failures.push(format!(
                        "{}: acknowledged message {message} (job {job}) never finished",
                        user.name
                    )),
                    n => failures.push(format!(
                        "{}: message {message} (job {job}) finished {n} times",
                        user.name
                    )),
                }
            }
        }
        if let Some(n) = publishes.by_status.get(&500) {
            failures.push(format!("{n} publishes answered 500"));
        }
        // Not settling is no failure of its own: whatever did not arrive is one above, or a
        // loss inside the failover window (which the waiting cannot tell apart).
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for e in episodes {
            *kinds.entry(e.kind).or_default() += 1;
        }
        figures.push(format!(
            "seed {} topology {} duration {:?} (run {:.0} s, settled in {:.1} s{})",
            config.seed,
            config.topology,
            config.duration,
            elapsed.as_secs_f64(),
            settled.waited.as_secs_f64(),
            if settled.complete { "" } else { ", gave up" }
        ));
        figures.push(format!(
            "users {} sockets {} faults {} {:?}",
            record.users.len(),
            record.users.iter().map(|u| u.sockets.len()).sum::<usize>(),
            episodes.len(),
            kinds
        ));
        figures.push(format!(
            "publishes by status (0 = no answer) {:?}; acknowledged {acked_events}, lost in the failover window {lost_in_window}",
            publishes.by_status
        ));
        figures.push(format!(
            "chat messages acknowledged {acked_chats}, lost in the failover window {chats_lost_in_window}"
        ));
        figures.push(format!(
            "events delivered to sockets {delivered}; delivered but later lost from Redis (failover) {not_in_stream}; skipped behind such a lost event {skipped_behind_lost}"
        ));
        figures.push(format!(
            "connects {connects}, refused handshakes by status {refusals:?}, closes by code {closes:?}, degraded frames {degraded}, error frames {errors:?}"
        ));
        Report {
            figures,
            failures,
            lost_in_window: lost_in_window + chats_lost_in_window + skipped_behind_lost,
            acked_events,
            acked_chats,
            faults: episodes.len(),
        }
    }
}

/// The missing ids as runs of consecutive stream entries: `first..last (n, span ms)`.
fn ranges(stream: &[Entry], missing: &[EventId]) -> String {
    let missing: BTreeSet<&EventId> = missing.iter().collect();
    let mut runs: Vec<(EventId, EventId, usize)> = Vec::new();
    let mut open = false;
    for entry in stream {
        if missing.contains(&entry.id) {
            match runs.last_mut() {
                Some(run) if open => {
                    run.1 = entry.id;
                    run.2 += 1;
                }
                _ => runs.push((entry.id, entry.id, 1)),
            }
            open = true;
        } else {
            open = false;
        }
    }
    let shown: Vec<String> = runs
        .iter()
        .take(6)
        .map(|(a, b, n)| format!("{a}..{b} ({n}, {} ms)", b.ms.saturating_sub(a.ms)))
        .collect();
    let more = runs.len().saturating_sub(6);
    if more > 0 {
        format!("{} and {more} more runs", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.figures {
            writeln!(f, "{line}")?;
        }
        if self.passed() {
            writeln!(
                f,
                "PASS: every acknowledged event reached every socket of its user once, in order; every acknowledged chat message ran once; no 1011"
            )
        } else {
            writeln!(f, "FAIL: {} broken guarantees", self.failures.len())?;
            for failure in &self.failures {
                writeln!(f, "  {failure}")?;
            }
            Ok(())
        }
    }
}
