//! Transactions: the operations that take the kernel from one model to
//! another, rendered as one `nft -f` input.
//!
//! A full transaction replaces both tables (`table F knc {}` + `delete
//! table` + the whole table, so loading twice equals loading once). An
//! incremental one touches only what differs between two models: because
//! the layout keeps everything per Service in elements of named sets and
//! maps, a changed Service is a handful of `delete element` and `add
//! element` commands, and objects are added or deleted only when a new
//! routing or backend-group size appears or the last user of one goes, or
//! a Service port gains or loses session affinity (its two chains; a
//! changed timeout renames its record chain). The dynamic maps that
//! remember clients are never recreated by an update, so what they
//! remember survives it. When an object both models declare differs (a base chain's rules, a
//! declaration), an incremental update would be a guess, so
//! [`Transaction::update`] says so and the caller replaces the tables.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::model::{Element, Object, ObjectKind, Table, TableFamily, Tables};
use super::{safe_comment, ELEMENTS_PER_COMMAND, TABLE};

/// Whether a transaction replaces the tables whole or edits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    /// Replaces (or deletes) knc's tables: correct whatever the kernel holds.
    Full,
    /// Edits the tables: correct only on top of the model it was computed
    /// from.
    Incremental,
}

/// One operation of a transaction: one nft command, except element
/// operations, which render as one command per [`ELEMENTS_PER_COMMAND`]
/// elements, and the table operations (see each variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `table F knc {}` + `delete table F knc` + `table F knc { … }` + its
    /// `add element` commands: the table as the model says, whatever was
    /// there.
    ReplaceTable(Table),
    /// `table F knc { … }` declaring new objects, sets and maps before
    /// chains (chains may look them up). Creates the table if absent.
    AddObjects {
        family: TableFamily,
        objects: Vec<Object>,
    },
    /// `add element F knc SET { … }`.
    AddElements {
        family: TableFamily,
        set: String,
        elements: Vec<Element>,
    },
    /// `delete element F knc SET { KEY, … }`: fails if a key is absent.
    DeleteElements {
        family: TableFamily,
        set: String,
        keys: Vec<String>,
    },
    /// `delete KIND F knc NAME`: fails if it is absent.
    DeleteObject {
        family: TableFamily,
        kind: ObjectKind,
        name: String,
    },
    /// `table F knc {}` + `delete table F knc`: succeeds when absent.
    DeleteTable(TableFamily),
}

impl Op {
    /// How many top-level nft commands [`Op::render`] writes.
    pub fn command_count(&self) -> usize {
        let chunks = |n: usize| n.div_ceil(ELEMENTS_PER_COMMAND);
        match self {
            Op::ReplaceTable(table) => {
                3 + table
                    .elements
                    .values()
                    .map(|e| chunks(e.len()))
                    .sum::<usize>()
            }
            Op::AddObjects { objects, .. } => usize::from(!objects.is_empty()),
            Op::AddElements { elements, .. } => chunks(elements.len()),
            Op::DeleteElements { keys, .. } => chunks(keys.len()),
            Op::DeleteObject { .. } => 1,
            Op::DeleteTable(_) => 2,
        }
    }

    /// Appends the operation's nft commands to `out`.
    pub fn render(&self, out: &mut String) {
        match self {
            Op::ReplaceTable(table) => {
                let family = table.family.as_str();
                delete_table(out, family);
                let _ = writeln!(out, "table {family} {TABLE} {{");
                table.write_objects(out);
                out.push_str("}\n");
                for (name, elements) in &table.elements {
                    write_elements(out, "add", family, name, elements, Element::write_to);
                }
            }
            Op::AddObjects { family, objects } => {
                if objects.is_empty() {
                    return;
                }
                let _ = writeln!(out, "table {} {TABLE} {{", family.as_str());
                let is_chain = |o: &&Object| o.kind() == ObjectKind::Chain;
                for object in objects.iter().filter(|o| !is_chain(o)) {
                    object.write_to(out);
                }
                for object in objects.iter().filter(is_chain) {
                    object.write_to(out);
                }
                out.push_str("}\n");
            }
            Op::AddElements {
                family,
                set,
                elements,
            } => write_elements(
                out,
                "add",
                family.as_str(),
                set,
                elements,
                Element::write_to,
            ),
            Op::DeleteElements { family, set, keys } => {
                write_elements(out, "delete", family.as_str(), set, keys, |k, out| {
                    out.push_str(k)
                })
            }
            Op::DeleteObject { family, kind, name } => {
                let _ = writeln!(
                    out,
                    "delete {} {} {TABLE} {name}",
                    kind.as_str(),
                    family.as_str()
                );
            }
            Op::DeleteTable(family) => delete_table(out, family.as_str()),
        }
    }
}

