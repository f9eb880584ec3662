//! Where each field of a document sits in its source file.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::source::Span;

/// A field path recorded in a document's path text: a byte range of it.
pub type PathRange = (usize, usize);

/// Maps field paths of one object (`metadata.name`, `spec.ports[0].port`) to
/// the span of the value and of the key in the source text. Paths are
/// relative to the object, also for items of a `kind: List`.
///
/// Spans are only looked up to place diagnostics, which most objects never
/// get. So the parser writes every path once into one shared text, entries
/// are byte ranges of it, and the hash map is built on the first lookup (a
/// later entry for the same path wins, as with repeated inserts).
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    text: Arc<str>,
    values: Vec<(PathRange, Span)>,
    keys: Vec<(PathRange, Span)>,
    /// Span of the whole object, the fallback of last resort.
    whole: Span,
    lookup: OnceLock<Lookup>,
}

/// The hashed form of the entries, built on demand.
#[derive(Debug, Clone, Default)]
struct Lookup {
    values: HashMap<String, Span>,
    keys: HashMap<String, Span>,
}

impl SpanIndex {
    pub fn new(whole: Span) -> Self {
        SpanIndex {
            whole,
            ..Default::default()
        }
    }

    /// An index over entries whose paths are ranges of `text`, in the
    /// order they were recorded.
    pub fn from_parts(
        whole: Span,
        text: Arc<str>,
        values: Vec<(PathRange, Span)>,
        keys: Vec<(PathRange, Span)>,
    ) -> Self {
        SpanIndex {
            text,
            values,
            keys,
            whole,
            lookup: OnceLock::new(),
        }
    }

    /// Replace the fallback span (a List item's index starts with the List's
    /// span and learns the item's own span later).
    pub fn set_whole(&mut self, whole: Span) {
        self.whole = whole;
    }

    /// Record the value span of `path` (copies the path text; the parser
    /// builds indexes with [`SpanIndex::from_parts`] instead).
    pub fn insert_value(&mut self, path: String, span: Span) {
        let range = self.append(&path);
        self.values.push((range, span));
    }

    /// Record the key span of `path`.
    pub fn insert_key(&mut self, path: String, span: Span) {
        let range = self.append(&path);
        self.keys.push((range, span));
    }

    fn append(&mut self, path: &str) -> PathRange {
        self.lookup.take();
        let mut text = String::with_capacity(self.text.len() + path.len());
        text.push_str(&self.text);
        text.push_str(path);
        self.text = Arc::from(text);
        (self.text.len() - path.len(), self.text.len())
    }

    fn lookup(&self) -> &Lookup {
        self.lookup.get_or_init(|| {
            let text = &self.text;
            let owned = |entries: &[(PathRange, Span)]| {
                entries
                    .iter()
                    .map(|&((start, end), span)| (text[start..end].to_owned(), span))
                    .collect()
            };
            Lookup {
                values: owned(&self.values),
                keys: owned(&self.keys),
            }
        })
    }

    /// Whether the source spelled out the value at `path` (k8s-openapi fills
    /// some missing required fields with defaults; this tells them apart).
    pub fn contains(&self, path: &str) -> bool {
        self.lookup().values.contains_key(path)
    }

    /// Span of the value at `path`, or of its nearest recorded ancestor.
    pub fn value(&self, path: &str) -> Span {
        let values = &self.lookup().values;
        let mut path = path;
        loop {
            if let Some(span) = values.get(path) {
                return *span;
            }
            match parent(path) {
                Some(p) => path = p,
                None => return self.whole,
            }
        }
    }

    /// Span of the key at `path` (for unknown-field warnings), falling back
    /// to the value's span.
    pub fn key(&self, path: &str) -> Span {
        self.lookup()
            .keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

/// `spec.ports[0].port` → `spec.ports[0]` → `spec.ports` → `spec` → none.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        return path.rfind('[').map(|i| &path[..i]);
    }
    Some(path.rfind('.').map_or("", |i| &path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_back_to_ancestors() {
        let mut idx = SpanIndex::new(Span::new(0, 100));
        idx.insert_value("spec.ports".into(), Span::new(10, 20));
        assert_eq!(idx.value("spec.ports[3].port"), Span::new(10, 20));
        assert_eq!(idx.value("status"), Span::new(0, 100));
    }
}
