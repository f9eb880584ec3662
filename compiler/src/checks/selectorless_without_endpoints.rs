//! `knc::selectorless-without-endpoints`: a Service without a selector and
//! with no endpoint objects in the inputs.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::SelectorlessWithoutEndpoints,
    name: "knc::selectorless-without-endpoints",
    severity: Severity::Warning,
    summary: "a Service without a selector and with no EndpointSlice or Endpoints",
    doc: "\
## What it does
Flags a Service whose `spec.selector` is absent or empty, that is not of
type ExternalName, and for which the inputs hold no EndpointSlice
(labelled `kubernetes.io/service-name`) and no Endpoints object. Headless
Services count too; a Service knc compiles nothing for because it has no
ClusterIP yet gets only `knc::unallocated-cluster-ip`. Such Services get
this warning instead of `knc::service-without-endpoints`.

## Why is this bad?
Without a selector no controller in the cluster creates endpoints for the
Service: whoever wrote it has to write them too. When they are missing
from the repository they are missing from the cluster, and every
connection to the Service is refused (a headless one resolves to no
address). A forgotten `selector:` has the same effect.

## Example
```yaml
apiVersion: v1
kind: Service
metadata: {name: external-db}
spec:
  clusterIP: 10.96.9.2
  ports: [{port: 5432}]
```
with no EndpointSlice labelled `kubernetes.io/service-name: external-db`
and no Endpoints `external-db`.",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for service in &cx.inventory.selectorless {
        if cx.served.contains(service.key.as_str()) || uncompiled(cx, &service.key) {
            continue;
        }
        out.push(
            cx.warning(
                &service.origin,
                Code::SelectorlessWithoutEndpoints,
                "metadata.name",
                format!(
                    "Service `{}` has no selector and no EndpointSlice or Endpoints in the inputs",
                    service.key
                ),
                "nothing creates endpoints for this Service",
            )
            .with_help("write its EndpointSlice next to it, or give it a `selector`"),
        );
    }
}

/// Whether `key` is in the model but compiled to nothing (no ClusterIP
/// yet): `knc::unallocated-cluster-ip` already says all there is to say.
fn uncompiled(cx: &Context<'_>, key: &str) -> bool {
    let in_model = cx.cluster.services.iter().any(|s| s.key() == key);
    in_model && !cx.compiled.iter().any(|s| s.key() == key)
}
