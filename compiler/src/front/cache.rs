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
//! When the files are the same ones as last time (same names, same order)
//! and each changed file still holds as many documents, each of the same
//! kind count, the last result is patched instead of built again: changed
//! documents are replaced where they are, the others only learn their new
//! offset. That costs what changed, plus a pass over the changed files'
//! bytes, and [`Cache::changed`] says which documents were replaced.
//!
//! What is not cut at `---` lines (a file with `%` directives or `...`
//! document ends, where a document's meaning can depend on the text around
//! it) and any file with a syntax error is loaded whole, as `load` does:
//! only a file of well-formed documents is read piecewise.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::load::{load_file, load_range};
use super::yaml::is_document_marker;
use super::{Document, Loaded, SourceFile};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// What earlier loads produced, by document bytes and by file.
#[derive(Default)]
pub struct Cache {
    /// Every piece the files of the last load hold, by the SHA-256 of its
    /// bytes (and a few older ones, forgotten now and then). A digest, not
    /// a copy of the bytes: a copy would double the cache's share of the
    /// input, and no input can make two pieces' digests collide.
    pieces: FastMap<Digest, Arc<Piece>>,
    /// The files of the last load, in order, and where their documents
    /// and diagnostics are in `loaded`.
    files: Vec<FileLoad>,
    /// The last load's result.
    loaded: Loaded,
    /// Documents the last load replaced in place; `None` when it built
    /// everything again.
    changed: Option<Vec<usize>>,
    /// How many documents the last load parsed (the rest were taken back).
    parsed: usize,
    /// Pieces added since `pieces` was last pruned.
    added: usize,
}

/// The SHA-256 of a piece's bytes.
type Digest = [u8; 32];

fn digest(bytes: &str) -> Digest {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes.as_bytes()).into()
}

/// One document's bytes, as loaded once.
struct Piece {
    /// The digest of its bytes (its key in the map).
    digest: Digest,
    /// Where in its file the bytes were when loaded: spans are relative to
    /// that.
    start: usize,
    loaded: Loaded,
}

/// One file as last loaded.
struct FileLoad {
    file: SourceFile,
    documents: Range<usize>,
    diagnostics: Range<usize>,
    how: Loading,
}

/// How a file was loaded.
enum Loading {
    /// Cut at its `---` lines: each piece, where it is in the file, and
    /// where its documents are in the result.
    Pieces(Vec<Placed>),
    /// Read whole (parsed again whenever its bytes change).
    Whole,
}

/// A piece at its place in a file and in the result.
struct Placed {
    start: usize,
    end: usize,
    first_document: usize,
    piece: Arc<Piece>,
}

impl Cache {
    /// Loads `files` as [`super::load`] does, parsing only documents not
    /// seen in the previous load.
    pub fn load(&mut self, files: &[SourceFile]) -> &Loaded {
        self.parsed = 0;
        self.changed = self.patch(files);
        if self.changed.is_none() {
            self.rebuild(files);
        }
        self.prune();
        &self.loaded
    }

    /// What the last [`Cache::load`] gave.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// How many documents the last [`Cache::load`] parsed; the others
    /// were taken from earlier loads.
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    /// The documents the last [`Cache::load`] replaced in place (indexes,
    /// ascending), when it patched the load before; `None` when it built
    /// the result again.
    pub fn changed(&self) -> Option<&[usize]> {
        self.changed.as_deref()
    }

