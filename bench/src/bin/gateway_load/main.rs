//! `gateway_load`: the load generator behind the gateway section of `BENCHMARKS.md`, driven
//! by `bench/gateway/run.sh`.
//!
//! # Layout
//! - `clients`: one process holding a share of the WebSockets. It speaks the ssot protocol,
//!   a plain JSON WebSocket (the FastAPI peer) or Engine.IO v4 / socket.io text frames over a
//!   plain WebSocket (the socket.io peer), records publish→receive latency from the `t`
//!   (Unix µs) embedded in each event, and answers `reset` / `report` / `quit` on stdin.
//! - `run`: spawns the `clients` processes, measures the server's RSS before connecting and
//!   with every socket idle, then publishes over keep-alive HTTP at fixed rates and at
//!   saturation (closed loop), and prints one JSON line of figures.
//! - `report`: JSON lines of several runs in, the Markdown table with ratios and floors out.

mod clients;
mod report;
mod run;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};

use self::clients::clients;
use self::report::report;
use self::run::{Plan, run};

/// WebSocket load for the gateway benchmark.
#[derive(Debug, Parser)]
#[command(name = "gateway_load")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How a contender's sockets talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// `GET /v1/ws` with a JWT; waits for the first `status` frame.
    Ssot,
    /// `GET /ws?user=..&token=..`; waits for `{"type":"ready"}`.
    Plain,
    /// Engine.IO v4 over WebSocket, socket.io namespace `/` with `{token, user}` auth.
    Socketio,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Hold sockets of users `first-user .. first-user+users`, `per-user` each.
    Clients {
        #[command(flatten)]
        target: Target,
        /// First user number (users are `u<n>`).
        #[arg(long)]
        first_user: usize,
        /// Users of this process.
        #[arg(long)]
        users: usize,
        /// Sockets per user.
        #[arg(long)]
        per_user: usize,
    },
    /// Measure one contender; prints one JSON line.
    Run {
        #[command(flatten)]
        target: Target,
        /// Name in the table.
        #[arg(long)]
        contender: String,
        /// Base URL of the publish API (`http://127.0.0.1:port`).
        #[arg(long)]
        http: String,
        /// Pid of the server process (for VmRSS and CPU time).
        #[arg(long)]
        server_pid: u32,
        /// Key of the publish API.
        #[arg(long)]
        service_key: String,
        /// Users (`u0 ..`).
        #[arg(long, default_value_t = 2000)]
        users: usize,
        /// Sockets per user.
        #[arg(long, default_value_t = 5)]
        per_user: usize,
        /// Client processes (each below the 20,000 open-file cap).
        #[arg(long, default_value_t = 4)]
        procs: usize,
        /// Fixed publish rates for the latency phases, per second.
        #[arg(long, value_delimiter = ',', default_value = "500,2000")]
        rates: Vec<u32>,
        /// Measured window of each phase, seconds.
        #[arg(long, default_value_t = 10)]
        window_secs: u64,
        /// Unmeasured warm-up before each window, seconds.
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
        /// Publisher connections (keep-alive HTTP).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Idle time before reading the RSS with all sockets connected, seconds.
        #[arg(long, default_value_t = 5)]
        settle_secs: u64,
        /// Connect, measure memory, and stop (the 19,000-socket check).
        #[arg(long)]
        idle_only: bool,
    },
    /// Markdown table of the JSON lines written by `run`.
    Report {
        /// Files of JSON lines.
        files: Vec<PathBuf>,
    },
}

/// Where the sockets go and how they authenticate.
#[derive(Debug, Clone, clap::Args)]
struct Target {
    /// Protocol of the contender.
    #[arg(long, value_enum)]
    proto: Proto,
    /// Base WebSocket URL (`ws://127.0.0.1:port`).
    #[arg(long)]
    ws: String,
    /// HS256 secret for ssot tokens.
    #[arg(long, default_value = "")]
    secret: String,
    /// Static token of the peers.
    #[arg(long, default_value = "")]
    token: String,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Clients {
            target,
            first_user,
            users,
            per_user,
        } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(clients(target, first_user, users, per_user)),
        Command::Run {
            target,
            contender,
            http,
            server_pid,
            service_key,
            users,
            per_user,
            procs,
            rates,
            window_secs,
            warmup_secs,
            concurrency,
            settle_secs,
            idle_only,
        } => {
            let plan = Plan {
                target,
                contender,
                http,
                server_pid,
                service_key,
                users,
                per_user,
                procs,
                rates,
                window: Duration::from_secs(window_secs),
                warmup: Duration::from_secs(warmup_secs),
                concurrency,
                settle: Duration::from_secs(settle_secs),
                idle_only,
            };
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?
                .block_on(run(plan))?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Command::Report { files } => report(&files),
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
