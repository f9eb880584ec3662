//! `knc::ip-family-mismatch`: endpoints of an IP family the Service they
//! belong to does not have.

use std::collections::BTreeSet;

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::ir::Family;
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::IpFamilyMismatch,
    name: "knc::ip-family-mismatch",
    severity: Severity::Warning,
    summary: "endpoints of an IP family their Service has no ClusterIP for",
    doc: "\
## What it does
Compares each Service's IP families (those of its `spec.clusterIPs`) with
its endpoints: an EndpointSlice whose `addressType` is another family, or
an address of another family in its Endpoints object. One warning per
object, at the first field of the other family.

## Why is this bad?
Each family is proxied on its own: an IPv6 endpoint can serve only an
IPv6 ClusterIP. Endpoints of a family the Service does not have are never
used; when they are all it has, every connection is refused. It usually
means a single-stack Service whose workload moved to (or added) the other
family, or a slice copied from another cluster.

## Example
```yaml
kind: Service
metadata: {name: web}
spec:
  clusterIPs: [10.96.0.10]        # IPv4 only
  ports: [{port: 80}]
---
kind: EndpointSlice
metadata:
  name: web-1
  labels: {kubernetes.io/service-name: web}
addressType: IPv6                 # never used for web
endpoints: [{addresses: [fd00::10]}]
```",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for service in &cx.compiled {
        if service.cluster_ips.is_empty() {
            continue;
        }
        let key = service.key();
        let families: BTreeSet<Family> = service.cluster_ips.iter().map(Family::of).collect();
        for object in &cx.inventory.endpoints {
            if object.service.as_deref() != Some(key.as_str()) {
                continue;
            }
            let Some((path, family)) = object.families.iter().find(|(_, f)| !families.contains(f))
            else {
                continue;
            };
            let holds = if object.kind == "EndpointSlice" {
                format!("holds {} endpoints", name(*family))
            } else {
                format!("lists an {} address", name(*family))
            };
            out.push(cx.warning(
                &object.origin,
                Code::IpFamilyMismatch,
                path,
                format!(
                    "{} {holds} for Service `{key}`, which has no {} ClusterIP",
                    crate::kinds::describe(cx.document(&object.origin)),
                    name(*family)
                ),
                "these endpoints are never used",
            ));
        }
    }
}

fn name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}
