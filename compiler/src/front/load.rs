//! Loading: source files → typed, located Kubernetes objects.
//!
//! Each file goes through [`yaml::parse_file_with`] (YAML and JSON alike), each
//! document is unpacked if it is a `kind: List`, and each object is
//! deserialized into its k8s-openapi type by `apiVersion` and `kind`. Type
//! errors are located with `serde_path_to_error`; fields the type does not
//! have are found with `serde_ignored` and reported as warnings, since
//! k8s-openapi would otherwise drop a typo like `prots:` without a word.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::fields::{known_fields, suggest};
use super::spans::PathRange;
use super::yaml::{self, ParsedDoc};
use super::{Code, Diagnostic, Document, Loaded, SourceFile, Span, SpanIndex};

/// Parse every file into typed objects, collecting all problems. A bad
/// document is dropped; the good ones around it are kept.
///
/// Big inputs are loaded by a few threads, each taking a run of whole
/// files or of whole documents of one big file, and their results are
/// joined in input order: the same [`Loaded`] as one thread gives (a
/// file whose run hits a syntax error is loaded again by itself).
pub fn load(files: &[SourceFile]) -> Loaded {
    let total: usize = files.iter().map(|f| f.text.len()).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads > 1 && total >= PARALLEL_FROM {
        return load_in_parallel(files, threads);
    }
    let mut loaded = Loaded::default();
    for file in files {
        load_file(file, &mut loaded);
    }
    loaded
}

/// Inputs smaller than this are loaded by one thread.
const PARALLEL_FROM: usize = 1 << 20;

/// A run of input for one thread: whole files, or bytes `start..end` of one
/// file (whole documents).
#[derive(Clone, Copy)]
struct Work {
    file: usize,
    range: Option<(usize, usize)>,
}

fn load_in_parallel(files: &[SourceFile], threads: usize) -> Loaded {
    let total: usize = files.iter().map(|f| f.text.len()).sum();
    let share = total.div_ceil(threads);
    // Cut the input into `threads` runs of about `share` bytes, at file or
    // document boundaries.
    let mut runs: Vec<Vec<Work>> = vec![Vec::new()];
    let mut size = 0;
    for (i, file) in files.iter().enumerate() {
        let pieces = (file.text.len() > share)
            .then(|| super::cache::document_ranges(&file.text))
            .flatten();
        let Some(pieces) = pieces else {
            if size >= share {
                runs.push(Vec::new());
                size = 0;
            }
            runs.last_mut().expect("one run at least").push(Work {
                file: i,
                range: None,
            });
            size += file.text.len();
            continue;
        };
        let mut start = 0;
        for (piece_start, piece_end) in pieces {
            size += piece_end - piece_start;
            if size >= share {
                runs.last_mut().expect("one run at least").push(Work {
                    file: i,
                    range: Some((start, piece_end)),
                });
                runs.push(Vec::new());
                size = 0;
                start = piece_end;
            }
        }
        if start < file.text.len() {
            runs.last_mut().expect("one run at least").push(Work {
                file: i,
                range: Some((start, file.text.len())),
            });
        }
    }
    let results: Vec<(Loaded, Vec<usize>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|run| scope.spawn(move || load_run(files, run)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| (Loaded::default(), vec![usize::MAX]))
            })
            .collect()
    });
    if results.iter().any(|(_, broken)| !broken.is_empty()) {
        // A syntax error inside a run: read every file by itself, in order.
        let mut loaded = Loaded::default();
        for file in files {
            load_file(file, &mut loaded);
        }
        return loaded;
    }
    let mut loaded = Loaded::default();
    for (part, _) in results {
        loaded.documents.extend(part.documents);
        loaded.diagnostics.extend(part.diagnostics);
        for (kind, count) in part.skipped {
            *loaded.skipped.entry(kind).or_default() += count;
        }
    }
    loaded
}

/// One thread's run; and the files whose part of it had a syntax error.
fn load_run(files: &[SourceFile], run: &[Work]) -> (Loaded, Vec<usize>) {
    let mut loaded = Loaded::default();
    let mut broken = Vec::new();
    for work in run {
        let file = &files[work.file];
        match work.range {
            None => load_file(file, &mut loaded),
            Some((start, end)) => {
                if !load_range(file, start, end, &mut loaded).is_empty() {
                    broken.push(work.file);
                }
            }
        }
    }
    (loaded, broken)
}

