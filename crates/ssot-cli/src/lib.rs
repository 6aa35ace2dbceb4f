//! The `ssot` command: thin wrappers that parse flags, set up tracing, build config and call
//! the crates. [`main`] is the whole command; the `ssot` binary and the Python package's
//! `ssot` script (through `redis_ssot._native.main`) both call it.
//!
//! Exit codes: 0 success, 1 findings (unhealthy, violations), 2 error (bad config, bad
//! input). A closed stdout (BrokenPipe) exits 0.
//!
//! # Layout
//! - `config`: the one configuration file, the environment, and the effective configuration.
//! - `doctor`: `ssot doctor`'s health report.
//! - `embedded`: the demo's own `redis-server`.
//! - `logs`: log format and colour, and the one-line error report.

mod config;
mod doctor;
mod embedded;
mod logs;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
// One exit-code enum for every command; `ssot check` defines it.
pub use ssot_check::ExitStatus as Exit;

/// redis-ssot: one Redis layer for a real-time backend, and the tools that keep it the only one.
#[derive(Debug, Parser)]
#[command(name = "ssot", version, about)]
struct Cli {
    /// Configuration file (TOML). Default: ./ssot.toml when present.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr. The filter is SSOT_LOG, else RUST_LOG (e.g. `debug`).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SSOT_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the effective configuration of every table (secrets redacted) and a health report.
    Doctor {
        /// Redis URL (overrides REDIS_URL and the config file).
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find, count, ratchet and fix Redis SSOT violations in Python and Rust code.
    Check(ssot_check::CheckArgs),
    /// Run the WebSocket gateway.
    Serve {
        /// Address to listen on (overrides [gateway] listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Redis URL (overrides REDIS_URL and the config file).
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
    },
    /// Run agent jobs sent in through the gateway, and scheduled jobs under a fenced lock.
    Worker {
        /// Redis URL (overrides REDIS_URL and the config file).
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
        /// Jobs run at once.
        #[arg(long, value_name = "N")]
        concurrency: Option<usize>,
        /// The agent: `demo` (built in, no network) or `http` (needs --agent-url).
        #[arg(long, value_name = "KIND")]
        agent: Option<String>,
        /// Where the `http` agent POSTs jobs and reads NDJSON events back.
        #[arg(long, value_name = "URL")]
        agent_url: Option<String>,
    },
    /// Print a development JWT signed with SSOT_JWT_SECRET (HS256).
    Token {
        /// The user id (`sub`).
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Run the demo: an embedded Redis (data under .ssot/, AOF on), the gateway and a worker.
    Demo {
        /// Address of the gateway.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Use this Redis instead of starting one.
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
        /// Folder for the embedded Redis's data.
        #[arg(long, value_name = "DIR", default_value = ".ssot")]
        data: PathBuf,
    },
}

/// Runs the `ssot` command with `args` (the program name first, as in `std::env::args_os`)
/// and returns its exit status. Bad flags print clap's message and give [`Exit::Error`];
/// `--help` and `--version` print and give [`Exit::Success`].
pub fn main<I, T>(args: I) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                Exit::Error
            } else {
                Exit::Success
            };
        }
    };
    match cli.command {
        Command::Check(args) => check(args),
        command => {
            logs::init(cli.log_format);
            match run(cli.config, command) {
                Ok(exit) => exit,
                Err(err) => {
                    if is_broken_pipe(&err) {
                        return Exit::Success;
                    }
                    eprintln!("error: {}", logs::error_line(&err));
                    Exit::Error
                }
            }
        }
    }
}

