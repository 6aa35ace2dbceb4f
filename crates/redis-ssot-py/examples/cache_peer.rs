//! The Rust side of the Python package's cross-language test: reads or writes one
//! `UserCache` entry through the Rust store, so Python can check that both see the same data.
//!
//! ```text
//! cache_peer <redis-url> set <user> <name> <value>   # prints nothing
//! cache_peer <redis-url> get <user> <name>           # prints the value, or exits 1 if absent
//! ```

use std::process::ExitCode;
use std::time::Duration;

use redis_ssot::stores::cache::UserCache;
use redis_ssot::{RedisConfig, RedisManager, UserScope};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cache_peer: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &[String]) -> redis_ssot::Result<ExitCode> {
    let [url, verb, user, name, rest @ ..] = args else {
        eprintln!("usage: cache_peer <redis-url> set|get <user> <name> [value]");
        return Ok(ExitCode::from(2));
    };
    let manager = RedisManager::connect(RedisConfig::for_url(url)?).await?;
    let cache = UserCache::new(manager);
    let scope = UserScope::parse(user)?;
    match (verb.as_str(), rest) {
        ("set", [value]) => {
            cache
                .set(&scope, name, value.as_bytes(), Duration::from_secs(60))
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        ("get", []) => match cache.get(&scope, name).await? {
            Some(value) => {
                println!("{}", String::from_utf8_lossy(&value));
                Ok(ExitCode::SUCCESS)
            }
            None => Ok(ExitCode::from(1)),
        },
        _ => {
            eprintln!("usage: cache_peer <redis-url> set|get <user> <name> [value]");
            Ok(ExitCode::from(2))
        }
    }
}
