//! `knc::contested-address`: a frontend two Services claim, as lowering
//! decided it.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::lower::Decision;
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::ContestedAddress,
    name: "knc::contested-address",
    severity: Severity::Warning,
    summary: "an address and port that two Services claim; one loses it",
    doc: "\
## What it does
Flags an address and port (an external IP, a LoadBalancer IP, a ClusterIP, a
NodePort) that two Services claim for the same protocol. It reports what
lowering decided: addresses are compared parsed (`203.000.113.005` is
`203.0.113.5`), and there is one warning per frontend lowering dropped,
naming the Service that keeps it.

## Why is this bad?
Only one Service can receive the traffic: knc gives the address to the
first Service in namespace/name order and compiles the others without it.

## Example
Service `default/a` has `externalIPs: [203.0.113.5]`, Service `default/b`
has `externalIPs: [203.000.113.005]`, both on port 80/TCP: `b` loses it.",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for decision in cx.decisions {
        let Decision::FrontendLost {
            claim,
            kept_by,
            lost_by,
        } = decision
        else {
            continue;
        };
        let message = format!(
            "{} claims {claim}, which {} claims too",
            lost_by.describe(),
            kept_by.describe()
        );
        let help = format!(
            "knc compiles it for {} (defined at {}), the first in namespace/name order, and not for this one",
            kept_by.describe(),
            cx.document(&kept_by.origin).position("metadata.name")
        );
        let label = "only one of them receives this traffic";
        out.push(
            cx.warning(
                &lost_by.origin,
                Code::ContestedAddress,
                "metadata.name",
                message,
                label,
            )
            .with_help(help),
        );
    }
}