/// `table F knc {}` + `delete table F knc`: deletes the table, and
/// succeeds whether or not it existed.
fn delete_table(out: &mut String, family: &str) {
    let _ = writeln!(out, "table {family} {TABLE} {{}}");
    let _ = writeln!(out, "delete table {family} {TABLE}");
}

/// `add element` / `delete element` commands, split so no command exceeds
/// what nft 1.0.6 can send in one netlink attribute; each item rendered
/// straight into `out` (no string per element: a big cluster's ruleset has
/// hundreds of thousands).
fn write_elements<T>(
    out: &mut String,
    verb: &str,
    family: &str,
    name: &str,
    items: &[T],
    write: impl Fn(&T, &mut String),
) {
    for chunk in items.chunks(ELEMENTS_PER_COMMAND) {
        out.push_str(verb);
        out.push_str(" element ");
        out.push_str(family);
        out.push(' ');
        out.push_str(TABLE);
        out.push(' ');
        out.push_str(name);
        out.push_str(" {\n");
        for item in chunk {
            out.push('\t');
            write(item, out);
            out.push_str(",\n");
        }
        out.push_str("}\n");
    }
}

/// The operations taking the kernel from one state to another, applied as
/// one atomic `nft -f` transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    kind: TransactionKind,
    /// The node of the resulting model, for the header comment.
    node: Option<String>,
    ops: Vec<Op>,
    /// Which header comment [`Transaction::render`] starts with.
    header: Header,
}

/// The first line of a rendered transaction: what it is and how to apply it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Generated,
    Incremental,
    Removal,
}

impl Transaction {
    /// Replaces both tables with `new`: correct whatever the kernel holds.
    /// Renders exactly as [`super::emit`] does.
    pub fn replace(new: &Tables) -> Transaction {
        Transaction::replace_owned(new.clone())
    }

    /// [`Transaction::replace`], taking the model by value so a big one is
    /// not copied.
    pub fn replace_owned(new: Tables) -> Transaction {
        Transaction {
            kind: TransactionKind::Full,
            node: new.node,
            ops: new.tables.into_iter().map(Op::ReplaceTable).collect(),
            header: Header::Generated,
        }
    }

    /// The incremental transaction turning a kernel holding exactly `old`
    /// into one holding exactly `new`, or `None` when only a full replace
    /// is safe: the node differs, or an object both declare differs.
    /// Renders exactly as [`super::emit_delta`] does.
    pub fn update(old: &Tables, new: &Tables) -> Option<Transaction> {
        if old.node != new.node {
            return None;
        }
        let mut ops = Vec::new();
        for family in TableFamily::ALL {
            let empty = Table::empty(family);
            let before = old.table(family).unwrap_or(&empty);
            let after = new.table(family).unwrap_or(&empty);
            table_update(before, after, &mut ops)?;
        }
        Some(Transaction {
            kind: TransactionKind::Incremental,
            node: new.node.clone(),
            ops,
            header: Header::Incremental,
        })
    }

    /// An incremental transaction of `ops` (element changes worked out
    /// elsewhere, see [`super::update_tables`]).
    pub(super) fn incremental(node: Option<String>, ops: Vec<Op>) -> Transaction {
        Transaction {
            kind: TransactionKind::Incremental,
            node,
            ops,
            header: Header::Incremental,
        }
    }

    /// [`Transaction::update`] when there is an `old` model and it allows
    /// one, otherwise [`Transaction::replace`].
    pub fn between(old: Option<&Tables>, new: &Tables) -> Transaction {
        old.and_then(|old| Transaction::update(old, new))
            .unwrap_or_else(|| Transaction::replace(new))
    }

