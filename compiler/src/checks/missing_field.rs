//! `knc::missing-field`: a required field is missing. Reported by the
//! loader (fields the API requires) and by the conversions (`metadata.name`, a
//! Service `port`).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::MissingField,
    name: "knc::missing-field",
    severity: Severity::Error,
    summary: "a required field is missing",
    doc: "\
## What it does
Reports a field the object cannot do without: `metadata.name`, a Service
port's `port`, an EndpointSlice's `addressType`.

## Why is this bad?
Names join Services to their endpoints and ports are what rules match; an
object without them cannot take part and would be silently ignored.

## Example
```yaml
apiVersion: v1
kind: Service
metadata:
  namespace: default
spec:
  ports: [{port: 80}]
```
The Service has no name.",
    lint: None,
};
