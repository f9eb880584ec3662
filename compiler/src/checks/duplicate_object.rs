//! `knc::duplicate-object`: one (kind, namespace, name) defined twice.
//! Reported by the conversions ([`crate::kinds`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::DuplicateObject,
    name: "knc::duplicate-object",
    severity: Severity::Error,
    summary: "the same object (kind, namespace, name) is defined twice",
    doc: "\
## What it does
Reports an object whose kind, namespace and name another input already
defines.

## Why is this bad?
The API server holds one object per name; when the inputs hold two, one of
them is not what the cluster runs, and which one would depend on the order
the files were given in.

## Example
`a.yaml` and `b.yaml` both define Service `default/web`.",
    lint: None,
};