    /// Deletes both of knc's tables (`knc cleanup`); succeeds whether or
    /// not they exist.
    pub fn remove() -> Transaction {
        Transaction {
            kind: TransactionKind::Full,
            node: None,
            ops: TableFamily::ALL.map(Op::DeleteTable).to_vec(),
            header: Header::Removal,
        }
    }

    /// Full or incremental.
    pub fn kind(&self) -> TransactionKind {
        self.kind
    }

    /// The node of the model the transaction leaves in the kernel.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The operations, in the order nft applies them.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether the transaction changes nothing (an update between equal
    /// models): a runtime need not call nft.
    pub fn is_empty(&self) -> bool {
        self.ops.iter().all(|op| op.command_count() == 0)
    }

    /// How many top-level nft commands [`Transaction::render`] writes
    /// (each chunk of an element operation counted separately).
    pub fn command_count(&self) -> usize {
        self.ops.iter().map(Op::command_count).sum()
    }

    /// The `nft -f` input: a header comment, then every operation.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self.header {
            Header::Generated => {
                let node = self.node.as_deref().map(safe_comment);
                let _ = writeln!(
                    out,
                    "# Generated by knc for {}. Do not edit: recompile.",
                    node.map_or("any node".to_string(), |n| format!("node {n}"))
                );
            }
            Header::Incremental => out
                .push_str("# knc incremental update. Apply only on top of the previous ruleset.\n"),
            Header::Removal => out.push_str("# knc removal: deletes knc's tables.\n"),
        }
        for op in &self.ops {
            op.render(&mut out);
        }
        out
    }
}

/// Appends to `ops` what turns `before` into `after` (one family), or
/// `None` when an object both declare differs.
fn table_update(before: &Table, after: &Table, ops: &mut Vec<Op>) -> Option<()> {
    let family = after.family;
    let old_objects: BTreeMap<&str, &Object> =
        before.objects.iter().map(|o| (o.name(), o)).collect();
    let new_objects: BTreeMap<&str, &Object> =
        after.objects.iter().map(|o| (o.name(), o)).collect();
    for (name, object) in &new_objects {
        if old_objects.get(name).is_some_and(|old| old != object) {
            return None;
        }
    }
    let added: Vec<&Object> = new_objects
        .iter()
        .filter(|(name, _)| !old_objects.contains_key(*name))
        .map(|(_, object)| *object)
        .collect();
    if !added.is_empty() {
        // Sets and maps first: new chains may look them up.
        let (chains, declarations): (Vec<&Object>, Vec<&Object>) = added
            .into_iter()
            .partition(|o| o.kind() == ObjectKind::Chain);
        let objects = declarations.into_iter().chain(chains).cloned().collect();
        ops.push(Op::AddObjects { family, objects });
    }

    let no_elements = Vec::new();
    let names: BTreeSet<&String> = before
        .elements
        .keys()
        .chain(after.elements.keys())
        .collect();
    let mut additions = Vec::new();
    for name in names {
        let old = by_key(before.elements.get(name).unwrap_or(&no_elements));
        let new = by_key(after.elements.get(name).unwrap_or(&no_elements));
        let declared = new_objects.contains_key(name.as_str());
        if declared && old_objects.contains_key(name.as_str()) {
            let keys: Vec<String> = old
                .iter()
                .filter(|(key, element)| new.get(*key) != Some(*element))
                .map(|(key, _)| key.to_string())
                .collect();
            if !keys.is_empty() {
                ops.push(Op::DeleteElements {
                    family,
                    set: name.clone(),
                    keys,
                });
            }
        }
        if declared {
            let elements: Vec<Element> = new
                .iter()
                .filter(|(key, element)| old.get(*key) != Some(*element))
                .map(|(_, element)| (*element).clone())
                .collect();
            if !elements.is_empty() {
                additions.push(Op::AddElements {
                    family,
                    set: name.clone(),
                    elements,
                });
            }
        }
    }
    ops.append(&mut additions);

    // Referrers before what they refer to: route chains (jumped to only
    // from elements deleted above), then the dnat chains they jump to, then
    // the sets and maps those look up.
    let mut removed: Vec<&Object> = old_objects
        .iter()
        .filter(|(name, _)| !new_objects.contains_key(*name))
        .map(|(_, object)| *object)
        .collect();
    removed.sort_by_key(|o| (o.name().starts_with("dnat-"), o.name()));
    let (chains, declarations): (Vec<&Object>, Vec<&Object>) = removed
        .into_iter()
        .partition(|o| o.kind() == ObjectKind::Chain);
    for object in chains.into_iter().chain(declarations) {
        ops.push(Op::DeleteObject {
            family,
            kind: object.kind(),
            name: object.name().to_string(),
        });
    }
    Some(())
}

