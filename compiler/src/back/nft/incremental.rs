//! The transaction between two IR rulesets worked out from what changed
//! between them, not from both whole models: for a node agent whose inputs
//! change one Service at a time, this costs what the change costs.
//!
//! In knc's layout an IR entry (one Service port) owns its elements: its
//! frontends' keys in the dispatch maps, its slots in the backend maps, its
//! affinity and firewall elements. Shared are the objects (chains, sets and
//! maps, made for the features entries use: routings, slot groups,
//! affinity timeouts) and the `hairpin` set (one element per backend
//! address, whoever's backend it is). So when the changed entries use the
//! same features before and after, and nothing outside the entries
//! changed, the new tables are the old ones with the changed entries'
//! elements replaced, and hairpin elements kept while anyone uses them.
//! Otherwise (and for entries with session affinity, whose chains and
//! numbering involve the other entries) [`update_tables`] declines and the
//! caller compares whole models.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use super::model::{Element, Table, TableFamily, Tables};
use super::transaction::Op;
use super::{
    backends_map, dnat_chain, features, hairpin_candidates, hairpin_element, FamilyEmitter,
    Transaction,
};
use crate::ir::{Entry, Family, Ruleset};

/// The set whose elements several entries may share.
const HAIRPIN: &str = "hairpin";

/// `old_tables` (the model of `old`) turned into the model of `new`, and
/// the transaction that does the same to a kernel holding them; or
/// `old_tables` back when the change reaches beyond entries' own elements.
#[allow(clippy::result_large_err)]
pub fn update_tables(
    old: &Ruleset,
    old_tables: Tables,
    new: &Ruleset,
) -> Result<(Tables, Transaction), Tables> {
    if !same_outside_entries(old, new) || old_tables.node != new.node {
        return Err(old_tables);
    }
    let (before, after) = changed_entries(&old.services, &new.services);
    let affinity = |e: &&Arc<Entry>| e.affinity_timeout_seconds.is_some();
    if before.iter().any(affinity) || after.iter().any(affinity) {
        return Err(old_tables);
    }
    let mut plan = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        let mini = |entries: &[&Arc<Entry>]| Ruleset {
            services: entries
                .iter()
                .filter(|e| e.family == family)
                .map(|e| Arc::clone(e))
                .collect(),
            cluster_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            cluster_ips: Vec::new(),
            ..new.clone_without_services()
        };
        let (old_mini, new_mini) = (mini(&before), mini(&after));
        let mut was = FamilyEmitter::new(&old_mini, family);
        let mut is = FamilyEmitter::new(&new_mini, family);
        was.collect();
        is.collect();
        let table_family = TableFamily::of(family);
        let Some(table) = old_tables.table(table_family) else {
            return Err(old_tables);
        };
        if !same_features(&was, &is) && !still_the_same_objects(&was, &is, table, new, &after) {
            return Err(old_tables);
        }
        let shared = Shared {
            new,
            family,
            changed: &after,
        };
        plan.push((
            table_family,
            element_ops(table, &was.elements, &is.elements, &shared),
        ));
    }
    let mut tables = old_tables;
    let mut ops = Vec::new();
    for (family, (deletes, adds)) in plan {
        let table = tables
            .tables
            .iter_mut()
            .find(|t| t.family == family)
            .expect("checked above");
        for (set, keys) in deletes {
            remove_elements(table, &set, &keys);
            ops.push(Op::DeleteElements { family, set, keys });
        }
        for (set, elements) in adds {
            table
                .elements
                .entry(set.clone())
                .or_default()
                .extend(elements.iter().cloned());
            ops.push(Op::AddElements {
                family,
                set,
                elements,
            });
        }
    }
    // Deletes first, then adds, whatever the family: a changed map value
    // is its old element deleted and the new one added.
    ops.sort_by_key(|op| matches!(op, Op::AddElements { .. }));
    let transaction = Transaction::incremental(new.node.clone(), ops);
    Ok((tables, transaction))
}

/// Everything but the entries is the same.
fn same_outside_entries(old: &Ruleset, new: &Ruleset) -> bool {
    old.clone_without_services() == new.clone_without_services()
}

impl Ruleset {
    /// This ruleset with no entries.
    fn clone_without_services(&self) -> Ruleset {
        Ruleset {
            version: self.version,
            node: self.node.clone(),
            cluster_cidrs: self.cluster_cidrs.clone(),
            local_detector: self.local_detector.clone(),
            service_cidrs: self.service_cidrs.clone(),
            cluster_ips: self.cluster_ips.clone(),
            node_addresses: self.node_addresses.clone(),
            nodeport_scope: self.nodeport_scope.clone(),
            services: Vec::new(),
        }
    }
}

