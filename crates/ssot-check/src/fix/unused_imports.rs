//! After unsafe fixes: the imports that only the replaced constructions used
//! (`import redis` once `redis.Redis()` became the accessor) are removed.

use std::collections::HashMap;

use crate::fix::Edit;
use crate::lang::Parsers;
use crate::lang::python::{self, Import, PythonModel};

/// `fixed` (the fixed text of `original`) without the imports it no longer uses but
/// `original` did. Unchanged when there are none, or when removing them would not parse
/// (an import alone in a `try:` block).
pub(crate) fn remove(parsers: &mut Parsers, original: &str, path: &str, fixed: &str) -> String {
    // `__all__` names imports as strings: leave such modules alone.
    if fixed.contains("__all__") {
        return fixed.to_owned();
    }
    let Some(before) = references(parsers, original, path) else {
        return fixed.to_owned();
    };
    let Ok(syntax) = parsers.parse_python(fixed) else {
        return fixed.to_owned();
    };
    let (module, is_package) = python::module_of_path(path);
    let model = PythonModel::build(&syntax, fixed, &module, is_package);
    let after = model.name_references();
    let unused =
        |local: &str| before.get(local).is_some_and(|&n| n > 0) && !after.contains_key(local);
    let edits: Vec<Edit> = model
        .imports
        .iter()
        .filter_map(|import| {
            let keep: Vec<usize> = (0..import.items.len())
                .filter(|&i| !unused(import.items[i].local))
                .collect();
            (keep.len() < import.items.len()).then(|| rewrite(import, &keep, fixed))
        })
        .collect();
    let depth = model.depth;
    drop(model);
    python::free(syntax, depth);
    if edits.is_empty() {
        return fixed.to_owned();
    }
    let fixes = [crate::fix::Fix {
        applicability: crate::fix::Applicability::Unsafe,
        message: String::new(),
        edits,
    }];
    let (cleaned, _) = crate::fix::apply(fixed, &fixes);
    if parsers.parses(crate::lang::Language::Python, &cleaned) {
        cleaned
    } else {
        fixed.to_owned()
    }
}

/// How often `source` references each name; `None` when it does not parse.
fn references(parsers: &mut Parsers, source: &str, path: &str) -> Option<HashMap<String, usize>> {
    let syntax = parsers.parse_python(source).ok()?;
    let (module, is_package) = python::module_of_path(path);
    let model = PythonModel::build(&syntax, source, &module, is_package);
    let counts = model
        .name_references()
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect();
    let depth = model.depth;
    drop(model);
    python::free(syntax, depth);
    Some(counts)
}

/// The edit that keeps only the items `keep` of `import` (removing its line when none stay).
fn rewrite(import: &Import<'_>, keep: &[usize], source: &str) -> Edit {
    if keep.is_empty() {
        let line_start = source[..import.range.start]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let alone = source[line_start..import.range.start].trim().is_empty();
        let rest = &source[import.range.end..];
        let line_end = rest
            .find('\n')
            .map_or(source.len(), |i| import.range.end + i + 1);
        if alone && source[import.range.end..line_end].trim().is_empty() {
            return Edit {
                start: line_start,
                end: line_end,
                content: String::new(),
            };
        }
        // Beside other code on its line (`import redis; x = 1`): `pass` keeps it valid.
        return Edit {
            start: import.range.start,
            end: import.range.end,
            content: "pass".to_owned(),
        };
    }
    let first = &import.items[0];
    let prefix = &source[import.range.start..first.name_range.start];
    let parenthesised = prefix.trim_end().ends_with('(');
    let prefix = prefix.trim_end().trim_end_matches('(').trim_end();
    let items: Vec<String> = keep
        .iter()
        .map(|&i| {
            let item = &import.items[i];
            let name = &source[item.name_range.clone()];
            match &item.alias {
                Some(alias) => format!("{name} as {alias}"),
                None => name.to_owned(),
            }
        })
        .collect();
    let list = items.join(", ");
    Edit {
        start: import.range.start,
        end: import.range.end,
        content: if parenthesised {
            format!("{prefix} ({list})")
        } else {
            format!("{prefix} {list}")
        },
    }
}
