//! Failure domains: which breaker and health a call belongs to.
//!
//! ## Behavior
//! - On one server there is one domain, the server (named `server`).
//! - On a Cluster each master is a domain (named by its `host:port`), owning the slot ranges
//!   `CLUSTER SLOTS` gives it. A call's domain is its key's slot (CRC16 of the hash tag, as
//!   Redis computes it; every per-user key carries `{u:<id>}`). Keyless calls (PING,
//!   PUBLISH, SCAN...) and calls before the first slot map belong to the process-wide domain
//!   (named `cluster`).
//! - Each domain has its own breaker: a failed master refuses only the calls routed to it,
//!   and a master that replaces it after a failover is a new domain with a closed breaker.
//! - The health monitor refreshes the slot map on every round, and at once when a call saw a
//!   connection error or a redirection ([`Domains::request_refresh`]). Domains whose master
//!   no longer owns slots are dropped, so their number stays bounded by the masters (metric
//!   series, labelled `domain`, by the nodes of the cluster).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use redis::{Arg, Cmd, Value};
use serde::Serialize;
use tokio::sync::Notify;

use crate::breaker::{BreakerState, CircuitBreaker};
use crate::config::BreakerConfig;

/// Slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// One failure domain: a breaker and what the health monitor last saw.
#[derive(Debug)]
pub(crate) struct Domain {
    /// `server`, `cluster`, or the master's `host:port`.
    pub(crate) name: Arc<str>,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) seen: Mutex<DomainHealth>,
}

/// The health of one failure domain, as the last health check saw it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DomainHealth {
    /// `server` on one Redis; the master's `host:port` on a Cluster.
    pub node: String,
    /// The domain's circuit breaker.
    pub breaker: BreakerState,
    /// True when the last PING answered.
    pub reachable: bool,
    /// Round trip of the last PING, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Slots the node owns (0 on one server).
    pub slots: u32,
    /// The last PING error, if it failed.
    pub last_error: Option<String>,
}

/// Where a call goes, as far as failure domains care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// No key: the process-wide domain.
    Keyless,
    /// A key in this slot.
    Slot(u16),
}

/// A master's slot ranges.
pub(crate) type SlotRanges = Vec<(u16, u16, String)>;

/// Every domain of one manager.
pub(crate) struct Domains {
    config: BreakerConfig,
    cluster: bool,
    process: Arc<Domain>,
    /// Sorted, non-overlapping `(first, last, domain)` ranges; empty on one server.
    table: ArcSwap<Vec<(u16, u16, Arc<Domain>)>>,
    masters: Mutex<HashMap<String, Arc<Domain>>>,
    refresh: Notify,
}

impl Domain {
    fn new(name: &str, config: BreakerConfig, label: bool) -> Arc<Domain> {
        let name: Arc<str> = Arc::from(name);
        let breaker = CircuitBreaker::new(config, label.then(|| Arc::clone(&name)));
        Arc::new(Domain {
            seen: Mutex::new(DomainHealth {
                node: name.to_string(),
                breaker: BreakerState::Closed,
                reachable: false,
                latency_ms: None,
                slots: 0,
                last_error: None,
            }),
            name,
            breaker,
        })
    }

    /// Notes the outcome of a health PING.
    pub(crate) fn observe_ping(&self, latency_ms: Option<f64>, error: Option<String>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.reachable = error.is_none();
        seen.latency_ms = latency_ms;
        seen.last_error = error;
    }

    /// The domain's health now (breaker state read live).
    pub(crate) fn health(&self) -> DomainHealth {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        seen.breaker = self.breaker.state();
        seen
    }
}

impl Domains {
    pub(crate) fn new(config: BreakerConfig, cluster: bool) -> Domains {
        let name = if cluster { "cluster" } else { "server" };
        Domains {
            process: Domain::new(name, config.clone(), false),
            config,
            cluster,
            table: ArcSwap::from_pointee(Vec::new()),
            masters: Mutex::new(HashMap::new()),
            refresh: Notify::new(),
        }
    }

