//! The `ssot` binary end to end, as real processes against real redis-server processes.

mod browser;
mod chaos;
mod config_file;
mod demo;
mod doctor;
mod http_jobs;
mod logs;
mod pipeline;
mod presence;
mod serve;
mod support;
mod worker;
