//! Logs and the final error line: text or JSON on stderr, colour only on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter when neither `SSOT_LOG` nor `RUST_LOG` is set.
const DEFAULT_FILTER: &str =
    "warn,ssot=info,ssot_cli=info,redis_ssot=info,ssot_gateway=info,ssot_worker=info";

/// How log lines are written (`--log-format`, `SSOT_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the subscriber: the filter from `SSOT_LOG`, else `RUST_LOG`, else the default.
pub(crate) fn init(format: LogFormat) {
    let filter = ["SSOT_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| EnvFilter::try_new(v).map_err(|err| (var, err)))
        })
        .unwrap_or_else(|| Ok(EnvFilter::new(DEFAULT_FILTER)));
    let (filter, bad) = match filter {
        Ok(filter) => (filter, None),
        Err(bad) => (EnvFilter::new(DEFAULT_FILTER), Some(bad)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    if let Some((var, err)) = bad {
        tracing::warn!("{var} ignored, not a log filter: {err}");
    }
}

/// The error and its causes on one line, each cause once: an error whose message already
/// includes its source (`failed to bind: Address in use`) does not repeat it.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    let mut previous = line.clone();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !previous.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        previous = text;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like many library errors: its message includes its source, which it also returns.
    #[derive(Debug)]
    struct Bind(std::io::Error);

    impl std::fmt::Display for Bind {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot listen on 127.0.0.1:80: {}", self.0)
        }
    }

    impl std::error::Error for Bind {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let err = anyhow::Error::new(Bind(io)).context("gateway");
        assert_eq!(
            error_line(&err),
            "gateway: cannot listen on 127.0.0.1:80: address in use"
        );
        let plain = anyhow::anyhow!("outer").context("top");
        assert_eq!(error_line(&plain), "top: outer");
    }
}
