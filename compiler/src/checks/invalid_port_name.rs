//! `knc::invalid-port-name`: a named `targetPort` that cannot be a port
//! name. Reported by the conversions ([`crate::kinds`]); split from
//! the former `knc::invalid-value`.

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::InvalidPortName,
    name: "knc::invalid-port-name",
    severity: Severity::Error,
    summary: "a named `targetPort` that is not a valid port name",
    doc: "\
## What it does
Checks that a named `targetPort` follows the IANA service name syntax that
port names follow: 1 to 15 lowercase letters, digits and dashes, with at
least one letter, and no leading, trailing or double dash.

## Why is this bad?
Named target ports resolve through endpoint port names; a name that cannot
exist never resolves, and a number in quotes (`\"8080\"`) is a name, not a
port.

## Example
```yaml
spec:
  ports:
  - port: 80
    targetPort: Http_Port
```",
    lint: None,
};
