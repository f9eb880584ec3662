//! YAML (and therefore JSON) text to [`serde_json::Value`]s, remembering the
//! byte span of every value and every mapping key.
//!
//! We drive saphyr's event parser ourselves instead of loading saphyr's
//! annotated tree, for four reasons:
//!
//! * one pass builds both the value and the span index, with the field path
//!   of every node known when the node is seen;
//! * nesting depth and alias expansion are bounded *before* anything is
//!   allocated, so hostile input cannot exhaust the stack or memory;
//! * documents completed before a syntax error are kept, and parsing resumes
//!   at the next `---` so later documents are still checked;
//! * duplicate and non-string keys get diagnostics at the key itself.
//!
//! saphyr reports positions in characters; [`Offsets`] turns them into the
//! byte offsets that [`Span`] and miette use.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};
use serde_json::{Map, Number, Value};

use super::spans::PathRange;
use super::{Code, Diagnostic, SourceFile, Span};
use crate::text::push_decimal;

/// Deepest nesting of mappings and sequences we accept. Kubernetes objects
/// are rarely deeper than 10; the limit only exists to keep hostile input
/// from exhausting the stack when values are dropped or deserialized.
pub const MAX_DEPTH: usize = 200;

/// How many nodes aliases may copy into one document ("billion laughs").
pub const MAX_ALIAS_NODES: usize = 100_000;

/// One YAML document: its value, and where each part of it came from.
#[derive(Debug, Clone)]
pub struct ParsedDoc {
    pub value: Value,
    /// Span of the root node.
    pub whole: Span,
    /// Every field path of the document, written once each; the entries
    /// below are byte ranges of it (a path per node would be a heap string
    /// per node, the largest cost of loading big inputs).
    pub paths: Arc<str>,
    /// Field path (`spec.ports[0].port`, `""` for the root) → value span.
    pub values: Vec<(PathRange, Span)>,
    /// Field path → span of the mapping key that introduced it.
    pub keys: Vec<(PathRange, Span)>,
}

impl ParsedDoc {
    /// The text of a recorded path.
    pub fn path(&self, (start, end): PathRange) -> &str {
        &self.paths[start..end]
    }
}

/// Everything found in one file: the well-formed documents, and diagnostics
/// for the rest.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub docs: Vec<ParsedDoc>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse every document in `file`. Never panics and never stops at the first
/// problem: after a syntax error, parsing resumes at the next `---` line.
pub fn parse_file(file: &SourceFile) -> ParsedFile {
    let mut docs = Vec::new();
    let diagnostics = parse_file_with(file, |doc| docs.push(doc));
    ParsedFile { docs, diagnostics }
}

/// Like [`parse_file`], but hands each well-formed document to `on_doc` as
/// soon as it is complete (in file order) instead of collecting them, so a
/// caller that consumes documents one by one never holds every document's
/// tree at once. Returns the syntax diagnostics.
pub fn parse_file_with(file: &SourceFile, mut on_doc: impl FnMut(ParsedDoc)) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut base = 0;
    while let Some(rest) = file.text.get(base..) {
        match parse_from(file, base, rest, &mut diagnostics, &mut on_doc) {
            Some(error_at) => match next_document_start(&file.text, base, error_at) {
                Some(next) => {
                    if let Some(last) = diagnostics.last_mut() {
                        last.help =
                            Some("documents after the next `---` line are still read".into());
                    }
                    base = next;
                }
                None => break,
            },
            None => break,
        }
    }
    diagnostics
}

/// Like [`parse_file_with`] for the bytes `start..end` of `file` alone (a
/// run of whole documents, as [`super::cache`] splits files), without
/// resuming after a syntax error: the caller reads such a file whole.
/// Spans are the file's. Returns the syntax diagnostics.
pub fn parse_range_with(
    file: &SourceFile,
    start: usize,
    end: usize,
    mut on_doc: impl FnMut(ParsedDoc),
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    if let Some(text) = file.text.get(start..end) {
        parse_from(file, start, text, &mut diagnostics, &mut on_doc);
    }
    diagnostics
}

/// Whether `line` (from its first byte) is a `---` document marker.
pub fn is_document_marker(line: &str) -> bool {
    line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace)
}

