//! Free loopback ports. A port is only "free" at the moment we test it; callers
//! retry with another one when `redis-server` loses the race.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};

/// Cluster ports need `port + 10000` (the cluster bus) to be valid and free too.
const CLUSTER_RANGE: std::ops::Range<u16> = 20000..50000;
const CLUSTER_BUS_OFFSET: u16 = 10000;

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port the kernel hands out for `127.0.0.1:0`, released before returning.
pub(crate) fn ephemeral() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("ssot-testkit: cannot bind 127.0.0.1:0")
}

/// A port `p` in 20000..50000 with both `p` and `p + 10000` free.
pub(crate) fn cluster() -> u16 {
    let span = u64::from(CLUSTER_RANGE.end - CLUSTER_RANGE.start);
    for _ in 0..1000 {
        // RandomState is seeded per instance: a cheap random number without a `rand` dependency.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let port = CLUSTER_RANGE.start + (hasher.finish() % span) as u16;
        if is_free(port) && is_free(port + CLUSTER_BUS_OFFSET) {
            return port;
        }
    }
    panic!("ssot-testkit: no free port pair (p, p+10000) in {CLUSTER_RANGE:?}");
}
