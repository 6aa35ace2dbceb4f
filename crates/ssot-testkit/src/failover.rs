//! Master failover on a [`RedisCluster`] with replicas: find who owns a slot, kill a master,
//! wait for its replica to take over, bring the old master back as a replica.

use std::time::{Duration, Instant};

use crate::RedisCluster;
use crate::cluster::{SLOTS, SlotMap, slot_map};
use crate::resp::{Connection, Reply};

/// How long a failover may take before the helper gives up.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);

impl RedisCluster {
    /// The slot of `key` as Redis computes it (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    /// If no node answers.
    pub fn key_slot(&self, key: &str) -> u16 {
        let reply = self.ask_any(&["CLUSTER", "KEYSLOT", key]);
        match reply {
            Reply::Integer(slot) => u16::try_from(slot).expect("a slot fits u16"),
            other => panic!("ssot-testkit: CLUSTER KEYSLOT {key}: {other:?}"),
        }
    }

    /// The index (in [`nodes`](Self::nodes)) of the node that is master of `slot` now, as
    /// the first live node sees it.
    ///
    /// # Panics
    /// If no node answers or the slot is unassigned.
    pub fn master_of_slot(&self, slot: u16) -> usize {
        let map = self
            .slot_map_now()
            .expect("ssot-testkit: no node gave a slot map");
        let port = owner(&map, slot).unwrap_or_else(|| panic!("slot {slot} unassigned"));
        self.index_of_port(port)
    }

    /// Indexes of the current masters (nodes that own slots), sorted.
    pub fn masters(&self) -> Vec<usize> {
        let map = self
            .slot_map_now()
            .expect("ssot-testkit: no node gave a slot map");
        let mut masters: Vec<usize> = map.iter().map(|r| self.index_of_port(r.2[0])).collect();
        masters.sort_unstable();
        masters.dedup();
        masters
    }

    /// Indexes of the replicas of master `index` now.
    ///
    /// # Panics
    /// If no node answers or node `index` owns no slots.
    pub fn replicas_of(&self, index: usize) -> Vec<usize> {
        let (_, ports) = self.range_of_master(index);
        ports[1..].iter().map(|p| self.index_of_port(*p)).collect()
    }

    /// SIGKILLs master `index` and waits until every live node agrees that the slots it
    /// owned are served by another node (its promoted replica) and reports
    /// `cluster_state:ok`. Returns the new master's index and the time from the kill.
    ///
    /// # Panics
    /// If node `index` owns no slots, or the failover does not complete within 30 s.
    pub fn kill_master_and_wait_failover(&mut self, index: usize) -> (usize, Duration) {
        let port = self.nodes()[index].port();
        let (slot, _) = self.range_of_master(index);
        let killed_at = Instant::now();
        self.node_mut(index).kill();
        loop {
            if let Some(new) = self.promoted(index, slot) {
                return (new, killed_at.elapsed());
            }
            assert!(
                killed_at.elapsed() < FAILOVER_DEADLINE,
                "ssot-testkit: no failover of port {port} within {FAILOVER_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restarts node `index` (a master killed by
    /// [`kill_master_and_wait_failover`](Self::kill_master_and_wait_failover)) on its port
    /// and data dir. It rejoins from its `nodes.conf`, finds its slots owned by a newer epoch
    /// and turns into a replica of their new owner, as a recovered Redis master does. Returns
    /// the index of its new master once the replica has synced (`master_link_status:up`) and
    /// the whole cluster is ready again (every range has its replicas).
    ///
    /// # Panics
    /// If the node does not become an in-sync replica within 30 s.
    pub fn rejoin_as_replica(&mut self, index: usize) -> usize {
        self.node_mut(index).restart();
        let started = Instant::now();
        let node = &self.nodes()[index];
        loop {
            let info = node.try_cli(&["INFO", "replication"]).unwrap_or_default();
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
                    .map(str::to_owned)
            };
            let synced = field("role").as_deref() == Some("slave")
                && field("master_link_status").as_deref() == Some("up")
                && field("master_sync_in_progress").as_deref() == Some("0");
            if let Some(port) = field("master_port").and_then(|p| p.parse::<i64>().ok())
                && synced
            {
                self.wait_ready();
                return self.index_of_port(port);
            }
            assert!(
                started.elapsed() < FAILOVER_DEADLINE,
                "ssot-testkit: node {index} (port {}) not an in-sync replica after \
                 {FAILOVER_DEADLINE:?}:\n{info}",
                node.port()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The new master of `slot` once every live node agrees it is not node `dead` and the
    /// cluster is ok everywhere.
    fn promoted(&self, dead: usize, slot: u16) -> Option<usize> {
        let mut agreed: Option<i64> = None;
        for (i, node) in self.nodes().iter().enumerate() {
            if i == dead {
                continue;
            }
            let mut conn = Connection::open(node.addr(), Duration::from_millis(500)).ok()?;
            let info = conn.command(&["CLUSTER", "INFO"]).ok()?.as_text()?;
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                return None;
            }
            let map = slot_map(&conn.command(&["CLUSTER", "SLOTS"]).ok()?)?;
            let port = owner(&map, slot)?;
            if port == i64::from(self.nodes()[dead].port()) || agreed.is_some_and(|p| p != port) {
                return None;
            }
            agreed = Some(port);
        }
        agreed.map(|port| self.index_of_port(port))
    }

    /// The first slot of a range master `index` owns, and that range's ports (master first).
    fn range_of_master(&self, index: usize) -> (u16, Vec<i64>) {
        let port = i64::from(self.nodes()[index].port());
        let map = self
            .slot_map_now()
            .expect("ssot-testkit: no node gave a slot map");
        map.into_iter()
            .find(|r| r.2[0] == port)
            .map(|(first, _, ports)| (first as u16, ports))
            .unwrap_or_else(|| panic!("ssot-testkit: node {index} (port {port}) is no master"))
    }

    fn slot_map_now(&self) -> Option<SlotMap> {
        match self.ask_any(&["CLUSTER", "SLOTS"]) {
            reply @ Reply::Array(_) => slot_map(&reply),
            _ => None,
        }
    }

    /// The reply of the first node that answers `args`.
    fn ask_any(&self, args: &[&str]) -> Reply {
        for node in self.nodes() {
            let Ok(mut conn) = Connection::open(node.addr(), Duration::from_millis(500)) else {
                continue;
            };
            if let Ok(reply) = conn.command(args) {
                return reply;
            }
        }
        panic!("ssot-testkit: no cluster node answered {args:?}")
    }

    fn index_of_port(&self, port: i64) -> usize {
        self.nodes()
            .iter()
            .position(|n| i64::from(n.port()) == port)
            .unwrap_or_else(|| panic!("ssot-testkit: no node on port {port}"))
    }
}

/// The master port serving `slot` in `map`.
fn owner(map: &SlotMap, slot: u16) -> Option<i64> {
    let slot = i64::from(slot);
    debug_assert!(slot < SLOTS);
    map.iter()
        .find(|(first, last, _)| *first <= slot && slot <= *last)
        .map(|r| r.2[0])
}
