//! An in-memory kernel for knc's tables, so runtime logic (full versus
//! incremental loads, drift repair, cleanup) can be unit-tested without
//! root or nft.
//!
//! [`Fake::apply`] carries out a [`Transaction`]'s operations with nft's
//! semantics and fails where nft would: deleting a missing element, object
//! or (with `delete element`) set, adding elements to a missing set or with
//! a key already holding another value, adding an object that exists with
//! different content. Like nft, a transaction is atomic: on error nothing
//! changes. Not modelled: references (deleting a chain or set still used
//! succeeds), dynamic elements written by packets, and rules appended again
//! by re-declaring an identical chain (knc never re-declares one; the Fake
//! treats it as a no-op).

use std::collections::BTreeMap;

use super::model::{Element, Object, ObjectKind, Table, TableFamily, Tables};
use super::transaction::{Op, Transaction, TransactionKind};

/// The kernel state of knc's tables: for each family, the table if present.
#[derive(Debug, Clone, Default)]
pub struct Fake {
    /// The node of the last full transaction's model.
    node: Option<String>,
    /// Indexed by [`TableFamily`]: `ip`, `ip6`.
    tables: [Option<FakeTable>; 2],
}

/// One present table: objects by name, elements by set name and key.
#[derive(Debug, Clone, Default)]
struct FakeTable {
    objects: BTreeMap<String, Object>,
    elements: BTreeMap<String, BTreeMap<String, Element>>,
}

impl Fake {
    /// A kernel without knc's tables.
    pub fn new() -> Fake {
        Fake::default()
    }

    /// Applies `tx` as `nft -f` would: every operation or, on the first
    /// error, none (the error says which operation failed and why).
    pub fn apply(&mut self, tx: &Transaction) -> Result<(), String> {
        let mut next = self.clone();
        for (i, op) in tx.ops().iter().enumerate() {
            next.op(op)
                .map_err(|e| format!("operation {} of {}: {e}", i + 1, tx.ops().len()))?;
        }
        if tx.kind() == TransactionKind::Full {
            next.node = tx.node().map(str::to_string);
        }
        *self = next;
        Ok(())
    }

    /// The current content, in [`Tables::normalised`] form (objects by kind
    /// and name, elements by key); an absent table is an empty one. Equals
    /// `tables(ir).normalised()` when the kernel holds what `ir` compiles to.
    pub fn tables(&self) -> Tables {
        Tables {
            node: self.node.clone(),
            tables: TableFamily::ALL
                .iter()
                .map(|&family| match &self.tables[family.index()] {
                    Some(table) => table.to_table(family),
                    None => Table::empty(family),
                })
                .collect(),
        }
    }

    /// Whether the table of `family` exists.
    pub fn has_table(&self, family: TableFamily) -> bool {
        self.tables[family.index()].is_some()
    }

    /// Drift: someone deleted element `key` of `set`. False when there was
    /// no such element.
    pub fn delete_element(&mut self, family: TableFamily, set: &str, key: &str) -> bool {
        self.tables[family.index()]
            .as_mut()
            .and_then(|t| t.elements.get_mut(set))
            .is_some_and(|elements| elements.remove(key).is_some())
    }

    /// Drift: someone deleted the table of `family`.
    pub fn delete_table(&mut self, family: TableFamily) {
        self.tables[family.index()] = None;
    }

    /// Drift: someone inserted `rule` at the head of `chain` (nothing
    /// happens when there is no such chain).
    pub fn insert_rule(&mut self, family: TableFamily, chain: &str, rule: &str) {
        let chain = self.tables[family.index()]
            .as_mut()
            .and_then(|t| t.objects.get_mut(chain));
        if let Some(Object::Chain { rules, .. }) = chain {
            rules.insert(0, rule.to_string());
        }
    }

