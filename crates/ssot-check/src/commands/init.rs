//! `ssot check --init`: writes a starter `ssot.toml`.

use std::io::Write;
use std::path::Path;

use super::Failure;
use crate::config;
use crate::error::Error;
use crate::exit::ExitStatus;

/// Writes the starter configuration into `dir`; an existing file is an error.
pub(crate) fn run(dir: &Path, out: &mut dyn Write) -> Result<ExitStatus, Failure> {
    let file = dir.join(config::SSOT_TOML);
    if file.exists() {
        return Err(Error::Usage(format!("{} already exists", file.display())).into());
    }
    std::fs::write(&file, config::STARTER_CONFIG).map_err(|e| Error::io(&file, e))?;
    writeln!(out, "Wrote {}", file.display())?;
    Ok(ExitStatus::Success)
}
