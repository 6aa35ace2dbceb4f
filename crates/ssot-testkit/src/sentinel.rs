//! A Redis Sentinel deployment of real processes: a master, its replica, three Sentinels.

use std::time::{Duration, Instant};

use crate::RedisServer;
use crate::resp::{Connection, Reply};

/// The name the Sentinels monitor the master under.
pub const SENTINEL_MASTER_NAME: &str = "ssot";
/// How long the deployment may take to be ready, or a failover to complete.
const DEADLINE: Duration = Duration::from_secs(30);

/// One master, one replica and three Sentinels (quorum 2) on loopback.
///
/// ## Behavior
/// - The Sentinels monitor the master as [`SENTINEL_MASTER_NAME`] and call it down after
///   1 s without answer (`down-after-milliseconds 1000`); a failover then takes a few
///   seconds (agreement, election, promotion).
/// - Construction returns once the replica is in sync and every Sentinel knows the replica
///   and the two other Sentinels, so that a failover can be elected at once.
/// - [`kill_master_and_wait_failover`](Self::kill_master_and_wait_failover) SIGKILLs the
///   current master and returns once every Sentinel names the replica as master and the
///   replica answers `role:master`.
/// - Drop kills every process.
#[derive(Debug)]
pub struct RedisSentinel {
    /// The two data nodes; which one is master changes with a failover.
    data: [RedisServer; 2],
    sentinels: Vec<RedisServer>,
}

impl RedisSentinel {
    /// Starts the five processes and waits until the deployment is ready.
    ///
    /// # Panics
    /// If a process does not start, or the deployment is not ready within 30 s.
    pub fn start() -> RedisSentinel {
        let master = RedisServer::start();
        let replica = RedisServer::builder()
            .arg("--replicaof", &format!("127.0.0.1 {}", master.port()))
            // Replicas sync at once instead of after the default 5 s batching delay.
            .arg("--repl-diskless-sync-delay", "0")
            .start();
        master.cli(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
        let conf = format!(
            "sentinel monitor {SENTINEL_MASTER_NAME} 127.0.0.1 {} 2\n\
             sentinel down-after-milliseconds {SENTINEL_MASTER_NAME} 1000\n\
             sentinel failover-timeout {SENTINEL_MASTER_NAME} 10000\n\
             sentinel parallel-syncs {SENTINEL_MASTER_NAME} 1\n",
            master.port()
        );
        let sentinels = (0..3)
            .map(|_| RedisServer::builder().sentinel(conf.clone()).start())
            .collect();
        let deployment = RedisSentinel {
            data: [master, replica],
            sentinels,
        };
        deployment.wait(|d| d.ready().then_some(()), "ready");
        deployment
    }

    /// `redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/ssot`.
    pub fn url(&self) -> String {
        let addrs: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!(
            "redis+sentinel://{}/{SENTINEL_MASTER_NAME}",
            addrs.join(",")
        )
    }

    /// The Sentinel processes.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The current master, as the Sentinels name it.
    ///
    /// # Panics
    /// If no Sentinel answers.
    pub fn master(&self) -> &RedisServer {
        let port = self
            .sentinels
            .iter()
            .find_map(master_port)
            .expect("ssot-testkit: no Sentinel named a master");
        self.data_node(port)
            .expect("ssot-testkit: the Sentinels name an unknown master")
    }

    /// The current replica (the data node that is not the master).
    ///
    /// # Panics
    /// If no Sentinel answers.
    pub fn replica(&self) -> &RedisServer {
        let master = self.master().port();
        self.data.iter().find(|n| n.port() != master).unwrap()
    }

    /// SIGKILLs the current master and waits until every Sentinel names the other data node
    /// as master and that node answers `role:master`. Returns the time from the kill.
    ///
    /// # Panics
    /// If that does not happen within 30 s.
    pub fn kill_master_and_wait_failover(&mut self) -> Duration {
        let old = self.master().port();
        let killed_at = Instant::now();
        let index = self.data.iter().position(|n| n.port() == old).unwrap();
        self.data[index].kill();
        let new = self.data[1 - index].port();
        self.wait(
            |d| {
                let all = d.sentinels.iter().all(|s| master_port(s) == Some(new));
                (all && role(&d.data[1 - index]).as_deref() == Some("master")).then_some(())
            },
            "failover",
        );
        killed_at.elapsed()
    }

    fn data_node(&self, port: u16) -> Option<&RedisServer> {
        self.data.iter().find(|n| n.port() == port)
    }

    /// Every Sentinel names the first master, knows its in-sync replica and two Sentinels.
    fn ready(&self) -> bool {
        let master = self.data[0].port();
        if !self.data[1]
            .try_cli(&["INFO", "replication"])
            .is_ok_and(|i| i.contains("master_link_status:up"))
        {
            return false;
        }
        self.sentinels.iter().all(|s| {
            let Ok(text) = s.try_cli(&["SENTINEL", "MASTER", SENTINEL_MASTER_NAME]) else {
                return false;
            };
            // redis-cli prints the reply's field/value pairs one per line.
            let lines: Vec<&str> = text.lines().collect();
            let field = |name: &str| {
                lines
                    .iter()
                    .position(|l| *l == name)
                    .and_then(|i| lines.get(i + 1))
                    .copied()
            };
            field("port") == Some(&master.to_string())
                && field("num-slaves") == Some("1")
                && field("num-other-sentinels") == Some("2")
        })
    }

    fn wait<T>(&self, check: impl Fn(&Self) -> Option<T>, what: &str) -> T {
        let start = Instant::now();
        loop {
            if let Some(done) = check(self) {
                return done;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "ssot-testkit: Sentinel deployment not {what} after {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The master port a Sentinel names (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
fn master_port(sentinel: &RedisServer) -> Option<u16> {
    let mut conn = Connection::open(sentinel.addr(), Duration::from_millis(500)).ok()?;
    let reply = conn
        .command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER_NAME])
        .ok()?;
    let Reply::Array(Some(items)) = reply else {
        return None;
    };
    items.get(1)?.as_text()?.parse().ok()
}

/// `role` from `INFO replication` of a data node.
fn role(node: &RedisServer) -> Option<String> {
    let info = node.try_cli(&["INFO", "replication"]).ok()?;
    info.lines()
        .find_map(|l| l.trim().strip_prefix("role:"))
        .map(str::to_owned)
}