    /// The last result patched for `files`, when they are the last ones
    /// with some changed in place; the replaced documents.
    fn patch(&mut self, files: &[SourceFile]) -> Option<Vec<usize>> {
        let same_files = self.files.len() == files.len()
            && self.files.iter().zip(files).all(|(last, now)| {
                Arc::ptr_eq(&last.file.name, &now.name) || last.file.name == now.name
            });
        if !same_files {
            return None;
        }
        let mut changed = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let last = &self.files[i].file;
            if Arc::ptr_eq(&last.text, &file.text) {
                continue;
            }
            if last.text == file.text {
                // The same bytes read again: only the handle changes.
                self.repoint(i, file);
                continue;
            }
            self.patch_file(i, file, &mut changed)?;
        }
        changed.sort_unstable();
        Some(changed)
    }

    /// File `i` has new bytes; replace its changed pieces' documents in
    /// place, or say `None` when its structure changed.
    fn patch_file(&mut self, i: usize, file: &SourceFile, changed: &mut Vec<usize>) -> Option<()> {
        let last = &self.files[i];
        let Loading::Pieces(old) = &last.how else {
            return None;
        };
        if !last.diagnostics.is_empty() {
            return None;
        }
        let ranges = document_ranges(&file.text)?;
        if ranges.len() != old.len() {
            return None;
        }
        let old_text = last.file.text.clone();
        let new_text = &file.text;
        let prefix = common_prefix(old_text.as_bytes(), new_text.as_bytes());
        let suffix = common_suffix(old_text.as_bytes(), new_text.as_bytes())
            .min(old_text.len().min(new_text.len()) - prefix);
        let grown = new_text.len() as isize - old_text.len() as isize;
        // The ranges whose bytes differ from the piece they replace.
        let mut differ = Vec::new();
        for (j, (&(start, end), placed)) in ranges.iter().zip(old).enumerate() {
            let unchanged_before = start == placed.start && end == placed.end && end <= prefix;
            let unchanged_after = placed.start >= old_text.len() - suffix
                && start as isize - placed.start as isize == grown
                && end as isize - placed.end as isize == grown;
            if unchanged_before
                || unchanged_after
                || new_text[start..end] == old_text[placed.start..placed.end]
            {
                continue;
            }
            differ.push((j, placed.piece.clone()));
        }
        let mut replaced = Vec::with_capacity(differ.len());
        for (j, was) in differ {
            let (start, end) = ranges[j];
            let piece = self.piece(file, start, end)?;
            let same_shape = piece.loaded.documents.len() == was.loaded.documents.len()
                && piece.loaded.diagnostics.is_empty()
                && piece.loaded.skipped == was.loaded.skipped;
            if !same_shape {
                return None;
            }
            replaced.push((j, piece));
        }
        // Every check passed: change the result. Unchanged pieces' documents
        // learn the new file and their new offset; changed ones are replaced.
        let Loading::Pieces(old) = &mut self.files[i].how else {
            return None;
        };
        for (placed, &(start, end)) in old.iter_mut().zip(&ranges) {
            let delta = start as isize - placed.start as isize;
            let count = placed.piece.loaded.documents.len();
            for doc in &mut self.loaded.documents[placed.first_document..][..count] {
                doc.file = file.clone();
                doc.spans.shift_by(delta);
            }
            placed.start = start;
            placed.end = end;
        }
        for (j, piece) in replaced {
            let placed = &mut old[j];
            let delta = placed.start as isize - piece.start as isize;
            for (k, doc) in piece.loaded.documents.iter().enumerate() {
                let index = placed.first_document + k;
                self.loaded.documents[index] = Document {
                    file: file.clone(),
                    spans: doc.spans.shifted(delta),
                    object: doc.object.clone(),
                };
                changed.push(index);
            }
            placed.piece = piece;
        }
        self.files[i].file = file.clone();
        Some(())
    }

    /// Points file `i`'s documents and diagnostics at `file` (the same
    /// bytes under a new handle).
    fn repoint(&mut self, i: usize, file: &SourceFile) {
        let last = &mut self.files[i];
        for doc in &mut self.loaded.documents[last.documents.clone()] {
            doc.file = file.clone();
        }
        for d in &mut self.loaded.diagnostics[last.diagnostics.clone()] {
            *d = d.relocated(file, 0);
        }
        last.file = file.clone();
    }

    /// The piece for bytes `start..end` of `file`: known, or parsed now
    /// (`None` on a syntax error).
    fn piece(&mut self, file: &SourceFile, start: usize, end: usize) -> Option<Arc<Piece>> {
        let bytes = &file.text[start..end];
        let key = digest(bytes);
        if let Some(piece) = self.pieces.get(&key) {
            return Some(piece.clone());
        }
        let mut fresh = Loaded::default();
        if !load_range(file, start, end, &mut fresh).is_empty() {
            return None;
        }
        self.parsed += fresh.documents.len();
        // The piece outlives this file's text: it keeps no handle to it
        // (placing it points its documents and diagnostics at a file).
        let detached = SourceFile {
            name: file.name.clone(),
            text: Arc::from(""),
        };
        for doc in &mut fresh.documents {
            doc.file = detached.clone();
        }
        for d in &mut fresh.diagnostics {
            *d = d.relocated(&detached, 0);
        }
        fresh.documents.shrink_to_fit();
        let piece = Arc::new(Piece {
            digest: key,
            start,
            loaded: fresh,
        });
        self.pieces.insert(key, piece.clone());
        self.added += 1;
        Some(piece)
    }

    /// Builds the result for `files` again, from known pieces where it can.
    fn rebuild(&mut self, files: &[SourceFile]) {
        let mut loaded = Loaded::default();
        let mut loads = Vec::with_capacity(files.len());
        for file in files {
            let documents = loaded.documents.len();
            let diagnostics = loaded.diagnostics.len();
            let how = self.load_file(file, &mut loaded);
            loads.push(FileLoad {
                file: file.clone(),
                documents: documents..loaded.documents.len(),
                diagnostics: diagnostics..loaded.diagnostics.len(),
                how,
            });
        }
        self.files = loads;
        self.loaded = loaded;
    }

    /// Forgets pieces no file holds any more, once as many were added as
    /// the files hold (so that a load costs what changed, not what is
    /// there).
    fn prune(&mut self) {
        let held: usize = self.files.iter().map(FileLoad::piece_count).sum();
        if self.added <= held + 64 {
            return;
        }
        self.added = 0;
        self.pieces = self
            .files
            .iter()
            .filter_map(|f| match &f.how {
                Loading::Pieces(pieces) => Some(pieces),
                Loading::Whole => None,
            })
            .flatten()
            .map(|p| (p.piece.digest, p.piece.clone()))
            .collect();
    }

    /// `file` added to `loaded`: piecewise when it can be cut at its `---`
    /// lines and every piece is well-formed, whole otherwise.
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
        Loading::Whole
    }

    fn load_pieces(
        &mut self,
        file: &SourceFile,
        ranges: &[(usize, usize)],
        loaded: &mut Loaded,
    ) -> Option<Vec<Placed>> {
        let mut pieces = Vec::with_capacity(ranges.len());
        for &(start, end) in ranges {
            let piece = self.piece(file, start, end)?;
            let first_document = loaded.documents.len();
            place(loaded, &piece, file, start);
            pieces.push(Placed {
                start,
                end,
                first_document,
                piece,
            });
        }
        Some(pieces)
    }
}

