//! `knc lint`: configurations that are valid but probably not what their
//! author meant. Each check is one file in [`crate::checks`] with its code
//! and documentation; this module runs them over one [`Context`]: the
//! model, the inventory of what else the inputs hold, and lowering's
//! decisions. Checks read model values and their provenance; none walks
//! the YAML again.

use std::collections::BTreeSet;

use super::{Cluster, Inventory, Origin, Service};
use crate::front::{Diagnostic, Document, Loaded};
use crate::lower::Decision;

pub(crate) use crate::kinds::endpoint_slice::SERVICE_NAME_LABEL;

/// Every lint warning for inputs that converted without errors into
/// `cluster` and `inventory`. `decisions` are lowering's, for the same
/// cluster: lint reports what compiling does rather than deciding it again.
pub fn lint(
    loaded: &Loaded,
    cluster: &Cluster,
    inventory: &Inventory,
    decisions: &[Decision],
) -> Vec<Diagnostic> {
    let cx = Context::new(loaded, cluster, inventory, decisions);
    let mut out = Vec::new();
    for check in crate::checks::RULES.iter().filter_map(|r| r.lint) {
        check(&cx, &mut out);
    }
    out
}

/// What every lint check reads.
pub struct Context<'a> {
    /// The loaded documents, only to point at a field of a model value's
    /// origin.
    loaded: &'a Loaded,
    pub cluster: &'a Cluster,
    pub inventory: &'a Inventory,
    /// The model's Services that lowering compiles rules for.
    pub compiled: Vec<&'a Service>,
    /// Service keys that some EndpointSlice or Endpoints object serves.
    pub served: BTreeSet<&'a str>,
    /// The key of every Service in the inputs.
    pub services: BTreeSet<String>,
    /// What lowering decided (see [`crate::lower::decisions`]).
    pub decisions: &'a [Decision],
}

impl<'a> Context<'a> {
    fn new(
        loaded: &'a Loaded,
        cluster: &'a Cluster,
        inventory: &'a Inventory,
        decisions: &'a [Decision],
    ) -> Self {
        let nothing: BTreeSet<String> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::NothingCompiled { service, .. } => Some(service.key()),
                Decision::FrontendLost { .. } => None,
            })
            .collect();
        Context {
            loaded,
            cluster,
            inventory,
            compiled: cluster
                .services
                .iter()
                .filter(|s| !nothing.contains(&s.key()))
                .collect(),
            services: cluster
                .services
                .iter()
                .map(Service::key)
                .chain(inventory.other_services.iter().cloned())
                .collect(),
            served: inventory
                .endpoints
                .iter()
                .filter_map(|e| e.service.as_deref())
                .collect(),
            decisions,
        }
    }

    /// The document a model value came from, to point at one of its fields.
    pub fn document(&self, origin: &Origin) -> &'a Document {
        origin.in_loaded(self.loaded)
    }

    /// A warning at the field `path` of the object `origin` points at.
    pub fn warning(
        &self,
        origin: &Origin,
        code: crate::front::Code,
        path: &str,
        message: String,
        label: &str,
    ) -> Diagnostic {
        self.document(origin).warning_at(code, path, message, label)
    }
}
