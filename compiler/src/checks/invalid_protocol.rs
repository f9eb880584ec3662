//! `knc::invalid-protocol`: a protocol other than TCP, UDP or SCTP.
//! Reported by the conversions ([`crate::kinds`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::InvalidProtocol,
    name: "knc::invalid-protocol",
    severity: Severity::Error,
    summary: "a protocol other than TCP, UDP or SCTP",
    doc: "\
## What it does
Checks the protocol of every Service port and endpoint port.

## Why is this bad?
Those are the protocols kube-proxy serves; anything else (including
lower-case `tcp`) is rejected by the API server and has no rule to become.

## Example
```yaml
spec:
  ports:
  - port: 53
    protocol: udp
```
Protocols are written in capitals: `UDP`.",
    lint: None,
};
