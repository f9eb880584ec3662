//! `knc::unknown-backend-selection`: the `knc.dev/backend-selection`
//! annotation of a Service holds a value knc does not know. Reported by
//! the Service conversion ([`crate::kinds`]) as a warning: the Service
//! still compiles, with random selection.

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::UnknownBackendSelection,
    name: "knc::unknown-backend-selection",
    severity: Severity::Warning,
    summary: "annotation `knc.dev/backend-selection` is neither `random` nor `source-hash`",
    doc: "\
## What it does
Checks the value of a Service's `knc.dev/backend-selection` annotation,
which chooses how a new connection picks a backend: `random` (the default,
as kube-proxy does) or `source-hash` (one client always reaches the same
backend, on every node compiled from the same inputs, and removing a
backend moves only the clients it had). Any other value is reported and
selection stays random.

## Why is this bad?
Annotations are not validated by the API server, so a typo (`sourcehash`,
`source_hash`) is accepted silently and clients are spread at random, which
breaks whatever relied on them sticking to one backend.

## Example
```yaml
metadata:
  annotations:
    knc.dev/backend-selection: sourcehash
```
Did you mean `source-hash`?",
    lint: None,
};
