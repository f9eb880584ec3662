//! `knc::port-range`: a port number outside what the field allows.
//! Reported by the conversions ([`crate::kinds`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::PortRange,
    name: "knc::port-range",
    severity: Severity::Error,
    summary: "a port number outside 1-65535 (0-65535 where 0 means unset)",
    doc: "\
## What it does
Checks Service `port`, `nodePort` (0 meaning \"allocate\") and numeric
`targetPort`, and the ports of EndpointSlices and Endpoints.

## Why is this bad?
A port that does not fit in 16 bits cannot match a packet; the API server
rejects it, so the manifest has never been applied as written.

## Example
```yaml
spec:
  ports:
  - port: 70000
```",
    lint: None,
};