/// Each document is loaded as soon as the parser completes it, so its tree
/// is freed (and its memory reused) before the next one is built. The
/// file's syntax diagnostics still come first, then those of its objects.
pub(crate) fn load_file(file: &SourceFile, loaded: &mut Loaded) {
    let before = loaded.diagnostics.len();
    let syntax = yaml::parse_file_with(file, |doc| load_document(file, doc, loaded));
    loaded.diagnostics.splice(before..before, syntax);
}

/// The documents in bytes `start..end` of `file` (see
/// [`yaml::parse_range_with`]). Returns the syntax diagnostics, which
/// `loaded` does not get.
pub(crate) fn load_range(
    file: &SourceFile,
    start: usize,
    end: usize,
    loaded: &mut Loaded,
) -> Vec<Diagnostic> {
    yaml::parse_range_with(file, start, end, |doc| load_document(file, doc, loaded))
}

/// One YAML document: a single object, or a List of them.
fn load_document(file: &SourceFile, doc: ParsedDoc, loaded: &mut Loaded) {
    let Some(list_kind) = list_kind(&doc.value) else {
        let spans = SpanIndex::from_parts(doc.whole, doc.paths, doc.values, doc.keys);
        return load_object(file, doc.value, spans, loaded);
    };
    let api_version = doc.value.get("apiVersion").cloned();
    let count = doc
        .value
        .get("items")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let spans = item_indexes(count, doc.whole, doc.paths, doc.values, doc.keys);
    let items = match doc.value {
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    for (mut item, spans) in items.into_iter().zip(spans) {
        infer_item_kind(&mut item, &list_kind, api_version.as_ref());
        load_object(file, item, spans, loaded);
    }
}

/// `Some(kind)` if `value` is a `List` (or a typed list such as
/// `ServiceList`, as the API server returns it) with `items`.
fn list_kind(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let items = value.get("items")?;
    (kind.ends_with("List") && matches!(items, Value::Array(_) | Value::Null))
        .then(|| kind.to_owned())
}

/// Items of a typed list (`ServiceList`) may omit `apiVersion` and `kind`;
/// they are the list's, minus `List`.
fn infer_item_kind(item: &mut Value, list_kind: &str, api_version: Option<&Value>) {
    let Some(kind) = list_kind.strip_suffix("List").filter(|k| !k.is_empty()) else {
        return;
    };
    if let (Value::Object(map), Some(api_version)) = (item, api_version) {
        if !map.contains_key("kind") && !map.contains_key("apiVersion") {
            map.insert("kind".into(), Value::from(kind));
            map.insert("apiVersion".into(), api_version.clone());
        }
    }
}

/// One span index per `items[i]`, with paths relative to the item. Entries
/// are bucketed in one pass, so a List of 10,000 Services stays linear; the
/// items share the List's path text, each entry cut past its `items[i].`.
fn item_indexes(
    count: usize,
    whole: Span,
    paths: Arc<str>,
    values: Vec<(PathRange, Span)>,
    keys: Vec<(PathRange, Span)>,
) -> Vec<SpanIndex> {
    type Entries = Vec<(PathRange, Span)>;
    let mut buckets: Vec<(Span, Entries, Entries)> = (0..count)
        .map(|_| (whole, Vec::new(), Vec::new()))
        .collect();
    for ((start, end), span) in values {
        if let Some((i, cut)) = split_item_path(&paths[start..end]) {
            if let Some((item_whole, item_values, _)) = buckets.get_mut(i) {
                if start + cut == end {
                    *item_whole = span;
                }
                item_values.push(((start + cut, end), span));
            }
        }
    }
    for ((start, end), span) in keys {
        if let Some((i, cut)) = split_item_path(&paths[start..end]) {
            if let Some((_, _, item_keys)) = buckets.get_mut(i) {
                item_keys.push(((start + cut, end), span));
            }
        }
    }
    buckets
        .into_iter()
        .map(|(whole, values, keys)| SpanIndex::from_parts(whole, paths.clone(), values, keys))
        .collect()
}

/// `items[3].spec.ports` → `(3, len("items[3].")`); `items[3]` → `(3, 8)`:
/// the item index and how much of the path to cut.
fn split_item_path(path: &str) -> Option<(usize, usize)> {
    let rest = path.strip_prefix("items[")?;
    let close = rest.find(']')?;
    let index = rest[..close].parse().ok()?;
    let mut cut = "items[".len() + close + 1;
    if path[cut..].starts_with('.') {
        cut += 1;
    }
    Some((index, cut))
}

/// One object: check its header, then deserialize it if it is a kind we keep.
fn load_object(file: &SourceFile, value: Value, spans: SpanIndex, loaded: &mut Loaded) {
    let (api_version, kind) = match header(&value) {
        Ok(header) => header,
        Err((path, message, label)) => {
            let span = yaml::first_line(&file.text, spans.value(path));
            let d = Diagnostic::error(Code::NotAnObject, message)
                .at(file, span, label)
                .with_help("every document must be a Kubernetes object, e.g. `apiVersion: v1` and `kind: Service`");
            loaded.diagnostics.push(d);
            return;
        }
    };
    let Some(def) = crate::kinds::find(&api_version, &kind) else {
        *loaded.skipped.entry(kind).or_default() += 1;
        return;
    };
    let ctx = Typed {
        file,
        spans: &spans,
        def,
        name: display_name(def, &value),
    };
    let object = (def.load)(&ctx, &value, loaded);
    if let Some(object) = object {
        loaded.documents.push(Document {
            file: file.clone(),
            spans,
            object: Arc::new(object),
        });
    }
}

/// What is wrong with an object's header: the path to point at, the
/// message and the label.
type HeaderError = (&'static str, String, &'static str);

/// `apiVersion` and `kind`, or what is wrong with them.
fn header(value: &Value) -> Result<(String, String), HeaderError> {
    const EXPECTED: &str = "expected a mapping with `apiVersion` and `kind`";
    let Value::Object(map) = value else {
        let what = json_type(value);
        return Err((
            "",
            format!("document is {what}, not a Kubernetes object"),
            EXPECTED,
        ));
    };
    let field = |name: &'static str| match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err((
            name,
            format!("`{name}` must be a non-empty string"),
            "expected a string",
        )),
        None => Err(("", format!("document has no `{name}`"), EXPECTED)),
    };
    Ok((field("apiVersion")?, field("kind")?))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// `namespace/name` for namespaced kinds, `name` otherwise, as messages
