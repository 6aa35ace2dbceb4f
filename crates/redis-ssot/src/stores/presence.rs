//! Presence across gateways: how many sockets a user holds, on how many gateways sharing the
//! Redis.
//!
//! ## Behavior
//! - No write per socket: each gateway reports periodically ([`Presence::report`]) the socket
//!   count of every user it holds, as a diff against its previous report, into its own hash
//!   `ssot:{presence}:gw:<gateway id>` (`user -> sockets`), and refreshes its entry in the
//!   sorted set `ssot:{presence}:gateways`, scored with when the report expires (server
//!   clock, now + TTL). The hash expires after the TTL too.
//! - [`Presence::of`] sums one user over the gateways whose report has not expired, in one
//!   script. So a gateway that dies (SIGKILL, lost network) drops out at most one TTL after
//!   its last report; a socket opened or closed shows after at most one report interval.
//! - A diff that finds the gateway's hash gone (Redis restarted, or the key expired while
//!   Redis was unreachable) is refused by the script and answered with a full report.
//! - [`Presence::leave`] removes a gateway at once (graceful shutdown).
//! - All keys share the hash tag `{presence}`: on a Cluster they live on one master, a small
//!   hash per gateway; reading costs one `HGET` per live gateway.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::error::Result;
use crate::keys::{PRESENCE_GATEWAY_PREFIX, PRESENCE_GATEWAYS, UserId, check_name};
use crate::manager::RedisManager;
use crate::stores::lua::lua;

/// Default interval between two reports of a gateway.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default lifetime of a report: a dead gateway drops out at most this long after its last.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6);

static REPORT: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("presence_report")));
static READ: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("presence_read")));

/// One user's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserPresence {
    /// Open sockets over every live gateway.
    pub sockets: u64,
    /// Live gateways holding at least one of them.
    pub gateways: u64,
}

/// Presence reports and reads.
#[derive(Debug, Clone)]
pub struct Presence {
    manager: RedisManager,
    ttl: Duration,
}

/// What one gateway reported last: the counts the next report is a diff against.
#[derive(Debug, Default)]
pub struct Reported {
    counts: HashMap<UserId, usize>,
    /// False until a full report went through (and again after the hash was found gone).
    whole: bool,
}

impl Presence {
    /// Reports that live for `ttl`.
    pub fn new(manager: RedisManager, ttl: Duration) -> Presence {
        Presence { manager, ttl }
    }

    /// Reports `gateway`'s sockets per user (`now`: users with at least one), as a diff
    /// against `last`, which it then updates. A failed report leaves `last` as it was, so the
    /// next one sends the changes again.
    pub async fn report(
        &self,
        gateway: &str,
        now: &HashMap<UserId, usize>,
        last: &mut Reported,
    ) -> Result<()> {
        check_name("gateway id", gateway)?;
        if last.whole {
            let mut changes: Vec<(&UserId, usize)> = now
                .iter()
                .filter(|(user, n)| last.counts.get(*user) != Some(n))
                .map(|(user, n)| (user, *n))
                .collect();
            changes.extend(
                last.counts
                    .keys()
                    .filter(|user| !now.contains_key(*user))
                    .map(|user| (user, 0)),
            );
            if self
                .send(gateway, "diff", !now.is_empty(), &changes)
                .await?
            {
                last.counts.clone_from(now);
                return Ok(());
            }
        }
        let all: Vec<(&UserId, usize)> = now.iter().map(|(user, n)| (user, *n)).collect();
        self.send(gateway, "full", !now.is_empty(), &all).await?;
        last.counts.clone_from(now);
        last.whole = true;
        Ok(())
    }

    async fn send(
        &self,
        gateway: &str,
        mode: &str,
        holds: bool,
        changes: &[(&UserId, usize)],
    ) -> Result<bool> {
        let mut call = REPORT.prepare_invoke();
        call.key(PRESENCE_GATEWAYS)
            .key(format!("{PRESENCE_GATEWAY_PREFIX}{gateway}"))
            .arg(gateway)
            .arg(self.ttl.as_millis().max(1) as u64)
            .arg(mode)
            .arg(if holds { "1" } else { "0" });
        for (user, n) in changes {
            call.arg(user.as_str()).arg(*n);
        }
        let applied: i64 = self.manager.run_script(&call).await?;
        Ok(applied == 1)
    }

    /// Removes `gateway` at once: its sockets no longer count.
    pub async fn leave(&self, gateway: &str) -> Result<()> {
        check_name("gateway id", gateway)?;
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM")
            .arg(PRESENCE_GATEWAYS)
            .arg(gateway)
            .ignore()
            .cmd("DEL")
            .arg(format!("{PRESENCE_GATEWAY_PREFIX}{gateway}"))
            .ignore();
        self.manager.pipeline::<()>(&pipe).await
    }

    /// `user`'s sockets over every gateway whose report is live.
    pub async fn of(&self, user: &UserId) -> Result<UserPresence> {
        let (sockets, gateways): (u64, u64) = self
            .manager
            .run_script(
                READ.key(PRESENCE_GATEWAYS)
                    .arg(user.as_str())
                    .arg(PRESENCE_GATEWAY_PREFIX),
            )
            .await?;
        Ok(UserPresence { sockets, gateways })
    }
}
