//! `knc::invalid-address`: an IP address or CIDR that does not parse, or
//! an endpoint address of the wrong family. Reported by the conversions
//! ([`crate::kinds`]).

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::InvalidAddress,
    name: "knc::invalid-address",
    severity: Severity::Error,
    summary: "an IP address or CIDR that does not parse",
    doc: "\
## What it does
Checks every address and CIDR knc reads: ClusterIPs, external IPs,
LoadBalancer IPs and source ranges, endpoint addresses (of the slice's
family), Node addresses and pod CIDRs, kube-proxy's `clusterCIDR` and
`nodePortAddresses`. IPv4 octets with leading zeros (`010.0.0.1`) are
read as decimal, as kube-proxy reads them.

## Why is this bad?
These addresses become match expressions and DNAT targets; one that does
not parse cannot be compiled, and guessing would send traffic somewhere
unintended.

## Example
```yaml
spec:
  externalIPs: [203.0.113.256]
```",
    lint: None,
};
