//! Gateway integration tests: real sockets, real Redis, real faults (one test binary).

mod bad_input;
mod batch;
mod budgets;
mod cluster_failover;
mod delivery;
mod errors;
mod exposition;
mod flood;
mod hostile;
mod idempotency;
mod jobs;
mod lifecycle;
mod memory;
mod messages;
mod openapi;
mod outages;
mod revocation;
mod sentinel;
mod support;
