//! Input files as the compiler sees them: a display name and the text.
//!
//! The compiler is pure, so it never opens files itself; the binary reads
//! bytes and hands them over as [`SourceFile`]s. Every diagnostic points back
//! into one of these by [`FileId`] and byte [`Span`].

use std::sync::Arc;

/// One input: what the user would call it (`fixtures/a/svc.yaml`, `<stdin>`)
/// and its full text. Cheap to clone; diagnostics keep a handle to the text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: Arc<str>,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: Arc::from(name.into()),
            text: Arc::from(text.into()),
        }
    }

    /// miette's view of this file, for labelled diagnostics.
    pub fn named_source(&self) -> miette::NamedSource<Arc<str>> {
        miette::NamedSource::new(&self.name, self.text.clone())
    }

    /// 1-based line and column of a byte offset, as editors count them.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

/// Index of a [`SourceFile`] in the list given to the compiler.
pub type FileId = usize;

/// A byte range in a source file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len()).into()
    }
}
