//! The environment: every `SSOT_*` variable is known, so a typo is an error, not a default.

use redis_ssot::config::{ConfigError, unknown};

/// Variables read by the `ssot` binary itself, with what they set.
const CLI_VARS: &[(&str, &str)] = &[
    (
        "SSOT_JWT_SECRET",
        "tokens.secret (HS256, at least 32 bytes)",
    ),
    (
        "SSOT_LOG",
        "log filter, `RUST_LOG` syntax (default: info for ssot crates); RUST_LOG is read when unset",
    ),
    ("SSOT_LOG_FORMAT", "log format: `text` (default) or `json`"),
];

/// Variables of the test suites, accepted so that a command run from a test inherits them.
const TEST_VARS: &[(&str, &str)] = &[
    (
        "SSOT_CHROMIUM",
        "tests only: the Chromium of the browser tests",
    ),
    (
        "SSOT_TESTKIT_CHILD_ROLE",
        "tests only: internal to ssot-testkit",
    ),
];

/// Every variable `ssot` knows, with what it sets: the README's table.
pub(crate) fn variables() -> impl Iterator<Item = (&'static str, &'static str)> {
    [
        redis_ssot::config::ENV_VARS,
        ssot_gateway::config::ENV_VARS,
        CLI_VARS,
        TEST_VARS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// Fails on the first `SSOT_*` variable that `ssot` does not know, naming it and the closest
/// known one.
pub(crate) fn check(vars: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    let known: Vec<&str> = variables().map(|(name, _)| name).collect();
    let mut names: Vec<String> = vars
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("SSOT_") && !known.contains(&name.as_str()))
        .collect();
    names.sort();
    match names.first() {
        Some(name) => Err(unknown(name, "variable", &known)),
        None => Ok(()),
    }
}