fn by_key(elements: &[Element]) -> BTreeMap<&str, &Element> {
    elements.iter().map(|e| (e.key(), e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::back::nft::testing::{generated, ruleset, service};
    use crate::back::nft::{emit, emit_delta, tables};

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
        let tx = Transaction::update(&tables(&old), &tables(&new)).expect("incremental");
        assert_eq!(tx.kind(), TransactionKind::Incremental);
        assert!(tx
            .ops()
            .iter()
            .all(|op| matches!(op, Op::AddElements { .. } | Op::DeleteElements { .. })));
        let delta = tx.render();
        assert_eq!(emit_delta(&old, &new).as_deref(), Some(delta.as_str()));
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
        let tx = Transaction::update(&tables(&old), &tables(&new)).expect("incremental");
        let Some(Op::AddObjects { family, objects }) = tx.ops().first() else {
            panic!("objects added first: {:?}", tx.ops());
        };
        assert_eq!(*family, TableFamily::Ip);
        let kinds: Vec<ObjectKind> = objects.iter().map(Object::kind).collect();
        assert_eq!(
            kinds,
            [ObjectKind::Map, ObjectKind::Chain, ObjectKind::Chain],
            "maps before the chains using them"
        );
        let delta = tx.render();
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
        let tx = Transaction::update(&tables(&rs), &tables(&rs)).unwrap();
        assert!(tx.is_empty());
        assert_eq!(tx.command_count(), 0);
        let delta = tx.render();
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
        let (old, new) = (tables(&old), tables(&new));
        assert_eq!(Transaction::update(&old, &new), None);
        let tx = Transaction::between(Some(&old), &new);
        assert_eq!(tx.kind(), TransactionKind::Full);
        assert_eq!(tx, Transaction::replace(&new));
    }

    #[test]
    fn a_changed_base_chain_needs_a_full_replace() {
        let old = ruleset(vec![service("a", "10.96.0.1", &["10.244.1.1"])]);
        let mut new = old.clone();
        new.nodeport_scope =
            crate::ir::NodePortScope::LocalIn(vec!["172.30.0.1/32".parse().unwrap()]);
        assert_eq!(Transaction::update(&tables(&old), &tables(&new)), None);
    }

    fn sticky(name: &str, ip: &str, backends: &[&str]) -> crate::ir::Entry {
        let mut s = service(name, ip, backends);
        s.affinity_timeout_seconds = Some(60);
        s
    }

    /// The objects of session affinity (the memory map, the dispatch maps,
    /// a Service's lookup and record chains), by name.
    fn affinity_objects(t: &Tables) -> Vec<String> {
        t.tables[0]
            .objects
            .iter()
            .map(|o| o.name().to_string())
            .filter(|n| n.starts_with("affinity"))
            .collect()
    }

    /// A Service gaining session affinity is an incremental update: the
    /// memory and the base chains are there already, so only its chains
    /// and elements are added and no remembered client of another Service
    /// is lost.
    #[test]
    fn gaining_affinity_is_incremental() {
        let old = ruleset(vec![
            service("a", "10.96.0.1", &["10.244.1.1", "10.244.1.2"]),
            sticky("b", "10.96.0.2", &["10.244.1.3"]),
        ]);
        let new = ruleset(vec![
            sticky("a", "10.96.0.1", &["10.244.1.1", "10.244.1.2"]),
            sticky("b", "10.96.0.2", &["10.244.1.3"]),
        ]);
        let tx = Transaction::update(&tables(&old), &tables(&new)).expect("incremental");
        assert!(
            !tx.ops().iter().any(|op| matches!(
                op,
                Op::DeleteObject { name, .. } if name.starts_with("affinity")
            )),
            "{}",
            tx.render()
        );
        let delta = tx.render();
        assert!(
            delta.contains("\tchain dnat-vip-cluster-2-affinity {"),
            "{delta}"
        );
        assert!(delta.contains("add element ip knc affinity-vip-cluster {\n\t10.96.0.1 . tcp . 80 comment \"default/a\" : jump affinity-"), "{delta}");
    }

    /// Backends coming and going (within and across group sizes) change
    /// elements only: the memory and the Service's affinity chains stay,
    /// and with them every remembered client whose backend stays.
    #[test]
    fn backend_changes_keep_the_affinity_objects() {
        let before = ruleset(vec![sticky(
            "a",
            "10.96.0.1",
            &["10.244.1.1", "10.244.1.2"],
        )]);
        let kept = affinity_objects(&tables(&before));
        assert!(
            kept.iter().any(|n| n.starts_with("affinity-memory-")),
            "the memory map: {kept:?}"
        );
        assert!(
            kept.iter().any(|n| n.ends_with("-record-cluster-60")),
            "the Service's record chain: {kept:?}"
        );
        assert_eq!(kept.len(), 8, "{kept:?}");
        for after in [
            &["10.244.1.1", "10.244.1.5"][..],
            &["10.244.1.1", "10.244.1.2", "10.244.1.3"],
            &["10.244.1.2"],
        ] {
            let after = ruleset(vec![sticky("a", "10.96.0.1", after)]);
            assert_eq!(affinity_objects(&tables(&after)), kept);
            let tx = Transaction::update(&tables(&before), &tables(&after)).expect("incremental");
            let delta = tx.render();
            assert!(
                tx.ops().iter().all(|op| match op {
                    Op::AddObjects { objects, .. } =>
                        objects.iter().all(|o| !o.name().starts_with("affinity")),
                    Op::DeleteObject { name, .. } => !name.starts_with("affinity"),
                    _ => true,
                }),
                "{delta}"
            );
            for name in &kept {
                assert!(
                    !delta.contains(&format!(" {name}\n")),
                    "{name} touched: {delta}"
                );
                assert!(
                    !delta.contains(&format!("chain {name} {{")),
                    "{name} touched: {delta}"
                );
            }
            assert!(
                delta.contains("element ip knc affinity-backends {"),
                "{delta}"
            );
        }
    }

    #[test]
    fn replace_renders_emit_and_counts_its_commands() {
        let rs = ruleset(vec![
            service("a", "10.96.0.1", &["10.244.1.1", "10.244.1.2"]),
            service("b", "fd00::1", &["fd00:244::1"]),
        ]);
        let tx = Transaction::replace(&tables(&rs));
        assert_eq!(tx.kind(), TransactionKind::Full);
        let text = tx.render();
        assert_eq!(text, emit(&rs));
        let commands = text
            .lines()
            .filter(|l| !l.starts_with(['#', '\t', '}']))
            .count();
        assert_eq!(tx.command_count(), commands, "{text}");
    }

    #[test]
    fn element_commands_are_chunked_and_counted() {
        let elements: Vec<Element> = (0..600).map(|i| Element::new(i.to_string())).collect();
        let op = Op::AddElements {
            family: TableFamily::Ip6,
            set: "s".into(),
            elements,
        };
        let mut out = String::new();
        op.render(&mut out);
        assert_eq!(op.command_count(), 3);
        assert_eq!(out.matches("add element ip6 knc s {\n").count(), 3);
    }

    #[test]
    fn remove_deletes_both_tables_even_when_absent() {
        let tx = Transaction::remove();
        assert_eq!(tx.kind(), TransactionKind::Full);
        assert_eq!(tx.command_count(), 4);
        assert_eq!(
            tx.render(),
            "# knc removal: deletes knc's tables.\n\
             table ip knc {}\ndelete table ip knc\ntable ip6 knc {}\ndelete table ip6 knc\n"
        );
    }

    #[test]
    fn one_endpoint_change_among_a_thousand_services_is_a_few_commands() {
        let services = |changed: u32| -> Vec<_> {
            (0..1000)
                .map(|id| generated(id, 3, u32::from(id == 500) * changed, false))
                .collect()
        };
        let old = tables(&ruleset(services(0)));
        let new = tables(&ruleset(services(1)));
        let tx = Transaction::update(&old, &new).expect("incremental");
        assert!(tx.command_count() <= 6, "{}", tx.render());
        assert!(!tx.is_empty());
    }
}
