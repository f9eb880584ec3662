//! `knc::invalid-enum-value`: a string field holds none of the values it
//! allows. Reported by the conversions ([`crate::kinds`]); split from
//! the former `knc::invalid-value`.

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::InvalidEnumValue,
    name: "knc::invalid-enum-value",
    severity: Severity::Error,
    summary: "a field holds none of the values it allows (`type: Nodeport`)",
    doc: "\
## What it does
Checks the fields that take one of a fixed set of strings: Service `type`,
`sessionAffinity`, `externalTrafficPolicy`, `internalTrafficPolicy`,
`ipFamilyPolicy`, `ipFamilies`, a LoadBalancer ingress's `ipMode`, an
EndpointSlice's `addressType`, and kube-proxy's `mode`. Suggests the allowed
value closest to the one written.

## Why is this bad?
Each value selects a different set of rules; an unknown one (`Nodeport`,
`local`) would otherwise fall back to a default its author did not ask for.

## Example
```yaml
spec:
  externalTrafficPolicy: local
```
Did you mean `Local`?",
    lint: None,
};
