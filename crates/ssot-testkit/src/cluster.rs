//! A local Redis Cluster of real `redis-server` nodes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::RedisServer;
use crate::resp::{Connection, Reply};

pub(crate) const SLOTS: i64 = 16384;
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// A local Redis Cluster: `masters` masters with `replicas_per_master` replicas each, all
/// on loopback, joined with `redis-cli --cluster create`.
///
/// ## Behavior
/// - Nodes run in cluster mode (`--cluster-enabled yes`, `nodes.conf` in each node's dir,
///   1 s node timeout, `cluster-require-full-coverage no` so that the other masters keep
///   serving while one master's slots are uncovered) on ports `p` whose bus port `p + 10000` was free.
/// - Construction returns only when every node reports `cluster_state:ok`, all 16384
///   slots are assigned, every node knows every other, and all nodes return the same
///   `CLUSTER SLOTS` map with the expected number of replicas per range.
/// - Nodes are ordinary [`RedisServer`]s: `node_mut(i).kill()` / `.restart()` work, and a
///   restarted node rejoins from its `nodes.conf`. [`wait_ready`](Self::wait_ready) waits
///   for agreement again.
/// - Drop kills every node.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    replicas_per_master: usize,
    /// The certificates every node of a TLS cluster shares.
    certificates: Option<tempfile::TempDir>,
}

impl RedisCluster {
    /// Three masters, no replicas.
    pub fn start() -> RedisCluster {
        RedisCluster::with(3, 0)
    }

    /// `masters` masters (at least 3, as Redis requires) with `replicas_per_master`
    /// replicas each.
    ///
    /// # Panics
    /// If fewer than 3 masters are asked for, a node does not start, `redis-cli --cluster
    /// create` fails, or the cluster is not ready within 30 s.
    pub fn with(masters: usize, replicas_per_master: usize) -> RedisCluster {
        RedisCluster::start_nodes(masters, replicas_per_master, false, false)
    }

    /// Like [`with`](Self::with), over TLS: every node also listens on a TLS port with a
    /// certificate of one shared throwaway CA ([`tls_ca_file`](Self::tls_ca_file)), and the
    /// cluster bus and replication run over TLS (`--tls-cluster yes`, `--tls-replication
    /// yes`). Clients reach it at [`tls_cluster_url`](Self::tls_cluster_url); the plain ports
    /// stay, for the kit's own checks.
    ///
    /// # Panics
    /// As [`with`](Self::with); also if `openssl(1)` is missing.
    pub fn with_tls(masters: usize, replicas_per_master: usize) -> RedisCluster {
        RedisCluster::start_nodes(masters, replicas_per_master, true, false)
    }

    /// Like [`with`](Self::with), every node with AOF persistence (`appendfsync always`), so
    /// a master restarted on its port before a failover keeps every acknowledged write
    /// (without it, it comes back empty and its replica syncs the emptiness).
    ///
    /// # Panics
    /// As [`with`](Self::with).
    pub fn with_aof(masters: usize, replicas_per_master: usize) -> RedisCluster {
        RedisCluster::start_nodes(masters, replicas_per_master, false, true)
    }

    fn start_nodes(
        masters: usize,
        replicas_per_master: usize,
        tls: bool,
        aof: bool,
    ) -> RedisCluster {
        assert!(
            masters >= 3,
            "ssot-testkit: a Redis Cluster needs at least 3 masters, asked for {masters}"
        );
        let total = masters * (1 + replicas_per_master);
        let certificates = tls.then(|| {
            tempfile::Builder::new()
                .prefix("ssot-cluster-tls-")
                .tempdir()
                .expect("ssot-testkit: cannot create a temp dir")
        });
        let nodes: Vec<RedisServer> = (0..total)
            .map(|_| {
                let mut builder = RedisServer::builder()
                    .cluster(true)
                    .aof(aof)
                    // A failed master's slots are uncovered until its replica is promoted;
                    // with full coverage required, every node would refuse every query
                    // meanwhile, and a fault could not stay on its shard.
                    .arg("--cluster-require-full-coverage", "no");
                if let Some(dir) = &certificates {
                    builder = builder.tls_certificates_in(dir.path().to_owned());
                }
                builder.start()
            })
            .collect();
        let mut create = Command::new("redis-cli");
        if let Some(dir) = &certificates {
            // Nodes meet on the port their bus derives from: the TLS one.
            create
                .arg("--tls")
                .arg("--cacert")
                .arg(dir.path().join(crate::tls::CA_CERT));
        }
        let output = create
            .arg("--cluster")
            .arg("create")
            .args(
                nodes
                    .iter()
                    .map(|n| format!("127.0.0.1:{}", n.tls_port().unwrap_or_else(|| n.port()))),
            )
            .args([
                "--cluster-replicas",
                &replicas_per_master.to_string(),
                "--cluster-yes",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ssot-testkit: cannot run redis-cli --cluster create: {e}"));
        assert!(
            output.status.success(),
            "ssot-testkit: redis-cli --cluster create failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster {
            nodes,
            replicas_per_master,
            certificates,
        };
        cluster.wait_ready();
        cluster
    }

    /// Every node, in start order (with replicas, `redis-cli` picks which are masters).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Node `i`, to kill, pause or restart it.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// `redis://127.0.0.1:<port>` for each node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,...` over every node.
    pub fn cluster_url(&self) -> String {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", addrs.join(","))
    }

    /// `rediss+cluster://127.0.0.1:<tls p1>,...` over every node of a TLS cluster.
    ///
    /// # Panics
    /// If the cluster was not started with [`with_tls`](Self::with_tls).
    pub fn tls_cluster_url(&self) -> String {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                let port = n
                    .tls_port()
                    .expect("ssot-testkit: tls_cluster_url() of a cluster without TLS");
                format!("127.0.0.1:{port}")
            })
            .collect();
        format!("rediss+cluster://{}", addrs.join(","))
    }

