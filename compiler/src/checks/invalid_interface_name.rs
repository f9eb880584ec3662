//! `knc::invalid-interface-name`: a network interface name (kube-proxy's
//! `detectLocal.interfaceNamePrefix` / `detectLocal.bridgeInterface`) that
//! knc will not write into a rule. Reported by the conversions
//! ([`crate::kinds`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::InvalidInterfaceName,
    name: "knc::invalid-interface-name",
    severity: Severity::Error,
    summary: "an interface name or prefix that is not 1 to 15 of `A-Z a-z 0-9 _ . -`",
    doc: "\
## What it does
Checks the interface names that tell pods from external clients under
`detectLocalMode: InterfaceNamePrefix` (`detectLocal.interfaceNamePrefix`)
and `detectLocalMode: BridgeInterface` (`detectLocal.bridgeInterface`): 1 to
15 letters, digits, `_`, `.` or `-`.

## Why is this bad?
The name is written into the rules as it is (`iifname \"cali*\"`,
`-i cali+`). Linux interface names are at most 15 bytes, and a name with
quotes, spaces or semicolons could change what the rules say instead of
naming an interface. The name is dropped and no source counts as a pod.

## Example
```yaml
detectLocalMode: InterfaceNamePrefix
detectLocal:
  interfaceNamePrefix: cali\"; drop
```",
    lint: None,
};
