//! One partition of a queue: its keys (one hash tag), its consumer-group state and reclaim
//! cursor, and which partition a user's jobs go to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::Result;
use crate::keys::{self, QueueKeys};

/// One stream of a queue, with what this process knows about it.
#[derive(Debug)]
pub(super) struct Partition {
    /// Its number, `0..partitions`.
    pub(super) index: u32,
    pub(super) keys: QueueKeys,
    /// True once the consumer group is known to exist.
    group_ready: AtomicBool,
    /// Where the next `XAUTOCLAIM` continues its scan of the pending entries.
    reclaim_cursor: Mutex<String>,
}

impl Partition {
    pub(super) fn new(queue: &str, index: u32) -> Result<Partition> {
        Ok(Partition {
            index,
            keys: keys::queue(queue, index)?,
            group_ready: AtomicBool::new(false),
            reclaim_cursor: Mutex::new("0-0".to_owned()),
        })
    }

    pub(super) fn group_ready(&self) -> bool {
        self.group_ready.load(Ordering::Acquire)
    }

    pub(super) fn set_group_ready(&self, ready: bool) {
        self.group_ready.store(ready, Ordering::Release);
    }

    pub(super) fn cursor(&self) -> MutexGuard<'_, String> {
        self.reclaim_cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The partition of `user`'s jobs among `partitions`: FNV-1a (64-bit) of the user id's bytes,
/// modulo `partitions`. Stable across processes, versions and languages, so every enqueuer
/// agrees; one user always lands in one partition, which keeps their jobs in order.
pub(super) fn partition_of(user: &str, partitions: u32) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let hash = user
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    (hash % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::partition_of;

    #[test]
    fn users_map_to_fixed_partitions() {
        // Pinned: other enqueuers (Python, other versions) must compute the same.
        assert_eq!(partition_of("alice", 8), 7);
        assert_eq!(partition_of("bob", 8), 4);
        assert_eq!(partition_of("u1", 3), 2);
        assert_eq!(partition_of("alice", 1), 0);
        let spread: std::collections::BTreeSet<u32> = (0..100)
            .map(|i| partition_of(&format!("u{i}"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
