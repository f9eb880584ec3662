//! `knc::orphan-endpoints`: endpoints that belong to no Service.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::{Context, SERVICE_NAME_LABEL};

pub const RULE: Rule = Rule {
    code: Code::OrphanEndpoints,
    name: "knc::orphan-endpoints",
    severity: Severity::Warning,
    summary: "an EndpointSlice or Endpoints object that belongs to no Service",
    doc: "\
## What it does
Flags EndpointSlices whose `kubernetes.io/service-name` label is missing or
names no Service in the inputs, and Endpoints named like no Service.

## Why is this bad?
Such endpoints are never used; often the label has a typo or the Service
lives in another namespace.

## Example
```yaml
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels:
    kubernetes.io/service-name: wbe
```",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for object in &cx.inventory.endpoints {
        let slice = object.kind == "EndpointSlice";
        let (path, message) = match &object.service {
            None if slice => (
                "metadata.labels",
                format!("EndpointSlice has no `{SERVICE_NAME_LABEL}` label, so it belongs to no Service"),
            ),
            None => continue,
            Some(service) if cx.services.contains(service) => continue,
            Some(service) if slice => (
                "metadata.labels",
                format!("EndpointSlice belongs to Service `{service}`, which is not in the inputs"),
            ),
            Some(service) => (
                "metadata.name",
                format!("Endpoints `{service}` match no Service in the inputs"),
            ),
        };
        out.push(cx.warning(
            &object.origin,
            Code::OrphanEndpoints,
            path,
            message,
            "these endpoints are never used",
        ));
    }
}
