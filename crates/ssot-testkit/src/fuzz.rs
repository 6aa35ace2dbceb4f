//! Property-based fuzzing on the stable toolchain: one runner every crate's fuzz targets share.
//!
//! ## Behavior
//! - By default a target runs `SSOT_FUZZ_CASES` inputs (256 when unset) from a fixed seed,
//!   with no failure persistence: `./dev test` is deterministic and cheap.
//! - With `SSOT_FUZZ_SECS=<n>` (what `bench/fuzz/run.sh` sets) it draws batches from fresh
//!   random seeds until `n` seconds have passed, stopping at the first failure.
//! - It prints `fuzz-target <name> inputs=<tried> failures=<found>` (shrinking steps count
//!   as inputs tried), then fails the test with the smallest failing input when one was
//!   found, so every crash becomes a regression test by copying that input.

use std::cell::Cell;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Inputs per target when `SSOT_FUZZ_CASES` is unset.
const DEFAULT_CASES: u32 = 256;

/// Runs `test` on inputs drawn from `strategy`, under the budget described in the module docs.
pub fn fuzz<S>(target: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    fuzz_with_cases(target, DEFAULT_CASES, strategy, test)
}

/// [`fuzz`] with `cases` inputs when `SSOT_FUZZ_CASES` is unset: for targets whose inputs
/// are slow (a round trip through a real service), so `./dev test` stays quick.
pub fn fuzz_with_cases<S>(
    target: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let tried = Cell::new(0u64);
    let counted = |value: S::Value| {
        tried.set(tried.get() + 1);
        test(value)
    };
    let config = |cases: u32| Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut failure = None;
    match env_number("SSOT_FUZZ_SECS") {
        None => {
            let cases = env_number("SSOT_FUZZ_CASES").map_or(cases, |n| n as u32);
            let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
            let mut runner = TestRunner::new_with_rng(config(cases), rng);
            failure = runner.run(&strategy, counted).err().map(|e| e.to_string());
        }
        Some(secs) => {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while failure.is_none() && Instant::now() < deadline {
                let mut runner = TestRunner::new(config(cases));
                failure = runner.run(&strategy, counted).err().map(|e| e.to_string());
            }
        }
    }
    println!(
        "fuzz-target {target} inputs={} failures={}",
        tried.get(),
        usize::from(failure.is_some())
    );
    if let Some(failure) = failure {
        panic!("fuzz target {target}: {failure}");
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {value:?}")),
    )
}