    /// The process-wide domain (the server itself on one Redis).
    pub(crate) fn process(&self) -> &Arc<Domain> {
        &self.process
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The domain of a call.
    pub(crate) fn resolve(&self, route: Route) -> Arc<Domain> {
        let Route::Slot(slot) = route else {
            return Arc::clone(&self.process);
        };
        let table = self.table.load();
        let at = table.partition_point(|(_, last, _)| *last < slot);
        match table.get(at) {
            Some((first, _, domain)) if *first <= slot => Arc::clone(domain),
            _ => Arc::clone(&self.process),
        }
    }

    /// The route of a command: its key's slot on a Cluster, else keyless.
    pub(crate) fn route_of(&self, cmd: &Cmd) -> Route {
        if !self.cluster {
            return Route::Keyless;
        }
        key_of(cmd).map_or(Route::Keyless, |key| Route::Slot(slot_of_key(key)))
    }

    /// Installs a new slot map; masters that own nothing any more are forgotten. True when a
    /// slot of the previous map now has another master (a failover, a moved slot).
    pub(crate) fn update(&self, ranges: SlotRanges) -> bool {
        let before = self.table.load_full();
        let moved = before.iter().any(|(first, last, domain)| {
            ranges
                .iter()
                .any(|(f, l, node)| f <= last && first <= l && node.as_str() != &*domain.name)
        });
        let mut masters = self.masters.lock().unwrap_or_else(|e| e.into_inner());
        let mut table = Vec::with_capacity(ranges.len());
        let mut slots: HashMap<&str, u32> = HashMap::new();
        for (first, last, node) in &ranges {
            let domain = masters
                .entry(node.clone())
                .or_insert_with(|| Domain::new(node, self.config.clone(), true));
            table.push((*first, *last, Arc::clone(domain)));
            *slots.entry(node.as_str()).or_default() += u32::from(last - first) + 1;
        }
        masters.retain(|node, domain| match slots.get(node.as_str()) {
            Some(owned) => {
                domain.seen.lock().unwrap_or_else(|e| e.into_inner()).slots = *owned;
                true
            }
            None => false,
        });
        table.sort_unstable_by_key(|(first, _, _)| *first);
        self.table.store(Arc::new(table));
        moved
    }

    /// The masters of the current slot map.
    pub(crate) fn masters(&self) -> Vec<Arc<Domain>> {
        let mut list: Vec<_> = self
            .masters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Health of every domain: the masters on a Cluster, the server on one Redis.
    pub(crate) fn report(&self) -> Vec<DomainHealth> {
        if !self.cluster {
            return vec![self.process.health()];
        }
        self.masters().iter().map(|d| d.health()).collect()
    }

    /// Asks the health monitor to refresh the slot map now.
    pub(crate) fn request_refresh(&self) {
        if self.cluster {
            self.refresh.notify_one();
        }
    }

    pub(crate) async fn refresh_requested(&self) {
        self.refresh.notified().await
    }
}

/// The `(first, last, "host:port")` master ranges of a `CLUSTER SLOTS` reply.
pub(crate) fn parse_cluster_slots(reply: &Value) -> Option<SlotRanges> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(items) = range else {
            return None;
        };
        let (Some(Value::Int(first)), Some(Value::Int(last)), Some(Value::Array(master))) =
            (items.first(), items.get(1), items.get(2))
        else {
            return None;
        };
        let host = match master.first()? {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let Some(Value::Int(port)) = master.get(1) else {
            return None;
        };
        let first = u16::try_from(*first).ok().filter(|s| *s < SLOTS)?;
        let last = u16::try_from(*last)
            .ok()
            .filter(|s| *s < SLOTS && *s >= first)?;
        out.push((first, last, format!("{host}:{port}")));
    }
    Some(out)
}

/// The key a command is routed by, if it has one.
fn key_of(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|arg| match arg {
        Arg::Simple(bytes) => bytes,
        _ => &[][..],
    });
    let name = args.next()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let numkeys = args.nth(1)?;
            (numkeys != b"0").then(|| args.next()).flatten()
        }
        b"XREAD" | b"XREADGROUP" => {
            args.find(|a| a.eq_ignore_ascii_case(b"STREAMS"))?;
            args.next()
        }
        b"XINFO" | b"OBJECT" | b"MEMORY" | b"XGROUP" => args.nth(1),
        b"PING" | b"ECHO" | b"INFO" | b"CLIENT" | b"CLUSTER" | b"SCRIPT" | b"FUNCTION"
        | b"PUBLISH" | b"SUBSCRIBE" | b"UNSUBSCRIBE" | b"PSUBSCRIBE" | b"PUNSUBSCRIBE"
        | b"TIME" | b"DBSIZE" | b"FLUSHALL" | b"FLUSHDB" | b"CONFIG" | b"COMMAND" | b"WAIT"
        | b"KEYS" | b"SCAN" | b"RANDOMKEY" | b"HELLO" | b"AUTH" | b"SELECT" | b"MULTI"
        | b"EXEC" | b"DISCARD" | b"SLOWLOG" | b"LATENCY" | b"ACL" | b"READONLY" | b"READWRITE"
        | b"RESET" | b"LASTSAVE" | b"SAVE" | b"BGSAVE" => None,
        _ => args.next(),
    }
}

