//! `knc lint`: configurations that are valid but probably not what their
//! author meant. Each check is one file in [`crate::checks`] with its code
//! and documentation; this module runs them over one [`Context`]: the
//! model, lowering's decisions, and an index of the loaded documents.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;

use super::Cluster;
use crate::front::{Diagnostic, Document, Loaded, Object};
use crate::lower::Decision;

pub(crate) use crate::kinds::endpoint_slice::SERVICE_NAME_LABEL;

/// Every lint warning for inputs that validated cleanly into `cluster`.
/// `decisions` are lowering's, for the same cluster: lint reports what
/// compiling does rather than deciding it again.
pub fn lint(loaded: &Loaded, cluster: &Cluster, decisions: &[Decision]) -> Vec<Diagnostic> {
    let cx = Context::new(loaded, cluster, decisions);
    let mut out = Vec::new();
    for check in crate::checks::RULES.iter().filter_map(|r| r.lint) {
        check(&cx, &mut out);
    }
    out
}

/// What every lint check reads.
pub struct Context<'a> {
    /// Services of the inputs by `namespace/name`, with their document.
    pub services: BTreeMap<String, (&'a Document, &'a Service)>,
    /// Service keys that some EndpointSlice or Endpoints object serves.
    pub served: BTreeSet<String>,
    /// EndpointSlices and Endpoints with the Service key they name.
    pub endpoint_objects: Vec<(&'a Document, Option<String>, &'static str)>,
    /// The model's Services that lowering compiles rules for.
    pub compiled: Vec<&'a super::Service>,
    /// What lowering decided (see [`crate::lower::decisions`]).
    pub decisions: &'a [Decision],
}

fn key(namespace: Option<&String>, name: &str) -> String {
    crate::names::namespaced(namespace.map(String::as_str), name)
}

impl<'a> Context<'a> {
    fn new(loaded: &'a Loaded, cluster: &'a Cluster, decisions: &'a [Decision]) -> Self {
        let nothing: BTreeSet<String> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::NothingCompiled { service, .. } => Some(service.key()),
                Decision::FrontendLost { .. } => None,
            })
            .collect();
        let mut cx = Context {
            services: BTreeMap::new(),
            served: BTreeSet::new(),
            endpoint_objects: Vec::new(),
            compiled: cluster
                .services
                .iter()
                .filter(|s| !nothing.contains(&s.key()))
                .collect(),
            decisions,
        };
        for doc in &loaded.documents {
            match &doc.object {
                Object::Service(svc) => {
                    if let Some(name) = &svc.metadata.name {
                        cx.services
                            .insert(key(svc.metadata.namespace.as_ref(), name), (doc, svc));
                    }
                }
                Object::EndpointSlice(slice) => {
                    let label = slice
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(SERVICE_NAME_LABEL));
                    let service = label.map(|n| key(slice.metadata.namespace.as_ref(), n));
                    cx.served.extend(service.clone());
                    cx.endpoint_objects.push((doc, service, "EndpointSlice"));
                }
                Object::Endpoints(eps) => {
                    let service = eps
                        .metadata
                        .name
                        .as_ref()
                        .map(|n| key(eps.metadata.namespace.as_ref(), n));
                    cx.served.extend(service.clone());
                    cx.endpoint_objects.push((doc, service, "Endpoints"));
                }
                _ => {}
            }
        }
        cx
    }

    /// Services that get rules: not headless, not ExternalName.
    pub fn proxied(&self) -> impl Iterator<Item = (&String, &'a Document, &'a Service)> {
        self.services.iter().filter_map(|(key, (doc, svc))| {
            let spec = svc.spec.as_ref()?;
            let headless = spec.cluster_ip.as_deref() == Some("None");
            let external_name = spec.type_.as_deref() == Some("ExternalName");
            (!headless && !external_name).then_some((key, *doc, *svc))
        })
    }
}