/// The entries of `old` and of `new` that differ, or exist in one only.
/// Both lists are in entry order (lowering sorts them).
#[allow(clippy::type_complexity)]
fn changed_entries<'a>(
    old: &'a [Arc<Entry>],
    new: &'a [Arc<Entry>],
) -> (Vec<&'a Arc<Entry>>, Vec<&'a Arc<Entry>>) {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) => entry_key(a).cmp(&entry_key(b)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                before.push(&old[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                after.push(&new[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if !Arc::ptr_eq(&old[i], &new[j]) && old[i] != new[j] {
                    before.push(&old[i]);
                    after.push(&new[j]);
                }
                i += 1;
                j += 1;
            }
        }
    }
    (before, after)
}

fn entry_key(e: &Entry) -> (Family, &str, &str, &str, crate::ir::Protocol) {
    (e.family, &e.namespace, &e.name, &e.port_name, e.protocol)
}

/// The changed entries need the same chains, sets and maps before and
/// after (so the whole table needs the same ones), and none of them has
/// session affinity: an affinity port's number and memory shard depend on
/// the other ports (collisions are resolved in IR order), and it has
/// chains of its own; those changes take the comparison of whole models.
fn same_features(was: &FamilyEmitter<'_>, is: &FamilyEmitter<'_>) -> bool {
    let no_affinity = |e: &FamilyEmitter<'_>| {
        e.affinity_lookups.is_empty() && e.affinity_maps.is_empty() && e.affinity_chains.is_empty()
    };
    was.routes.keys().eq(is.routes.keys())
        && was.groups == is.groups
        && was.pickers == is.pickers
        && no_affinity(was)
        && no_affinity(is)
}

/// Whether the table's objects stay the same although the changed entries
/// use other groups or route chains than before (a Service's endpoint
/// count changed, say): every one they use now is in the table already,
/// and every one they no longer use is still used by another entry.
fn still_the_same_objects(
    was: &FamilyEmitter<'_>,
    is: &FamilyEmitter<'_>,
    table: &Table,
    new: &Ruleset,
    changed: &[&Arc<Entry>],
) -> bool {
    let no_affinity = |e: &FamilyEmitter<'_>| {
        e.affinity_lookups.is_empty() && e.affinity_maps.is_empty() && e.affinity_chains.is_empty()
    };
    if !no_affinity(was) || !no_affinity(is) {
        return false;
    }
    let declared = |name: &str| table.object(name).is_some();
    let added_ok = is
        .groups
        .difference(&was.groups)
        .all(|g| declared(&backends_map(*g)))
        && is
            .pickers
            .difference(&was.pickers)
            .all(|(g, remembers)| declared(&dnat_chain(*g, *remembers)))
        && is
            .routes
            .iter()
            .filter(|(key, _)| !was.routes.contains_key(*key))
            .all(|(_, name)| declared(name));
    if !added_ok {
        return false;
    }
    let gone_groups: Vec<_> = was.groups.difference(&is.groups).collect();
    let gone_pickers: Vec<_> = was.pickers.difference(&is.pickers).collect();
    let gone_routes: Vec<_> = was
        .routes
        .keys()
        .filter(|key| !is.routes.contains_key(*key))
        .collect();
    if gone_groups.is_empty() && gone_pickers.is_empty() && gone_routes.is_empty() {
        return true;
    }
    let changed: HashSet<*const Entry> = changed.iter().map(|e| Arc::as_ptr(e)).collect();
    let rest = features(
        new.services
            .iter()
            .filter(|e| !changed.contains(&Arc::as_ptr(e)))
            .map(|e| &**e),
        was.family,
    );
    gone_groups.iter().all(|g| rest.groups.contains(g))
        && gone_pickers.iter().all(|p| rest.pickers.contains(p))
        && gone_routes.iter().all(|k| rest.routes.contains_key(*k))
}

/// What decides whether a hairpin element stays: the new ruleset, and
/// which of its entries changed.
struct Shared<'a> {
    new: &'a Ruleset,
    family: Family,
    changed: &'a [&'a Arc<Entry>],
}

impl Shared<'_> {
    /// Hairpin elements the unchanged entries of the new ruleset need.
    fn hairpin_of_the_rest(&self) -> HashSet<String> {
        let changed: HashSet<*const Entry> = self.changed.iter().map(|e| Arc::as_ptr(e)).collect();
        let unchanged = self
            .new
            .services
            .iter()
            .filter(|e| !changed.contains(&Arc::as_ptr(e)))
            .map(|e| &**e);
        hairpin_candidates(self.new.node.is_some(), unchanged, self.family)
            .iter()
            .map(hairpin_element)
            .collect()
    }
}

