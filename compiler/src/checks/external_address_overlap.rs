//! `knc::external-address-overlap`: an external IP or LoadBalancer IP that
//! is a Node's own address or lies inside a service CIDR.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::ExternalAddressOverlap,
    name: "knc::external-address-overlap",
    severity: Severity::Warning,
    summary: "an external or LoadBalancer IP that is a node's address or inside a service CIDR",
    doc: "\
## What it does
Flags an address in a Service's `spec.externalIPs` or
`status.loadBalancer.ingress[].ip` (except `ipMode: Proxy`) that is the
InternalIP or ExternalIP of a Node in the inputs, or that lies inside a
service CIDR (the `spec.cidrs` of the inputs' ServiceCIDR objects).

## Why is this bad?
Every node captures traffic to a Service's external addresses on the
Service's ports. When the address is a node's own, connections to that
port of the node (an SSH daemon, the kubelet, an ingress controller on the
host network) go to the Service's endpoints instead, on every node. An
address inside a service CIDR is one the apiserver may also allocate as
some Service's ClusterIP: two Services then claim it, and one loses it.

## Example
```yaml
kind: Node
metadata: {name: node1}
status:
  addresses: [{type: InternalIP, address: 192.168.1.10}]
---
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  externalIPs: [192.168.1.10]   # node1's address: its port 80 is taken
  ports: [{port: 80}]
```",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for claim in &cx.inventory.external_addresses {
        let service = &claim.service.key;
        if !cx.compiled.iter().any(|s| &s.key() == service) {
            continue;
        }
        let address = claim.address;
        let node = cx.cluster.nodes.values().find(|node| {
            node.internal_ips.contains(&address) || node.external_ips.contains(&address)
        });
        let (message, label) = if let Some(node) = node {
            (
                format!(
                    "Service `{service}` claims `{address}`, an address of Node `{}`",
                    node.name
                ),
                "connections to this address on the Service's ports go to the Service, not the node",
            )
        } else if let Some(cidr) = cx
            .cluster
            .service_cidrs
            .iter()
            .find(|c| c.contains(&address))
        {
            (
                format!("Service `{service}` claims `{address}`, inside the service CIDR `{cidr}`"),
                "this address can also be allocated as a ClusterIP",
            )
        } else {
            continue;
        };
        out.push(cx.warning(
            &claim.service.origin,
            Code::ExternalAddressOverlap,
            &claim.path,
            message,
            label,
        ));
    }
}
