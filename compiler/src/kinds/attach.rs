//! Attaching TCPRoutes and UDPRoutes to Gateway listeners, as a Gateway
//! controller would: each `parentRef` names a Gateway (default namespace:
//! the route's) and optionally a listener (`sectionName`) and `port`; it
//! attaches to every listener that matches them, speaks the route's
//! protocol (TCPRoute: `TCP`, UDPRoute: `UDP`), admits the route's
//! namespace (`allowedRoutes.namespaces.from`, default `Same`) and kind
//! (`allowedRoutes.kinds`). A parentRef that attaches to nothing is a
//! `knc::unattached-route` warning at the parentRef, and gets no rules.

use std::collections::BTreeMap;

use crate::front::yaml::first_line;
use crate::front::{Code, Diagnostic, Loaded};
use crate::model::gateway::{AllowedNamespaces, AttachedRoute, Gateway, Listener, Route};
use crate::names::object_key;

/// Every route attached to every listener it attaches to, sorted by
/// (route namespace, route name, kind, Gateway, listener); warnings for
/// the parentRefs that attach to nothing.
pub(super) fn attach(
    loaded: &Loaded,
    gateways: &BTreeMap<(String, String), Gateway>,
    routes: &[Route],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<AttachedRoute> {
    let mut out = Vec::new();
    for route in routes {
        for parent in &route.parents {
            let found = gateways.get(&(parent.namespace.clone(), parent.name.clone()));
            let attached = match found {
                _ if !parent.is_gateway => Err("knc attaches routes to Gateways only".to_string()),
                None => Err(format!(
                    "Gateway `{}` is not among the inputs",
                    object_key(&parent.namespace, &parent.name)
                )),
                Some(gateway) => matching(route, parent, gateway).map(|l| (gateway, l)),
            };
            let (gateway, listeners) = match attached {
                Ok(found) => found,
                Err(why) => {
                    diagnostics.push(unattached(loaded, route, parent.index, &why));
                    continue;
                }
            };
            for listener in listeners {
                out.push(AttachedRoute {
                    kind: route.kind,
                    namespace: route.namespace.clone(),
                    name: route.name.clone(),
                    origin: route.origin,
                    gateway_namespace: gateway.namespace.clone(),
                    gateway_name: gateway.name.clone(),
                    listener: listener.name.clone(),
                    addresses: gateway.addresses.clone(),
                    port: listener.port,
                    backends: route.backends.clone(),
                });
            }
        }
    }
    let key = |a: &AttachedRoute| {
        (
            a.namespace.clone(),
            a.name.clone(),
            a.kind,
            a.gateway_namespace.clone(),
            a.gateway_name.clone(),
            a.listener.clone(),
        )
    };
    out.sort_by_key(key);
    out.dedup_by(|a, b| key(a) == key(b));
    out
}

/// The listeners of `gateway` that `parent` of `route` attaches to, or
/// why there is none.
fn matching<'a>(
    route: &Route,
    parent: &crate::model::gateway::ParentRef,
    gateway: &'a Gateway,
) -> Result<Vec<&'a Listener>, String> {
    let gateway_key = object_key(&gateway.namespace, &gateway.name);
    let named: Vec<&Listener> = gateway
        .listeners
        .iter()
        .filter(|l| parent.section_name.as_ref().is_none_or(|s| *s == l.name))
        .filter(|l| parent.port.is_none_or(|p| p == l.port))
        .collect();
    if named.is_empty() {
        return Err(match (&parent.section_name, parent.port) {
            (Some(section), _) => format!(
                "Gateway `{gateway_key}` has no listener `{section}`{}",
                parent
                    .port
                    .map(|p| format!(" on port {p}"))
                    .unwrap_or_default()
            ),
            (None, Some(port)) => format!("Gateway `{gateway_key}` has no listener on port {port}"),
            (None, None) => format!("Gateway `{gateway_key}` has no listeners"),
        });
    }
    let protocol = route.kind.protocol();
    let same_protocol: Vec<&Listener> = named
        .into_iter()
        .filter(|l| l.protocol == Some(protocol))
        .collect();
    if same_protocol.is_empty() {
        return Err(format!(
            "no {} listener of Gateway `{gateway_key}` matches (a {} attaches to {} listeners)",
            crate::names::protocol_name(protocol),
            route.kind.kind(),
            crate::names::protocol_name(protocol)
        ));
    }
    let admitted: Vec<&Listener> = same_protocol
        .into_iter()
        .filter(|l| match l.from {
            AllowedNamespaces::Same => gateway.namespace == route.namespace,
            AllowedNamespaces::All | AllowedNamespaces::Selector => true,
        })
        .filter(|l| l.kinds.is_empty() || l.kinds.iter().any(|k| k == route.kind.kind()))
        .collect();
    if admitted.is_empty() {
        return Err(format!(
            "the matching listeners of Gateway `{gateway_key}` do not allow {}s from namespace `{}` \
             (`allowedRoutes`)",
            route.kind.kind(),
            route.namespace
        ));
    }
    Ok(admitted)
}

