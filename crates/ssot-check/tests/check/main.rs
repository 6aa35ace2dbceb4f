//! Tests of `ssot check`, all in one binary: each rule on its fixture, the fixture
//! project through the command line (text, JSON, SARIF, statistics, GitHub), config
//! errors, the baseline round trip, fixes, and SARIF against the 2.1.0 schema.

mod baseline;
mod cargo_check;
mod cli;
mod common;
mod config;
mod fix;
mod fix_safety;
mod fuzz;
mod init;
mod layout;
mod parity;
mod project;
mod python;
mod redis_ssot_package;
mod reexports;
mod rules;
mod sarif;
mod suppressions;
