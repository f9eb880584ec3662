//! Loading again what was loaded before: a node agent reads its inputs
//! every round, and between two rounds usually one document changed.
//!
//! A [`Cache`] remembers, for every document it loaded, what loading it
//! gave: the typed objects, their span indexes and the diagnostics. The
//! next [`Cache::load`] splits each file at its `---` lines and parses only
//! the documents whose bytes it has not seen; the others are taken back,
//! moved to where they now are in their file. The result is the
//! [`Loaded`] that [`super::load`] gives for the same files, diagnostics
//! and spans included.
//!
//! What is not cut at `---` lines (a file with `%` directives or `...`
//! document ends, where a document's meaning can depend on the text around
//! it) and any file with a syntax error is loaded whole, as `load` does:
//! only a file of well-formed documents is read piecewise.

use std::collections::HashMap;
use std::sync::Arc;

use super::load::{load_file, load_range};
use super::yaml::is_document_marker;
use super::{Document, Loaded, SourceFile};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// What earlier loads produced, by document bytes and by file.
#[derive(Default)]
pub struct Cache {
    /// Every piece the last load used, by its bytes.
    pieces: FastMap<Arc<str>, Arc<Piece>>,
    /// The last load of each file, by name.
    files: FastMap<Arc<str>, FileLoad>,
    /// How many documents the last load parsed (the rest were taken back).
    parsed: usize,
}

/// One document's bytes, as loaded once.
struct Piece {
    /// Where in its file the bytes were when loaded: spans are relative to
    /// that.
    start: usize,
    loaded: Loaded,
}

/// One file as last loaded.
struct FileLoad {
    text: Arc<str>,
    /// The pieces it was cut into; none when it was loaded whole.
    pieces: Vec<(Arc<str>, Arc<Piece>)>,
    loaded: Arc<Loaded>,
}

impl Cache {
    /// Loads `files` as [`super::load`] does, parsing only documents not
    /// seen in the previous load.
    pub fn load(&mut self, files: &[SourceFile]) -> Loaded {
        let mut loaded = Loaded::default();
        let mut files_now = FastMap::default();
        self.parsed = 0;
        for file in files {
            let unchanged = self
                .files
                .remove(&file.name)
                .filter(|last| Arc::ptr_eq(&last.text, &file.text) || last.text == file.text);
            let load = match unchanged {
                Some(last) => last,
                None => self.load_file(file),
            };
            append(&mut loaded, &load.loaded);
            files_now.insert(file.name.clone(), load);
        }
        self.files = files_now;
        // Forget pieces no file holds any more (every few loads, so that a
        // load costs what changed, not what is there).
        let held: usize = self.files.values().map(|f| f.pieces.len()).sum();
        if self.pieces.len() > 2 * held + 64 {
            self.pieces = self
                .files
                .values()
                .flat_map(|f| f.pieces.iter().cloned())
                .collect();
        }
        loaded
    }

    /// How many documents the last [`Cache::load`] parsed; the others
    /// were taken from earlier loads.
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    /// A file not loaded before with these bytes: piecewise when it can be
    /// cut at its `---` lines and every piece is well-formed, whole
    /// otherwise.
    fn load_file(&mut self, file: &SourceFile) -> FileLoad {
        if let Some(load) = document_ranges(&file.text).and_then(|r| self.load_pieces(file, &r)) {
            return load;
        }
        let mut loaded = Loaded::default();
        load_file(file, &mut loaded);
        self.parsed += loaded.documents.len();
        FileLoad {
            text: file.text.clone(),
            pieces: Vec::new(),
            loaded: Arc::new(loaded),
        }
    }

    fn load_pieces(&mut self, file: &SourceFile, ranges: &[(usize, usize)]) -> Option<FileLoad> {
        let mut loaded = Loaded::default();
        let mut pieces = Vec::with_capacity(ranges.len());
        for &(start, end) in ranges {
            let bytes = &file.text[start..end];
            let piece = match self.pieces.get(bytes) {
                Some(piece) => piece.clone(),
                None => {
                    let mut fresh = Loaded::default();
                    if !load_range(file, start, end, &mut fresh).is_empty() {
                        return None;
                    }
                    self.parsed += fresh.documents.len();
                    let piece = Arc::new(Piece {
                        start,
                        loaded: fresh,
                    });
                    self.pieces.insert(Arc::from(bytes), piece.clone());
                    piece
                }
            };
            place(&mut loaded, &piece, file, start);
            pieces.push((self.key(bytes), piece));
        }
        Some(FileLoad {
            text: file.text.clone(),
            pieces,
            loaded: Arc::new(loaded),
        })
    }

    /// The map's own copy of `bytes` (a key is stored once).
    fn key(&self, bytes: &str) -> Arc<str> {
        self.pieces
            .get_key_value(bytes)
            .map_or_else(|| Arc::from(bytes), |(key, _)| key.clone())
    }
}

/// A piece's documents and diagnostics, moved to `start` in `file`.
fn place(loaded: &mut Loaded, piece: &Piece, file: &SourceFile, start: usize) {
    let delta = start as isize - piece.start as isize;
    loaded
        .documents
        .extend(piece.loaded.documents.iter().map(|doc| Document {
            file: file.clone(),
            spans: doc.spans.shifted(delta),
            object: doc.object.clone(),
        }));
    loaded.diagnostics.extend(
        piece
            .loaded
            .diagnostics
            .iter()
            .map(|d| d.relocated(file, delta)),
    );
    for (kind, count) in &piece.loaded.skipped {
        *loaded.skipped.entry(kind.clone()).or_default() += count;
    }
}

/// `from` added to `into`.
fn append(into: &mut Loaded, from: &Loaded) {
    into.documents.extend(from.documents.iter().cloned());
    into.diagnostics.extend(from.diagnostics.iter().cloned());
    for (kind, count) in &from.skipped {
        *into.skipped.entry(kind.clone()).or_default() += count;
    }
}

/// Byte ranges of `text` that each hold what lies between two `---` lines
/// (the first from the start, each other from its `---` line), or `None`
/// when the text has `%` directives or `...` document ends, whose meaning
/// reaches across documents.
fn document_ranges(text: &str) -> Option<Vec<(usize, usize)>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    while line_start < text.len() {
        let line = &text[line_start..];
        if line.starts_with('%') || line.starts_with("...") {
            return None;
        }
        if line_start > 0 && is_document_marker(line) {
            ranges.push((start, line_start));
            start = line_start;
        }
        match memchr_newline(line) {
            Some(i) => line_start += i + 1,
            None => break,
        }
    }
    ranges.push((start, text.len()));
    Some(ranges)
}

fn memchr_newline(text: &str) -> Option<usize> {
    text.as_bytes().iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_cut_at_document_markers_only() {
        let text = "a: 1\n---\nb: ---\n--- x\n---\n";
        assert_eq!(
            document_ranges(text),
            Some(vec![(0, 5), (5, 16), (16, 22), (22, 26)])
        );
        assert_eq!(document_ranges("---\na: 1\n"), Some(vec![(0, 9)]));
        assert_eq!(document_ranges("%YAML 1.2\n---\na: 1\n"), None);
        assert_eq!(document_ranges("a: 1\n...\n---\nb: 2\n"), None);
        assert_eq!(document_ranges("---a\n"), Some(vec![(0, 5)]));
    }
}
