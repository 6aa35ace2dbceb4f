//! Real `redis-server` processes, local Redis Clusters and a TCP fault proxy, for tests.
//!
//! Every Redis test in the workspace runs against a real server started here, and breaks
//! it on purpose: kill, pause, restart, delay, blackhole, cut. No mocks. Everything is a
//! blocking std API, callable from plain tests, tokio tests and `spawn_blocking` alike.
//!
//! # Layout
//! - [`RedisServer`] / [`RedisServerBuilder`]: one `redis-server` on an ephemeral loopback
//!   port with its own temp dir; kill / pause / resume / restart; `redis-cli` and
//!   `CLIENT LIST` helpers. In `server/`: `launch` spawns and waits for `PING`, `clients`
//!   parses `CLIENT LIST` ([`ClientInfo`], [`ClientLister`]).
//! - [`RedisCluster`]: N masters (+ replicas) joined with `redis-cli --cluster create`, or
//!   over TLS (`with_tls`: clients, bus and replication, one shared throwaway CA);
//!   `failover`: who masters a slot, SIGKILL a master and wait for its replica's promotion,
//!   restart the old master as a replica of the new one;
//!   `reshard`: move a slot and its keys to another master.
//! - [`RedisSentinel`]: a master, its replica and three Sentinels; kill the master and wait
//!   for the Sentinels to promote the replica.
//! - [`FaultProxy`]: a TCP proxy on its own thread and runtime: pass, delay, blackhole, cut.
//! - [`ping`]: one raw RESP `PING`, for readiness and measurements without a client crate.
//! - [`fast_manager_toml`] / [`eventually`]: manager settings that notice faults quickly, and
//!   polling until a condition holds, for every crate's suite.
//! - [`flood`]: the event stream of issue 12's replay flood (1 in 6 events of 8 KB) and
//!   its seeding, for the library's and the gateway's tests of it.
//! - [`fuzz`]: the property-based fuzz runner of every crate's fuzz targets (fixed seed and
//!   case count in `./dev test`, a time budget from `bench/fuzz/run.sh`).
//! - [`own_process!`]: runs a test that touches process-wide state in a process of its own
//!   under `cargo test` too (nextest already does).
//! - Internals: `spawner` (the one thread that forks servers), `ports` (free loopback
//!   ports), `resp` (a minimal RESP connection), `tls` (throwaway certificates).
//!
//! Needs `redis-server`, `redis-cli` (`apt-get install -y redis-server`) and `setpriv`
//! (util-linux); TLS servers also need `openssl(1)`. Servers never outlive the test process: they are forked by one
//! long-lived spawner thread under `setpriv --pdeathsig KILL`, and killed on Drop.

mod cluster;
mod failover;
pub mod flood;
pub mod fuzz;
mod own_process;
mod polling;
mod ports;
mod proxy;
mod reshard;
mod resp;
mod sentinel;
mod server;
mod spawner;
mod tls;

pub use cluster::RedisCluster;
pub use own_process::rerun_alone;
pub use polling::{eventually, fast_manager_toml};
pub use proxy::FaultProxy;
pub use resp::ping;
pub use sentinel::{RedisSentinel, SENTINEL_MASTER_NAME};
pub use server::{ClientInfo, ClientLister, RedisServer, RedisServerBuilder};
