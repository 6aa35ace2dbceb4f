//! Randomized faults with exact accounting (issue 12), see [`ssot_bench::chaos`].
//!
//! `chaos --ssot target/release/ssot --topology cluster --seconds 600 [--seed N]` prints the
//! seed first (rerun with `--seed` to get the same fault schedule), the faults as they
//! happen, then the figures and PASS or FAIL with every broken guarantee. Exit 0 on PASS,
//! 1 on FAIL, 2 when the setup failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ssot_bench::chaos::{self, ChaosConfig, Topology};

#[derive(Parser)]
struct Args {
    /// The `ssot` binary.
    #[arg(long, default_value = "target/release/ssot")]
    ssot: PathBuf,
    /// `single` (one Redis behind fault proxies) or `cluster` (3 masters + replicas).
    #[arg(long, default_value = "single")]
    topology: Topology,
    /// How long load and faults run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the fault schedule and the clients' choices (printed when drawn).
    #[arg(long)]
    seed: Option<u64>,
    /// Users (each with `sockets` sockets over both gateways).
    #[arg(long, default_value_t = 16)]
    users: usize,
    /// Sockets per user.
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Mean seconds between faults.
    #[arg(long, default_value_t = 4.0)]
    fault_gap: f64,
    /// Only these fault kinds (comma-separated), e.g. `redis-kill,gateway-kill`.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// `SSOT_LOG` of the `ssot` processes, e.g. `info,redis_ssot=debug`.
    #[arg(long, default_value = "warn")]
    ssot_log: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(chaos::fresh_seed);
    let mut config = ChaosConfig::new(
        args.ssot,
        args.topology,
        Duration::from_secs(args.seconds),
        seed,
    );
    config.users = args.users;
    config.sockets_per_user = args.sockets;
    config.fault_gap = Duration::from_secs_f64(args.fault_gap);
    config.faults = args.faults;
    config.ssot_log = args.ssot_log;
    match chaos::run(&config) {
        Ok(report) => {
            print!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                println!(
                    "reproduce: chaos --topology {} --seconds {} --seed {seed}",
                    args.topology, args.seconds
                );
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("chaos: setup failed: {err:#}");
            ExitCode::from(2)
        }
    }
}
