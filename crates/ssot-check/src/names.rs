//! Qualified names and the patterns that match them.

/// A name pattern from the banned list: a package root, then the rest of the name.
///
/// `redis.Redis` matches every name that starts at the package `redis` and ends with
/// `Redis` (`redis.Redis`, `redis.client.Redis`, `redis.asyncio.Redis`), because client
/// libraries re-export their classes from several modules. A trailing `.*` (or `::*`)
/// matches every name below the prefix instead. Dotted and `::` spellings are the same
/// pattern, so one list serves Python and Rust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamePattern {
    root: String,
    tail: Vec<String>,
    below_prefix: bool,
}

impl NamePattern {
    /// Parses `a.b.c`, `a::b::c`, or `a.b.*`; `None` when a segment is not an identifier.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut segments = split_name(text)?;
        let below_prefix = segments.last().is_some_and(|last| last == "*");
        if below_prefix {
            segments.pop();
        }
        if segments.is_empty() || segments.iter().any(|s| !is_identifier(s)) {
            return None;
        }
        let root = segments.remove(0);
        Some(Self {
            root,
            tail: segments,
            below_prefix,
        })
    }

    /// The package the pattern belongs to: every name it matches starts with it.
    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    /// Whether this is a `pkg.*` pattern, matching every name below the prefix.
    pub(crate) fn is_wildcard(&self) -> bool {
        self.below_prefix
    }

    /// The last segment every matched name ends with; `None` for `pkg.*` patterns.
    pub(crate) fn last(&self) -> Option<&str> {
        if self.below_prefix {
            None
        } else {
            Some(self.tail.last().unwrap_or(&self.root))
        }
    }

    /// Whether the fully resolved `name` is matched.
    pub(crate) fn matches(&self, name: &[String]) -> bool {
        let Some((first, rest)) = name.split_first() else {
            return false;
        };
        if *first != self.root {
            return false;
        }
        if self.below_prefix {
            rest.len() > self.tail.len() && rest.starts_with(&self.tail)
        } else {
            rest.len() >= self.tail.len() && rest.ends_with(&self.tail)
        }
    }
}

/// Splits a dotted (`a.b`) or Rust (`a::b`) name into its segments.
pub(crate) fn split_name(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let parts: Vec<String> = if text.contains("::") {
        text.split("::").map(str::to_owned).collect()
    } else {
        text.split('.').map(str::to_owned).collect()
    };
    parts.iter().all(|p| !p.is_empty()).then_some(parts)
}

/// Whether `text` is a Python/Rust identifier (ASCII letters, digits, `_`; `*` is handled by callers).
pub(crate) fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}
