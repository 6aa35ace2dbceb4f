//! Rust: `use` trees and path resolution over a tree-sitter tree.
//!
//! ## Behavior
//! - `use` declarations bind names per block or module (`use redis::Client as C`,
//!   `use redis::{self, aio::ConnectionManager}`, `use redis::*` as a fallback).
//! - A path whose first segment no `use` binds and no item of the file defines is an
//!   external crate (`redis::Client::open`), as in Rust 2018 and later.
//! - A `mod` body does not see the names of its parent, unless it says `use super::*`.
//! - Items defined in the file (`struct Client`, `mod redis`) shadow crate names, so
//!   look-alikes are not flagged.
//! - Calls inside macro arguments (`assert!(redis::Client::open(u).is_ok())`) are found
//!   by scanning the macro's tokens for `path::to::f(`.

use std::collections::{HashMap, HashSet};

use tree_sitter::Node;

use super::{text, walk};

/// A call (or struct literal) with its callee path as written.
#[derive(Debug, Clone)]
pub(crate) struct RustCall<'t> {
    /// First node of the construction (the call, or the macro token where it starts).
    pub(crate) start: Node<'t>,
    /// Last node of the construction.
    pub(crate) end: Node<'t>,
    /// The callee path as written (`["Client", "open"]`).
    pub(crate) path: Vec<String>,
    /// Whether this is a struct literal (`Config { .. }`) rather than a call.
    pub(crate) struct_literal: bool,
    container: usize,
}

/// A `use` declaration.
#[derive(Debug, Clone)]
pub(crate) struct RustUse<'t> {
    pub(crate) node: Node<'t>,
    /// Full paths of every leaf (`use a::{b, c::d}` → `a::b`, `a::c::d`); a glob ends in `*`.
    pub(crate) leaves: Vec<Vec<String>>,
    /// The path the whole tree starts with, when written as one path node.
    pub(crate) prefix_node: Option<Node<'t>>,
}

#[derive(Debug, Default)]
struct Container {
    parent: Option<usize>,
    /// `module::function` names around the container, for fingerprints.
    path: String,
    /// A module body: names from outside are not in scope here.
    is_module: bool,
    /// Items defined directly in the container.
    items: HashSet<String>,
    bindings: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

/// The resolved view of one Rust file.
pub(crate) struct RustModel<'t> {
    source: &'t str,
    containers: Vec<Container>,
    pub(crate) calls: Vec<RustCall<'t>>,
    pub(crate) uses: Vec<RustUse<'t>>,
    pub(crate) comments: Vec<Node<'t>>,
}

