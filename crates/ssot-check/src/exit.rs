//! Exit codes of `ssot check`, and of the other `ssot` commands.

use std::process::ExitCode;

/// How a command ends; the numeric values are part of the interface (ruff's and
/// ripgrep's convention). A closed stdout (BrokenPipe) ends with `Success`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: nothing to report (`ssot check`: no violations, or only baselined ones).
    Success,
    /// 1: findings (`ssot check`: violations missing from the baseline, or changes
    /// `--diff` would make; `ssot doctor`: unhealthy).
    Findings,
    /// 2: the command could not run (bad arguments or config, unreadable baseline, I/O error).
    Error,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Findings => 1,
            Self::Error => 2,
        }
    }

    /// `Findings` when `found`, else `Success`.
    pub fn findings_if(found: bool) -> Self {
        if found { Self::Findings } else { Self::Success }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
