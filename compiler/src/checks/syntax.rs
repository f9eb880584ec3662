//! `knc::syntax`: the bytes are not valid YAML or JSON (or not UTF-8).
//! Reported by the front end's YAML reader ([`crate::front::yaml`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::Syntax,
    name: "knc::syntax",
    severity: Severity::Error,
    summary: "the input is not valid YAML or JSON",
    doc: "\
## What it does
Reports input that the YAML/JSON reader cannot read: a syntax error, a
duplicate key, a file that is not UTF-8. The documents before and after the
broken one are still read.

## Why is this bad?
A document that cannot be read cannot be compiled, and guessing what it
meant would compile something nobody wrote.

## Example
```yaml
spec:
  ports: [{port: 80}
```
The flow sequence is never closed.",
    lint: None,
};
