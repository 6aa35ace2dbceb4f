//! Parsing and name resolution for the languages the checker reads.

pub(crate) mod python;
pub(crate) mod rust;

use std::path::Path;

use tree_sitter::{Node, Tree};

/// A language the checker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// `.py` and `.pyi` files.
    Python,
    /// `.rs` files.
    Rust,
}

impl Language {
    /// The language of `path`, from its extension.
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "py" | "pyi" => Some(Self::Python),
            "rs" => Some(Self::Rust),
            _ => None,
        }
    }

    /// The tree-sitter grammar.
    pub(crate) fn grammar(self) -> tree_sitter::Language {
        match self {
            Self::Python => tree_sitter_python::LANGUAGE.into(),
            Self::Rust => tree_sitter_rust::LANGUAGE.into(),
        }
    }
}

/// One parser per language and a file buffer, reused across files (one per worker thread).
pub(crate) struct Parsers {
    python: tree_sitter::Parser,
    rust: tree_sitter::Parser,
    /// The bytes of the file being checked.
    pub(crate) buffer: Vec<u8>,
}

impl Parsers {
    pub(crate) fn new() -> Self {
        let make = |language: Language| {
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&language.grammar()).expect("grammar matches the tree-sitter version");
            parser
        };
        Self { python: make(Language::Python), rust: make(Language::Rust), buffer: Vec::new() }
    }

    /// Parses `source`; `Err` names the first syntax error (the file is then skipped).
    pub(crate) fn parse(&mut self, language: Language, source: &str) -> Result<Tree, String> {
        let parser = match language {
            Language::Python => &mut self.python,
            Language::Rust => &mut self.rust,
        };
        let tree = parser.parse(source, None).ok_or_else(|| "parser gave up".to_owned())?;
        if tree.root_node().has_error() {
            return Err(first_error(tree.root_node()));
        }
        Ok(tree)
    }
}

fn first_error(root: Node<'_>) -> String {
    let mut found = None;
    walk(root, |node, enter| {
        if enter && found.is_none() && (node.is_error() || node.is_missing()) {
            let p = node.start_position();
            let what = if node.is_missing() { format!("missing `{}`", node.kind()) } else { "unexpected syntax".to_owned() };
            found = Some(format!("syntax error at {}:{}: {what}", p.row + 1, p.column + 1));
        }
    });
    found.unwrap_or_else(|| "syntax error".to_owned())
}

/// Visits every node below `root` in source order: `f(node, true)` on the way down,
/// `f(node, false)` on the way up. Iterative, so deep trees cannot overflow the stack.
pub(crate) fn walk<'t>(root: Node<'t>, mut f: impl FnMut(Node<'t>, bool)) {
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        f(node, true);
        if cursor.goto_first_child() {
            continue;
        }
        let mut node = node;
        loop {
            f(node, false);
            if node == root {
                return;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
            node = cursor.node();
        }
    }
}

/// The source text of `node`.
pub(crate) fn text<'s>(node: Node<'_>, source: &'s str) -> &'s str {
    &source[node.byte_range()]
}

/// `node`'s text with all whitespace removed: a layout-independent key for fingerprints.
pub(crate) fn compact_text(node: Node<'_>, source: &str) -> String {
    text(node, source).chars().filter(|c| !c.is_whitespace()).collect()
}
