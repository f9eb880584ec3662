//! Computes a [`Review`] from the rulesets of OLD and NEW: pairs nodes by
//! name, Service ports by (family, namespace, name, port name, protocol),
//! frontends by (kind, address, port) and backends by (address, port).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::back::nft::slots;
use crate::ir::{
    Backend, Entry, Family, Frontend, LocalDetector, NodePortScope, Protocol, Route, Routing,
    Ruleset, SetKind,
};

use super::model::{
    Change, FrontendRef, NodeChanges, Presence, Refusal, Review, RouteChange, ServicePortChange,
    Setting, SettingChange, Share, SourceClass,
};

/// Compares OLD's rulesets with NEW's, pairing them by node. A node on one
/// side only is compared with an empty ruleset, so all it has shows as
/// added or removed.
pub fn review(old: &[Ruleset], new: &[Ruleset]) -> Review {
    let mut pairs: BTreeMap<Option<&str>, (Option<&Ruleset>, Option<&Ruleset>)> = BTreeMap::new();
    for ruleset in old {
        pairs.entry(ruleset.node.as_deref()).or_default().0 = Some(ruleset);
    }
    for ruleset in new {
        pairs.entry(ruleset.node.as_deref()).or_default().1 = Some(ruleset);
    }
    let nodes = pairs
        .into_values()
        .map(|pair| match pair {
            (Some(old), Some(new)) => compare_nodes(old, new),
            (Some(old), None) => NodeChanges {
                presence: Presence::Removed,
                ..compare_nodes(old, &empty_like(old))
            },
            (None, Some(new)) => NodeChanges {
                presence: Presence::Added,
                ..compare_nodes(&empty_like(new), new)
            },
            (None, None) => unreachable!("every pair has at least one side"),
        })
        .collect();
    Review { nodes }
}

/// What changes for traffic between two rulesets of the same node.
pub fn compare_nodes(old: &Ruleset, new: &Ruleset) -> NodeChanges {
    type Key<'a> = (Family, &'a str, &'a str, &'a str, Protocol);
    fn key(e: &Entry) -> Key<'_> {
        (e.family, &e.namespace, &e.name, &e.port_name, e.protocol)
    }
    let mut pairs: BTreeMap<Key<'_>, (Option<&Entry>, Option<&Entry>)> = BTreeMap::new();
    for entry in &old.services {
        pairs.entry(key(entry)).or_default().0 = Some(entry);
    }
    for entry in &new.services {
        pairs.entry(key(entry)).or_default().1 = Some(entry);
    }
    let ports = pairs
        .into_values()
        .filter_map(|pair| {
            let (presence, old, new) = match pair {
                (Some(old), Some(new)) => (Presence::Both, old.clone(), new.clone()),
                (Some(old), None) => (Presence::Removed, old.clone(), empty_entry(old)),
                (None, Some(new)) => (Presence::Added, empty_entry(new), new.clone()),
                (None, None) => unreachable!("every pair has at least one side"),
            };
            let changes = compare_entries(&old, &new);
            (!changes.is_empty()).then(|| ServicePortChange {
                namespace: new.namespace.clone(),
                name: new.name.clone(),
                port_name: new.port_name.clone(),
                family: new.family,
                protocol: new.protocol,
                presence,
                changes,
            })
        })
        .collect();
    NodeChanges {
        node: new.node.clone(),
        presence: Presence::Both,
        settings: compare_settings(old, new),
        ports,
    }
}

/// A ruleset like `like` (same node and settings) with no Service ports.
fn empty_like(like: &Ruleset) -> Ruleset {
    Ruleset {
        services: Vec::new(),
        ..like.clone()
    }
}

/// An entry with `like`'s identity and nothing else.
fn empty_entry(like: &Entry) -> Entry {
    Entry {
        frontends: Vec::new(),
        backends: Default::default(),
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        ..like.clone()
    }
}

