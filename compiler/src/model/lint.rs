//! `knc lint`: configurations that are valid but probably not what their
//! author meant. Each check is one function with a stable code, reporting
//! warnings located at the field that explains them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;

use super::Cluster;
use crate::front::{Code, Diagnostic, Document, Loaded, Object};
use crate::lower::decisions::{Decision, NothingCompiled};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Every lint warning for inputs that validated cleanly into `cluster`.
/// `decisions` are lowering's, for the same cluster: lint reports what
/// compiling does rather than deciding it again.
pub fn lint(loaded: &Loaded, cluster: &Cluster, decisions: &[Decision]) -> Vec<Diagnostic> {
    let index = Index::new(loaded);
    let compiled = Compiled::new(cluster, decisions);
    let mut out = Vec::new();
    service_without_endpoints(&index, &compiled, &mut out);
    orphan_endpoints(&index, &mut out);
    unmatched_port(&index, &compiled, &mut out);
    nodeport_out_of_range(&index, &mut out);
    contested_address(decisions, &mut out);
    no_cluster_ip(decisions, &mut out);
    out
}

/// The Services lowering compiles rules for.
struct Compiled<'a> {
    services: Vec<&'a super::Service>,
}

impl<'a> Compiled<'a> {
    fn new(cluster: &'a Cluster, decisions: &[Decision]) -> Self {
        let nothing: BTreeSet<String> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::NothingCompiled { service, .. } => Some(service.key()),
                Decision::FrontendLost { .. } => None,
            })
            .collect();
        Compiled {
            services: cluster
                .services
                .iter()
                .filter(|s| !nothing.contains(&s.key()))
                .collect(),
        }
    }
}

/// The documents by what they are, keyed `namespace/name`.
struct Index<'a> {
    services: BTreeMap<String, (&'a Document, &'a Service)>,
    /// Service keys that some EndpointSlice or Endpoints object serves.
    served: BTreeSet<String>,
    /// EndpointSlices and Endpoints with the Service key they name.
    endpoint_objects: Vec<(&'a Document, Option<String>, &'static str)>,
}

fn key(namespace: Option<&String>, name: &str) -> String {
    format!("{}/{name}", namespace.map_or("default", String::as_str))
}

