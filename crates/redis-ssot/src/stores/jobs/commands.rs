//! One partition's Redis commands: read, reclaim, fail, and the consumer group they need.

use std::future::Future;
use std::time::Duration;

use redis::streams::StreamReadReply;

use super::entries::{
    ClaimedRow, DeadRow, dead_letter_from_row, fields_of, job_from_fields, pairs,
};
use super::partition::Partition;
use super::scripts::{FAIL, RECLAIM};
use super::{DeadLetter, FAILED_IDLE, FailOutcome, Job, Jobs, Reclaimed, millis};
use crate::error::{Error, Result};

impl Jobs {
    /// `XREADGROUP` on one partition; malformed entries are dead-lettered, not returned.
    pub(super) async fn read(
        &self,
        part: &Partition,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Job>> {
        let reply: Option<StreamReadReply> = self
            .with_group(part, move || async move {
                let mut cmd = redis::cmd("XREADGROUP");
                cmd.arg("GROUP")
                    .arg(&self.config.group)
                    .arg(consumer)
                    .arg("COUNT")
                    .arg(count.max(1));
                if block.is_zero() {
                    cmd.arg("STREAMS").arg(&part.keys.stream).arg(">");
                    self.manager.query(&cmd).await
                } else {
                    cmd.arg("BLOCK")
                        .arg(millis(block))
                        .arg("STREAMS")
                        .arg(&part.keys.stream)
                        .arg(">");
                    self.manager.query_blocking(&cmd, block).await
                }
            })
            .await?;
        let entries = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids);
        let mut jobs = Vec::new();
        for entry in entries {
            let id = entry.id.clone();
            match job_from_fields(id.clone(), 1, consumer, part.index, fields_of(entry)) {
                Ok(job) => jobs.push(job),
                Err(reason) => {
                    self.bury_malformed(part, consumer, &id, &reason).await?;
                }
            }
        }
        Ok(jobs)
    }

    pub(super) async fn reclaim_partition(
        &self,
        part: &Partition,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Reclaimed> {
        let cursor = part.cursor().clone();
        let cursor = cursor.as_str();
        let (next, rows, dead): (String, Vec<ClaimedRow>, Vec<DeadRow>) = self
            .with_group(part, move || async move {
                let mut script = RECLAIM.key(&part.keys.stream);
                script
                    .key(&part.keys.dead)
                    .key(&part.keys.user_counts)
                    .arg(&self.config.group)
                    .arg(consumer)
                    .arg(millis(min_idle))
                    .arg(cursor)
                    .arg(count)
                    .arg(self.config.max_deliveries)
                    .arg(self.config.dead_letter_max_len)
                    .arg(&part.keys.status_prefix)
                    .arg(millis(self.config.idempotency_ttl));
                self.manager.run_script(&script).await
            })
            .await?;
        *part.cursor() = next;
        let mut reclaimed = Reclaimed {
            dead_lettered: dead
                .into_iter()
                .map(|row| dead_letter_from_row(part.index, row))
                .collect(),
            ..Reclaimed::default()
        };
        for (id, deliveries, fields) in rows {
            match job_from_fields(id.clone(), deliveries, consumer, part.index, pairs(fields)) {
                Ok(job) => reclaimed.jobs.push(job),
                Err(reason) => {
                    if let Some(dead) = self.bury_malformed(part, consumer, &id, &reason).await? {
                        reclaimed.dead_lettered.push(dead);
                    }
                }
            }
        }
        Ok(reclaimed)
    }

    pub(super) async fn fail_with_limit(
        &self,
        part: &Partition,
        consumer: &str,
        id: &str,
        error: &str,
        max_deliveries: u64,
    ) -> Result<FailOutcome> {
        let (outcome, dead): (u8, Option<DeadRow>) = self
            .with_group(part, move || async move {
                let mut script = FAIL.key(&part.keys.stream);
                script
                    .key(&part.keys.dead)
                    .key(&part.keys.user_counts)
                    .arg(&self.config.group)
                    .arg(consumer)
                    .arg(id)
                    .arg(error)
                    .arg(max_deliveries)
                    .arg(self.config.dead_letter_max_len)
                    .arg(millis(FAILED_IDLE))
                    .arg(&part.keys.status_prefix)
                    .arg(millis(self.config.idempotency_ttl));
                self.manager.run_script(&script).await
            })
            .await?;
        Ok(match (outcome, dead) {
            (1, _) => FailOutcome::Retry,
            (2, Some(row)) => FailOutcome::DeadLettered(dead_letter_from_row(part.index, row)),
            _ => FailOutcome::NotHeld,
        })
    }

    /// Dead-letters an entry that is not a valid job, so it does not come back forever.
    pub(super) async fn bury_malformed(
        &self,
        part: &Partition,
        consumer: &str,
        id: &str,
        reason: &str,
    ) -> Result<Option<DeadLetter>> {
        tracing::warn!(queue = %self.queue, partition = part.index, job = id, reason, "malformed job dead-lettered");
        let reason = format!("malformed job: {reason}");
        Ok(
            match self.fail_with_limit(part, consumer, id, &reason, 0).await? {
                FailOutcome::DeadLettered(dead) => Some(dead),
                _ => None,
            },
        )
    }

    /// Runs `op`, first creating the partition's consumer group if this store has not seen
    /// it yet, and again (once) if Redis says the group does not exist.
    pub(super) async fn with_group<T, F, Fut>(&self, part: &Partition, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if !part.group_ready() {
            self.create_group(part).await?;
        }
        match op().await {
            Err(err) if is_no_group(&err) => {
                part.set_group_ready(false);
                self.create_group(part).await?;
                op().await
            }
            other => other,
        }
    }

    pub(super) async fn create_group(&self, part: &Partition) -> Result<()> {
        let created: Result<()> = self
            .manager
            .query(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&part.keys.stream)
                    .arg(&self.config.group)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Ok(()) => {}
            Err(Error::Redis(err)) if err.code() == Some("BUSYGROUP") => {}
            Err(err) => return Err(err),
        }
        part.set_group_ready(true);
        Ok(())
    }
}

fn is_no_group(err: &Error) -> bool {
    // Inside a script Redis may prefix the code, so look at the whole message too.
    matches!(err, Error::Redis(e) if e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP"))
}
