//! `knc::affinity-timeout-range`: a session affinity timeout outside
//! 1-86400 seconds. Reported by the conversions ([`crate::kinds`]);
//! split from the former `knc::invalid-value`.

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::AffinityTimeoutRange,
    name: "knc::affinity-timeout-range",
    severity: Severity::Error,
    summary: "`sessionAffinityConfig.clientIP.timeoutSeconds` outside 1-86400",
    doc: "\
## What it does
Checks `sessionAffinityConfig.clientIP.timeoutSeconds` is between 1 and
86400 seconds.

## Why is this bad?
The API server allows at most a day; zero or a negative timeout would make
affinity entries expire at once or never.

## Example
```yaml
spec:
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: 0
```",
    lint: None,
};