impl<'a> Index<'a> {
    fn new(loaded: &'a Loaded) -> Self {
        let mut index = Index {
            services: BTreeMap::new(),
            served: BTreeSet::new(),
            endpoint_objects: Vec::new(),
        };
        for doc in &loaded.documents {
            match &doc.object {
                Object::Service(svc) => {
                    if let Some(name) = &svc.metadata.name {
                        index
                            .services
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
                    index.served.extend(service.clone());
                    index.endpoint_objects.push((doc, service, "EndpointSlice"));
                }
                Object::Endpoints(eps) => {
                    let service = eps
                        .metadata
                        .name
                        .as_ref()
                        .map(|n| key(eps.metadata.namespace.as_ref(), n));
                    index.served.extend(service.clone());
                    index.endpoint_objects.push((doc, service, "Endpoints"));
                }
                _ => {}
            }
        }
        index
    }

    /// Services that get rules: not headless, not ExternalName.
    fn proxied(&self) -> impl Iterator<Item = (&String, &'a Document, &'a Service)> {
        self.services.iter().filter_map(|(key, (doc, svc))| {
            let spec = svc.spec.as_ref()?;
            let headless = spec.cluster_ip.as_deref() == Some("None");
            let external_name = spec.type_.as_deref() == Some("ExternalName");
            (!headless && !external_name).then_some((key, *doc, *svc))
        })
    }
}

/// ## What it does
/// Flags a Service for which the inputs hold no EndpointSlice (labelled
/// `kubernetes.io/service-name`) and no Endpoints object.
///
/// ## Why is this bad?
/// Without endpoints every connection to the Service is refused. In a
/// GitOps repository this usually means the endpoint objects were not
/// exported (`kubectl get endpointslices`) next to the Services.
fn service_without_endpoints(
    index: &Index<'_>,
    compiled: &Compiled<'_>,
    out: &mut Vec<Diagnostic>,
) {
    for service in &compiled.services {
        let key = service.key();
        if !index.served.contains(&key) {
            out.push(service.origin.warning(
                Code::ServiceWithoutEndpoints,
                format!("Service `{key}` has no EndpointSlice or Endpoints in the inputs"),
                "every connection to it will be refused",
            ));
        }
    }
}

/// ## What it does
/// Flags EndpointSlices whose `kubernetes.io/service-name` label is missing
/// or names no Service in the inputs, and Endpoints named like no Service.
///
/// ## Why is this bad?
/// Such endpoints are never used; often the label has a typo or the Service
/// lives in another namespace.
fn orphan_endpoints(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (doc, service, kind) in &index.endpoint_objects {
        let (path, message) = match service {
            None if *kind == "EndpointSlice" => (
                "metadata.labels",
                format!("EndpointSlice has no `{SERVICE_NAME_LABEL}` label, so it belongs to no Service"),
            ),
            None => continue,
            Some(service) if index.services.contains_key(service) => continue,
            Some(service) if *kind == "EndpointSlice" => (
                "metadata.labels",
                format!("EndpointSlice belongs to Service `{service}`, which is not in the inputs"),
            ),
            Some(service) => (
                "metadata.name",
                format!("Endpoints `{service}` match no Service in the inputs"),
            ),
        };
        out.push(doc.warning_at(
            Code::OrphanEndpoints,
            path,
            message,
            "these endpoints are never used",
        ));
    }
}

/// ## What it does
/// Flags a Service port that has endpoints but none of them declares a
/// matching port (named like the Service port, or like a named
/// `targetPort`).
///
/// ## Why is this bad?
/// The port's traffic is refused although the Service has endpoints; the
/// port names in the Service and its EndpointSlices disagree.
fn unmatched_port(index: &Index<'_>, compiled: &Compiled<'_>, out: &mut Vec<Diagnostic>) {
    for service in compiled.services.iter().copied() {
        if service.endpoints.is_empty() {
            continue;
        }
        let Some((doc, svc)) = index.services.get(&service.key()) else {
            continue;
        };
        let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
        for port in &service.ports {
            if service
                .endpoints
                .iter()
                .any(|ep| ep.port_for(port).is_some())
            {
                continue;
            }
            let position = ports
                .and_then(|ports| {
                    ports
                        .iter()
                        .position(|p| p.name.as_deref().unwrap_or_default() == port.name)
                })
                .unwrap_or(0);
            let shown = if port.name.is_empty() {
                port.port.to_string()
            } else {
                port.name.clone()
            };
            out.push(doc.warning_at(
                Code::UnmatchedPort,
                &format!("spec.ports[{position}].name"),
                format!(
                    "no endpoint of Service `{}` has a port matching `{shown}`",
                    service.key()
                ),
                "connections to this port will be refused",
            ));
        }
    }
}

/// The API server's default `--service-node-port-range`.
const NODEPORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;

/// ## What it does
/// Flags a `nodePort` outside 30000–32767.
///
/// ## Why is this bad?
/// A default API server rejects it; a cluster that accepts it has a custom
/// range, and the port may collide with services running on the nodes.
fn nodeport_out_of_range(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (key, doc, svc) in index.proxied() {
        let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
        for (i, port) in ports.into_iter().flatten().enumerate() {
            match port.node_port {
                Some(n) if n != 0 && !NODEPORT_RANGE.contains(&n) => out.push(doc.warning_at(
                    Code::NodePortOutOfRange,
                    &format!("spec.ports[{i}].nodePort"),
                    format!("nodePort `{n}` of Service `{key}` is outside the default range 30000-32767"),
                    "outside the API server's default range",
                )),
                _ => {}
            }
        }
    }
}

/// ## What it does
/// Flags an address and port (an external IP, a LoadBalancer IP, a
/// ClusterIP, a NodePort) that two Services claim for the same protocol, as
/// lowering finds it: addresses compared parsed (`203.000.113.005` is
/// `203.0.113.5`), one warning per frontend lowering dropped.
///
/// ## Why is this bad?
/// Only one can receive the traffic: knc gives the address to the first
/// Service in namespace/name order and drops it from the others.
fn contested_address(decisions: &[Decision], out: &mut Vec<Diagnostic>) {
    for decision in decisions {
        let Decision::FrontendLost {
            claim,
            kept_by,
            lost_by,
        } = decision
        else {
            continue;
        };
        out.push(
            lost_by
                .origin
                .warning(
                    Code::ContestedAddress,
                    format!(
                        "Service `{}` claims {claim}, which Service `{}` claims too",
                        lost_by.key(),
                        kept_by.key()
                    ),
                    "only one Service receives this traffic",
                )
                .with_help(format!(
                    "knc compiles it for Service `{}` (defined at {}), the first in namespace/name order, and not for this one",
                    kept_by.key(),
                    kept_by.origin.position()
                )),
        );
    }
}

/// ## What it does
/// Flags a Service with no `clusterIP` (absent or empty): not allocated
/// yet, as in manifests kept in Git before the API server fills it in.
///
/// ## Why is this bad?
/// kube-proxy skips a Service without a ClusterIP entirely, its NodePorts
/// and external IPs included, and so does knc: the Service gets no rule.
/// Compile the Services as the cluster holds them (`kubectl get services -o
/// yaml`) to see their rules.
fn no_cluster_ip(decisions: &[Decision], out: &mut Vec<Diagnostic>) {
    for decision in decisions {
        let Decision::NothingCompiled {
            service,
            reason: NothingCompiled::NoClusterIp,
        } = decision
        else {
            continue;
        };
        out.push(
            service
                .origin
                .warning(
                    Code::UnallocatedClusterIp,
                    format!(
                        "Service `{}` has no clusterIP (not yet allocated): knc compiles nothing for it",
                        service.key()
                    ),
                    "no rule is compiled for this Service",
                )
                .with_help(
                    "kube-proxy skips a Service until its ClusterIP is allocated, NodePorts and external IPs included; compile the Services as the cluster holds them (`kubectl get services -o yaml`)",
                ),
        );
    }
}
