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
Flags a `nodePort` outside 30000-32767.

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
const NODEPORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for (key, doc, svc) in cx.proxied() {
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