fn run(config_path: Option<PathBuf>, command: Command) -> anyhow::Result<Exit> {
    config::env::check(std::env::vars())?;
    let file = config::FileOptions::load(config_path.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match command {
        Command::Doctor { redis, json } => {
            let redis_config = config::redis_config(&file, redis.as_deref())?;
            let effective = config::effective(&file, &redis_config);
            let report = runtime.block_on(doctor::examine(redis_config, effective));
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            Ok(Exit::findings_if(!report.healthy()))
        }
        Command::Serve { listen, redis } => {
            let redis_config = config::redis_config(&file, redis.as_deref())?;
            let tokens = config::token_config(&file)?;
            let gateway = config::gateway_config(&file, listen.as_deref(), tokens)?;
            runtime.block_on(async {
                let manager = redis_ssot::init(redis_config)?;
                ssot_gateway::run(gateway, manager, shutdown_signal()).await?;
                Ok(Exit::Success)
            })
        }
        Command::Worker {
            redis,
            concurrency,
            agent,
            agent_url,
        } => {
            let redis_config = config::redis_config(&file, redis.as_deref())?;
            let flags = config::WorkerFlags {
                concurrency,
                agent,
                agent_url,
            };
            let worker = config::worker_config(&file, flags)?;
            let events = config::events_config(&file)?;
            runtime.block_on(async {
                let manager = redis_ssot::init(redis_config)?;
                ssot_worker::Worker::new(worker, manager)
                    .with_events_config(events)
                    .run(shutdown_signal())
                    .await?;
                Ok(Exit::Success)
            })
        }
        Command::Token { user, ttl } => {
            let tokens = config::token_config(&file)?;
            let user = redis_ssot::UserId::new(&user)?;
            println!("{}", tokens.issue(&user, Duration::from_secs(ttl))?);
            Ok(Exit::Success)
        }
        Command::Demo {
            listen,
            redis,
            data,
        } => runtime.block_on(demo(file, listen, redis, data)),
        Command::Check(_) => unreachable!("handled before the runtime starts"),
    }
}

/// The demo: everything on one machine with nothing to configure.
async fn demo(
    file: config::FileOptions,
    listen: String,
    redis: Option<String>,
    data: PathBuf,
) -> anyhow::Result<Exit> {
    let mut embedded = match &redis {
        Some(_) => None,
        None => Some(embedded::EmbeddedRedis::start(&data)?),
    };
    let url = redis.or_else(|| embedded.as_ref().map(embedded::EmbeddedRedis::url));
    let redis_config = config::redis_config(&file, url.as_deref())?;
    // Development secrets for this run only, unless the environment provides them.
    let secret = std::env::var("SSOT_JWT_SECRET").unwrap_or_else(|_| {
        format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        )
    });
    let service_key = std::env::var("SSOT_SERVICE_KEY")
        .unwrap_or_else(|_| format!("{:032x}", rand::random::<u128>()));
    let tokens = redis_ssot::stores::tokens::TokenConfig::hs256(secret.as_bytes())?;
    let mut gateway_options = file.gateway.clone().with_env(std::env::vars());
    gateway_options.listen = Some(listen);
    gateway_options.service_key = Some(service_key.clone().into());
    let mut gateway_config = gateway_options.resolve(tokens.clone())?;
    gateway_config.events = config::events_config(&file)?;
    let manager = redis_ssot::init(redis_config)?;
    if let Some(embedded) = embedded.as_mut() {
        embedded.wait_ready(&manager).await?;
    }
    let gateway = ssot_gateway::Gateway::bind(gateway_config, manager.clone()).await?;
    let addr = gateway.local_addr();
    let token = tokens.issue(
        &redis_ssot::UserId::new("demo")?,
        Duration::from_secs(24 * 3600),
    )?;
    let redis_urls = manager.config().redacted_urls().join(",");
    let banner = [
        "redis-ssot demo".to_owned(),
        format!("  redis:    {redis_urls}"),
        format!("  open:     http://{addr}/demo#token={token}"),
        format!("  status:   http://{addr}/"),
        format!("  token:    {token}"),
        format!(
            "  publish:  curl -s -X POST http://{addr}/v1/users/demo/events \\\n              \
             -H 'Authorization: Bearer {service_key}' -H 'Content-Type: application/json' \\\n              \
             -d '{{\"event\":\"hello\",\"data\":{{\"text\":\"hi\"}}}}'"
        ),
        "  stop:     Ctrl-C\n".to_owned(),
    ]
    .join("\n");
    // One write, and a closed stdout (the reader went away) does not stop the demo.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), banner.as_bytes());
    let mut worker_options = file.worker.clone();
    // Slow enough to watch a run stream in.
    worker_options.demo_step_ms = worker_options.demo_step_ms.or(Some(400));
    let worker = ssot_worker::Worker::new(worker_options.resolve()?, manager.clone())
        .with_events_config(config::events_config(&file)?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(worker.run(async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }));
    gateway.serve(shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    worker.await??;
    drop(embedded);
    Ok(Exit::Success)
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `ssot check` in the working directory, on the process's stdout and stderr.
fn check(args: ssot_check::CheckArgs) -> Exit {
    match std::env::current_dir() {
        Ok(cwd) => ssot_check::run_in(
            args,
            &cwd,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Err(err) => {
            eprintln!("error: cannot read the working directory: {err}");
            Exit::Error
        }
    }
}
