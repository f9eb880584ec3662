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
    /// Every piece the last loads used, by its bytes.
    pieces: FastMap<Arc<str>, Arc<Piece>>,
    /// The last load of each file, by name.
    files: FastMap<Arc<str>, FileLoad>,
    /// How many documents the last load parsed (the rest were taken back).
    parsed: usize,
}

/// One document's bytes, as loaded once.
struct Piece {
    /// The bytes (the map's key, kept once).
    bytes: Arc<str>,
    /// Where in its file the bytes were when loaded: spans are relative to
    /// that.
    start: usize,
    loaded: Loaded,
}

/// One file as last loaded.
struct FileLoad {
    text: Arc<str>,
    how: Loading,
}

/// How a file was loaded.
enum Loading {
    /// Cut at its `---` lines: each piece and where it starts.
    Pieces(Vec<(usize, Arc<Piece>)>),
    /// Read whole.
    Whole(Arc<Loaded>),
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
            let how = match unchanged {
                Some(last) => {
                    match &last.how {
                        Loading::Pieces(pieces) => {
                            for (start, piece) in pieces {
                                place(&mut loaded, piece, file, *start);
                            }
                        }
                        Loading::Whole(whole) => append(&mut loaded, whole),
                    }
                    last.how
                }
                None => self.load_file(file, &mut loaded),
            };
            let text = file.text.clone();
            files_now.insert(file.name.clone(), FileLoad { text, how });
        }
        self.files = files_now;
        // Forget pieces no file holds any more (every few loads, so that a
        // load costs what changed, not what is there).
        let held: usize = self.files.values().map(FileLoad::piece_count).sum();
        if self.pieces.len() > 2 * held + 64 {
            self.pieces = self
                .files
                .values()
                .filter_map(|f| match &f.how {
                    Loading::Pieces(pieces) => Some(pieces),
                    Loading::Whole(_) => None,
                })
                .flatten()
                .map(|(_, piece)| (piece.bytes.clone(), piece.clone()))
                .collect();
        }
        loaded
    }

    /// How many documents the last [`Cache::load`] parsed; the others
    /// were taken from earlier loads.
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    /// A file not loaded before with these bytes, added to `loaded`:
    /// piecewise when it can be cut at its `---` lines and every piece is
    /// well-formed, whole otherwise.
    fn load_file(&mut self, file: &SourceFile, loaded: &mut Loaded) -> Loading {
        let mark = (
            loaded.documents.len(),
            loaded.diagnostics.len(),
            loaded.skipped.clone(),
        );
        if let Some(ranges) = document_ranges(&file.text) {
            if let Some(pieces) = self.load_pieces(file, &ranges, loaded) {
                return Loading::Pieces(pieces);
            }
        }
        // Undo what the pieces added, and read the file whole.
        loaded.documents.truncate(mark.0);
        loaded.diagnostics.truncate(mark.1);
        loaded.skipped = mark.2;
        let mut whole = Loaded::default();
        load_file(file, &mut whole);
        self.parsed += whole.documents.len();
        append(loaded, &whole);
        Loading::Whole(Arc::new(whole))
    }

    fn load_pieces(
        &mut self,
        file: &SourceFile,
        ranges: &[(usize, usize)],
        loaded: &mut Loaded,
    ) -> Option<Vec<(usize, Arc<Piece>)>> {
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
                    let bytes: Arc<str> = Arc::from(bytes);
                    let piece = Arc::new(Piece {
                        bytes: bytes.clone(),
                        start,
                        loaded: fresh,
                    });
                    self.pieces.insert(bytes, piece.clone());
                    piece
                }
            };
            place(loaded, &piece, file, start);
            pieces.push((start, piece));
        }
        Some(pieces)
    }
}

impl FileLoad {
    fn piece_count(&self) -> usize {
        match &self.how {
            Loading::Pieces(pieces) => pieces.len(),
            Loading::Whole(_) => 0,
        }
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
    if text.starts_with('%') || text.starts_with("...") {
        return None;
    }
    if text.contains("\n%") || text.contains("\n...") {
        return None;
    }
    let mut ranges = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices("\n---") {
        let line_start = at + 1;
        if is_document_marker(&text[line_start..]) {
            ranges.push((start, line_start));
            start = line_start;
        }
    }
    ranges.push((start, text.len()));
    Some(ranges)
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
