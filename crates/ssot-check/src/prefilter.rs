//! The prefilter: the words a file must contain to possibly have a violation, found
//! with one Aho-Corasick pass, so that most files of a large tree are never parsed.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::config::Settings;
use crate::lang::Language;
use crate::rules::direct_client::BannedNames;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// A package root of a banned name.
    Root,
    /// A package root with a Python `pkg.*` pattern: any name below it may be banned.
    WildcardRoot,
    /// The last segment of a banned Python name.
    Last,
    /// The manager class or a legacy module's last segment.
    Always,
}

/// The words a file must contain to possibly have a violation. Why it is sound:
/// - SSOT001: the callee resolves from an import of the package root, which the file
///   writes (`use redis::…`, `redis::Client::open`; in Python right after `import`,
///   `from` or the comma of `import a, redis`); a Python relative import can only reach
///   the root when the file's own path starts with it. In Python, unless the root has a
///   `pkg.*` pattern, the callee's last written segment is the banned name's last segment
///   (`Redis(`, `redis.from_url(`), or an alias of it, and then the import says `Redis as`.
/// - SSOT002 and SSOT003: the legacy module's last segment and the manager class are
///   written in the import or the call.
pub(crate) struct Prefilter {
    words: AhoCorasick,
    /// Per word: its kind, whether it applies to Python, whether to Rust.
    kinds: Vec<(Word, bool, bool)>,
    python_roots: Vec<String>,
    python_wildcard_roots: Vec<String>,
}

impl Prefilter {
    pub(crate) fn new(banned: &BannedNames, settings: &Settings) -> Option<Self> {
        let mut entries: Vec<(String, Word, bool, bool)> = Vec::new();
        let python_roots = dedup(banned.python_roots().map(str::to_owned));
        let python_wildcard_roots = dedup(banned.python_wildcard_roots().map(str::to_owned));
        let rust_roots = dedup(banned.rust_roots().map(str::to_owned));
        for root in &python_roots {
            let kind = if python_wildcard_roots.contains(root) {
                Word::WildcardRoot
            } else {
                Word::Root
            };
            entries.push((root.clone(), kind, true, rust_roots.contains(root)));
        }
        for root in rust_roots.iter().filter(|r| !python_roots.contains(r)) {
            entries.push((root.clone(), Word::Root, false, true));
        }
        for last in dedup(banned.python_last_segments().map(str::to_owned)) {
            entries.push((last, Word::Last, true, false));
        }
        let always = settings.manager_class.iter().map(|m| m.name.clone()).chain(
            settings
                .legacy_modules
                .iter()
                .filter_map(|(l, _)| l.last().cloned()),
        );
        for word in always {
            entries.push((word, Word::Always, true, true));
        }
        // Leftmost-longest without overlaps is enough: every word is a whole identifier.
        let words = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(entries.iter().map(|e| e.0.as_str()))
            .ok()?;
        let kinds = entries
            .into_iter()
            .map(|(_, kind, python, rust)| (kind, python, rust))
            .collect();
        Some(Self {
            words,
            kinds,
            python_roots,
            python_wildcard_roots,
        })
    }

    pub(crate) fn may_violate(&self, path: &str, language: Language, source: &str) -> bool {
        let python = language == Language::Python;
        let first = path.split('/').next().unwrap_or_default();
        let package = first.strip_suffix(".py").unwrap_or(first);
        // A file inside a banned package may reach it through relative imports alone,
        // and below a `pkg.*` pattern any call may be banned.
        if python && self.python_wildcard_roots.iter().any(|r| r == package) {
            return true;
        }
        let mut root = python && self.python_roots.iter().any(|r| r == package);
        // Rust needs no `Last` word: its roots are always written in the path or `use`.
        let mut last = !python;
        let bytes = source.as_bytes();
        let is_ident = |b: u8| b == b'_' || b.is_ascii_alphanumeric();
        for m in self.words.find_iter(source) {
            let (kind, in_python, in_rust) = self.kinds[m.pattern().as_usize()];
            let whole = !m.start().checked_sub(1).is_some_and(|i| is_ident(bytes[i]))
                && !bytes.get(m.end()).copied().is_some_and(is_ident);
            if !whole || !(if python { in_python } else { in_rust }) {
                continue;
            }
            let imported = || !python || after_import_keyword(&bytes[..m.start()]);
            match kind {
                Word::Always => return true,
                Word::WildcardRoot if imported() => return true,
                Word::Root | Word::WildcardRoot => root = root || imported(),
                Word::Last => last = last || called_or_aliased(&bytes[m.end()..]),
            }
            if root && last {
                return true;
            }
        }
        false
    }
}

/// Whether Python text right before a name ends with `import`, `from` or `,` (possibly
/// followed by spaces and line continuations): where a module name is written.
fn after_import_keyword(before: &[u8]) -> bool {
    let end = before
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\\'))
        .map_or(0, |i| i + 1);
    let before = &before[..end];
    let keyword = |word: &[u8]| {
        before.ends_with(word)
            && !before[..before.len() - word.len()]
                .last()
                .is_some_and(|&b| b == b'_' || b == b'.' || b.is_ascii_alphanumeric())
    };
    before.ends_with(b",") || keyword(b"import") || keyword(b"from")
}

/// Whether Python text right after a name continues as a call (`(`, possibly after
/// spaces, line continuations or comments) or an import alias (`as`).
fn called_or_aliased(rest: &[u8]) -> bool {
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b'\\' => i += 1,
            b'#' => {
                i += rest[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(rest.len() - i)
            }
            b'(' => return true,
            b'a' => {
                return rest[i..].starts_with(b"as")
                    && rest.get(i + 2).is_some_and(|b| b.is_ascii_whitespace());
            }
            _ => return false,
        }
    }
    false
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.collect();
    items.sort();
    items.dedup();
    items
}
