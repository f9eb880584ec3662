//! Front end: bytes of YAML / JSON in, typed Kubernetes objects out, each
//! remembering where every one of its fields came from.
//!
//! Accepted: multi-document YAML, JSON, and `kind: List` (as `kubectl get -o
//! yaml` prints it). Kept kinds: Service, Endpoints, EndpointSlice
//! (discovery.k8s.io/v1), Node, ServiceCIDR (networking.k8s.io/v1),
//! KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1), and the
//! Gateway API's Gateway (gateway.networking.k8s.io/v1 or v1beta1), TCPRoute
//! and UDPRoute (v1alpha2). Anything else is counted and skipped.
//! Problems are collected, never thrown: one bad document does not hide the
//! problems in the next.

pub mod cache;
pub mod fields;
pub mod load;
pub mod spans;
pub mod yaml;

pub use crate::diagnostic::{Code, Diagnostic, Location, Severity};
pub use crate::kinds::kube_proxy_config::KubeProxyConfiguration;
pub use crate::kinds::Object;
pub use crate::source::{FileId, SourceFile, Span};
pub use cache::Cache;
pub use load::load;
pub use spans::SpanIndex;

/// One object and where it came from: the file and an index from field
/// paths to spans, so later stages can point at the offending field.
/// Cheap to clone: a [`Cache`] hands the same object to every load whose
/// document has the same bytes.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: SourceFile,
    pub spans: SpanIndex,
    pub object: std::sync::Arc<Object>,
}

impl Document {
    /// An error diagnostic located at the value of the field at `path`
    /// (dotted, with `[i]` for list items: `spec.ports[0].port`), or at the
    /// nearest ancestor that exists in the source.
    pub fn error_at(
        &self,
        code: Code,
        path: &str,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(code, message).at(&self.file, self.spans.value(path), label)
    }

    /// `file:line:column` of the value at `path`, as help texts cite
    /// another place.
    pub fn position(&self, path: &str) -> String {
        let (line, col) = self.file.line_col(self.spans.value(path).start);
        format!("{}:{line}:{col}", self.file.name)
    }

    /// Like [`Document::error_at`], as a warning.
    pub fn warning_at(
        &self,
        code: Code,
        path: &str,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..self.error_at(code, path, message, label)
        }
    }
}

/// Everything the front end produced from a set of input files.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Kept objects, in input order (files in the order given, documents in
    /// file order). Later stages must not depend on this order.
    pub documents: Vec<Document>,
    /// How many documents of other kinds were skipped, per kind (sorted).
    pub skipped: std::collections::BTreeMap<String, usize>,
    /// Every problem found, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}
