//! Pools of dedicated connections (blocking commands, replica-acknowledged writes), each
//! connection opened on first use.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::RedisManager;
use super::call::Lane;
use crate::config::RedisConfig;
use crate::domains::Domain;
use crate::error::{Error, Result};
use crate::link::Link;

/// How long callers are told to wait when a pool stayed exhausted.
const POOL_BUSY_RETRY: Duration = Duration::from_millis(50);

/// Connections of one role, each opened on first use and lent to one call at a time.
pub(crate) struct Pool {
    links: Vec<Arc<Link>>,
    started: Vec<AtomicBool>,
    free: Mutex<Vec<usize>>,
    permits: Semaphore,
    /// `Unavailable` reason when no connection frees up in time.
    exhausted: &'static str,
}

impl Pool {
    pub(crate) fn new(config: &RedisConfig, role: &'static str, size: usize) -> Pool {
        Pool {
            links: (0..size)
                .map(|_| Link::new(config, role, None, None, None))
                .collect(),
            started: (0..size).map(|_| AtomicBool::new(false)).collect(),
            free: Mutex::new((0..size).rev().collect()),
            permits: Semaphore::new(size),
            exhausted: match role {
                "blocking" => "blocking pool exhausted",
                _ => "connection pool exhausted",
            },
        }
    }

    /// Every connection of the pool, open or not.
    pub(crate) fn links(&self) -> &[Arc<Link>] {
        &self.links
    }
}

/// A connection lent from a [`Pool`], returned on drop.
pub(crate) struct Lent<'a> {
    pool: &'a Pool,
    index: usize,
    _permit: SemaphorePermit<'a>,
}

impl Lent<'_> {
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.pool.links[self.index]
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.index);
    }
}

impl RedisManager {
    /// Borrows a connection of `pool` (waiting at most the command timeout for one), opened
    /// and connected. An unreachable server is judged by `domain`'s breaker like any call.
    pub(super) async fn lend<'a>(&self, pool: &'a Pool, domain: &Domain) -> Result<Lent<'a>> {
        let inner = &self.inner;
        let timeout = inner.config.command_timeout;
        let permit = tokio::time::timeout(timeout, pool.permits.acquire())
            .await
            .map_err(|_| Error::Unavailable {
                retry_after: POOL_BUSY_RETRY,
                reason: pool.exhausted,
            })?
            .expect("the pool semaphore is never closed");
        let index = pool
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .expect("a semaphore permit guarantees a free slot");
        let lent = Lent {
            pool,
            index,
            _permit: permit,
        };
        let link = lent.link();
        if !pool.started[index].swap(true, Ordering::AcqRel) {
            inner.tasks.spawn(Arc::clone(link).run());
        }
        if !link.is_up() && !link.wait_up(inner.config.connect_timeout).await {
            self.exec(Lane::Blocking, link, Some(timeout), domain, |_| async {
                Ok(())
            })
            .await?;
        }
        Ok(lent)
    }
}