    fn op(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::ReplaceTable(table) => {
                let mut fresh = FakeTable::default();
                fresh.add_objects(&table.objects)?;
                for (set, elements) in &table.elements {
                    fresh.add_elements(set, elements)?;
                }
                self.tables[table.family.index()] = Some(fresh);
                Ok(())
            }
            Op::AddObjects { family, objects } => self.tables[family.index()]
                .get_or_insert_with(FakeTable::default)
                .add_objects(objects),
            Op::AddElements {
                family,
                set,
                elements,
            } => self.present(*family)?.add_elements(set, elements),
            Op::DeleteElements { family, set, keys } => {
                self.present(*family)?.delete_elements(set, keys)
            }
            Op::DeleteObject { family, kind, name } => {
                self.present(*family)?.delete_object(*kind, name)
            }
            Op::DeleteTable(family) => {
                self.tables[family.index()] = None;
                Ok(())
            }
        }
    }

    fn present(&mut self, family: TableFamily) -> Result<&mut FakeTable, String> {
        self.tables[family.index()]
            .as_mut()
            .ok_or_else(|| format!("no table {} knc", family.as_str()))
    }
}

impl FakeTable {
    fn add_objects(&mut self, objects: &[Object]) -> Result<(), String> {
        for object in objects {
            match self.objects.get(object.name()) {
                Some(existing) if existing == object => {}
                Some(existing) => {
                    return Err(format!(
                        "{} {} exists with different content",
                        existing.kind().as_str(),
                        object.name()
                    ))
                }
                None => {
                    self.objects
                        .insert(object.name().to_string(), object.clone());
                }
            }
        }
        Ok(())
    }

    /// The elements of set or map `set`, which must exist.
    fn set(&mut self, set: &str) -> Result<&mut BTreeMap<String, Element>, String> {
        match self.objects.get(set).map(Object::kind) {
            Some(ObjectKind::Set | ObjectKind::Map) => {
                Ok(self.elements.entry(set.into()).or_default())
            }
            _ => Err(format!("no set or map {set}")),
        }
    }

    fn add_elements(&mut self, set: &str, elements: &[Element]) -> Result<(), String> {
        let present = self.set(set)?;
        for element in elements {
            match present.get(element.key()) {
                Some(old) if old.value() != element.value() => {
                    return Err(format!(
                        "element {} of {set} exists with another value",
                        element.key()
                    ))
                }
                Some(_) => {}
                None => {
                    present.insert(element.key().to_string(), element.clone());
                }
            }
        }
        Ok(())
    }

    fn delete_elements(&mut self, set: &str, keys: &[String]) -> Result<(), String> {
        let present = self.set(set)?;
        for key in keys {
            if present.remove(key).is_none() {
                return Err(format!("no element {key} in {set}"));
            }
        }
        Ok(())
    }

    fn delete_object(&mut self, kind: ObjectKind, name: &str) -> Result<(), String> {
        match self.objects.get(name) {
            Some(object) if object.kind() == kind => {
                self.objects.remove(name);
                self.elements.remove(name);
                Ok(())
            }
            _ => Err(format!("no {} {name}", kind.as_str())),
        }
    }