/// Parse `rest` (the file's text from byte `base`), handing documents to
/// `on_doc` and pushing diagnostics into `diagnostics`. Returns the byte
/// offset of a syntax error, if any.
fn parse_from(
    file: &SourceFile,
    base: usize,
    rest: &str,
    diagnostics: &mut Vec<Diagnostic>,
    on_doc: &mut impl FnMut(ParsedDoc),
) -> Option<usize> {
    let mut builder = Builder::new(file, Offsets::new(rest, base));
    let mut parser = Parser::new_from_str(rest);
    let error = loop {
        // Only the parser runs under `catch_unwind`: saphyr-parser has a few
        // internal `unwrap`s, and a bug there must not take the whole
        // compiler down with it.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.next()));
        match next {
            Ok(None) => break None,
            Ok(Some(Ok((ev, span)))) => {
                builder.on_event(ev, span);
                if let Some(doc) = builder.finished.take() {
                    on_doc(doc);
                }
            }
            Ok(Some(Err(e))) => break Some(syntax_error(&mut builder, &e)),
            Err(_) => {
                let at = builder.offsets.base;
                let d = Diagnostic::error(Code::Syntax, "the YAML parser gave up on this input")
                    .at(file, Span::new(at, at), "somewhere after here");
                builder.diagnostics.push(d);
                break Some(usize::MAX);
            }
        }
    };
    diagnostics.append(&mut builder.diagnostics);
    error
}

/// A diagnostic for a scanner error; returns its byte offset.
fn syntax_error(builder: &mut Builder<'_>, e: &ScanError) -> usize {
    let at = builder.offsets.byte(e.marker().index());
    let d = Diagnostic::error(Code::Syntax, format!("syntax error: {}", e.info())).at(
        builder.file,
        Span::new(at, at),
        "here",
    );
    builder.diagnostics.push(d);
    at
}

/// `span` cut at the end of its first line, so a diagnostic about a whole
/// object underlines its first line instead of reprinting the object.
pub fn first_line(text: &str, span: Span) -> Span {
    let end = text
        .get(span.start..span.end)
        .and_then(|s| s.find('\n'))
        .map_or(span.end, |i| span.start + i);
    Span::new(span.start, end)
}

/// Byte offset of the first `---` document marker line at or after the line
/// holding byte `from`, but after `base` (the run that failed), so parsing
/// always moves forward.
fn next_document_start(text: &str, base: usize, from: usize) -> Option<usize> {
    let mut line_start = text.get(..from)?.rfind('\n').map_or(0, |i| i + 1);
    loop {
        let line = text.get(line_start..)?;
        if is_document_marker(line) && line_start > base {
            return Some(line_start);
        }
        line_start += line.find('\n')? + 1;
    }
}

/// Converts saphyr's character indices into byte offsets. Events arrive in
/// nearly ascending order, so a cursor that walks from the last answer is
/// cheap; ASCII text takes a shortcut.
struct Offsets<'a> {
    text: &'a str,
    /// Byte offset of `text` in its file.
    base: usize,
    ascii: bool,
    char_pos: usize,
    byte_pos: usize,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str, base: usize) -> Self {
        Offsets {
            text,
            base,
            ascii: text.is_ascii(),
            char_pos: 0,
            byte_pos: 0,
        }
    }

    /// Byte offset in the file of the character at `index` in `text`.
    fn byte(&mut self, index: usize) -> usize {
        if self.ascii {
            return self.base + index.min(self.text.len());
        }
        while self.char_pos < index {
            match self
                .text
                .get(self.byte_pos..)
                .and_then(|s| s.chars().next())
            {
                Some(c) => self.byte_pos += c.len_utf8(),
                None => break,
            }
            self.char_pos += 1;
        }
        while self.char_pos > index {
            match self
                .text
                .get(..self.byte_pos)
                .and_then(|s| s.chars().next_back())
            {
                Some(c) => self.byte_pos -= c.len_utf8(),
                None => break,
            }
            self.char_pos -= 1;
        }
        self.base + self.byte_pos
    }

    fn span(&mut self, span: saphyr_parser::Span) -> Span {
        let start = self.byte(span.start.index());
        let end = self.byte(span.end.index());
        Span::new(start, end.max(start))
    }
}

/// A mapping or sequence being built.
struct Frame {
    path: PathRange,
    start: usize,
    /// End of the last child, so a block mapping's span stops at its last
    /// value rather than at the next token.
    end: usize,
    anchor: usize,
    nodes: usize,
    height: usize,
    kind: FrameKind,
}

