//! Incremental updates: the transaction that turns the ruleset compiled
//! from one IR into the one compiled from another, touching only what
//! differs.
//!
//! Because the layout keeps everything per Service in elements of named
//! sets and maps, a changed Service is a handful of `delete element` and
//! `add element` commands; chains and maps are added or deleted only when a
//! new routing or backend-group size appears or the last user of one goes.
//! When anything else differs (a base chain's rules, a declaration), an
//! incremental update would be a guess, so [`emit_delta`] says so and the
//! caller replaces the tables whole with [`super::emit`].

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{write_elements, Element, FamilyEmitter, TABLE};
use crate::ir::{Family, Ruleset};

/// The commands that turn `old`'s ruleset into `new`'s, or `None` when
/// only a full replace is safe. Applying the result to a kernel holding
/// exactly `emit(old)` leaves exactly what `emit(new)` would have.
pub fn emit_delta(old: &Ruleset, new: &Ruleset) -> Option<String> {
    if old.node != new.node {
        return None;
    }
    let mut out =
        String::from("# knc incremental update. Apply only on top of the previous ruleset.\n");
    for family in [Family::Ipv4, Family::Ipv6] {
        let mut before = FamilyEmitter::new(old, family);
        before.collect();
        let mut after = FamilyEmitter::new(new, family);
        after.collect();
        family_delta(&before, &after, &mut out)?;
    }
    Some(out)
}

/// A top-level object of a table: a set, a map or a chain, with its text.
#[derive(Debug, PartialEq, Eq)]
struct Item {
    kind: String,
    text: String,
}

/// Splits a skeleton (as [`FamilyEmitter::skeleton`] writes it: one line
/// per set or map, `chain NAME {` … `}` per chain) into objects by name.
fn items(skeleton: &str) -> BTreeMap<String, Item> {
    let mut items = BTreeMap::new();
    let mut lines = skeleton.lines();
    while let Some(line) = lines.next() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        let mut text = format!("{line}\n");
        if kind == "chain" {
            for body in lines.by_ref() {
                text.push_str(body);
                text.push('\n');
                if body == "\t}" {
                    break;
                }
            }
        }
        items.insert(
            name.to_string(),
            Item {
                kind: kind.to_string(),
                text,
            },
        );
    }
    items
}

fn family_delta(before: &FamilyEmitter, after: &FamilyEmitter, out: &mut String) -> Option<()> {
    let family = after.syntax.family;
    let old_items = items(&before.skeleton());
    let new_items = items(&after.skeleton());
    for (name, item) in &new_items {
        if old_items.get(name).is_some_and(|old| old != item) {
            return None;
        }
    }
    let added: Vec<&Item> = new_items
        .iter()
        .filter(|(name, _)| !old_items.contains_key(*name))
        .map(|(_, item)| item)
        .collect();
    if !added.is_empty() {
        let _ = writeln!(out, "table {family} {TABLE} {{");
        // Sets and maps first: new chains may look them up.
        for item in added.iter().filter(|i| i.kind != "chain") {
            out.push_str(&item.text);
        }
        for item in added.iter().filter(|i| i.kind == "chain") {
            out.push_str(&item.text);
        }
        out.push_str("}\n");
    }

    let no_elements = Vec::new();
    let names: std::collections::BTreeSet<&String> = before
        .elements
        .keys()
        .chain(after.elements.keys())
        .collect();
    let mut additions = String::new();
    for name in names {
        let old = by_key(before.elements.get(name).unwrap_or(&no_elements));
        let new = by_key(after.elements.get(name).unwrap_or(&no_elements));
        if new_items.contains_key(name) && old_items.contains_key(name) {
            let gone = old
                .iter()
                .filter(|(key, element)| new.get(*key) != Some(*element))
                .map(|(key, _)| key.to_string());
            write_elements(out, "delete", family, name, gone);
        }
        if new_items.contains_key(name) {
            let fresh = new
                .iter()
                .filter(|(key, element)| old.get(*key) != Some(*element))
                .map(|(_, element)| element.to_string());
            write_elements(&mut additions, "add", family, name, fresh);
        }
    }
    out.push_str(&additions);

    // Referrers before what they refer to: route chains (jumped to only
    // from elements deleted above), then the dnat chains they jump to, then
    // the sets and maps those look up.
    let mut removed: Vec<(&String, &Item)> = old_items
        .iter()
        .filter(|(name, _)| !new_items.contains_key(*name))
        .collect();
    removed.sort_by_key(|(name, _)| (name.starts_with("dnat-"), name.as_str()));
    for (name, item) in removed.iter().filter(|(_, i)| i.kind == "chain") {
        let _ = writeln!(out, "delete {} {family} {TABLE} {name}", item.kind);
    }
    for (name, item) in removed.iter().filter(|(_, i)| i.kind != "chain") {
        let _ = writeln!(out, "delete {} {family} {TABLE} {name}", item.kind);
    }
    Some(())
}

