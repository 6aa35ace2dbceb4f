//! Integration tests of redis-ssot against real redis-server processes (one test binary).

mod jobs_backlog;
mod lanes;
mod manager;
mod observability;
mod stores_events;
mod stores_jobs_locks_state;
mod stores_user_auth;
mod support;
mod tls;
