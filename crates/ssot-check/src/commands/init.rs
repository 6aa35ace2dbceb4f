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

/// Surveys `dir` and writes the starter `[check]` section into its `ssot.toml`: a new
/// file, or appended to one that holds only runtime sections.
pub(crate) fn run(dir: &Path, cwd: &Path, out: &mut dyn Write) -> Result<ExitStatus, Failure> {
    let file = dir.join(config::SSOT_TOML);
    let existing = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&file, e).into()),
    };
    if let Some(text) = &existing {
        let table: toml::Table = toml::from_str(text).map_err(|e| Error::ConfigSyntax {
            path: file.clone(),
            message: e.to_string(),
        })?;
        if table
            .keys()
            .any(|k| !config::RUNTIME_SECTIONS.contains(&k.as_str()))
        {
            return Err(Error::Usage(format!(
                "{} already exists with a checker configuration",
                file.display()
            ))
            .into());
        }
    }
    let survey = survey::survey(dir);
    let text = match &existing {
        Some(text) => format!("{}\n{}", text.trim_end(), starter_config(&survey)),
        None => starter_config(&survey),
    };
    std::fs::write(&file, text).map_err(|e| Error::io(&file, e))?;
    let shown = file.strip_prefix(cwd).unwrap_or(&file);
    let verb = if existing.is_some() {
        "Added [check] to"
    } else {
        "Wrote"
    };
    writeln!(out, "{verb} {}", shown.display())?;
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
         # The same keys work under [tool.ssot.check] in pyproject.toml.\n\
         [check]\n\n\
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
    if survey.uses_redis_ssot {
        // The package's accessors: `get_redis()` is the asyncio manager, `sync.get_redis()`
        // its blocking facade. Neither stands for a pool: pools get no fix.
        text.push_str(
            "# The project depends on redis-ssot: its process-wide manager replaces clients.\n\
             accessor = \"redis_ssot:sync.get_redis()\"\n\
             # The same for asyncio constructions (redis.asyncio, aioredis).\n\
             async-accessor = \"redis_ssot:get_redis()\"\n\n",
        );
    } else {
        let accessor = found.and_then(|f| {
            f.accessor
                .as_ref()
                .map(|a| format!("{}:{a}", f.module.join(".")))
        });
        match accessor {
            Some(accessor) => {
                let _ = writeln!(text, "accessor = \"{accessor}\"");
            }
            None => text.push_str("# accessor = \"app.redis:get_redis()\"\n"),
        }
        text.push_str(
            "# The same for asyncio constructions (redis.asyncio, aioredis).\n\
             # async-accessor = \"app.redis:get_async_redis()\"\n\n",
        );
    }
    text.push_str(
        "# The shared instance in Rust, named in SSOT003's message (Rust code gets no fix).\n\
         # rust-accessor = \"redis_ssot::manager()\"\n\n\
         # More names that build clients (SSOT001), dotted or Rust paths; \"pkg.*\" bans every\n\
         # call below a module except its exception classes.\n\
         extra-banned = []\n\n\
         # Globs never checked.\n",
    );
    let installed: Vec<String> = survey
        .installed
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect();
    if !installed.is_empty() {
        text.push_str("# Installed packages (virtualenvs) found in the tree.\n");
    }
    let _ = writeln!(text, "exclude = [{}]\n", installed.join(", "));
    text.push_str(
        "\
         # SSOT002: legacy manager modules and their canonical replacement.\n\
         [check.legacy-modules]\n\
         # \"app.core.redis_manager\" = \"app.redis_manager\"\n\n\
         # Priority of a file's violations: the first matching level wins, unmatched files are\n\
         # \"normal\". Levels: critical, high, normal, low.\n\
         [check.priority]\n\
         low = [\"tests/**\", \"docs/**\"]\n",
    );
    text
}
