//! The error type of `ssot check`.

use std::path::PathBuf;

/// Everything that stops a check from running (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file is not valid TOML or has an unknown key.
    #[error("{path}: {message}")]
    ConfigSyntax {
        /// The configuration file.
        path: PathBuf,
        /// What the parser said, including the key.
        message: String,
    },
    /// A configuration value is invalid.
    #[error("{path}: `{key}`: {message}")]
    ConfigValue {
        /// The configuration file (or `<defaults>`).
        path: PathBuf,
        /// The key, spelled as in the file (`priority.critical[1]`).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The baseline file cannot be used.
    #[error("baseline {path}: {message}")]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The command line combines options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