/// Element deletes and adds per set that turn `table` into the new table:
/// the changed entries' elements (`was` → `is`), hairpin elements only
/// when nobody else needs them.
type Deletes = Vec<(String, Vec<String>)>;
type Adds = Vec<(String, Vec<Element>)>;

fn element_ops(
    table: &Table,
    was: &BTreeMap<String, Vec<Element>>,
    is: &BTreeMap<String, Vec<Element>>,
    shared: &Shared<'_>,
) -> (Deletes, Adds) {
    let none = Vec::new();
    let names: BTreeSet<&String> = was.keys().chain(is.keys()).collect();
    let (mut deletes, mut adds) = (Vec::new(), Vec::new());
    let mut rest_needs: Option<HashSet<String>> = None;
    for name in names {
        let old: BTreeMap<&str, &Element> = was
            .get(name)
            .unwrap_or(&none)
            .iter()
            .map(|e| (e.key(), e))
            .collect();
        let new: BTreeMap<&str, &Element> = is
            .get(name)
            .unwrap_or(&none)
            .iter()
            .map(|e| (e.key(), e))
            .collect();
        let mut gone: Vec<String> = old
            .iter()
            .filter(|(key, element)| new.get(*key) != Some(*element))
            .map(|(key, _)| key.to_string())
            .collect();
        let mut came: Vec<Element> = new
            .iter()
            .filter(|(key, element)| old.get(*key) != Some(*element))
            .map(|(_, element)| (*element).clone())
            .collect();
        if name == HAIRPIN && !(gone.is_empty() && came.is_empty()) {
            let rest = rest_needs.get_or_insert_with(|| shared.hairpin_of_the_rest());
            let live: HashSet<&str> = table
                .elements
                .get(HAIRPIN)
                .into_iter()
                .flatten()
                .map(Element::key)
                .collect();
            gone.retain(|key| !rest.contains(key) && live.contains(key.as_str()));
            came.retain(|e| !live.contains(e.key()));
        }
        if !gone.is_empty() {
            deletes.push((name.clone(), gone));
        }
        if !came.is_empty() {
            adds.push((name.clone(), came));
        }
    }
    (deletes, adds)
}

/// `keys` taken out of the set `name` of `table`.
fn remove_elements(table: &mut Table, name: &str, keys: &[String]) {
    if let Some(elements) = table.elements.get_mut(name) {
        let keys: HashSet<&str> = keys.iter().map(String::as_str).collect();
        elements.retain(|e| !keys.contains(e.key()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ruleset, service};
    use super::super::{tables, Fake};
    use super::*;

    fn update(old: &Ruleset, new: &Ruleset) -> Option<Transaction> {
        let (got, transaction) = update_tables(old, tables(old), new).ok()?;
        assert_eq!(got.normalised(), tables(new).normalised());
        let mut kernel = Fake::new();
        kernel.apply(&Transaction::replace(&tables(old))).unwrap();
        kernel.apply(&transaction).unwrap();
        assert_eq!(kernel.tables(), tables(new).normalised());
        Some(transaction)
    }

    #[test]
    fn an_endpoint_count_change_stays_incremental_while_the_groups_exist() {
        let a2 = service("a", "10.96.0.1", &["10.1.0.1", "10.1.0.2"]);
        let a3 = service("a", "10.96.0.1", &["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
        let b3 = service("b", "10.96.0.2", &["10.2.0.1", "10.2.0.2", "10.2.0.3"]);
        let c2 = service("c", "10.96.0.3", &["10.3.0.1", "10.3.0.2"]);
        let c3 = service("c", "10.96.0.3", &["10.3.0.1", "10.3.0.2", "10.3.0.3"]);
        let before = ruleset(vec![a2.clone(), b3.clone(), c2.clone()]);
        // a moves to the 3-slot group b uses; c still uses the 2-slot one.
        let middle = ruleset(vec![a3.clone(), b3.clone(), c2]);
        let transaction = update(&before, &middle).expect("incremental");
        assert!(transaction
            .ops()
            .iter()
            .all(|op| matches!(op, Op::AddElements { .. } | Op::DeleteElements { .. })));
        // c leaves the 2-slot group empty: its objects go, a whole-model
        // comparison's job.
        let after = ruleset(vec![a3, b3, c3]);
        assert!(update(&middle, &after).is_none());
    }
}