/// show it; `<unnamed>` when the name is missing.
fn display_name(def: &crate::kinds::KindDef, value: &Value) -> String {
    let meta = value.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    if !def.namespaced {
        return name.to_owned();
    }
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    crate::names::namespaced(namespace, name)
}

/// One object being deserialized into its kind's type, and what
/// diagnostics about it need to know.
pub struct Typed<'a> {
    file: &'a SourceFile,
    spans: &'a SpanIndex,
    def: &'static crate::kinds::KindDef,
    name: String,
}

impl Typed<'_> {
    /// The object as messages name it: ``Service `default/web` ``, or the
    /// kind alone for kinds that have no name.
    fn what(&self) -> String {
        self.def.describe(&self.name)
    }

    /// Deserialize into `T`, reporting unknown fields (warnings) and the
    /// first type error (which drops the object) at their spans.
    pub fn typed<T: DeserializeOwned>(&self, value: &Value, loaded: &mut Loaded) -> Option<T> {
        let mut unknown = Vec::new();
        let result = serde_ignored::deserialize(value, |path| unknown.push(ignored_path(&path)));
        for path in unknown {
            if let Some(d) = self.unknown_field(&path) {
                loaded.diagnostics.push(d);
            }
        }
        match result {
            Ok(object) => Some(object),
            Err(_) => {
                // Only failures pay for path tracking: deserialize again to
                // learn where.
                let (path, error) = locate_error::<T>(value);
                loaded.diagnostics.push(self.schema_error(&path, &error));
                None
            }
        }
    }

    fn unknown_field(&self, path: &str) -> Option<Diagnostic> {
        if (self.def.ignored_field)(path) {
            return None;
        }
        let (parent, field) = split_last(path);
        let d = Diagnostic::warning(
            Code::UnknownField,
            format!("unknown field `{field}` in {}", self.what()),
        )
        .at(self.file, self.spans.key(path), "ignored");
        Some(match suggest(field, known_fields(self.def, parent)) {
            Some(known) => d.with_help(format!("did you mean `{known}`?")),
            None => d,
        })
    }

    fn schema_error(&self, path: &str, error: &str) -> Diagnostic {
        let span = self.spans.value(path);
        if let Some(field) = error
            .strip_prefix("missing field `")
            .and_then(|e| e.strip_suffix('`'))
        {
            let full = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return Diagnostic::error(
                Code::MissingField,
                format!("{} is missing `{full}`", self.what()),
            )
            .at(self.file, span, format!("`{field}` is required here"));
        }
        let field = if path.is_empty() {
            "the object".to_owned()
        } else {
            format!("`{path}`")
        };
        Diagnostic::error(
            Code::Schema,
            format!(
                "{field} of {} `{}` has the wrong type",
                self.def.kind, self.name
            ),
        )
        .at(self.file, span, error.to_owned())
    }
}

