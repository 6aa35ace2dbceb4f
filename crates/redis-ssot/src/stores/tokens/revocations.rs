//! Revocation by `jti`: the local revoked set, and the listener that fills it from the
//! `ssot:revocations` channel and tells holders of verified tokens about it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{broadcast, watch};

use super::unix_now;
use crate::keys;
use crate::pubsub::{Subscription, SubscriptionEvent};

/// Revoked ids broadcast to local listeners before a slow listener loses some.
const REVOCATION_BUFFER: usize = 1024;
/// Local revoked ids kept before expired ones are pruned.
const LOCAL_REVOKED_PRUNE_AT: usize = 10_000;

/// What this process knows about revocations; shared with the listener.
///
/// ## Behavior
/// - A revoked id is kept until its token stops passing (`exp` + leeway); expired ids are
///   pruned as the set grows.
/// - Every announced id goes to [`Revocations::subscribe`] receivers; every gap on the
///   channel bumps the [`Revocations::resyncs`] counter.
pub(super) struct Revocations {
    /// Revoked ids and when their tokens stop passing (`exp` + leeway, Unix seconds).
    revoked: Mutex<HashMap<String, u64>>,
    leeway_secs: u64,
    announce: broadcast::Sender<String>,
    /// Counts gaps on the revocation channel.
    resync: watch::Sender<u64>,
}

impl Revocations {
    pub(super) fn new(leeway_secs: u64) -> Revocations {
        Revocations {
            revoked: Mutex::new(HashMap::new()),
            leeway_secs,
            announce: broadcast::channel(REVOCATION_BUFFER).0,
            resync: watch::channel(0).0,
        }
    }

    /// Follows `ssot:revocations` until the subscription ends.
    pub(super) async fn listen(&self, mut subscription: Subscription) {
        while let Some(event) = subscription.recv().await {
            let SubscriptionEvent::Message(payload) = event else {
                // A gap: announcements were missed. New calls check Redis anyway; holders of
                // already verified tokens are told to verify again.
                self.resync.send_modify(|gaps| *gaps = gaps.wrapping_add(1));
                continue;
            };
            match parse_announcement(&payload) {
                Some((exp, jti)) => {
                    self.mark_revoked(jti, exp);
                    let _ = self.announce.send(jti.to_owned());
                }
                None => tracing::warn!("ignoring a malformed revocation message"),
            }
        }
    }

    /// Revoked ids as they are announced.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.announce.subscribe()
    }

    /// The gap counter.
    pub(super) fn resyncs(&self) -> watch::Receiver<u64> {
        self.resync.subscribe()
    }

    fn revoked_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn is_revoked(&self, jti: &str, now: u64) -> bool {
        self.revoked_lock()
            .get(jti)
            .is_some_and(|&until| until >= now)
    }

    /// Remembers a revoked id until its token stops passing; such ids are pruned as the set
    /// grows.
    pub(super) fn mark_revoked(&self, jti: &str, exp: u64) {
        let mut revoked = self.revoked_lock();
        if revoked.len() >= LOCAL_REVOKED_PRUNE_AT {
            let now = unix_now();
            revoked.retain(|_, &mut until| until >= now);
        }
        revoked.insert(jti.to_owned(), exp.saturating_add(self.leeway_secs));
    }
}

/// `"<exp> <jti>"`, as published by [`Tokens::revoke`].
fn parse_announcement(payload: &[u8]) -> Option<(u64, &str)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (exp, jti) = text.split_once(' ')?;
    keys::check_name("token id", jti).ok()?;
    Some((exp.parse().ok()?, jti))
}