    /// The PEM file of the CA every node's certificate is signed by (TLS clusters).
    ///
    /// # Panics
    /// If the cluster was not started with [`with_tls`](Self::with_tls).
    pub fn tls_ca_file(&self) -> std::path::PathBuf {
        self.certificates
            .as_ref()
            .expect("ssot-testkit: tls_ca_file() of a cluster without TLS")
            .path()
            .join(crate::tls::CA_CERT)
    }

    /// Waits until every node is up and they all agree on a complete slot map (the check
    /// construction does), e.g. after restarting a node.
    ///
    /// # Panics
    /// If that does not happen within 30 s; the message says which node disagreed and how.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let problem = match self.check() {
                Ok(()) => return,
                Err(problem) => problem,
            };
            assert!(
                Instant::now() < deadline,
                "ssot-testkit: cluster not ready after {READY_DEADLINE:?}: {problem}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn check(&self) -> Result<(), String> {
        let mut first: Option<SlotMap> = None;
        for node in &self.nodes {
            let port = node.port();
            let mut conn = Connection::open(node.addr(), Duration::from_secs(1))
                .map_err(|e| format!("node {port}: {e}"))?;
            let mut text = |args: &[&str]| -> Result<Reply, String> {
                conn.command(args)
                    .map_err(|e| format!("node {port} {args:?}: {e}"))
            };
            let info = text(&["CLUSTER", "INFO"])?.as_text().unwrap_or_default();
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| {
                        l.trim()
                            .strip_prefix(name)?
                            .strip_prefix(':')
                            .map(str::to_owned)
                    })
                    .unwrap_or_default()
            };
            if field("cluster_state") != "ok"
                || field("cluster_slots_assigned") != SLOTS.to_string()
                || field("cluster_known_nodes") != self.nodes.len().to_string()
            {
                return Err(format!(
                    "node {port}: state={} slots_assigned={} known_nodes={}",
                    field("cluster_state"),
                    field("cluster_slots_assigned"),
                    field("cluster_known_nodes")
                ));
            }
            let map = slot_map(&text(&["CLUSTER", "SLOTS"])?)
                .ok_or_else(|| format!("node {port}: bad CLUSTER SLOTS"))?;
            if let Some(range) = map
                .iter()
                .find(|r| r.2.len() != 1 + self.replicas_per_master)
            {
                return Err(format!(
                    "node {port}: slots {}-{} served by {:?}",
                    range.0, range.1, range.2
                ));
            }
            match &first {
                None => first = Some(map),
                Some(expected) if *expected != map => {
                    return Err(format!(
                        "node {port} sees {map:?}, node {} sees {expected:?}",
                        self.nodes[0].port()
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// `(first slot, last slot, [master port, replica ports sorted])`, sorted by first slot.
pub(crate) type SlotMap = Vec<(i64, i64, Vec<i64>)>;

pub(crate) fn slot_map(reply: &Reply) -> Option<SlotMap> {
    let Reply::Array(Some(ranges)) = reply else {
        return None;
    };
    let mut map = Vec::new();
    for range in ranges {
        let Reply::Array(Some(items)) = range else {
            return None;
        };
        let (Some(Reply::Integer(start)), Some(Reply::Integer(end))) =
            (items.first(), items.get(1))
        else {
            return None;
        };
        let mut ports = Vec::new();
        for node in &items[2..] {
            let Reply::Array(Some(fields)) = node else {
                return None;
            };
            let Some(Reply::Integer(port)) = fields.get(1) else {
                return None;
            };
            ports.push(*port);
        }
        ports[1..].sort_unstable();
        map.push((*start, *end, ports));
    }
    map.sort_unstable();
    let covered: i64 = map.iter().map(|(s, e, _)| e - s + 1).sum();
    (covered == SLOTS).then_some(map)
}
