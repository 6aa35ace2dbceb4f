//! `ssot check --init`: writes a starter configuration, proposing as canonical the module
//! that already builds Redis clients and that the most modules import.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use super::Failure;
use crate::config;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::survey::{self, ClientModule, Survey};

/// Surveys `dir` and writes the starter configuration into it; an existing file is an error.
pub(crate) fn run(dir: &Path, cwd: &Path, out: &mut dyn Write) -> Result<ExitStatus, Failure> {
    let file = dir.join(config::SSOT_TOML);
    if file.exists() {
        return Err(Error::Usage(format!("{} already exists", file.display())).into());
    }
    let survey = survey::survey(dir);
    std::fs::write(&file, starter_config(&survey)).map_err(|e| Error::io(&file, e))?;
    let shown = file.strip_prefix(cwd).unwrap_or(&file);
    writeln!(out, "Wrote {}", shown.display())?;
    match survey.client_modules.first() {
        Some(found) => writeln!(
            out,
            "Canonical module: {} ({})",
            found.path,
            describe(found)
        )?,
        None => writeln!(
            out,
            "No module builds a Redis client yet: set `canonical` to the one that will"
        )?,
    }
    Ok(ExitStatus::Success)
}

/// `builds 2 Redis clients, imported by 3 modules`
fn describe(found: &ClientModule) -> String {
    use crate::output::plural;
    format!(
        "builds {} Redis {}, imported by {} {}",
        found.constructions,
        plural(found.constructions, "client", "clients"),
        found.importers,
        plural(found.importers, "module", "modules"),
    )
}

/// The configuration text for what the survey found.
pub(crate) fn starter_config(survey: &Survey) -> String {
    let mut text = String::from(
        "# ssot check: Redis clients are built in one place only (`ssot check --help`).\n\
         # The same keys work under [tool.ssot] in pyproject.toml.\n\n\
         # Files allowed to build Redis clients and the manager (globs, relative to this file).\n",
    );
    let found = survey.client_modules.first();
    match found {
        Some(found) => {
            let _ = writeln!(text, "# {}: {}.", found.path, describe(found));
            for other in survey.client_modules.iter().skip(1).take(5) {
                let _ = writeln!(
                    text,
                    "# Also building clients: {} ({} {}).",
                    other.path,
                    other.importers,
                    crate::output::plural(other.importers, "importer", "importers"),
                );
            }
            let _ = writeln!(text, "canonical = [\"{}\"]\n", found.path);
        }
        None => text.push_str("canonical = []\n\n"),
    }
    text.push_str(
        "# The manager class; instantiating it outside `canonical` is SSOT003.\n\
         # manager-class = \"RedisManager\"\n\n\
         # What --unsafe-fixes puts in place of a client construction: \"module:expression\".\n",
    );
    let accessor = found.and_then(|f| {
        f.accessor
            .as_ref()
            .map(|a| format!("{}:{a}", f.module.join(".")))
    });
    match accessor {
        Some(accessor) => {
            let _ = writeln!(text, "accessor = \"{accessor}\"\n");
        }
        None => text.push_str("# accessor = \"app.redis:get_redis()\"\n\n"),
    }
    text.push_str(
        "# The same for Rust files (a Rust expression).\n\
         # rust-accessor = \"redis_ssot::manager()\"\n\n\
         # More names that build clients (SSOT001), dotted or Rust paths; \"pkg.*\" bans every\n\
         # call below a module except its exception classes.\n\
         extra-banned = []\n\n\
         # Globs never checked.\n\
         exclude = []\n\n\
         # SSOT002: legacy manager modules and their canonical replacement.\n\
         [legacy-modules]\n\
         # \"app.core.redis_manager\" = \"app.redis_manager\"\n\n\
         # Priority of a file's violations: the first matching level wins, unmatched files are\n\
         # \"normal\". Levels: critical, high, normal, low.\n\
         [priority]\n\
         low = [\"tests/**\", \"docs/**\"]\n",
    );
    text
}
