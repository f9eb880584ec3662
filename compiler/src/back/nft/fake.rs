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
