//! `knc::unknown-field`: a field the kind does not have. Reported by the
//! front end's loader ([`crate::front::load`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::UnknownField,
    name: "knc::unknown-field",
    severity: Severity::Warning,
    summary: "a field this kind does not have (often a typo)",
    doc: "\
## What it does
Warns about a field the object's kind does not have, and suggests the known
field it most resembles.

## Why is this bad?
The field is ignored, by knc and by the API server: a typo such as
`externalTrafficPolicys` silently leaves the default in place.

## Example
```yaml
spec:
  extrnalIPs: [203.0.113.5]
```
Did you mean `externalIPs`?",
    lint: None,
};
