//! `manager`: GET/SET load through the manager, raw redis-rs or redis-benchmark (`run`), and
//! the Markdown table of collected results (`report`). Driven by `bench/manager/run.sh`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ssot_bench::{Contender, Metrics, Op, RunSettings};

/// GET/SET benchmark of the redis-ssot manager against its peers.
#[derive(Debug, Parser)]
#[command(name = "manager")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure one contender; prints one JSON line per cell.
    Run {
        /// The server (the script starts its own; never point this at a shared Redis).
        #[arg(long)]
        url: String,
        /// What to measure.
        #[arg(long, value_enum)]
        contender: Contender,
        /// Concurrent tasks (clients), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
        concurrency: Vec<usize>,
        /// Commands, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "set,get")]
        op: Vec<Op>,
        /// Measured window of each cell, milliseconds.
        #[arg(long, default_value_t = 3000)]
        duration_ms: u64,
        /// Unmeasured warm-up before each window, milliseconds.
        #[arg(long, default_value_t = 500)]
        warmup_ms: u64,
        /// Tokio worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        worker_threads: usize,
        /// The gateway's metrics recorder: on (the real path) or off (reported as
        /// `manager-metrics-off`).
        #[arg(long, value_enum, default_value = "on")]
        metrics: Metrics,
    },
    /// Print the Markdown tables of JSON-lines result files.
    Report {
        /// Files of JSON lines written by `run` and `load.py`.
        files: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            url,
            contender,
            concurrency,
            op,
            duration_ms,
            warmup_ms,
            worker_threads,
            metrics,
        } => {
            metrics.install()?;
            let settings = RunSettings {
                url,
                contender,
                concurrency,
                ops: op,
                warmup: Duration::from_millis(warmup_ms),
                window: Duration::from_millis(duration_ms),
                worker_threads,
            };
            let stdout = std::io::stdout();
            ssot_bench::run(&settings, |cell| {
                let mut cell = cell.clone();
                if contender == Contender::Manager {
                    cell.contender = metrics.name(&cell.contender);
                }
                let line = serde_json::to_string(&cell).expect("a cell serialises");
                let mut out = stdout.lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            })
        }
        Command::Report { files } => {
            let mut cells = Vec::new();
            for file in files {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                cells.extend(ssot_bench::report::parse_lines(&text)?);
            }
            print!("{}", ssot_bench::report::render(&cells));
            Ok(())
        }
    }
}