impl<'t> RustModel<'t> {
    pub(crate) fn build(root: Node<'t>, source: &'t str) -> Self {
        let mut model = Self {
            source,
            containers: vec![Container {
                is_module: true,
                ..Container::default()
            }],
            calls: Vec::new(),
            uses: Vec::new(),
            comments: Vec::new(),
        };
        let mut stack: Vec<(usize, usize)> = vec![(0, root.id())];
        let mut names: Vec<(String, usize)> = Vec::new();
        let mut next_is_module = false;
        walk(root, |node, enter| {
            let current = stack.last().map_or(0, |s| s.0);
            if !enter {
                if stack.len() > 1 && stack.last().is_some_and(|s| s.1 == node.id()) {
                    stack.pop();
                }
                if names.last().is_some_and(|n| n.1 == node.id()) {
                    names.pop();
                }
                return;
            }
            match node.kind() {
                "declaration_list" | "block" => {
                    let path = names
                        .iter()
                        .map(|n| n.0.as_str())
                        .collect::<Vec<_>>()
                        .join("::");
                    let is_module =
                        std::mem::take(&mut next_is_module) && node.kind() == "declaration_list";
                    model.containers.push(Container {
                        parent: Some(current),
                        path,
                        is_module,
                        ..Container::default()
                    });
                    stack.push((model.containers.len() - 1, node.id()));
                }
                "impl_item" => {
                    if let Some(ty) = node.child_by_field_name("type") {
                        names.push((text(ty, source).to_owned(), node.id()));
                    }
                }
                "use_declaration" => {
                    if let Some(argument) = node.child_by_field_name("argument") {
                        let mut leaves = Vec::new();
                        model.use_tree(argument, &[], current, &mut leaves);
                        let prefix_node = match argument.kind() {
                            "scoped_identifier" | "identifier" => Some(argument),
                            "use_as_clause" | "scoped_use_list" => {
                                argument.child_by_field_name("path")
                            }
                            "use_wildcard" => argument.named_child(0),
                            _ => None,
                        };
                        model.uses.push(RustUse {
                            node,
                            leaves,
                            prefix_node,
                        });
                    }
                }
                "extern_crate_declaration" => {
                    if let Some(name) = node.child_by_field_name("name") {
                        let krate = text(name, source).to_owned();
                        let local = node
                            .child_by_field_name("alias")
                            .map_or(krate.clone(), |a| text(a, source).to_owned());
                        model.containers[current]
                            .bindings
                            .insert(local, vec![krate]);
                    }
                }
                "struct_item" | "enum_item" | "union_item" | "type_item" | "trait_item"
                | "function_item" | "mod_item" | "const_item" | "static_item" => {
                    if let Some(name) = node.child_by_field_name("name") {
                        let name = text(name, source).to_owned();
                        if matches!(node.kind(), "function_item" | "mod_item" | "trait_item") {
                            names.push((name.clone(), node.id()));
                        }
                        next_is_module =
                            node.kind() == "mod_item" && node.child_by_field_name("body").is_some();
                        model.containers[current].items.insert(name);
                    }
                }
                "call_expression" => {
                    let mut callee = node.child_by_field_name("function");
                    if let Some(generic) = callee.filter(|c| c.kind() == "generic_function") {
                        callee = generic.child_by_field_name("function");
                    }
                    if let Some(path) = callee.and_then(|c| path_segments(c, source)) {
                        model.calls.push(RustCall {
                            start: node,
                            end: node,
                            path,
                            struct_literal: false,
                            container: current,
                        });
                    }
                }
                "struct_expression" => {
                    if let Some(path) = node
                        .child_by_field_name("name")
                        .and_then(|n| path_segments(n, source))
                    {
                        model.calls.push(RustCall {
                            start: node,
                            end: node,
                            path,
                            struct_literal: true,
                            container: current,
                        });
                    }
                }
                "token_tree" => model.macro_calls(node, current),
                "line_comment" | "block_comment" => model.comments.push(node),
                _ => {}
            }
        });
        model
    }

    fn use_tree(
        &mut self,
        node: Node<'t>,
        prefix: &[String],
        container: usize,
        leaves: &mut Vec<Vec<String>>,
    ) {
        let source = self.source;
        let joined =
            |tail: Vec<String>| -> Vec<String> { prefix.iter().cloned().chain(tail).collect() };
        match node.kind() {
            "identifier" | "scoped_identifier" | "crate" | "super" => {
                let Some(path) = path_segments(node, source).map(joined) else {
                    return;
                };
                let local = path.last().cloned().unwrap_or_default();
                self.containers[container]
                    .bindings
                    .insert(local, path.clone());
                leaves.push(path);
            }
            "self" => {
                if let Some(last) = prefix.last() {
                    self.containers[container]
                        .bindings
                        .insert(last.clone(), prefix.to_vec());
                    leaves.push(prefix.to_vec());
                }
            }
            "use_as_clause" => {
                let path = node
                    .child_by_field_name("path")
                    .and_then(|p| path_segments(p, source))
                    .map(joined);
                let alias = node
                    .child_by_field_name("alias")
                    .map(|a| text(a, source).to_owned());
                if let (Some(path), Some(alias)) = (path, alias) {
                    if alias != "_" {
                        self.containers[container]
                            .bindings
                            .insert(alias, path.clone());
                    }
                    leaves.push(path);
                }
            }
            "scoped_use_list" => {
                let path = match node.child_by_field_name("path") {
                    Some(p) => path_segments(p, source).map(joined),
                    None => Some(prefix.to_vec()),
                };
                if let (Some(path), Some(list)) = (path, node.child_by_field_name("list")) {
                    self.use_tree(list, &path, container, leaves);
                }
            }
            "use_list" => {
                for i in 0..node.named_child_count() {
                    if let Some(child) = node.named_child(i) {
                        self.use_tree(child, prefix, container, leaves);
                    }
                }
            }
            "use_wildcard" => {
                let path = match node.named_child(0) {
                    Some(p) => path_segments(p, source).map(joined),
                    None => Some(prefix.to_vec()),
                };
                if let Some(path) = path {
                    self.containers[container].globs.push(path.clone());
                    leaves.push(path.into_iter().chain(["*".to_owned()]).collect());
                }
            }
            _ => {}
        }
    }

