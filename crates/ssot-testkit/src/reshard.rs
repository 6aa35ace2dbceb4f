//! Resharding a [`RedisCluster`]: move one slot, with its keys, to another master.

use crate::RedisCluster;

impl RedisCluster {
    /// Moves `slot` and its keys from its master to node `to`, the way `redis-cli --cluster
    /// reshard` does: `SETSLOT IMPORTING` / `MIGRATING`, `MIGRATE` of its keys, then
    /// `SETSLOT NODE` on every master. Returns when all nodes agree again.
    ///
    /// # Panics
    /// If a step fails, `to` already owns the slot, or the cluster does not settle.
    pub fn migrate_slot(&self, slot: u16, to: usize) {
        let from = self.master_of_slot(slot);
        assert_ne!(from, to, "ssot-testkit: node {to} already owns slot {slot}");
        let (source, target) = (&self.nodes()[from], &self.nodes()[to]);
        let id = |i: usize| self.nodes()[i].cli(&["CLUSTER", "MYID"]);
        let (from_id, to_id) = (id(from), id(to));
        let slot = slot.to_string();
        target.cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        source.cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
        let port = target.port().to_string();
        loop {
            let keys = source.cli(&["CLUSTER", "GETKEYSINSLOT", &slot, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            source.cli(&args);
        }
        // The new owner first, so a redirected client always finds it.
        target.cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        source.cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        for master in self.masters() {
            if master != from && master != to {
                self.nodes()[master].cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
            }
        }
        self.wait_ready();
    }
}
