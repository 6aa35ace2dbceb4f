//! Worker integration tests: real redis-server, real faults, in-process workers (one binary).

mod cluster_failover;
mod crash;
mod demo;
mod fuzz;
mod http_agent;
mod outage;
mod partitions;
mod poison;
mod schedule;
mod seam;
mod secrets;
mod startup_logs;
mod support;