    /// Finds `a::b::f(` sequences among a macro's tokens.
    fn macro_calls(&mut self, tree: Node<'t>, container: usize) {
        let source = self.source;
        let count = tree.child_count();
        let mut i = 0;
        while i < count {
            let Some(first) = tree.child(i) else { break };
            if !matches!(first.kind(), "identifier" | "crate" | "self" | "super")
                || (i > 0
                    && tree
                        .child(i - 1)
                        .is_some_and(|p| p.kind() == "::" || p.kind() == "."))
            {
                i += 1;
                continue;
            }
            let mut path = vec![text(first, source).to_owned()];
            let mut j = i + 1;
            while j + 1 < count
                && tree.child(j).is_some_and(|n| n.kind() == "::")
                && tree.child(j + 1).is_some_and(|n| n.kind() == "identifier")
            {
                path.push(text(tree.child(j + 1).expect("checked"), source).to_owned());
                j += 2;
            }
            let args = tree
                .child(j)
                .filter(|n| n.kind() == "token_tree" && text(*n, source).starts_with('('));
            if let (Some(args), true) = (args, path.len() > 1) {
                self.calls.push(RustCall {
                    start: first,
                    end: args,
                    path,
                    struct_literal: false,
                    container,
                });
            }
            i = j.max(i + 1);
        }
    }

    /// `module::function` names around `call`.
    pub(crate) fn scope_path(&self, call: &RustCall<'t>) -> &str {
        &self.containers[call.container].path
    }

    /// Every fully qualified path `call`'s callee may stand for (empty when it is local).
    pub(crate) fn candidates(&self, call: &RustCall<'t>) -> Vec<Vec<String>> {
        let (first, rest) = call.path.split_first().expect("paths are never empty");
        match first.as_str() {
            "crate" | "self" | "super" => return vec![call.path.clone()],
            "" => return vec![rest.to_vec()],
            _ => {}
        }
        let mut globs = Vec::new();
        let mut current = Some(call.container);
        while let Some(index) = current {
            let container = &self.containers[index];
            if let Some(target) = container.bindings.get(first) {
                return vec![target.iter().chain(rest).cloned().collect()];
            }
            if container.items.contains(first) {
                return Vec::new();
            }
            globs.extend(container.globs.iter());
            // A module sees nothing from outside, except through `use super::*`.
            let sees_parent = !container.is_module
                || container
                    .globs
                    .iter()
                    .any(|g| g.len() == 1 && g[0] == "super");
            current = if sees_parent { container.parent } else { None };
        }
        // A path of two or more segments names an external crate first (`fred::clients::Pool`
        // under `use fred::prelude::*` is not `fred::prelude::fred::...`); a glob could
        // still supply its first segment.
        let literal = (!rest.is_empty()).then(|| call.path.clone());
        literal
            .into_iter()
            .chain(
                globs
                    .into_iter()
                    .map(|g| g.iter().chain(&call.path).cloned().collect()),
            )
            .collect()
    }
}

/// Segments of a path (`a::b::c`, `::a::b`, `crate::x`); `None` for paths with generics
/// or qualified types in the middle.
pub(crate) fn path_segments(node: Node<'_>, source: &str) -> Option<Vec<String>> {
    match node.kind() {
        "identifier" | "type_identifier" | "crate" | "self" | "super" => {
            Some(vec![text(node, source).to_owned()])
        }
        "scoped_identifier" | "scoped_type_identifier" => {
            let mut segments = match node.child_by_field_name("path") {
                Some(path) => path_segments(path, source)?,
                None => vec![String::new()],
            };
            segments.push(text(node.child_by_field_name("name")?, source).to_owned());
            Some(segments)
        }
        _ => None,
    }
}
