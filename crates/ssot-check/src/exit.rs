//! Exit codes of `ssot check`.

use std::process::ExitCode;

/// How `ssot check` ends; the numeric values are part of its interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: nothing to report (or only baselined violations).
    Clean,
    /// 1: violations that are not in the baseline, or changes `--diff` would make.
    Violations,
    /// 2: the check could not run (bad config, unreadable baseline, I/O error).
    Error,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Violations => 1,
            Self::Error => 2,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
