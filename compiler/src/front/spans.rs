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
///
/// The entries are shared, and a shift is added to every span looked up:
/// a document loaded once and found again at another offset of its file
/// (an earlier document grew) gets its index back by [`SpanIndex::shifted`],
/// without copying a span.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    entries: Arc<Entries>,
    /// Added to every span of `entries` (bytes; may be negative).
    shift: isize,
}

/// The recorded spans of one object, as first loaded. Kept for as long as
/// a node agent's cache keeps the object, so stored compactly (offsets as
/// `u32`: a document past 4 GiB would only get coarser spans).
#[derive(Debug, Clone, Default)]
struct Entries {
    text: Arc<str>,
    values: Vec<Packed>,
    keys: Vec<Packed>,
    /// Span of the whole object, the fallback of last resort.
    whole: Span,
    lookup: OnceLock<Lookup>,
}

/// A path range and a span, in 16 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Packed([u32; 4]);

impl Packed {
    fn new((start, end): PathRange, span: Span) -> Packed {
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Packed([small(start), small(end), small(span.start), small(span.end)])
    }

    fn path(self) -> std::ops::Range<usize> {
        self.0[0] as usize..self.0[1] as usize
    }

    fn span(self) -> Span {
        Span::new(self.0[2] as usize, self.0[3] as usize)
    }
}

fn packed(entries: Vec<(PathRange, Span)>) -> Vec<Packed> {
    entries
        .into_iter()
        .map(|(path, span)| Packed::new(path, span))
        .collect()
}

/// The hashed form of the entries, built on demand.
#[derive(Debug, Clone, Default)]
struct Lookup {
    values: HashMap<String, Span>,
    keys: HashMap<String, Span>,
}

impl SpanIndex {
    pub fn new(whole: Span) -> Self {
        SpanIndex::from_parts(whole, Arc::from(""), Vec::new(), Vec::new())
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
            entries: Arc::new(Entries {
                text,
                values: packed(values),
                keys: packed(keys),
                whole,
                lookup: OnceLock::new(),
            }),
            shift: 0,
        }
    }

    /// The same index for the object moved by `delta` bytes in its file.
    pub fn shifted(&self, delta: isize) -> SpanIndex {
        SpanIndex {
            entries: self.entries.clone(),
            shift: self.shift + delta,
        }
    }

    /// Moves this index by `delta` bytes, in place.
    pub fn shift_by(&mut self, delta: isize) {
        self.shift += delta;
    }

    /// Replace the fallback span (a List item's index starts with the List's
    /// span and learns the item's own span later).
    pub fn set_whole(&mut self, whole: Span) {
        let whole = self.unshift(whole);
        Arc::make_mut(&mut self.entries).whole = whole;
    }

    /// Record the value span of `path` (copies the path text; the parser
    /// builds indexes with [`SpanIndex::from_parts`] instead).
    pub fn insert_value(&mut self, path: String, span: Span) {
        let span = self.unshift(span);
        let entries = Arc::make_mut(&mut self.entries);
        let range = entries.append(&path);
        entries.values.push(Packed::new(range, span));
    }

    /// Record the key span of `path`.
    pub fn insert_key(&mut self, path: String, span: Span) {
        let span = self.unshift(span);
        let entries = Arc::make_mut(&mut self.entries);
        let range = entries.append(&path);
        entries.keys.push(Packed::new(range, span));
    }

    /// `span` as stored: without this index's shift.
    fn unshift(&self, span: Span) -> Span {
        move_span(span, -self.shift)
    }

    /// `span` as stored, moved where the object now is.
    fn place(&self, span: Span) -> Span {
        move_span(span, self.shift)
    }

    /// Every recorded entry as placed now: (path, span, whether it is a
    /// key's span), values then keys in the order recorded, then the whole
    /// object's span. Two indexes of the same object agree on it.
    pub fn recorded(&self) -> Vec<(String, Span, bool)> {
        let e = &self.entries;
        let entry =
            |key: bool| move |p: &Packed| (e.text[p.path()].to_owned(), self.place(p.span()), key);
        let mut all: Vec<_> = e.values.iter().map(entry(false)).collect();
        all.extend(e.keys.iter().map(entry(true)));
        all.push((String::new(), self.place(e.whole), false));
        all
    }

    /// Whether the source spelled out the value at `path` (k8s-openapi fills
    /// some missing required fields with defaults; this tells them apart).
    pub fn contains(&self, path: &str) -> bool {
        self.entries.lookup().values.contains_key(path)
    }

    /// Span of the value at `path`, or of its nearest recorded ancestor.
    pub fn value(&self, path: &str) -> Span {
        let values = &self.entries.lookup().values;
        let mut path = path;
        loop {
            if let Some(span) = values.get(path) {
                return self.place(*span);
            }
            match parent(path) {
                Some(p) => path = p,
                None => return self.place(self.entries.whole),
            }
        }
    }

    /// Span of the key at `path` (for unknown-field warnings), falling back
    /// to the value's span.
    pub fn key(&self, path: &str) -> Span {
        match self.entries.lookup().keys.get(path) {
            Some(span) => self.place(*span),
            None => self.value(path),
        }
    }
}

/// `span` moved by `delta` bytes.
pub(crate) fn move_span(span: Span, delta: isize) -> Span {
    let at = |offset: usize| offset.saturating_add_signed(delta);
    Span::new(at(span.start), at(span.end))
}

impl Entries {
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
            let owned = |entries: &[Packed]| {
                entries
                    .iter()
                    .map(|p| (text[p.path()].to_owned(), p.span()))
                    .collect()
            };
            Lookup {
                values: owned(&self.values),
                keys: owned(&self.keys),
            }
        })
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

    #[test]
    fn a_shifted_index_moves_every_span() {
        let mut idx = SpanIndex::new(Span::new(10, 100));
        idx.insert_value("spec".into(), Span::new(20, 30));
        idx.insert_key("spec".into(), Span::new(14, 18));
        let moved = idx.shifted(-5).shifted(2);
        assert_eq!(moved.value("spec.ports"), Span::new(17, 27));
        assert_eq!(moved.key("spec"), Span::new(11, 15));
        assert_eq!(moved.value("status"), Span::new(7, 97));
        assert_eq!(idx.value("spec"), Span::new(20, 30));
    }
}
