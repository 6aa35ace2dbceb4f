//! What `ssot check --init` learns from a project before writing its configuration: the
//! Python modules that already build Redis clients or pools, how many modules import
//! each, what they expose, and whether the project depends on the `redis-ssot` package.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Settings;
use crate::lang::Parsers;
use crate::lang::python::{self, PythonModel};
use crate::modules::ModuleIndex;
use crate::rules::direct_client::{self, BannedNames};
use crate::rules::{Context, Finding};

/// A module that builds clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientModule {
    /// Path relative to the surveyed directory, `/`-separated.
    pub(crate) path: String,
    /// Its dotted module name.
    pub(crate) module: Vec<String>,
    /// How many constructions it holds.
    pub(crate) constructions: usize,
    /// How many other modules import it.
    pub(crate) importers: usize,
    /// What the rest of the code would call instead: `get_redis()`, or a module-level
    /// client (`client`).
    pub(crate) accessor: Option<String>,
}

/// What the survey found.
#[derive(Debug, Default)]
pub(crate) struct Survey {
    /// Modules that build clients, most imported first.
    pub(crate) client_modules: Vec<ClientModule>,
    /// The project declares a dependency on `redis-ssot` (pyproject.toml or requirements*.txt).
    pub(crate) uses_redis_ssot: bool,
    /// Directories of installed packages (virtualenvs) found in the tree.
    pub(crate) installed: Vec<String>,
}

/// Surveys the Python files under `dir` (honouring `.gitignore`).
pub(crate) fn survey(dir: &Path) -> Survey {
    let settings = Settings::defaults(dir.to_owned());
    let banned = BannedNames::new(&[]);
    let mut parsers = Parsers::new();
    let modules = ModuleIndex::new(dir);
    let mut found: Vec<ClientModule> = Vec::new();
    let mut imported: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    // Installed packages (a virtualenv that .gitignore does not list) build clients too,
    // but are not the project's: skipped here, and proposed for `exclude`.
    let installed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let found_installed = installed.clone();
    let walk = ignore::WalkBuilder::new(dir)
        .require_git(false)
        .filter_entry(move |e| {
            let skip = e.file_type().is_some_and(|t| t.is_dir())
                && (e.path().join("pyvenv.cfg").is_file() || e.file_name() == "site-packages");
            if skip && let Ok(mut list) = found_installed.lock() {
                list.push(e.path().to_owned());
            }
            !skip
        })
        .build();
    for entry in walk.flatten() {
        let file = entry.path();
        if file.extension().is_none_or(|e| e != "py") {
            continue;
        }
        let Ok(source) = std::fs::read_to_string(file) else {
            continue;
        };
        let Ok(syntax) = parsers.parse_python(&source) else {
            continue;
        };
        let path = relative(dir, file);
        let (module, is_package) = python::module_of_path(&path);
        let model = PythonModel::build(&syntax, &source, &module, is_package);
        let ctx = Context {
            source: &source,
            settings: &settings,
            canonical: false,
            banned: &banned,
            modules: &modules,
        };
        let mut findings: Vec<Finding> = Vec::new();
        direct_client::check_python(&model, &ctx, &mut findings);
        // Each module an import statement may name: `from a.b import c` names `a.b`
        // and, if `c` is a module, `a.b.c`.
        let mut names: Vec<Vec<String>> = Vec::new();
        for import in &model.imports {
            names.extend(import.from_module.clone());
            names.extend(import.items.iter().map(|i| i.path.clone()));
        }
        names.sort();
        names.dedup();
        for name in names.into_iter().filter(|n| *n != module) {
            *imported.entry(name).or_default() += 1;
        }
        if !findings.is_empty() {
            found.push(ClientModule {
                accessor: accessor(&model, &findings),
                path,
                module,
                constructions: findings.len(),
                importers: 0,
            });
        }
        let depth = model.depth;
        python::free(syntax, depth);
    }
    for candidate in &mut found {
        candidate.importers = imported.get(&candidate.module).copied().unwrap_or(0);
    }
    found.sort_by(|a, b| {
        (b.importers, b.constructions, &a.path).cmp(&(a.importers, a.constructions, &b.path))
    });
    Survey {
        client_modules: found,
        uses_redis_ssot: depends_on_redis_ssot(dir),
        installed: installed
            .lock()
            .map(|list| list.iter().map(|p| relative(dir, p)).collect())
            .unwrap_or_default(),
    }
}

/// The name other modules would use: a module-level `get_*` function mentioning redis,
/// a client or a pool, else a module-level variable holding a construction.
fn accessor(model: &PythonModel<'_>, findings: &[Finding]) -> Option<String> {
    let functions = model.top_level_functions();
    let getter = functions.iter().find(|name| {
        name.starts_with("get_")
            && ["redis", "client", "pool", "manager"]
                .iter()
                .any(|w| name.contains(w))
    });
    if let Some(name) = getter {
        return Some(format!("{name}()"));
    }
    model
        .top_level_assignments()
        .into_iter()
        .find(|(_, value)| findings.iter().any(|f| f.start == value.start))
        .map(|(name, _)| name.to_owned())
}

/// Whether `dir` (or a parent) declares the `redis-ssot` Python package as a dependency.
fn depends_on_redis_ssot(dir: &Path) -> bool {
    let mentions = |text: &str| {
        text.lines().any(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let normal = line.to_ascii_lowercase().replace('_', "-");
            normal
                .match_indices("redis-ssot")
                .any(|(i, _)| !normal[..i].ends_with(|c: char| c.is_alphanumeric() || c == '-'))
        })
    };
    dir.ancestors().take(3).any(|d| {
        let pyproject = std::fs::read_to_string(d.join("pyproject.toml")).ok();
        let requirements = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("requirements") && name.ends_with(".txt")
            });
        pyproject.is_some_and(|t| mentions(&t))
            || requirements
                .into_iter()
                .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| mentions(&t)))
    })
}

fn relative(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
