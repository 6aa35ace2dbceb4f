//! The metrics recorder of the real path: `ssot serve` installs a Prometheus recorder, so
//! every manager call there pays for its counters and histograms. The benchmarks install
//! the same one by default and report a run without it under its own name.

/// Whether the process records the library's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Metrics {
    /// The Prometheus recorder the gateway installs (the real path).
    On,
    /// No recorder: every metric call is a no-op.
    Off,
}

impl Metrics {
    /// Installs the recorder when on; call once, before the first manager is built.
    pub fn install(self) -> anyhow::Result<()> {
        if self == Metrics::On {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|err| anyhow::anyhow!("installing the metrics recorder: {err}"))?;
        }
        Ok(())
    }

    /// The name a redis-ssot contender is reported under: its own with metrics on, with
    /// `-metrics-off` appended otherwise.
    pub fn name(self, contender: &str) -> String {
        match self {
            Metrics::On => contender.to_owned(),
            Metrics::Off => format!("{contender}-metrics-off"),
        }
    }
}
