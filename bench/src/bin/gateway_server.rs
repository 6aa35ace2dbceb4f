//! `gateway_server`: the ssot gateway in-process for `bench/gateway/run.sh`, until `ssot serve`
//! exists. Binds, prints `listening <addr> pid <pid>`, serves until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use redis_ssot::stores::tokens::TokenConfig;
use redis_ssot::{RedisManager, RedisOptions};
use ssot_gateway::{Gateway, GatewayOptions};

/// The gateway with defaults, a known JWT secret and service key.
#[derive(Debug, Parser)]
#[command(name = "gateway_server")]
struct Cli {
    /// Redis to use (the driver starts its own; never the system Redis).
    #[arg(long)]
    redis: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// HS256 secret of client tokens.
    #[arg(long, env = "SSOT_JWT_SECRET")]
    secret: String,
    /// Key of the publish API.
    #[arg(long, env = "SSOT_SERVICE_KEY")]
    service_key: String,
    /// WebSocket read/write buffer (bytes); the gateway default when absent.
    #[arg(long)]
    socket_buffer_bytes: Option<usize>,
    /// Tokio worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    worker_threads: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if cli.worker_threads > 0 {
        runtime.worker_threads(cli.worker_threads);
    }
    runtime.enable_all().build()?.block_on(serve(cli))
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let redis = RedisOptions::from_toml(&format!("url = \"{}\"\napp = \"bench\"\n", cli.redis))?
        .resolve()?;
    let manager = RedisManager::connect(redis)
        .await
        .context("connect to Redis")?;
    let options = GatewayOptions {
        listen: Some(cli.listen),
        service_key: Some(cli.service_key),
        socket_buffer_bytes: cli.socket_buffer_bytes,
        ..GatewayOptions::default()
    };
    let config = options.resolve(TokenConfig::hs256(cli.secret.as_bytes())?)?;
    let gateway = Gateway::bind(config, manager).await?;
    println!(
        "listening {} pid {}",
        gateway.local_addr(),
        std::process::id()
    );
    gateway
        .serve(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await?;
    Ok(())
}
