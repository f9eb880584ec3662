//! The one diagnostic type every stage reports problems with.
//!
//! Each diagnostic has a stable code (`knc::…`, listed in [`Code`]), a
//! hand-written lowercase message, and when the problem comes from input, the
//! file and byte span of the offending node, so miette renders
//! `file:line:column` with a caret under it.

use std::sync::Arc;

use crate::source::{SourceFile, Span};

/// Stable diagnostic codes. Tools and docs refer to their strings, so a
/// code never changes meaning once released. Each code's string, severity
/// and documentation live in its file under [`crate::checks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    Syntax,
    NotAnObject,
    Schema,
    UnknownField,
    PortRange,
    InvalidAddress,
    InvalidProtocol,
    MissingField,
    DuplicateObject,
    NodePortConflict,
    InvalidEnumValue,
    InvalidPortName,
    InvalidInterfaceName,
    AffinityTimeoutRange,
    Io,
    ServiceWithoutEndpoints,
    OrphanEndpoints,
    UnmatchedPort,
    NodePortOutOfRange,
    ContestedAddress,
    UnallocatedClusterIp,
    SelectorlessWithoutEndpoints,
    NodeWithoutLocalEndpoints,
    IpFamilyMismatch,
    ExternalAddressOverlap,
    UnknownBackendSelection,
    UnattachedRoute,
}

impl Code {
    /// The stable string: `knc::port-range`.
    pub fn as_str(self) -> &'static str {
        crate::checks::rule(self).name
    }
}

/// How bad a diagnostic is: errors stop compilation (exit 1), warnings don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A problem found in the input, located in a source file when possible.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    pub location: Option<Location>,
}

/// Where a diagnostic points: a file and a span in it, with a short label
/// shown under the caret.
#[derive(Debug, Clone)]
pub struct Location {
    pub file: SourceFile,
    pub span: Span,
    pub label: String,
    named: miette::NamedSource<Arc<str>>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            help: None,
            location: None,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, file: &SourceFile, span: Span, label: impl Into<String>) -> Self {
        self.location = Some(Location {
            file: file.clone(),
            span,
            label: label.into(),
            named: file.named_source(),
        });
        self
    }

    /// The same diagnostic pointing into `file`, its span moved by `delta`
    /// bytes: for a document found again, unchanged, at another place.
    pub fn relocated(&self, file: &SourceFile, delta: isize) -> Self {
        let mut moved = self.clone();
        if let Some(location) = moved.location.take() {
            let span = crate::front::spans::move_span(location.span, delta);
            moved = moved.at(file, span, location.label);
        }
        moved
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column`, or `None` for diagnostics without a location.
    pub fn position(&self) -> Option<String> {
        self.location.as_ref().map(|loc| {
            let (line, col) = loc.file.line_col(loc.span.start);
            format!("{}:{line}:{col}", loc.file.name)
        })
    }

    /// Sort key that makes reports deterministic: file, offset, code, message.
    pub fn sort_key(&self) -> (Option<Arc<str>>, usize, Code, String) {
        (
            self.location.as_ref().map(|l| l.file.name.clone()),
            self.location.as_ref().map_or(0, |l| l.span.start),
            self.code,
            self.message.clone(),
        )
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // miette prints the location in the source frame; plain
        // `Display` users can call `position()`.
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Warning => miette::Severity::Warning,
            Severity::Error => miette::Severity::Error,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.location
            .as_ref()
            .map(|l| &l.named as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let loc = self.location.as_ref()?;
        Some(Box::new(std::iter::once(
            miette::LabeledSpan::new_with_span(Some(loc.label.clone()), loc.span),
        )))
    }
}
