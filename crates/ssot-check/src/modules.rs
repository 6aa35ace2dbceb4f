//! The Python modules of the checked tree, read on demand: what each binds at its top
//! level. Two uses:
//! - re-exports: `from . import redis`, where the package's `__init__` binds `redis` to
//!   `redis.asyncio`, resolves to `redis.asyncio` ([`ModuleIndex::resolve`]);
//! - fix safety: a safe SSOT002 fix only imports names the canonical module defines
//!   ([`ModuleIndex::defines`]).
//!
//! ## Behavior
//! - A module `a.b` is `<root>/a/b.py` or `<root>/a/b/__init__.py`; anything else (an
//!   installed package) is not in the tree and is never guessed at.
//! - Each module is parsed at most once per run (the index is shared by the threads).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::lang::Parsers;
use crate::lang::python::{self, BindingKind, PythonModel};

/// What a module binds at its top level.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    /// Every name bound (functions, classes, assignments, imports).
    names: HashSet<String>,
    /// The names bound by imports, with what they import.
    imports: HashMap<String, Vec<String>>,
    /// `from x import *` or a module `__getattr__`: any name may exist.
    dynamic: bool,
    /// The file is a package's `__init__`: its submodules are names too.
    package_dir: Option<PathBuf>,
}

/// The tree's Python modules, by dotted name.
#[derive(Debug)]
pub(crate) struct ModuleIndex {
    root: PathBuf,
    cache: Mutex<HashMap<Vec<String>, Option<Arc<Exports>>>>,
    /// Whether a top-level name is a package or module of the tree: most resolved
    /// names start with an installed package, and are ruled out by this one look-up.
    roots: Mutex<HashMap<String, bool>>,
}

/// How many re-export hops [`ModuleIndex::resolve`] follows (cycles end there too).
const MAX_HOPS: usize = 8;

impl ModuleIndex {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            cache: Mutex::new(HashMap::new()),
            roots: Mutex::new(HashMap::new()),
        }
    }

    /// The top-level bindings of `module`; `None` when it is not a file of the tree or
    /// does not parse.
    pub(crate) fn exports(&self, module: &[String]) -> Option<Arc<Exports>> {
        if module.is_empty() {
            return None;
        }
        if let Some(known) = self.cache.lock().ok()?.get(module) {
            return known.clone();
        }
        let read = self.read(module).map(Arc::new);
        self.cache
            .lock()
            .ok()?
            .insert(module.to_vec(), read.clone());
        read
    }

    fn read(&self, module: &[String]) -> Option<Exports> {
        let base = module.iter().fold(self.root.clone(), |p, s| p.join(s));
        let file_module = base.with_extension("py");
        let init = base.join("__init__.py");
        let (file, is_package) = if file_module.is_file() {
            (file_module, false)
        } else if init.is_file() {
            (init, true)
        } else {
            return None;
        };
        let source = std::fs::read_to_string(&file).ok()?;
        let syntax = Parsers::new().parse_python(&source).ok()?;
        let model = PythonModel::build(&syntax, &source, module, is_package);
        let mut exports = Exports {
            dynamic: model.has_star_import(),
            package_dir: is_package.then_some(base),
            ..Exports::default()
        };
        for (name, kind) in model.module_bindings() {
            if let BindingKind::Import(target) = kind {
                exports.imports.insert(name.to_owned(), target);
            }
            exports.names.insert(name.to_owned());
        }
        exports.dynamic |= exports.names.contains("__getattr__");
        let depth = model.depth;
        python::free(syntax, depth);
        Some(exports)
    }

    /// Whether `module` (in the tree) defines `name`: `Some(true)` or `Some(false)`;
    /// `None` when that cannot be known (not in the tree, `*` imports, `__getattr__`).
    pub(crate) fn defines(&self, module: &[String], name: &str) -> Option<bool> {
        let exports = self.exports(module)?;
        if exports.names.contains(name) {
            return Some(true);
        }
        if let Some(dir) = &exports.package_dir
            && (dir.join(format!("{name}.py")).is_file()
                || dir.join(name).join("__init__.py").is_file())
        {
            return Some(true);
        }
        (!exports.dynamic).then_some(false)
    }

    /// Whether the top-level package or module `first` is in the tree.
    fn in_tree(&self, first: &str) -> bool {
        let Ok(mut roots) = self.roots.lock() else {
            return false;
        };
        *roots.entry(first.to_owned()).or_insert_with(|| {
            self.root.join(first).is_dir() || self.root.join(format!("{first}.py")).is_file()
        })
    }

    /// Whether `module` is a module of the tree.
    pub(crate) fn contains(&self, module: &[String]) -> bool {
        self.exports(module).is_some()
    }

    /// `name` with re-exports followed: when a prefix of it is a module of the tree that
    /// binds the next segment by an import, that segment stands for what it imports
    /// (`pkg.redis.Redis` with `pkg/__init__.py` doing `from redis import asyncio as
    /// redis` is `redis.asyncio.Redis`).
    pub(crate) fn resolve(&self, name: &[String]) -> Vec<String> {
        let mut name = name.to_vec();
        if !name.first().is_some_and(|first| self.in_tree(first)) {
            return name;
        }
        for _ in 0..MAX_HOPS {
            let hop = (1..name.len()).rev().find_map(|k| {
                let target = self.exports(&name[..k])?.imports.get(&name[k])?.clone();
                Some(
                    target
                        .into_iter()
                        .chain(name[k + 1..].iter().cloned())
                        .collect(),
                )
            });
            match hop {
                Some(next) if next != name => name = next,
                _ => break,
            }
        }
        name
    }
}