/// The path and message of the error deserializing `value` as `T`.
fn locate_error<T: DeserializeOwned>(value: &Value) -> (String, String) {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(_) => (String::new(), "does not match its kind".into()),
        Err(error) => (error_path(error.path()), error.into_inner().to_string()),
    }
}

/// `spec.ports[0].prots` → (`spec.ports[0]`, `prots`).
fn split_last(path: &str) -> (&str, &str) {
    match path.rfind('.') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// serde_ignored's path in our syntax (`spec.ports[0].prots`).
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    let mut segments = Vec::new();
    let mut at = path;
    loop {
        match at {
            Path::Root => break,
            Path::Seq { parent, index } => {
                segments.push(format!("[{index}]"));
                at = parent;
            }
            Path::Map { parent, key } => {
                segments.push(format!(".{key}"));
                at = parent;
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => at = parent,
        }
    }
    join(segments.into_iter().rev())
}

/// serde_path_to_error's path in our syntax.
fn error_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    join(path.iter().filter_map(|segment| match segment {
        Segment::Seq { index } => Some(format!("[{index}]")),
        Segment::Map { key } => Some(format!(".{key}")),
        Segment::Enum { .. } | Segment::Unknown => None,
    }))
}

fn join(segments: impl Iterator<Item = String>) -> String {
    let joined: String = segments.collect();
    joined
        .strip_prefix('.')
        .map(str::to_owned)
        .unwrap_or(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Loaded {
        load(&[SourceFile::new("t.yaml", text)])
    }

    fn positions(loaded: &Loaded) -> Vec<(Code, String)> {
        loaded
            .diagnostics
            .iter()
            .map(|d| (d.code, d.position().unwrap_or_default()))
            .collect()
    }

    const SERVICE: &str =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n";

    #[test]
    fn keeps_known_kinds_and_counts_the_rest() {
        let text = format!("{SERVICE}---\napiVersion: apps/v1\nkind: Deployment\n---\napiVersion: v2\nkind: Service\n");
        let loaded = load_str(&text);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.documents.len(), 1);
        assert_eq!(loaded.skipped.get("Deployment"), Some(&1));
        assert_eq!(loaded.skipped.get("Service"), Some(&1));
    }

    #[test]
    fn list_items_get_their_own_spans() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: b\n  spec:\n    ports:\n    - port: 80\n";
        let loaded = load_str(text);
        assert_eq!(loaded.documents.len(), 2);
        let doc = &loaded.documents[1];
        let span = doc.spans.value("spec.ports[0].port");
        assert_eq!(doc.file.line_col(span.start), (13, 13));
        assert_eq!(&text[doc.spans.value("").start..][..10], "apiVersion");
    }

    #[test]
    fn typed_lists_lend_their_kind_to_items() {
        let text = "apiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: a}\n";
        let loaded = load_str(text);
        assert_eq!(loaded.documents.len(), 1, "{:?}", loaded.diagnostics);
    }

    #[test]
    fn type_errors_are_located_and_drop_only_their_object() {
        let text = format!(
            "{}---\n{SERVICE}",
            SERVICE.replace("port: 80", "port: \"abc\"")
        );
        let loaded = load_str(&text);
        assert_eq!(
            positions(&loaded),
            vec![(Code::Schema, "t.yaml:7:11".into())]
        );
        assert_eq!(loaded.documents.len(), 1);
    }

    #[test]
    fn unknown_fields_warn_at_the_key_with_a_suggestion() {
        let loaded = load_str(&SERVICE.replace("ports:", "prots:"));
        assert_eq!(
            positions(&loaded),
            vec![(Code::UnknownField, "t.yaml:6:3".into())]
        );
        let d = &loaded.diagnostics[0];
        assert_eq!(d.message, "unknown field `prots` in Service `default/web`");
        assert_eq!(d.help.as_deref(), Some("did you mean `ports`?"));
        assert_eq!(loaded.documents.len(), 1);
    }

    #[test]
    fn kube_proxy_config_fields_knc_ignores_do_not_warn() {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nbindAddress: 0.0.0.0\nclusterCIDR: 10.244.0.0/16\nnftables:\n  syncPeriod: 1s\n  masqueradeAll: true\n";
        let loaded = load_str(text);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.documents.len(), 1);
    }

    #[test]
    fn documents_without_a_header_are_not_objects() {
        let loaded = load_str("- a\n---\nkind: Service\n---\napiVersion: v1\nkind: 3\n");
        let codes: Vec<_> = positions(&loaded);
        assert_eq!(
            codes,
            vec![
                (Code::NotAnObject, "t.yaml:1:1".into()),
                (Code::NotAnObject, "t.yaml:3:1".into()),
                (Code::NotAnObject, "t.yaml:6:7".into()),
            ]
        );
    }

    #[test]
    fn json_errors_get_locations() {
        let loaded = load_str("{\"apiVersion\": \"v1\", \"kind\": \"Service\",\n \"spec\": {\"ports\": [{\"port\": 80,}]\n");
        assert_eq!(loaded.diagnostics.len(), 1);
        assert_eq!(loaded.diagnostics[0].code, Code::Syntax);
        assert!(loaded.diagnostics[0].position().is_some());
    }

    fn sequential(files: &[SourceFile]) -> Loaded {
        let mut loaded = Loaded::default();
        for file in files {
            load_file(file, &mut loaded);
        }
        loaded
    }

    fn fingerprint(loaded: &Loaded) -> Vec<String> {
        let mut out: Vec<String> = loaded
            .documents
            .iter()
            .map(|d| format!("{} {:?} {:?}", d.file.name, d.object, d.spans.recorded()))
            .collect();
        out.extend(
            loaded
                .diagnostics
                .iter()
                .map(|d| format!("{d} {:?} {:?}", d.position(), d.help)),
        );
        out.push(format!("{:?}", loaded.skipped));
        out
    }

    #[test]
    fn threads_load_what_one_thread_loads() {
        let mut dump = String::new();
        for i in 0..300 {
            dump.push_str(&format!(
                "---\n{}",
                SERVICE.replace("name: web", &format!("name: web{i}"))
            ));
            if i % 50 == 7 {
                dump.push_str("  prots: []\n");
            }
            if i % 70 == 3 {
                dump.push_str("---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");
            }
        }
        let broken = dump.replacen("port: 80\n", "port: [80\n", 1);
        let cases = [
            vec![SourceFile::new("dump.yaml", dump.clone())],
            vec![SourceFile::new("broken.yaml", broken)],
            (0..40)
                .map(|i| {
                    SourceFile::new(
                        format!("f{i}.yaml"),
                        dump[..dump.len() / 40 * (i % 3 + 1)].to_string(),
                    )
                })
                .collect(),
            vec![
                SourceFile::new("a.yaml", SERVICE),
                SourceFile::new("dump.yaml", dump.clone()),
                SourceFile::new("z.yaml", SERVICE.replace("web", "zz")),
            ],
        ];
        for files in cases {
            let one = fingerprint(&sequential(&files));
            for threads in [2, 3, 7] {
                assert_eq!(
                    fingerprint(&load_in_parallel(&files, threads)),
                    one,
                    "{threads} threads"
                );
            }
        }
    }

    #[test]
    fn garbage_through_the_whole_front_end_never_panics() {
        let deep_list = format!("apiVersion: v1\nkind: List\nitems:\n- {}", "[".repeat(500));
        let inputs = [
            "\u{0}\u{1}\u{2}".to_owned(),
            "apiVersion: v1\nkind: Service\nspec: {ports: [{port: 99999999999999999999}]}"
                .to_owned(),
            "apiVersion: v1\nkind: Service\nspec: {ports: [{port: 1.5e300}, {port: .nan}]}"
                .to_owned(),
            "apiVersion: v1\nkind: List\nitems: [1, null, [], {kind: ServiceList, items: [2]}]"
                .to_owned(),
            "apiVersion: v1\nkind: ServiceList\nitems: [{metadata: 3}]".to_owned(),
            deep_list,
            "{a: ".repeat(300),
            "- ".repeat(300) + "x",
        ];
        for text in inputs {
            let loaded = load_str(&text);
            let _ = crate::kinds::convert(&loaded);
        }
    }
}
