//! Tests that touch process-wide state (the global manager, a metrics recorder, a global
//! `tracing` subscriber, a once-per-process warning) run in a process of their own.
//!
//! nextest already gives every test its own process; `cargo test` runs a binary's tests as
//! threads of one process, where such tests would see each other's state. There the test
//! runs its binary again for itself alone and passes when that child passes.

use std::process::Command;

/// Set in the child to the name of the one test it runs.
const CHILD: &str = "SSOT_TESTKIT_OWN_PROCESS";

/// Makes the calling test run in a process of its own; put it first in the test body.
///
/// ```ignore
/// #[test]
/// fn installs_a_global_recorder() {
///     ssot_testkit::own_process!(installs_a_global_recorder);
///     // ... the body, alone in its process
/// }
/// ```
#[macro_export]
macro_rules! own_process {
    ($test:ident) => {
        if $crate::rerun_alone(module_path!(), stringify!($test)) {
            return;
        }
    };
}

/// Where the test already is alone (nextest, or the child of an earlier call) returns
/// `false`: the caller runs its body. Otherwise runs `test` in a child process, panics
/// with its output if it failed, and returns `true`: the caller returns.
///
/// `module` is the caller's `module_path!()`: the test's name inside its binary is that
/// path without the crate, joined with `test`.
pub fn rerun_alone(module: &str, test: &str) -> bool {
    let name = match module.split_once("::") {
        Some((_crate, inner)) => format!("{inner}::{test}"),
        None => test.to_owned(),
    };
    let alone = std::env::var(CHILD).is_ok_and(|child| child == name)
        || std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|mode| mode == "process-per-test");
    if alone {
        return false;
    }
    let exe = std::env::current_exe().expect("ssot-testkit: the test binary's path");
    let output = Command::new(exe)
        .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, &name)
        .output()
        .expect("ssot-testkit: cannot run the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A filter that matched nothing would also exit 0: require the one test to have passed.
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} failed in its own process ({}):\n{stdout}\n{stderr}",
        output.status
    );
    true
}
