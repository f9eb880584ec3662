//! Loading documents from source files. TEMPORARY minimal loader (no spans,
//! no unknown-field warnings) until the full front end lands.

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::Value;

use super::source::Span;
use super::{Code, Diagnostic, Document, Loaded, Object, SourceFile, SpanIndex};

/// Parse every file into typed objects, collecting all problems.
pub fn load(files: &[SourceFile]) -> Loaded {
    let mut loaded = Loaded::default();
    for file in files {
        let docs = match Yaml::load_from_str(&file.text) {
            Ok(docs) => docs,
            Err(e) => {
                loaded
                    .diagnostics
                    .push(Diagnostic::error(Code::Syntax, e.to_string()).at(
                        file,
                        Span::new(0, 0),
                        "here",
                    ));
                continue;
            }
        };
        for doc in docs {
            let value = to_json(&doc);
            if value.is_null() {
                continue;
            }
            let items = if value.get("kind").and_then(Value::as_str) == Some("List") {
                value
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            } else {
                vec![value]
            };
            for item in items {
                push(&mut loaded, file, item);
            }
        }
    }
    loaded
}

fn push(loaded: &mut Loaded, file: &SourceFile, value: Value) {
    let api = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let object = match (api.as_str(), kind.as_str()) {
        ("v1", "Service") => serde_json::from_value(value).map(|v| Object::Service(Box::new(v))),
        ("v1", "Endpoints") => {
            serde_json::from_value(value).map(|v| Object::Endpoints(Box::new(v)))
        }
        ("v1", "Node") => serde_json::from_value(value).map(|v| Object::Node(Box::new(v))),
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            serde_json::from_value(value).map(|v| Object::EndpointSlice(Box::new(v)))
        }
        ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration") => {
            serde_json::from_value(value).map(|v| Object::KubeProxyConfiguration(Box::new(v)))
        }
        _ => {
            *loaded.skipped.entry(kind).or_default() += 1;
            return;
        }
    };
    match object {
        Ok(object) => loaded.documents.push(Document {
            file: file.clone(),
            spans: SpanIndex::default(),
            object,
        }),
        Err(e) => loaded
            .diagnostics
            .push(Diagnostic::error(Code::Schema, e.to_string()).at(file, Span::new(0, 0), "here")),
    }
}

fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => Value::from(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::Value(Scalar::String(s)) => s.to_string(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}
