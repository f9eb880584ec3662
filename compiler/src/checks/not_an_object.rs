//! `knc::not-an-object`: a document is not a Kubernetes object. Reported
//! by the front end's loader ([`crate::front::load`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::NotAnObject,
    name: "knc::not-an-object",
    severity: Severity::Error,
    summary: "a document is not a mapping with `apiVersion` and `kind`",
    doc: "\
## What it does
Reports a document that is not a mapping, or a mapping without a string
`apiVersion` and `kind`.

## Why is this bad?
knc decides what a document is from `apiVersion` and `kind`; without them it
cannot tell a Service from anything else, and skipping it silently would
hide a broken manifest.

## Example
```yaml
- port: 80
```
A bare list where a Service was meant.",
    lint: None,
};