enum FrameKind {
    Map {
        map: Map<String, Value>,
        key: Option<Key>,
        /// Keys that came from a `<<` merge; explicit keys override them.
        merged: HashSet<String>,
    },
    Seq(Vec<Value>),
    /// A collection used as a mapping key: consumed, reported, discarded.
    BadKey,
}

/// A mapping key waiting for its value.
struct Key {
    name: String,
    /// The path of the value to come.
    path: PathRange,
    span: Span,
    /// `<<`: a YAML 1.1 merge key, as Kubernetes' YAML library honours.
    merge: bool,
    /// Not a usable key (reported already); its value is dropped.
    bad: bool,
}

/// A finished node on its way into its parent.
struct Node {
    value: Value,
    span: Span,
    anchor: usize,
    nodes: usize,
    height: usize,
}

/// Receives parser events for one run of the parser.
struct Builder<'a> {
    file: &'a SourceFile,
    offsets: Offsets<'a>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize, usize)>,
    alias_nodes: usize,
    /// The current document is broken: ignore events until it ends.
    poisoned: bool,
    /// Errors found in the current document (it is dropped if any).
    doc_errors: usize,
    root: Option<Node>,
    /// The current document's path text (see [`ParsedDoc::paths`]).
    paths: String,
    values: Vec<(PathRange, Span)>,
    keys: Vec<(PathRange, Span)>,
    /// The document just completed, for the caller to take.
    finished: Option<ParsedDoc>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    fn new(file: &'a SourceFile, offsets: Offsets<'a>) -> Self {
        Builder {
            file,
            offsets,
            stack: Vec::new(),
            anchors: HashMap::new(),
            alias_nodes: 0,
            poisoned: false,
            doc_errors: 0,
            root: None,
            paths: String::new(),
            values: Vec::new(),
            keys: Vec::new(),
            finished: None,
            diagnostics: Vec::new(),
        }
    }

    fn on_event(&mut self, ev: Event<'_>, span: saphyr_parser::Span) {
        let span = self.offsets.span(span);
        match ev {
            Event::DocumentStart(_) => self.start_document(),
            Event::DocumentEnd => self.end_document(),
            _ if self.poisoned => {}
            Event::Scalar(text, style, anchor, tag) => {
                self.scalar(text, style, anchor, tag.as_deref(), span)
            }
            Event::Alias(id) => self.alias(id, span),
            Event::MappingStart(anchor, _) => self.open(span, anchor, true),
            Event::SequenceStart(anchor, _) => self.open(span, anchor, false),
            Event::MappingEnd | Event::SequenceEnd => self.close(span),
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }

    fn start_document(&mut self) {
        self.stack.clear();
        self.anchors.clear();
        self.alias_nodes = 0;
        self.poisoned = false;
        self.doc_errors = 0;
        self.root = None;
        self.paths.clear();
        self.values.clear();
        self.keys.clear();
    }

    /// Completes the document. The path text and span entries are copied
    /// out at their exact size and the builder keeps its buffers, so they
    /// are not regrown from empty for every document.
    fn end_document(&mut self) {
        let root = self.root.take();
        if self.poisoned || self.doc_errors > 0 {
            return;
        }
        match root {
            // An empty document (or one holding only `null`) is ignored.
            None
            | Some(Node {
                value: Value::Null, ..
            }) => {}
            Some(node) => {
                self.finished = Some(ParsedDoc {
                    value: node.value,
                    whole: node.span,
                    paths: Arc::from(self.paths.as_str()),
                    values: self.values.as_slice().to_vec(),
                    keys: self.keys.as_slice().to_vec(),
                })
            }
        }
    }

    fn error(&mut self, span: Span, message: impl Into<String>, label: &str) {
        self.doc_errors += 1;
        let d = Diagnostic::error(Code::Syntax, message).at(self.file, span, label);
        self.diagnostics.push(d);
    }

    /// Is the next node the key of a mapping?
    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::Map { key: None, .. },
                ..
            })
        ) || matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::BadKey,
                ..
            })
        )
    }

    /// Field path of the node about to start.
    fn child_path(&mut self) -> PathRange {
        let Some(frame) = self.stack.last() else {
            return (0, 0);
        };
        match &frame.kind {
            FrameKind::Map { key: Some(key), .. } => key.path,
            FrameKind::Seq(items) => {
                let (start, end) = frame.path;
                let index = items.len();
                let at = self.paths.len();
                self.paths.extend_from_within(start..end);
                self.paths.push('[');
                push_decimal(&mut self.paths, index as u64);
                self.paths.push(']');
                (at, self.paths.len())
            }
            FrameKind::Map { key: None, .. } | FrameKind::BadKey => frame.path,
        }
    }

    /// Writes `parent.name` (or `name` under the root) into the path text.
    fn key_path(&mut self, (start, end): PathRange, name: &str) -> PathRange {
        let at = self.paths.len();
        if start != end {
            self.paths.extend_from_within(start..end);
            self.paths.push('.');
        }
        self.paths.push_str(name);
        (at, self.paths.len())
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
    ) {
        if self.expecting_key() {
            return self.key(text.into_owned(), style, span);
        }
        let value = match scalar_value(text, style, tag) {
            Some(value) => value,
            None => {
                let tag = tag.map(ToString::to_string).unwrap_or_default();
                self.error(
                    span,
                    format!("value does not match its tag `{tag}`"),
                    "here",
                );
                Value::Null
            }
        };
        let path = self.child_path();
        self.values.push((path, span));
        self.attach(Node {
            value,
            span,
            anchor,
            nodes: 1,
            height: 0,
        });
    }

    fn key(&mut self, name: String, style: ScalarStyle, span: Span) {
        // A scalar inside a collection used as a key: nothing to keep.
        let Some(parent) = self.open_map_path() else {
            return;
        };
        let path = self.key_path(parent, &name);
        let merge = name == "<<" && style == ScalarStyle::Plain;
        let duplicate = match self.stack.last_mut() {
            Some(Frame {
                kind: FrameKind::Map { map, merged, .. },
                ..
            }) => !merge && map.contains_key(&name) && !merged.remove(&name),
            _ => false,
        };
        self.keys.push((path, span));
        if duplicate {
            self.error(
                span,
                format!("key `{name}` appears twice in the same mapping"),
                "defined again here",
            );
        }
        self.set_pending_key(Key {
            name,
            path,
            span,
            merge,
            bad: false,
        });
    }

    /// The path of the mapping being built, when the innermost open
    /// collection is one.
    fn open_map_path(&self) -> Option<PathRange> {
        match self.stack.last() {
            Some(Frame {
                path,
                kind: FrameKind::Map { .. },
                ..
            }) => Some(*path),
            _ => None,
        }
    }

    /// Remember the key whose value comes next in the open mapping.
    fn set_pending_key(&mut self, new: Key) {
        if let Some(Frame {
            kind: FrameKind::Map { key, .. },
            ..
        }) = self.stack.last_mut()
        {
            *key = Some(new);
        }
    }

    fn alias(&mut self, id: usize, span: Span) {
        let Some((value, nodes, height)) = self.anchors.get(&id).cloned() else {
            return self.error(span, "alias to an unknown anchor", "here");
        };
        if self.expecting_key() {
            return self.bad_key(span);
        }
        self.alias_nodes += nodes;
        if self.alias_nodes > MAX_ALIAS_NODES {
            self.poisoned = true;
            return self.error(
                span,
                format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                "here",
            );
        }
        if self.stack.len() + height > MAX_DEPTH {
            self.poisoned = true;
            return self.error(
                span,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                "here",
            );
        }
        let path = self.child_path();
        self.values.push((path, span));
        self.attach(Node {
            value,
            span,
            anchor: 0,
            nodes,
            height,
        });
    }

    fn open(&mut self, span: Span, anchor: usize, mapping: bool) {
        if self.stack.len() >= MAX_DEPTH {
            self.poisoned = true;
            return self.error(
                span,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                "here",
            );
        }
        let kind = if self.expecting_key() {
            FrameKind::BadKey
        } else if mapping {
            FrameKind::Map {
                map: Map::new(),
                key: None,
                merged: HashSet::new(),
            }
        } else {
            FrameKind::Seq(Vec::new())
        };
        let path = self.child_path();
        self.stack.push(Frame {
            path,
            start: span.start,
            end: span.end,
            anchor,
            nodes: 1,
            height: 1,
            kind,
        });
    }

    fn close(&mut self, span: Span) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        // Flow collections end at their `}` / `]`; block ones at their last child.
        let end = if span.is_empty() {
            frame.end
        } else {
            span.end.max(frame.end)
        };
        let whole = Span::new(frame.start, end.max(frame.start));
        let value = match frame.kind {
            FrameKind::Map { map, .. } => Value::Object(map),
            FrameKind::Seq(items) => Value::Array(items),
            FrameKind::BadKey => return self.bad_key(whole),
        };
        self.values.push((frame.path, whole));
        self.attach(Node {
            value,
            span: whole,
            anchor: frame.anchor,
            nodes: frame.nodes,
            height: frame.height,
        });
    }

    /// A mapping key that is a collection or an alias: JSON keys are strings.
    fn bad_key(&mut self, span: Span) {
        const NAME: &str = "<invalid key>";
        let Some(parent) = self.open_map_path() else {
            return;
        };
        let path = self.key_path(parent, NAME);
        self.set_pending_key(Key {
            name: NAME.into(),
            path,
            span,
            merge: false,
            bad: true,
        });
        self.error(span, "mapping keys must be strings", "not a string");
    }

    /// Put a finished node into its parent (or make it the document root).
    fn attach(&mut self, node: Node) {
        if node.anchor != 0 {
            self.anchors
                .insert(node.anchor, (node.value.clone(), node.nodes, node.height));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        parent.end = parent.end.max(node.span.end);
        parent.nodes = parent.nodes.saturating_add(node.nodes);
        parent.height = parent.height.max(node.height + 1);
        match &mut parent.kind {
            FrameKind::Seq(items) => items.push(node.value),
            FrameKind::Map { map, key, merged } => match key.take() {
                Some(Key { bad: true, .. }) | None => {}
                Some(Key {
                    merge: true, span, ..
                }) => {
                    if !merge_into(map, merged, node.value) {
                        self.error(span, "`<<` merges only mappings", "not a mapping");
                    }
                }
                Some(Key { name, .. }) => {
                    map.insert(name, node.value);
                }
            },
            FrameKind::BadKey => {}
        }
    }
}

