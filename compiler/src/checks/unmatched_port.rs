//! `knc::unmatched-port`: a Service port none of its endpoints carries.

use super::Rule;
use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::Context;

pub const RULE: Rule = Rule {
    code: Code::UnmatchedPort,
    name: "knc::unmatched-port",
    severity: Severity::Warning,
    summary: "a Service port that none of the Service's endpoints carries",
    doc: "\
## What it does
Flags a Service port of a Service that has endpoints, when none of them
declares a matching port (named like the Service port, or like a named
`targetPort`).

## Why is this bad?
The port's traffic is refused although the Service has endpoints: the port
names in the Service and in its EndpointSlices disagree.

## Example
The Service's port is named `http`, its EndpointSlice's port `web`.",
    lint: Some(check),
};

fn check(cx: &Context<'_>, out: &mut Vec<Diagnostic>) {
    for service in &cx.compiled {
        if service.endpoints.is_empty() {
            continue;
        }
        for port in &service.ports {
            if service
                .endpoints
                .iter()
                .any(|ep| ep.port_for(port).is_some())
            {
                continue;
            }
            let shown = if port.name.is_empty() {
                port.port.to_string()
            } else {
                port.name.clone()
            };
            out.push(cx.warning(
                &service.origin,
                Code::UnmatchedPort,
                &format!("spec.ports[{}].name", port.index),
                format!(
                    "no endpoint of Service `{}` has a port matching `{shown}`",
                    service.key()
                ),
                "connections to this port will be refused",
            ));
        }
    }
}
