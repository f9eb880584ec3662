//! `knc::unallocated-cluster-ip`: a Service compiled to nothing because its
//! ClusterIP is not allocated yet, as lowering decided it.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::lower::decisions::NothingCompiled;
use crate::lower::Decision;
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::UnallocatedClusterIp,
    name: "knc::unallocated-cluster-ip",
    severity: Severity::Warning,
    summary: "a Service without a ClusterIP yet; nothing is compiled for it",
    doc: "\
## What it does
Flags a Service with no `clusterIP` (absent or empty): not allocated yet, as
in manifests kept in Git before the API server fills it in. knc compiles no
rule for it, and this check says so instead of warning about its endpoints.

## Why is this bad?
kube-proxy skips a Service without a ClusterIP entirely, its NodePorts and
external IPs included, and so does knc: the Service gets no rule. Compile the
Services as the cluster holds them (`kubectl get services -o yaml`) to see
their rules.

## Example
```yaml
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  ports: [{port: 80, nodePort: 30080}]
```",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for decision in cx.decisions {
        let Decision::NothingCompiled {
            service,
            reason: NothingCompiled::NoClusterIp,
        } = decision
        else {
            continue;
        };
        let message = format!(
            "Service `{}` has no clusterIP (not yet allocated): knc compiles nothing for it",
            service.key()
        );
        let help = "kube-proxy skips a Service until its ClusterIP is allocated, NodePorts and external IPs included; compile the Services as the cluster holds them (`kubectl get services -o yaml`)";
        let label = "no rule is compiled for this Service";
        out.push(
            cx.warning(
                &service.origin,
                Code::UnallocatedClusterIp,
                "metadata.name",
                message,
                label,
            )
            .with_help(help),
        );
    }
}
