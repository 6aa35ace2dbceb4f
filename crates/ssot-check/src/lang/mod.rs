//! Parsing and name resolution for the languages the checker reads.

pub(crate) mod python;
pub(crate) mod rust;

use std::path::Path;

use ruff_python_ast::{ModModule, PySourceType};
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

/// A parsed Python module.
pub(crate) type PythonSyntax = ruff_python_parser::Parsed<ModModule>;

/// The parsers of one worker thread, and its file buffer.
///
/// Python is parsed by Ruff's parser; Rust by tree-sitter. A Python file Ruff rejects
/// is described by tree-sitter-python, whose messages reports and baselines have always
/// shown (Ruff's own message is used when tree-sitter sees no error).
pub(crate) struct Parsers {
    /// Made on the first Python syntax error.
    python_errors: Option<tree_sitter::Parser>,
    rust: tree_sitter::Parser,
    /// The bytes of the file being checked.
    pub(crate) buffer: Vec<u8>,
}

fn tree_sitter_parser(language: Language) -> tree_sitter::Parser {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&language.grammar())
        .expect("grammar matches the tree-sitter version");
    parser
}

impl Parsers {
    pub(crate) fn new() -> Self {
        Self {
            python_errors: None,
            rust: tree_sitter_parser(Language::Rust),
            buffer: Vec::new(),
        }
    }

    /// Parses Python; `Err` names the first syntax error (the file is then skipped).
    pub(crate) fn parse_python(&mut self, source: &str) -> Result<PythonSyntax, String> {
        let syntax = ruff_python_parser::parse_unchecked_source(source, PySourceType::Python);
        let Some(error) = syntax.errors().first() else {
            return Ok(syntax);
        };
        let start = error.location.start().to_usize();
        let message = error.error.to_string();
        python::free_unmodelled(syntax);
        let parser = self
            .python_errors
            .get_or_insert_with(|| tree_sitter_parser(Language::Python));
        Err(match parser.parse(source, None) {
            Some(tree) if tree.root_node().has_error() => first_error(tree.root_node()),
            _ => {
                let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
                let line = source[..start].matches('\n').count() + 1;
                format!(
                    "syntax error at {line}:{}: {message}",
                    start - line_start + 1
                )
            }
        })
    }

    /// Parses Rust; `Err` names the first syntax error (the file is then skipped).
    pub(crate) fn parse_rust(&mut self, source: &str) -> Result<Tree, String> {
        let tree = self
            .rust
            .parse(source, None)
            .ok_or_else(|| "parser gave up".to_owned())?;
        if tree.root_node().has_error() {
            return Err(first_error(tree.root_node()));
        }
        Ok(tree)
    }

    /// Whether `source` parses without errors.
    pub(crate) fn parses(&mut self, language: Language, source: &str) -> bool {
        match language {
            Language::Python => self
                .parse_python(source)
                .map(python::free_unmodelled)
                .is_ok(),
            Language::Rust => self.parse_rust(source).is_ok(),
        }
    }
}

fn first_error(root: Node<'_>) -> String {
    let mut found = None;
    walk(root, |node, enter| {
        if enter && found.is_none() && (node.is_error() || node.is_missing()) {
            let p = node.start_position();
            let what = if node.is_missing() {
                format!("missing `{}`", node.kind())
            } else {
                "unexpected syntax".to_owned()
            };
            found = Some(format!(
                "syntax error at {}:{}: {what}",
                p.row + 1,
                p.column + 1
            ));
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
    compact(text(node, source))
}

/// `text` with all whitespace removed.
pub(crate) fn compact(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}
