//! `knc::io`: an input file could not be read. Reported by the runtime's
//! input reader (`knc_runtime::inputs`), never by the pure compiler.

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::Io,
    name: "knc::io",
    severity: Severity::Error,
    summary: "an input file or directory could not be read",
    doc: "\
## What it does
Reports a path given on the command line (or found in a directory) that
cannot be read: missing, a dangling symlink, no permission.

## Why is this bad?
Compiling without it would compile a cluster without its objects, and on a
node that means removing their rules.

## Example
`knc lint manifests/` where `manifests/web.yaml` is a symlink to a file
that no longer exists.",
    lint: None,
};
