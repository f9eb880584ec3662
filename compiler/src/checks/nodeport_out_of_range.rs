//! `knc::nodeport-out-of-range`: a NodePort outside the API server's
//! default range.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::NodePortOutOfRange,
    name: "knc::nodeport-out-of-range",
    severity: Severity::Warning,
    summary: "a NodePort outside the API server's default range 30000-32767",
    doc: "\
## What it does
Flags a `nodePort` outside 30000-32767 of a Service that has NodePorts
(`type: NodePort` or `LoadBalancer`).

## Why is this bad?
A default API server rejects it; a cluster that accepts it has a custom
range, and the port may collide with services running on the nodes.

## Example
```yaml
spec:
  type: NodePort
  ports:
  - port: 80
    nodePort: 8080
```",
    lint: Some(check),
};

/// The API server's default `--service-node-port-range`.
const NODEPORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for service in &cx.cluster.services {
        for port in &service.ports {
            let Some(n) = port.node_port.filter(|n| !NODEPORT_RANGE.contains(n)) else {
                continue;
            };
            out.push(cx.warning(
                &service.origin,
                Code::NodePortOutOfRange,
                &format!("spec.ports[{}].nodePort", port.index),
                format!(
                    "nodePort `{n}` of Service `{}` is outside the default range 30000-32767",
                    service.key()
                ),
                "outside the API server's default range",
            ));
        }
    }
}
