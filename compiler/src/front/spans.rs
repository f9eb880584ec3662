//! Where each field of a document sits in its source file.

use std::collections::HashMap;

use super::source::Span;

/// Maps field paths of one object (`metadata.name`, `spec.ports[0].port`) to
/// the span of the value and of the key in the source text. Paths are
/// relative to the object, also for items of a `kind: List`.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    values: HashMap<String, Span>,
    keys: HashMap<String, Span>,
    /// Span of the whole object, the fallback of last resort.
    whole: Span,
}

impl SpanIndex {
    pub fn new(whole: Span) -> Self {
        SpanIndex {
            whole,
            ..Default::default()
        }
    }

    /// Replace the fallback span (a List item's index starts with the List's
    /// span and learns the item's own span later).
    pub fn set_whole(&mut self, whole: Span) {
        self.whole = whole;
    }

    pub fn insert_value(&mut self, path: String, span: Span) {
        self.values.insert(path, span);
    }

    pub fn insert_key(&mut self, path: String, span: Span) {
        self.keys.insert(path, span);
    }

    /// Whether the source spelled out the value at `path` (k8s-openapi fills
    /// some missing required fields with defaults; this tells them apart).
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }

    /// Span of the value at `path`, or of its nearest recorded ancestor.
    pub fn value(&self, path: &str) -> Span {
        let mut path = path;
        loop {
            if let Some(span) = self.values.get(path) {
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
        self.keys
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
