//! The two deployments the store parts run on, and [`parts!`], which makes one test per
//! part and deployment so that a failure or a filter names the part.
//!
//! One server and one cluster per test binary (through a `OnceLock`): under `cargo test`
//! the parts share them and take turns, as they did inside one suite; under nextest each
//! test is a process of its own and starts what it uses.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use ssot_testkit::{RedisCluster, RedisServer};
use tokio::sync::{Mutex, MutexGuard};

/// Which deployment a part runs on.
#[derive(Clone, Copy)]
pub(crate) enum Topology {
    Server,
    Cluster,
}

/// A shared deployment, read and reset with redis-cli (not through the library).
pub(crate) struct Deployment {
    url: String,
    nodes: &'static [RedisServer],
}

impl Deployment {
    /// The URL a manager connects to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Every key matching `pattern`, from every node.
    pub(crate) fn keys(&self, pattern: &str) -> BTreeSet<String> {
        self.nodes
            .iter()
            .flat_map(|node| {
                node.cli(&["KEYS", pattern])
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|key| !key.is_empty())
            .collect()
    }

    /// `args` run on every node; the answers of the nodes that did not refuse (on a Cluster,
    /// those that do not own the key answer `MOVED`).
    pub(crate) fn cli_each(&self, args: &[&str]) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|node| node.try_cli(args).ok())
            .collect()
    }

    /// Deletes every key, so that no key left by an earlier part changes during a check.
    pub(crate) fn flush(&self) {
        for node in self.nodes {
            node.cli(&["FLUSHALL"]);
        }
    }
}

/// The deployment of `topology`, started on first use, with this test's turn on it: held
/// until the guard drops, so parts sharing it do not see each other's keys change.
pub(crate) async fn take(topology: Topology) -> (MutexGuard<'static, ()>, Deployment) {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    static SERVER_TURN: Mutex<()> = Mutex::const_new(());
    static CLUSTER_TURN: Mutex<()> = Mutex::const_new(());
    match topology {
        Topology::Server => {
            let turn = SERVER_TURN.lock().await;
            let server = SERVER.get_or_init(RedisServer::start);
            let deployment = Deployment {
                url: server.url(),
                nodes: std::slice::from_ref(server),
            };
            (turn, deployment)
        }
        Topology::Cluster => {
            let turn = CLUSTER_TURN.lock().await;
            let cluster = CLUSTER.get_or_init(RedisCluster::start);
            let deployment = Deployment {
                url: cluster.cluster_url(),
                nodes: cluster.nodes(),
            };
            (turn, deployment)
        }
    }
}

/// `parts!(manager, deployment, connect; part => body; ...)`: for each part a module of
/// that name with two tests, `single_server` and `cluster`. Each takes its turn on the
/// deployment, binds it to `deployment` and a manager from `connect(url)` to `manager`,
/// then awaits `body`.
macro_rules! parts {
    ($manager:ident, $deployment:ident, $connect:path; $($part:ident => $body:expr;)*) => {$(
        mod $part {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn single_server() {
                let (_turn, $deployment) =
                    crate::deployments::take(crate::deployments::Topology::Server).await;
                #[allow(unused_variables)]
                let $manager = $connect($deployment.url()).await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                let (_turn, $deployment) =
                    crate::deployments::take(crate::deployments::Topology::Cluster).await;
                #[allow(unused_variables)]
                let $manager = $connect($deployment.url()).await;
                $body.await;
            }
        }
    )*};
}

pub(crate) use parts;