fn by_key(elements: &[Element]) -> BTreeMap<&str, &Element> {
    elements.iter().map(|e| (e.key.as_str(), e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{
        Backend, BackendSets, Frontend, FrontendKind, NodePortScope, Protocol, Route, Routing,
        ServicePort, SetKind,
    };

    fn service(name: &str, ip: &str, backends: &[&str]) -> ServicePort {
        let forward = Route::Forward {
            set: SetKind::Cluster,
            masquerade: false,
        };
        ServicePort {
            family: Family::Ipv4,
            namespace: "default".into(),
            name: name.into(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            frontends: vec![Frontend {
                kind: FrontendKind::ClusterIp,
                address: Some(ip.parse().unwrap()),
                port: 80,
                allowed_sources: vec![],
                routing: Routing {
                    node: forward,
                    pods: forward,
                    external: forward,
                },
            }],
            backends: BackendSets {
                cluster: backends
                    .iter()
                    .map(|b| Backend {
                        address: b.parse().unwrap(),
                        port: 8080,
                        weight: 1,
                    })
                    .collect(),
                local: vec![],
            },
            affinity_timeout_seconds: None,
            health_check_node_port: None,
        }
    }

    fn ruleset(services: Vec<ServicePort>) -> Ruleset {
        Ruleset {
            node: Some("node1".into()),
            cluster_cidrs: vec![],
            service_cidrs: vec![],
            cluster_ips: services
                .iter()
                .map(|s| s.frontends[0].address.unwrap())
                .collect(),
            node_addresses: vec![],
            nodeport_scope: NodePortScope::AnyLocal,
            services,
        }
    }

    #[test]
    fn changed_backends_touch_only_their_elements() {
        let old = ruleset(vec![
            service("a", "10.96.0.1", &["10.244.1.1", "10.244.1.2"]),
            service("b", "10.96.0.2", &["10.244.1.3", "10.244.1.4"]),
        ]);
        let new = ruleset(vec![
            service("a", "10.96.0.1", &["10.244.1.1", "10.244.1.5"]),
            service("b", "10.96.0.2", &["10.244.1.3", "10.244.1.4"]),
        ]);
        let delta = emit_delta(&old, &new).expect("incremental");
        assert!(
            delta.contains("delete element ip knc vip-cluster-2 {\n\t10.96.0.1 . tcp . 80 . 1,\n}"),
            "{delta}"
        );
        assert!(delta.contains("add element ip knc vip-cluster-2 {\n\t10.96.0.1 . tcp . 80 . 1 : 10.244.1.5 . 8080,\n}"), "{delta}");
        assert!(!delta.contains("10.96.0.2"), "service b untouched: {delta}");
        assert!(
            !delta.contains("table ip knc {}"),
            "no table replace: {delta}"
        );
    }

    #[test]
    fn a_new_group_size_adds_its_chain_and_the_last_user_removes_it() {
        let old = ruleset(vec![service(
            "a",
            "10.96.0.1",
            &["10.244.1.1", "10.244.1.2"],
        )]);
        let new = ruleset(vec![service(
            "a",
            "10.96.0.1",
            &["10.244.1.1", "10.244.1.2", "10.244.1.3"],
        )]);
        let delta = emit_delta(&old, &new).expect("incremental");
        assert!(delta.contains("\tmap vip-cluster-3 {"), "{delta}");
        assert!(delta.contains("\tchain dnat-vip-cluster-3 {"), "{delta}");
        assert!(
            delta.contains("delete chain ip knc dnat-vip-cluster-2\n"),
            "{delta}"
        );
        assert!(
            delta.contains("delete map ip knc vip-cluster-2\n"),
            "{delta}"
        );
        let route_deleted = delta.find("delete chain ip knc vip-cluster-c2").unwrap();
        let chain_deleted = delta
            .find("delete chain ip knc dnat-vip-cluster-2")
            .unwrap();
        let map_deleted = delta.find("delete map").unwrap();
        assert!(
            route_deleted < chain_deleted,
            "route chain before the dnat chain it jumps to"
        );
        assert!(chain_deleted < map_deleted, "chain before the map it uses");
    }

    #[test]
    fn unchanged_input_gives_an_empty_update() {
        let rs = ruleset(vec![service("a", "10.96.0.1", &["10.244.1.1"])]);
        let delta = emit_delta(&rs, &rs).unwrap();
        assert_eq!(
            delta.lines().filter(|l| !l.starts_with('#')).count(),
            0,
            "{delta}"
        );
    }

    #[test]
    fn another_node_needs_a_full_replace() {
        let old = ruleset(vec![]);
        let mut new = ruleset(vec![]);
        new.node = Some("node2".into());
        assert_eq!(emit_delta(&old, &new), None);
    }
}