/// The warning for parentRef `index` of `route`.
fn unattached(loaded: &Loaded, route: &Route, index: usize, why: &str) -> Diagnostic {
    let doc = route.origin.in_loaded(loaded);
    let message = format!(
        "parentRef {index} of {} `{}` attaches to no listener: {why}",
        route.kind.kind(),
        object_key(&route.namespace, &route.name)
    );
    let mut d = doc.warning_at(
        Code::UnattachedRoute,
        &format!("spec.parentRefs[{index}]"),
        message,
        "attaches to nothing",
    );
    if let Some(loc) = &mut d.location {
        loc.span = first_line(&loc.file.text, loc.span);
    }
    d.with_help("the route gets no rules for this parent; check the Gateway's name, listeners and `allowedRoutes`")
}

#[cfg(test)]
mod tests {
    use crate::front::{load, Code, SourceFile};
    use crate::ir::{FrontendKind, Route as IrRoute};
    use crate::kinds::convert;
    use crate::model::gateway::BackendRef;

    const GATEWAY: &str = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: Gateway\n\
        metadata: {name: edge, namespace: infra}\n\
        spec:\n  addresses: [{type: Hostname, value: edge.example.com}, {value: 203.0.113.20}]\n  \
        listeners:\n  - {name: tcp, protocol: TCP, port: 9000, allowedRoutes: {namespaces: {from: All}}}\n  \
        - {name: other, protocol: TCP, port: 9001}\n  \
        - {name: dns, protocol: UDP, port: 53, allowedRoutes: {namespaces: {from: All}}}\n\
        status:\n  addresses: [{type: IPAddress, value: 'fd00::20'}]\n";

