//! `knc::unattached-route`: a TCPRoute or UDPRoute `parentRef` attaches
//! to no Gateway listener of the inputs. Reported while the model is
//! built ([`crate::kinds`]) as a warning: the route gets no rules for that
//! parent, and compiles otherwise.

use super::Rule;
use crate::front::{Code, Severity};

pub const RULE: Rule = Rule {
    code: Code::UnattachedRoute,
    name: "knc::unattached-route",
    severity: Severity::Warning,
    summary: "a TCPRoute or UDPRoute parentRef attaches to no Gateway listener",
    doc: "\
## What it does
Resolves each `spec.parentRefs[]` entry of a TCPRoute or UDPRoute as a
Gateway controller does: the Gateway it names (namespace: the route's by
default) must be among the inputs, and at least one of its listeners must
match the `sectionName` and `port` given, speak the route's protocol
(`TCP` for a TCPRoute, `UDP` for a UDPRoute), and admit the route's
namespace and kind (`allowedRoutes`, whose default admits only routes in
the Gateway's own namespace). A parentRef that attaches to nothing is
reported; knc compiles no rules for it.

## Why is this bad?
The route's traffic never reaches its backends through that parent: a
typo in a Gateway or listener name, a TCPRoute pointed at a UDP listener,
or a route in another namespace than a Gateway that allows only its own
is accepted by the API server and fails silently.

## Example
```yaml
kind: TCPRoute
spec:
  parentRefs:
  - name: edge
    sectionName: tpc   # the listener is called `tcp`
```",
    lint: None,
};
