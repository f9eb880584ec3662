//! `knc::schema`: a field has the wrong type for its kind. Reported by the
//! front end's loader ([`crate::front::load`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::Schema,
    name: "knc::schema",
    severity: Severity::Error,
    summary: "a field has the wrong type or shape for its kind",
    doc: "\
## What it does
Reports a field whose value has the wrong type for the Kubernetes API
(a string where a number is expected, a mapping where a list is).

## Why is this bad?
The API server rejects the object, so the manifest has never been applied as
written; the object is dropped from the compile.

## Example
```yaml
spec:
  ports:
  - port: eighty
```",
    lint: None,
};
