//! `knc::node-without-local-endpoints`: a Service with
//! `externalTrafficPolicy: Local` that has no usable endpoint on some
//! Node of the inputs.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::Context;
use crate::model::{Service, ServiceType};

pub const RULE: Rule = Rule {
    code: Code::NodeWithoutLocalEndpoints,
    name: "knc::node-without-local-endpoints",
    severity: Severity::Warning,
    summary: "a Service with `externalTrafficPolicy: Local` and no endpoint on some node",
    doc: "\
## What it does
For each Service with `externalTrafficPolicy: Local` that is reachable
from outside (a NodePort or LoadBalancer Service, or one with external
IPs) and has endpoint objects, lists the Nodes of the inputs on which it
has no usable endpoint: none ready with that `nodeName` and, as
kube-proxy falls back, none serving and terminating either. Only runs
when the inputs hold Nodes.

## Why is this bad?
Under the Local policy a node sends external traffic only to endpoints on
itself, and drops it when it has none. Cloud load balancers skip such
nodes through the health-check NodePort, but clients that reach the
NodePort or an external IP on those nodes directly get no answer. Often
meant (few replicas), sometimes a surprise (a DaemonSet missing on some
nodes, all replicas scheduled on one node).

## Example
Nodes `node1` and `node2`; Service `web` with `type: NodePort` and
`externalTrafficPolicy: Local`; its EndpointSlice has one ready endpoint
with `nodeName: node1`. NodePort traffic reaching `node2` is dropped.",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    if cx.cluster.nodes.is_empty() {
        return;
    }
    for service in &cx.compiled {
        let key = service.key();
        if !externally_local(service) || !cx.served.contains(key.as_str()) {
            continue;
        }
        let missing: Vec<String> = cx
            .cluster
            .nodes
            .keys()
            .filter(|node| !has_local_endpoint(service, node))
            .map(|node| format!("`{node}`"))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let nodes = if missing.len() == 1 { "Node" } else { "Nodes" };
        out.push(
            cx.warning(
                &service.origin,
                Code::NodeWithoutLocalEndpoints,
                "spec.externalTrafficPolicy",
                format!(
                    "Service `{key}` has no endpoint on {nodes} {}",
                    missing.join(", ")
                ),
                "external traffic reaching those nodes is dropped",
            )
            .with_help(
                "under the Local policy a node sends external traffic only to endpoints on itself; \
                 use `Cluster` if every node should serve it",
            ),
        );
    }
}

/// Whether the Local policy applies: kube-proxy's "externally accessible"
/// (NodePort, LoadBalancer, or external IPs) with `Local`.
fn externally_local(service: &Service) -> bool {
    service.external_policy_local
        && (service.service_type != ServiceType::ClusterIp || !service.external_ips.is_empty())
}

/// Whether `node` has an endpoint the node-local set uses: a ready one,
/// or (kube-proxy's fallback when none is ready) a serving, terminating one.
fn has_local_endpoint(service: &Service, node: &str) -> bool {
    let local = || {
        service
            .endpoints
            .iter()
            .filter(move |e| e.node_name.as_deref() == Some(node))
    };
    local().any(|e| e.ready) || local().any(|e| e.serving && e.terminating)
}
