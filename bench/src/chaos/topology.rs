//! The Redis of a chaos run and the faults it can suffer.

use std::time::Duration;

use ssot_testkit::{FaultProxy, RedisCluster, RedisServer};

use super::Topology;

/// How many `ssot` processes reach Redis: two gateways and one worker. On one server each
/// has a fault proxy of its own, so a proxy fault cuts off one process, not all.
pub(crate) const PROCESSES: usize = 3;

/// The Redis of a run.
pub(crate) enum Redis {
    /// One server and a proxy per `ssot` process.
    Single {
        server: RedisServer,
        proxies: Vec<FaultProxy>,
    },
    /// Three masters, a replica each.
    Cluster(RedisCluster),
}

impl Redis {
    /// Starts it, with AOF (`appendfsync always`) everywhere: a node restarted on its port
    /// keeps every write it acknowledged, as a production setup that restarts Redis does.
    pub(crate) fn start(topology: Topology) -> Redis {
        match topology {
            Topology::Single => {
                let server = RedisServer::builder().aof(true).start();
                let proxies = (0..PROCESSES)
                    .map(|_| FaultProxy::start(server.addr()))
                    .collect();
                Redis::Single { server, proxies }
            }
            Topology::Cluster => Redis::Cluster(RedisCluster::with_aof(3, 1)),
        }
    }

    /// The URL process `i` (0, 1: gateways; 2: worker) connects to.
    pub(crate) fn url_for(&self, i: usize) -> String {
        match self {
            Redis::Single { proxies, .. } => proxies[i].url(),
            Redis::Cluster(cluster) => cluster.cluster_url(),
        }
    }

    /// `redis://` URLs of every node, for the driver's own reads (no proxy).
    pub(crate) fn direct_urls(&self) -> Vec<String> {
        match self {
            Redis::Single { server, .. } => vec![server.url()],
            Redis::Cluster(cluster) => cluster.urls(),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Redis::Cluster(_))
    }

    /// Nodes that can be faulted.
    pub(crate) fn nodes(&self) -> usize {
        match self {
            Redis::Single { .. } => 1,
            Redis::Cluster(cluster) => cluster.nodes().len(),
        }
    }

    /// "master" or "replica" (a Cluster node now), or "server".
    pub(crate) fn role(&self, node: usize) -> &'static str {
        match self {
            Redis::Single { .. } => "server",
            Redis::Cluster(cluster) => {
                if cluster.masters().contains(&node) {
                    "master"
                } else {
                    "replica"
                }
            }
        }
    }

    fn node_mut(&mut self, node: usize) -> &mut RedisServer {
        match self {
            Redis::Single { server, .. } => server,
            Redis::Cluster(cluster) => cluster.node_mut(node),
        }
    }

    /// SIGKILL.
    pub(crate) fn kill(&mut self, node: usize) {
        self.node_mut(node).kill();
    }

    /// Starts a killed node again on its port (or kills and restarts a running one).
    pub(crate) fn restart(&mut self, node: usize) {
        self.node_mut(node).restart();
    }

    /// SIGSTOP.
    pub(crate) fn pause(&mut self, node: usize) {
        self.node_mut(node).pause();
    }

    /// SIGCONT.
    pub(crate) fn resume(&mut self, node: usize) {
        self.node_mut(node).resume();
    }

    /// The proxy of process `i`, on one server.
    pub(crate) fn proxy(&self, i: usize) -> Option<&FaultProxy> {
        match self {
            Redis::Single { proxies, .. } => proxies.get(i),
            Redis::Cluster(_) => None,
        }
    }

    /// Waits until a Cluster agrees on a complete slot map with a replica per master again
    /// (a node restarted after its replica took over rejoins as a replica). `Err` after 30 s.
    pub(crate) fn wait_ready(&self) -> Result<(), String> {
        match self {
            Redis::Single { .. } => Ok(()),
            Redis::Cluster(cluster) => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cluster.wait_ready()))
                    .map_err(|e| {
                        e.downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_else(|| "cluster not ready".to_owned())
                    })
            }
        }
    }
}

/// A pause long enough to matter and short enough to keep the run moving.
pub(crate) fn between(rng: &mut impl rand::Rng, low_ms: u64, high_ms: u64) -> Duration {
    Duration::from_millis(rng.random_range(low_ms..=high_ms))
}
