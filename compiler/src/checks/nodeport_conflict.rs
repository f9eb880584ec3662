//! `knc::nodeport-conflict`: two Service ports claim one NodePort.
//! Reported by the conversions ([`crate::kinds`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::NodePortConflict,
    name: "knc::nodeport-conflict",
    severity: Severity::Error,
    summary: "two Services claim the same NodePort for the same protocol",
    doc: "\
## What it does
Checks that no two Service ports claim the same `nodePort` and protocol.

## Why is this bad?
A NodePort is one socket on every node; two claims mean one Service's
traffic goes to the other. The API server never allocates a port twice, so
the inputs do not describe a real cluster.

## Example
Services `default/web` and `default/api` both have `nodePort: 30080` for
TCP.",
    lint: None,
};