/// YAML 1.1 merge key: copy entries the mapping does not set itself.
fn merge_into(map: &mut Map<String, Value>, merged: &mut HashSet<String>, value: Value) -> bool {
    match value {
        Value::Object(other) => {
            for (k, v) in other {
                if !map.contains_key(&k) {
                    merged.insert(k.clone());
                    map.insert(k, v);
                }
            }
            true
        }
        Value::Array(items) => items.into_iter().all(|item| merge_into(map, merged, item)),
        _ => false,
    }
}

/// A scalar as JSON: quoted scalars stay strings (`"80"` is not a number),
/// plain ones resolve by the YAML 1.2 core schema. `None` when an explicit
/// core tag (`!!int`) does not fit the text.
fn scalar_value(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&Tag>) -> Option<Value> {
    let tag = tag.map(|t| Cow::Owned(t.clone()));
    let scalar = Scalar::parse_from_cow_and_metadata(text, style, tag.as_ref())?;
    Some(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(b),
        Scalar::Integer(i) => Value::Number(i.into()),
        Scalar::FloatingPoint(f) => match Number::from_f64(f.into_inner()) {
            Some(n) => Value::Number(n),
            None => Value::String(f.into_inner().to_string()),
        },
        Scalar::String(s) => Value::String(s.into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParsedFile {
        parse_file(&SourceFile::new("t.yaml", text))
    }

    fn span_of(doc: &ParsedDoc, path: &str) -> Option<Span> {
        doc.values
            .iter()
            .find(|(p, _)| doc.path(*p) == path)
            .map(|(_, s)| *s)
    }

    fn text_at<'a>(text: &'a str, doc: &ParsedDoc, path: &str) -> &'a str {
        let span = span_of(doc, path).expect("path recorded");
        &text[span.start..span.end]
    }

    #[test]
    fn nested_field_span_and_value() {
        let text = "kind: Service\nspec:\n  ports:\n  - port: 80\n    name: \"80\"\n";
        let parsed = parse(text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let doc = &parsed.docs[0];
        assert_eq!(doc.value["spec"]["ports"][0]["port"], Value::from(80));
        assert_eq!(doc.value["spec"]["ports"][0]["name"], Value::from("80"));
        assert_eq!(text_at(text, doc, "spec.ports[0].port"), "80");
        let file = SourceFile::new("t", text);
        let span = span_of(doc, "spec.ports[0].port").unwrap();
        assert_eq!(file.line_col(span.start), (4, 11));
        let key = doc
            .keys
            .iter()
            .find(|(p, _)| doc.path(*p) == "spec.ports[0].name")
            .unwrap()
            .1;
        assert_eq!(&text[key.start..key.end], "name");
    }

    #[test]
    fn non_ascii_before_a_field() {
        let text = "metadata:\n  annotations:\n    note: \"héllo wörld ✓\"\n  name: wéb\nspec: {port: 70000}\n";
        let parsed = parse(text);
        let doc = &parsed.docs[0];
        assert_eq!(text_at(text, doc, "spec.port"), "70000");
        assert_eq!(text_at(text, doc, "metadata.name"), "wéb");
        let file = SourceFile::new("t", text);
        assert_eq!(
            file.line_col(span_of(doc, "spec.port").unwrap().start),
            (5, 14)
        );
    }

    #[test]
    fn multi_document_and_empty_documents() {
        let text = "---\n---\na: 1\n---\n# only a comment\n---\nb: [1, 2]\n...\n";
        let parsed = parse(text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        assert_eq!(parsed.docs.len(), 2);
        assert_eq!(text_at(text, &parsed.docs[1], "b[1]"), "2");
    }

    #[test]
    fn json_input_gets_spans() {
        let text = "{\n\t\"kind\": \"Service\",\n\t\"spec\": {\"ports\": [{\"port\": 443}]}\n}\n";
        let parsed = parse(text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let doc = &parsed.docs[0];
        assert_eq!(text_at(text, doc, "spec.ports[0].port"), "443");
        assert_eq!(text_at(text, doc, "kind"), "\"Service\"");
    }

    #[test]
    fn syntax_error_keeps_good_documents_and_resumes() {
        let text = "a: 1\n---\nb: [1, 2\n---\nc: 3\n";
        let parsed = parse(text);
        assert_eq!(parsed.docs.len(), 2, "{:?}", parsed.docs);
        assert_eq!(parsed.diagnostics.len(), 1);
        assert_eq!(parsed.diagnostics[0].code, Code::Syntax);
        assert_eq!(parsed.docs[1].value["c"], Value::from(3));
        // The resumed document's spans are still offsets into the whole file.
        assert_eq!(text_at(text, &parsed.docs[1], "c"), "3");
    }

    #[test]
    fn duplicate_and_collection_keys_are_errors() {
        let parsed = parse("a: 1\na: 2\n---\n[x]: 1\n---\nok: 1\n");
        let codes: Vec<_> = parsed.diagnostics.iter().map(|d| d.position()).collect();
        assert_eq!(
            codes,
            vec![Some("t.yaml:2:1".into()), Some("t.yaml:4:1".into())]
        );
        assert_eq!(parsed.docs.len(), 1);
    }

    #[test]
    fn quoted_numbers_stay_strings_and_merge_keys_merge() {
        let parsed = parse("base: &b {x: 1, y: '2'}\nm:\n  <<: *b\n  x: 3\n");
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let doc = &parsed.docs[0];
        assert_eq!(doc.value["m"], serde_json::json!({"x": 3, "y": "2"}));
    }

    #[test]
    fn deep_nesting_and_alias_bombs_are_diagnosed() {
        let deep = "[".repeat(250) + &"]".repeat(250);
        assert_eq!(parse(&deep).diagnostics.len(), 1);
        let block: String = (0..300).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert_eq!(parse(&block).diagnostics.len(), 1);
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..10 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            bomb.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let parsed = parse(&bomb);
        assert!(parsed.docs.is_empty());
        assert_eq!(parsed.diagnostics.len(), 1);
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: Vec<Vec<u8>> = vec![
            b"\x00\x01\x02".to_vec(),
            b"{{{{".to_vec(),
            b"]]]: [".to_vec(),
            b"- - - - -\n  - ? ? ?".to_vec(),
            b"&a *a".to_vec(),
            b"a: *nope".to_vec(),
            b"!!int abc".to_vec(),
            b"key: \"unterminated".to_vec(),
            b"\t- x\n\t\t- y".to_vec(),
            "\u{feff}a: é\n---\n\u{feff}".as_bytes().to_vec(),
            b"%YAML 1.2\n%YAML 1.2\n---\na".to_vec(),
            "- ".repeat(10_000).into_bytes(),
            "{a: ".repeat(10_000).into_bytes(),
        ];
        for bytes in inputs {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
        }
    }
}
