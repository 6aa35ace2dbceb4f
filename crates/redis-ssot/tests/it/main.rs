//! Integration tests of redis-ssot against real redis-server processes (one test binary).

mod deployments;
mod durability;
mod failover;
mod fuzz;
mod idempotency;
mod jobs_backlog;
mod jobs_partitions;
mod lanes;
mod manager;
mod observability;
mod presence;
mod sentinel;
mod sharded_pubsub;
mod stores_events;
mod stores_jobs_locks_state;
mod stores_user_auth;
mod support;
mod tls;