    fn to_table(&self, family: TableFamily) -> Table {
        let mut objects: Vec<Object> = self.objects.values().cloned().collect();
        objects.sort_by(|a, b| (a.kind(), a.name()).cmp(&(b.kind(), b.name())));
        Table {
            family,
            objects,
            elements: self
                .elements
                .iter()
                .filter(|(_, elements)| !elements.is_empty())
                .map(|(set, elements)| (set.clone(), elements.values().cloned().collect()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::back::nft::tables;
    use crate::back::nft::testing::{generated_pair, ruleset, service};

    fn loaded(model: &Tables) -> Fake {
        let mut fake = Fake::new();
        fake.apply(&Transaction::replace(model)).expect("replace");
        fake
    }

    #[test]
    fn a_replace_loads_the_model() {
        let model = tables(&ruleset(vec![service("a", "10.96.0.1", &["10.244.1.1"])]));
        let fake = loaded(&model);
        assert_eq!(fake.tables(), model.normalised());
        assert!(fake.has_table(TableFamily::Ip) && fake.has_table(TableFamily::Ip6));
    }

    /// Replace(old) then update(old, new) leaves what replace(new) does,
    /// over generated changes of every kind the layout sees.
    #[test]
    fn an_update_on_top_of_old_equals_a_replace_with_new() {
        let mut incremental = 0;
        for seed in 0..60 {
            let (old, new) = generated_pair(seed);
            let (old, new) = (tables(&old), tables(&new));
            let expected = loaded(&new).tables();
            assert_eq!(expected, new.normalised(), "seed {seed}");
            let mut fake = loaded(&old);
            let tx = Transaction::between(Some(&old), &new);
            incremental += usize::from(tx.kind() == TransactionKind::Incremental);
            fake.apply(&tx)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", tx.render()));
            assert_eq!(fake.tables(), expected, "seed {seed}\n{}", tx.render());
        }
        assert!(incremental > 30, "only {incremental} incremental updates");
    }

    #[test]
    fn deleting_a_missing_element_fails_and_changes_nothing() {
        let old = tables(&ruleset(vec![service(
            "a",
            "10.96.0.1",
            &["10.244.1.1", "10.244.1.2"],
        )]));
        let new = tables(&ruleset(vec![service(
            "a",
            "10.96.0.1",
            &["10.244.1.1", "10.244.1.3"],
        )]));
        let mut fake = loaded(&old);
        assert!(fake.delete_element(TableFamily::Ip, "vip-cluster-2", "10.96.0.1 . tcp . 80 . 1"));
        let drifted = fake.tables();
        let tx = Transaction::update(&old, &new).unwrap();
        let error = fake.apply(&tx).unwrap_err();
        assert!(
            error.contains("no element 10.96.0.1 . tcp . 80 . 1"),
            "{error}"
        );
        assert_eq!(
            fake.tables(),
            drifted,
            "a failed transaction changes nothing"
        );
        fake.apply(&Transaction::between(None, &new)).unwrap();
        assert_eq!(fake.tables(), new.normalised());
    }

    #[test]
    fn elements_need_their_table_and_set() {
        let model = tables(&ruleset(vec![service("a", "10.96.0.1", &["10.244.1.1"])]));
        let mut fake = loaded(&model);
        let mut moved = model.clone();
        moved.tables[0]
            .elements
            .entry("hairpin".into())
            .or_default()
            .push(Element::new("10.244.1.9 . 10.244.1.9"));
        let tx = Transaction::update(&model, &moved).unwrap();
        fake.delete_table(TableFamily::Ip);
        assert!(fake.apply(&tx).unwrap_err().contains("no table ip knc"));
        let mut fake = loaded(&model);
        fake.tables[0].as_mut().unwrap().objects.remove("hairpin");
        assert!(fake
            .apply(&tx)
            .unwrap_err()
            .contains("no set or map hairpin"));
    }

    #[test]
    fn an_object_with_other_content_cannot_be_added() {
        let model = tables(&ruleset(vec![service("a", "10.96.0.1", &["10.244.1.1"])]));
        let mut fake = loaded(&model);
        fake.insert_rule(TableFamily::Ip, "services", "counter");
        let objects = vec![model.tables[0].object("services").unwrap().clone()];
        let mut next = fake.clone();
        let error = next
            .op(&Op::AddObjects {
                family: TableFamily::Ip,
                objects: objects.clone(),
            })
            .unwrap_err();
        assert!(error.contains("chain services exists with different content"));
        let mut clean = loaded(&model);
        clean
            .op(&Op::AddObjects {
                family: TableFamily::Ip,
                objects,
            })
            .expect("identical re-declaration");
    }

    #[test]
    fn removal_leaves_nothing_and_works_twice() {
        let model = tables(&ruleset(vec![service("a", "10.96.0.1", &["10.244.1.1"])]));
        let mut fake = loaded(&model);
        fake.apply(&Transaction::remove()).unwrap();
        fake.apply(&Transaction::remove()).unwrap();
        assert!(!fake.has_table(TableFamily::Ip) && !fake.has_table(TableFamily::Ip6));
        assert_eq!(fake.tables().tables[0], Table::empty(TableFamily::Ip));
    }

    #[test]
    fn dynamic_objects_are_known() {
        let mut s = service("a", "10.96.0.1", &["10.244.1.1"]);
        s.affinity_timeout_seconds = Some(60);
        let model = tables(&ruleset(vec![s]));
        let ip = &model.tables[0];
        let memory = ip
            .objects
            .iter()
            .find(|o| o.name().starts_with("affinity-memory-"))
            .expect("a memory map");
        assert!(memory.is_dynamic());
        assert!(!ip.object("frontends").unwrap().is_dynamic());
        assert!(!ip.object("affinity-backends").unwrap().is_dynamic());
        assert_eq!(ip.element_count("frontends"), 1);
        assert_eq!(ip.element_count(memory.name()), 0);
    }
}