impl FileLoad {
    fn piece_count(&self) -> usize {
        match &self.how {
            Loading::Pieces(pieces) => pieces.len(),
            Loading::Whole => 0,
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

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    let len = a.len().min(b.len());
    let mut at = 0;
    while at + BLOCK <= len && a[at..at + BLOCK] == b[at..at + BLOCK] {
        at += BLOCK;
    }
    at + a[at..len]
        .iter()
        .zip(&b[at..len])
        .position(|(x, y)| x != y)
        .unwrap_or(len - at)
}

/// How many trailing bytes `a` and `b` share.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    let len = a.len().min(b.len());
    let tail = |s: &[u8], n: usize, k: usize| s.len() - n - k;
    let mut n = 0;
    while n + BLOCK <= len && a[tail(a, n, BLOCK)..a.len() - n] == b[tail(b, n, BLOCK)..b.len() - n]
    {
        n += BLOCK;
    }
    n + a[..a.len() - n]
        .iter()
        .rev()
        .zip(b[..b.len() - n].iter().rev())
        .take(len - n)
        .position(|(x, y)| x != y)
        .unwrap_or(len - n)
}

/// Byte ranges of `text` that each hold what lies between two `---` lines
/// (the first from the start, each other from its `---` line), or `None`
/// when the text has `%` directives or `...` document ends, whose meaning
/// reaches across documents.
pub(crate) fn document_ranges(text: &str) -> Option<Vec<(usize, usize)>> {
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

    #[test]
    fn common_ends_are_found_across_blocks() {
        let a: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut b = a.clone();
        b[6000] = 255;
        assert_eq!(common_prefix(&a, &b), 6000);
        assert_eq!(common_suffix(&a, &b), 3999);
        assert_eq!(common_prefix(&a, &a), 10_000);
        assert_eq!(common_suffix(b"abc", b"xbc"), 2);
        assert_eq!(common_suffix(b"bc", b"abc"), 2);
        assert_eq!(common_prefix(b"", b"abc"), 0);
    }
}