/// The Cluster slot of a key: CRC16 (XMODEM) of its hash tag (the text between the first
/// `{` and the next `}`, if not empty) or of the whole key, modulo 16384.
pub(crate) fn slot_of_key(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot_of_key(b"foo"), 12182);
        assert_eq!(
            slot_of_key(b"{user1000}.following"),
            slot_of_key(b"user1000")
        );
        assert_ne!(
            slot_of_key(b"foo{}{bar}"),
            slot_of_key(b"bar"),
            "empty tag: whole key"
        );
        assert_eq!(
            slot_of_key(b"ssot:{u:alice}:events"),
            slot_of_key(b"ssot:{u:alice}:cache:x")
        );
    }

    #[test]
    fn commands_route_by_their_key() {
        let domains = Domains::new(
            crate::config::RedisConfig::for_url("redis://x")
                .unwrap()
                .breaker,
            true,
        );
        let slot = |k: &[u8]| Route::Slot(slot_of_key(k));
        let route = |cmd: &Cmd| domains.route_of(cmd);
        assert_eq!(route(redis::cmd("GET").arg("k")), slot(b"k"));
        assert_eq!(route(&redis::cmd("PING")), Route::Keyless);
        assert_eq!(
            route(redis::cmd("PUBLISH").arg("c").arg("m")),
            Route::Keyless
        );
        assert_eq!(
            route(
                redis::cmd("EVALSHA")
                    .arg("abc")
                    .arg(1)
                    .arg("{u:a}:e")
                    .arg("x")
            ),
            slot(b"{u:a}")
        );
        assert_eq!(
            route(redis::cmd("EVALSHA").arg("abc").arg(0).arg("x")),
            Route::Keyless
        );
        assert_eq!(
            route(
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg("c")
                    .arg("STREAMS")
                    .arg("s")
                    .arg(">")
            ),
            slot(b"s")
        );
        assert_eq!(
            route(redis::cmd("XINFO").arg("STREAM").arg("s")),
            slot(b"s")
        );
    }

    #[test]
    fn slot_map_picks_domains_and_forgets_old_masters() {
        let config = crate::config::RedisConfig::for_url("redis://x")
            .unwrap()
            .breaker;
        let domains = Domains::new(config, true);
        assert_eq!(
            &*domains.resolve(Route::Slot(5)).name,
            "cluster",
            "no map yet"
        );
        domains.update(vec![
            (0, 5460, "h:1".into()),
            (5461, 10922, "h:2".into()),
            (10923, 16383, "h:3".into()),
        ]);
        assert_eq!(&*domains.resolve(Route::Slot(0)).name, "h:1");
        assert_eq!(&*domains.resolve(Route::Slot(5461)).name, "h:2");
        assert_eq!(&*domains.resolve(Route::Slot(16383)).name, "h:3");
        assert_eq!(&*domains.resolve(Route::Keyless).name, "cluster");
        let old = domains.resolve(Route::Slot(0));
        domains.update(vec![
            (0, 5460, "h:4".into()),
            (5461, 10922, "h:2".into()),
            (10923, 16383, "h:3".into()),
        ]);
        assert_eq!(&*domains.resolve(Route::Slot(0)).name, "h:4");
        assert!(Arc::ptr_eq(
            &domains.resolve(Route::Slot(6000)),
            &domains.resolve(Route::Slot(5461))
        ));
        let names: Vec<_> = domains
            .report()
            .into_iter()
            .map(|d| (d.node, d.slots))
            .collect();
        assert_eq!(
            names,
            vec![
                ("h:2".into(), 5462),
                ("h:3".into(), 5461),
                ("h:4".into(), 5461)
            ]
        );
        drop(old);
    }
}