    fn route(kind: &str, body: &str) -> String {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: {kind}\n\
             metadata: {{name: r, namespace: apps}}\nspec:\n{body}"
        )
    }

    /// (code, position) of every diagnostic, and the converted cluster.
    fn converted(texts: &[&str]) -> (Vec<(Code, String)>, crate::model::Cluster) {
        let files: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| SourceFile::new(format!("{i}.yaml"), *t))
            .collect();
        let loaded = load(&files);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let out = convert(&loaded);
        let diags = out
            .diagnostics
            .iter()
            .map(|d| (d.code, d.position().unwrap_or_default()))
            .collect();
        (diags, out.cluster)
    }

    #[test]
    fn refs_are_defaulted_as_the_api_defaults_them() {
        let r = route(
            "TCPRoute",
            "  parentRefs: [{name: edge, namespace: infra}]\n  rules:\n  \
             - backendRefs: [{name: web, port: 80}, {name: old, port: 80, weight: 0},\n    \
             {name: x, namespace: other, kind: Pod, group: '', port: 1}]\n",
        );
        let (diags, cluster) = converted(&[GATEWAY, &r]);
        assert_eq!(diags, []);
        // No sectionName: every TCP listener that admits the namespace
        // (`other` allows only its own namespace).
        let attached: Vec<_> = cluster.routes.iter().map(|a| a.listener.as_str()).collect();
        assert_eq!(attached, ["tcp"]);
        let route = &cluster.routes[0];
        assert_eq!(route.entry_name(), "tcproute/r");
        assert_eq!(route.entry_port_name(), "infra/edge/tcp");
        assert_eq!(route.port, 9000);
        let addresses: Vec<String> = route.addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addresses, ["203.0.113.20", "fd00::20"], "IP addresses only");
        let web = BackendRef {
            is_service: true,
            namespace: "apps".into(),
            name: "web".into(),
            port: 80,
            weight: 1,
        };
        assert_eq!(route.backends[0], web);
        assert_eq!(route.backends[1].weight, 0);
        assert!(!route.backends[2].is_service);
    }

    #[test]
    fn bad_refs_are_located() {
        let r = route(
            "UDPRoute",
            "  parentRefs: [{name: edge, namespace: infra, sectionName: dns}]\n  rules:\n  \
             - backendRefs:\n    - {name: a}\n    - {name: b, port: 53, weight: -1}\n    \
             - {name: c, port: 53, weight: 2}\n",
        );
        let (diags, cluster) = converted(&[GATEWAY, &r]);
        assert_eq!(
            diags,
            [
                (Code::MissingField, "1.yaml:8:7".into()),
                (Code::Schema, "1.yaml:9:35".into()),
            ]
        );
        let names: Vec<_> = cluster.routes[0]
            .backends
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(names, ["c"], "bad refs are left out");
    }

    #[test]
    fn unattached_parents_warn_at_the_parent_ref() {
        let r = route(
            "TCPRoute",
            "  parentRefs:\n  - {name: gone}\n  - {name: edge, namespace: infra, sectionName: dns}\n  \
             - {name: edge, namespace: infra, port: 9001}\n  - {name: edge, namespace: infra, port: 9002}\n  \
             - {name: svc, kind: Service}\n",
        );
        let (diags, cluster) = converted(&[GATEWAY, &r]);
        let want: Vec<(Code, String)> = (6..=10)
            .map(|line| (Code::UnattachedRoute, format!("1.yaml:{line}:5")))
            .collect();
        assert_eq!(diags, want);
        assert!(cluster.routes.is_empty());
    }

    #[test]
    fn routes_lower_to_weighted_gateway_entries() {
        let services = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: apps}\n\
            spec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80, targetPort: 8080}]\n---\n\
            apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
            metadata: {name: web-1, namespace: apps, labels: {kubernetes.io/service-name: web}}\n\
            addressType: IPv4\nports: [{port: 8080}]\n\
            endpoints: [{addresses: [10.244.1.1]}, {addresses: [10.244.1.2]}]\n---\n\
            apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: apps}\n\
            spec:\n  clusterIP: 10.96.0.2\n  ports: [{port: 80}]\n";
        let r = route(
            "TCPRoute",
            "  parentRefs: [{name: edge, namespace: infra, sectionName: tcp}]\n  rules:\n  \
             - backendRefs: [{name: web, port: 80, weight: 3}, {name: empty, port: 80},\n    \
             {name: gone, port: 80}, {name: web, port: 81}]\n",
        );
        let (diags, cluster) = converted(&[GATEWAY, &r, services]);
        assert_eq!(diags, []);
        let ruleset = crate::lower::lower(&cluster, &Default::default()).unwrap();
        assert_eq!(crate::ir::validate(&ruleset), Ok(()));
        let entries: Vec<_> = ruleset
            .services
            .iter()
            .filter(|e| e.name == "tcproute/r")
            .collect();
        assert_eq!(
            entries.len(),
            2,
            "one per family of the Gateway's addresses"
        );
        let v4 = entries[0];
        assert_eq!(v4.frontends[0].kind, FrontendKind::Gateway);
        let weights: Vec<u32> = v4.backends.cluster.iter().map(|b| b.weight).collect();
        assert_eq!(weights, [1, 1], "refs without endpoints get nothing");
        assert_eq!(v4.backends.cluster[0].port, 8080);
        // No IPv6 endpoints: the IPv6 address rejects, like a Service
        // without endpoints.
        let v6 = entries[1];
        assert!(v6.backends.cluster.is_empty());
        assert_eq!(v6.frontends[0].routing.external, IrRoute::Reject);
    }

    /// Two routes on one listener: the first in namespace/name order keeps
    /// the Gateway address, and lint names both routes.
    #[test]
    fn routes_contesting_a_listener_are_linted() {
        let second = route(
            "TCPRoute",
            "  parentRefs: [{name: edge, namespace: infra, sectionName: tcp}]\n",
        );
        let first = second.replace("name: r,", "name: a,");
        let files = [
            SourceFile::new("gw.yaml", GATEWAY),
            SourceFile::new("a.yaml", first),
            SourceFile::new("r.yaml", second),
        ];
        let found: Vec<String> = crate::lint(&files)
            .iter()
            .filter(|d| d.code == Code::ContestedAddress)
            .map(|d| format!("{} {}", d.position().unwrap_or_default(), d.message))
            .collect();
        assert_eq!(
            found,
            [
                "r.yaml:3:18 TCPRoute `apps/r` claims 203.0.113.20:9000/TCP, which TCPRoute `apps/a` claims too",
                "r.yaml:3:18 TCPRoute `apps/r` claims [fd00::20]:9000/TCP, which TCPRoute `apps/a` claims too",
            ]
        );
    }
}