fn compare_settings(old: &Ruleset, new: &Ruleset) -> Vec<SettingChange> {
    let settings = [
        (Setting::PodSources, pod_sources(old), pod_sources(new)),
        (
            Setting::ServiceCidrs,
            list(&old.service_cidrs),
            list(&new.service_cidrs),
        ),
        (
            Setting::NodeAddresses,
            list(&old.node_addresses),
            list(&new.node_addresses),
        ),
        (
            Setting::NodePortScope,
            nodeport_scope(&old.nodeport_scope),
            nodeport_scope(&new.nodeport_scope),
        ),
    ];
    settings
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(setting, old, new)| SettingChange { setting, old, new })
        .collect()
}

fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    items
        .iter()
        .map(T::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn pod_sources(ruleset: &Ruleset) -> String {
    match &ruleset.local_detector {
        LocalDetector::Cidrs => format!("sources in {}", list(&ruleset.cluster_cidrs)),
        LocalDetector::InterfacePrefix(prefix) => format!("arriving on interfaces {prefix}*"),
        LocalDetector::Interface(name) => format!("arriving on interface {name}"),
    }
}

fn nodeport_scope(scope: &NodePortScope) -> String {
    match scope {
        NodePortScope::AnyLocal => "any local address".to_string(),
        NodePortScope::LocalIn(cidrs) => format!("local addresses in {}", list(cidrs)),
    }
}

/// The changes of one Service port: frontends, backends of the sets some
/// frontend routes to, routes per frontend and source class, policies.
fn compare_entries(old: &Entry, new: &Entry) -> Vec<Change> {
    let mut changes = Vec::new();
    let old_frontends = frontends(old);
    let new_frontends = frontends(new);
    for (id, _) in old_frontends.iter() {
        if !new_frontends.contains_key(id) {
            changes.push(Change::FrontendRemoved { frontend: *id });
        }
    }
    for (id, frontend) in new_frontends.iter() {
        if !old_frontends.contains_key(id) {
            let refusing = |refusal: Route| {
                classes(&frontend.routing)
                    .into_iter()
                    .filter(|(_, route)| *route == refusal)
                    .map(|(class, _)| class)
                    .collect()
            };
            changes.push(Change::FrontendAdded {
                frontend: *id,
                rejects: refusing(Route::Reject),
                drops: refusing(Route::Drop),
            });
        }
    }
    for set in [SetKind::Cluster, SetKind::Local] {
        compare_backends(set, routed(old, set), routed(new, set), &mut changes);
    }
    for (id, old_frontend) in old_frontends.iter() {
        let Some(new_frontend) = new_frontends.get(id) else {
            continue;
        };
        compare_routing(
            *id,
            &old_frontend.routing,
            &new_frontend.routing,
            &mut changes,
        );
        if old_frontend.allowed_sources != new_frontend.allowed_sources {
            changes.push(Change::SourceRanges {
                frontend: *id,
                old: old_frontend.allowed_sources.clone(),
                new: new_frontend.allowed_sources.clone(),
            });
        }
    }
    if old.affinity_timeout_seconds != new.affinity_timeout_seconds {
        changes.push(Change::Affinity {
            old: old.affinity_timeout_seconds,
            new: new.affinity_timeout_seconds,
        });
    }
    if old.selection != new.selection {
        changes.push(Change::Selection {
            old: old.selection,
            new: new.selection,
        });
    }
    if old.health_check_node_port != new.health_check_node_port {
        changes.push(Change::HealthCheckNodePort {
            old: old.health_check_node_port,
            new: new.health_check_node_port,
        });
    }
    changes
}

fn frontends(entry: &Entry) -> BTreeMap<FrontendRef, &Frontend> {
    entry
        .frontends
        .iter()
        .map(|f| {
            let id = FrontendRef {
                kind: f.kind,
                address: f.address,
                port: f.port,
            };
            (id, f)
        })
        .collect()
}

/// The backends of `set` that traffic can reach: none unless some frontend
/// forwards to the set (a set nothing routes to changes nothing, and one
/// that starts being routed to brings all its backends in).
fn routed(entry: &Entry, set: SetKind) -> &[Backend] {
    if routes_to(entry, set) {
        entry.backends.get(set)
    } else {
        &[]
    }
}

/// Whether some frontend of `entry` forwards some class to `set`.
fn routes_to(entry: &Entry, set: SetKind) -> bool {
    entry.frontends.iter().any(|f| {
        classes(&f.routing)
            .iter()
            .any(|(_, r)| matches!(r, Route::Forward { set: s, .. } if *s == set))
    })
}

fn classes(routing: &Routing) -> [(SourceClass, Route); 3] {
    [
        (SourceClass::Node, routing.node),
        (SourceClass::Pods, routing.pods),
        (SourceClass::External, routing.external),
    ]
}

/// Each backend's chance of being picked, by (address, port).
fn shares(backends: &[Backend]) -> BTreeMap<(IpAddr, u16), Share> {
    let slots = slots(backends);
    let total = slots.iter().sum();
    backends
        .iter()
        .zip(slots)
        .map(|(b, slots)| ((b.address, b.port), Share { slots, total }))
        .collect()
}

fn compare_backends(set: SetKind, old: &[Backend], new: &[Backend], changes: &mut Vec<Change>) {
    let old = shares(old);
    let new = shares(new);
    let keys: BTreeSet<(IpAddr, u16)> = old.keys().chain(new.keys()).copied().collect();
    for (address, port) in keys {
        let change = match (old.get(&(address, port)), new.get(&(address, port))) {
            (Some(&old), Some(&new)) if old.same_as(new) => continue,
            (Some(&old), Some(&new)) => Change::BackendShare {
                set,
                address,
                port,
                old,
                new,
            },
            (Some(&share), None) => Change::BackendRemoved {
                set,
                address,
                port,
                share,
            },
            (None, Some(&share)) => Change::BackendAdded {
                set,
                address,
                port,
                share,
            },
            (None, None) => continue,
        };
        changes.push(change);
    }
}

/// Route changes of one frontend, classes with the same change together
/// (in the order node, pods, external).
fn compare_routing(id: FrontendRef, old: &Routing, new: &Routing, changes: &mut Vec<Change>) {
    let mut grouped: Vec<(RouteChange, Vec<SourceClass>)> = Vec::new();
    for ((class, old), (_, new)) in classes(old).into_iter().zip(classes(new)) {
        for change in route_changes(old, new) {
            match grouped.iter_mut().find(|(c, _)| *c == change) {
                Some((_, classes)) => classes.push(class),
                None => grouped.push((change, vec![class])),
            }
        }
    }
    changes.extend(grouped.into_iter().map(|(route, classes)| Change::Route {
        frontend: id,
        classes,
        route,
    }));
}

fn route_changes(old: Route, new: Route) -> Vec<RouteChange> {
    let refusal = |route: Route| match route {
        Route::Reject => Some(Refusal::Reject),
        Route::Drop => Some(Refusal::Drop),
        Route::Forward { .. } => None,
    };
    match (old, new) {
        (
            Route::Forward {
                set: old_set,
                masquerade: old_masquerade,
            },
            Route::Forward {
                set: new_set,
                masquerade,
            },
        ) => {
            let mut changes = Vec::new();
            if old_set != new_set {
                changes.push(RouteChange::BackendSet {
                    old: old_set,
                    new: new_set,
                });
            }
            if old_masquerade != masquerade {
                changes.push(RouteChange::Masquerade { masquerade });
            }
            changes
        }
        _ => match (refusal(old), refusal(new)) {
            (Some(old), Some(new)) if old == new => vec![],
            (Some(old), Some(new)) => vec![RouteChange::RefusalChanged { old, new }],
            (None, Some(refusal)) => vec![RouteChange::StartsRefusing { refusal }],
            (Some(refusal), None) => vec![RouteChange::StopsRefusing { refusal }],
            (None, None) => unreachable!("two forwards are handled above"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{FrontendKind, Routing};

    fn forward(set: SetKind, masquerade: bool) -> Route {
        Route::Forward { set, masquerade }
    }

    fn entry(backends: &[&str], routing: Routing) -> Entry {
        Entry {
            family: Family::Ipv4,
            namespace: "default".into(),
            name: "web".into(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            frontends: vec![Frontend {
                kind: FrontendKind::ClusterIp,
                address: Some("10.96.0.10".parse().unwrap()),
                port: 80,
                allowed_sources: Vec::new(),
                routing,
            }],
            backends: crate::ir::BackendSets {
                cluster: backends
                    .iter()
                    .map(|a| Backend {
                        address: a.parse().unwrap(),
                        port: 8080,
                        weight: 1,
                    })
                    .collect(),
                local: Vec::new(),
            },
            affinity_timeout_seconds: None,
            health_check_node_port: None,
            selection: Default::default(),
        }
    }

    const CLUSTER: Routing = Routing {
        node: Route::Forward {
            set: SetKind::Cluster,
            masquerade: true,
        },
        pods: Route::Forward {
            set: SetKind::Cluster,
            masquerade: false,
        },
        external: Route::Forward {
            set: SetKind::Cluster,
            masquerade: true,
        },
    };

    fn review_of(old: Entry, new: Entry) -> NodeChanges {
        compare_nodes(
            &Ruleset::with_services(None, vec![old]),
            &Ruleset::with_services(None, vec![new]),
        )
    }

    /// Shares compare as probabilities: doubling every weight changes
    /// nothing for traffic.
    #[test]
    fn equal_probabilities_are_no_change() {
        let old = entry(&["10.244.1.1", "10.244.1.2"], CLUSTER);
        let mut new = old.clone();
        for backend in &mut new.backends.cluster {
            backend.weight = 2;
        }
        assert!(review_of(old, new).is_empty());
        assert!(Share { slots: 1, total: 2 }.same_as(Share { slots: 2, total: 4 }));
    }

    /// Losing every endpoint: each backend is gone with its old share,
    /// and every class that was forwarded is now rejected, in one change.
    #[test]
    fn no_endpoints_starts_rejecting_for_every_class() {
        let old = entry(&["10.244.1.1", "10.244.1.2"], CLUSTER);
        let reject = Routing {
            node: Route::Reject,
            pods: Route::Reject,
            external: Route::Reject,
        };
        let node = review_of(old, entry(&[], reject));
        let changes = &node.ports[0].changes;
        assert_eq!(changes.len(), 3, "{changes:#?}");
        assert!(matches!(
            changes[0],
            Change::BackendRemoved {
                share: Share { slots: 1, total: 2 },
                ..
            }
        ));
        let Change::Route { classes, route, .. } = &changes[2] else {
            panic!("expected a route change: {changes:#?}");
        };
        assert_eq!(
            classes,
            &[SourceClass::Node, SourceClass::Pods, SourceClass::External]
        );
        assert_eq!(
            *route,
            RouteChange::StartsRefusing {
                refusal: Refusal::Reject
            }
        );
    }

    /// A set change and a masquerade change of one class are two changes;
    /// classes with the same change are grouped.
    #[test]
    fn forward_changes_split_by_kind_and_group_classes() {
        assert_eq!(
            route_changes(
                forward(SetKind::Cluster, true),
                forward(SetKind::Local, false)
            ),
            vec![
                RouteChange::BackendSet {
                    old: SetKind::Cluster,
                    new: SetKind::Local
                },
                RouteChange::Masquerade { masquerade: false },
            ]
        );
        assert_eq!(
            route_changes(Route::Reject, Route::Drop),
            vec![RouteChange::RefusalChanged {
                old: Refusal::Reject,
                new: Refusal::Drop
            }]
        );
        assert!(route_changes(Route::Drop, Route::Drop).is_empty());
    }

    /// A node on one side only is compared with nothing.
    #[test]
    fn nodes_pair_by_name() {
        let one = |node: &str| {
            Ruleset::with_services(Some(node.into()), vec![entry(&["10.244.1.1"], CLUSTER)])
        };
        let review = review(&[one("a")], &[one("a"), one("b")]);
        let presence: Vec<_> = review.nodes.iter().map(|n| n.presence).collect();
        assert_eq!(presence, vec![Presence::Both, Presence::Added]);
        assert!(review.nodes[0].is_empty());
        assert_eq!(review.nodes[1].ports[0].presence, Presence::Added);
    }
}
