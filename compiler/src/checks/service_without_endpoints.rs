//! `knc::service-without-endpoints`: a compiled Service with no endpoint
//! objects in the inputs.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::ServiceWithoutEndpoints,
    name: "knc::service-without-endpoints",
    severity: Severity::Warning,
    summary: "a Service with no EndpointSlice or Endpoints in the inputs",
    doc: "\
## What it does
Flags a Service that gets rules but for which the inputs hold no
EndpointSlice (labelled `kubernetes.io/service-name`) and no Endpoints
object. A Service without a selector gets
`knc::selectorless-without-endpoints` instead.

## Why is this bad?
Without endpoints every connection to the Service is refused. In a GitOps
repository this usually means the endpoint objects were not exported
(`kubectl get endpointslices -o yaml`) next to the Services.

## Example
```yaml
apiVersion: v1
kind: Service
metadata: {name: lonely}
spec:
  selector: {app: lonely}
  clusterIP: 10.96.9.1
  ports: [{port: 80}]
```
and no EndpointSlice labelled `kubernetes.io/service-name: lonely`.",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for service in &cx.compiled {
        let key = service.key();
        let selectorless = cx.inventory.selectorless.iter().any(|s| s.key == key);
        if !cx.served.contains(key.as_str()) && !selectorless {
            out.push(cx.warning(
                &service.origin,
                Code::ServiceWithoutEndpoints,
                "metadata.name",
                format!("Service `{key}` has no EndpointSlice or Endpoints in the inputs"),
                "every connection to it will be refused",
            ));
        }
    }
}
