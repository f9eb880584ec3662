//! The typed model of what knc puts in the kernel: tables of sets, maps and
//! chains plus the elements of the sets and maps.
//!
//! Every object renders itself as the text `nft -f` reads, so the
//! transactions built from the model ([`super::Transaction`]) and the
//! in-memory kernel ([`super::Fake`]) work on objects, never on text.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::ir::Family;

/// Everything knc puts in the kernel for one node: one table per family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tables {
    /// The node the ruleset was compiled for (`None`: any node). Written to
    /// the header comment; an incremental update needs the same node.
    pub node: Option<String>,
    /// `tables[0]` is the `ip` table, `tables[1]` the `ip6` one, always both.
    pub tables: Vec<Table>,
}

impl Tables {
    /// The table of `family`.
    pub fn table(&self, family: TableFamily) -> Option<&Table> {
        self.tables.iter().find(|t| t.family == family)
    }

    /// The same content in a canonical order: objects by kind and name,
    /// elements by key, sets without elements left out of `elements`. Two
    /// models that load the same kernel state are equal once normalised;
    /// [`super::Fake::tables`] returns this form.
    pub fn normalised(&self) -> Tables {
        Tables {
            node: self.node.clone(),
            tables: self.tables.iter().map(Table::normalised).collect(),
        }
    }
}

/// knc's table of one family: its objects in declaration order and the
/// elements of its sets and maps, by set name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `ip` or `ip6`.
    pub family: TableFamily,
    /// Sets and maps, then chains, in the order they are declared.
    pub objects: Vec<Object>,
    /// Elements by set or map name, in the order they are added.
    pub elements: BTreeMap<String, Vec<Element>>,
}

impl Table {
    /// An empty table of `family` (what the kernel holds when it is absent).
    pub fn empty(family: TableFamily) -> Table {
        Table {
            family,
            objects: Vec::new(),
            elements: BTreeMap::new(),
        }
    }

    /// The object called `name`.
    pub fn object(&self, name: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.name() == name)
    }

    /// How many elements the set or map `name` holds.
    pub fn element_count(&self, name: &str) -> usize {
        self.elements.get(name).map_or(0, Vec::len)
    }

    /// See [`Tables::normalised`].
    pub fn normalised(&self) -> Table {
        let mut objects = self.objects.clone();
        objects.sort_by(|a, b| (a.kind(), a.name()).cmp(&(b.kind(), b.name())));
        let elements = self
            .elements
            .iter()
            .filter(|(_, elements)| !elements.is_empty())
            .map(|(name, elements)| {
                let mut elements = elements.clone();
                elements.sort_by(|a, b| a.key().cmp(b.key()));
                (name.clone(), elements)
            })
            .collect();
        Table {
            family: self.family,
            objects,
            elements,
        }
    }

    /// The lines inside `table F knc { … }`: every object, in order.
    pub(super) fn write_objects(&self, out: &mut String) {
        for object in &self.objects {
            object.write_to(out);
        }
    }
}

/// The address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableFamily {
    /// `table ip knc`.
    Ip,
    /// `table ip6 knc`.
    Ip6,
}

impl TableFamily {
    /// Both families, in the order knc writes them.
    pub const ALL: [TableFamily; 2] = [TableFamily::Ip, TableFamily::Ip6];

    /// The nft spelling: `ip` or `ip6`.
    pub fn as_str(self) -> &'static str {
        match self {
            TableFamily::Ip => "ip",
            TableFamily::Ip6 => "ip6",
        }
    }

    /// The table family holding `family`'s rules.
    pub fn of(family: Family) -> TableFamily {
        match family {
            Family::Ipv4 => TableFamily::Ip,
            Family::Ipv6 => TableFamily::Ip6,
        }
    }

    /// Index in [`Tables::tables`].
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// A top-level object of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A named set; `spec` is the text inside its braces, e.g.
    /// `type ipv4_addr; flags interval;`.
    Set { name: String, spec: String },
    /// A named map; `spec` as for sets.
    Map { name: String, spec: String },
    /// A chain; `hook` (e.g. `type nat hook prerouting priority -100;
    /// policy accept;`) makes it a base chain.
    Chain {
        name: String,
        hook: Option<String>,
        rules: Vec<String>,
    },
}

impl Object {
    /// The object's name, unique in its table.
    pub fn name(&self) -> &str {
        match self {
            Object::Set { name, .. } | Object::Map { name, .. } | Object::Chain { name, .. } => {
                name
            }
        }
    }

    /// Set, map or chain.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Set { .. } => ObjectKind::Set,
            Object::Map { .. } => ObjectKind::Map,
            Object::Chain { .. } => ObjectKind::Chain,
        }
    }

    /// Whether this is a set or map with `flags dynamic`: packets write its
    /// elements (the affinity map), so they are not part of the model and a
    /// runtime comparing live state must ignore them.
    pub fn is_dynamic(&self) -> bool {
        match self {
            Object::Set { spec, .. } | Object::Map { spec, .. } => spec
                .split(';')
                .filter_map(|part| part.trim().strip_prefix("flags "))
                .any(|flags| flags.split(',').any(|f| f.trim() == "dynamic")),
            Object::Chain { .. } => false,
        }
    }

    /// Appends the object's declaration as a line (or, for a chain, lines)
    /// inside `table F knc { … }`.
    pub(super) fn write_to(&self, out: &mut String) {
        match self {
            Object::Set { name, spec } | Object::Map { name, spec } => {
                let _ = writeln!(out, "\t{} {name} {{ {spec} }}", self.kind().as_str());
            }
            Object::Chain { name, hook, rules } => {
                let _ = writeln!(out, "\tchain {name} {{");
                for line in hook.iter().chain(rules) {
                    out.push_str("\t\t");
                    out.push_str(line);
                    out.push('\n');
                }
                out.push_str("\t}\n");
            }
        }
    }
}

/// What kind of object an [`Object`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// A named set.
    Set,
    /// A named map.
    Map,
    /// A chain.
    Chain,
}

impl ObjectKind {
    /// The nft keyword: `set`, `map` or `chain`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Set => "set",
            ObjectKind::Map => "map",
            ObjectKind::Chain => "chain",
        }
    }
}

/// One element of a set or map: the key, an optional comment and, for
/// maps, the value. The key identifies the element within its set.
///
/// A node agent keeps its whole ruleset's model (hundreds of thousands of
/// elements) in memory, so the key and value share one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The key, then the value of a map element.
    text: Box<str>,
    /// Where the key ends in `text`.
    key_len: u32,
    mapping: bool,
    comment: Option<Box<str>>,
}

impl Element {
    /// A set element.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        Element {
            key_len: u32::try_from(key.len()).expect("an element key under 4 GiB"),
            text: key.into_boxed_str(),
            mapping: false,
            comment: None,
        }
    }

    /// A map element: `key : value`.
    pub fn mapping(key: impl Into<String>, value: impl Into<String>) -> Self {
        let mut text: String = key.into();
        let key_len = u32::try_from(text.len()).expect("an element key under 4 GiB");
        text.push_str(&value.into());
        Element {
            text: text.into_boxed_str(),
            key_len,
            mapping: true,
            comment: None,
        }
    }

    /// The element with a comment. Callers keep comment text to a safe
    /// alphabet (knc's builder does).
    pub fn with_comment(mut self, comment: String) -> Self {
        self.comment = Some(comment.into_boxed_str());
        self
    }

    /// The key, as nft writes it (e.g. `10.96.0.1 . tcp . 80`).
    pub fn key(&self) -> &str {
        &self.text[..self.key_len as usize]
    }

    /// The comment, if any.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The value of a map element.
    pub fn value(&self) -> Option<&str> {
        self.mapping.then(|| &self.text[self.key_len as usize..])
    }

    /// Appends the element as its `Display` form writes it, without a
    /// string per element.
    pub(super) fn write_to(&self, out: &mut String) {
        out.push_str(self.key());
        if let Some(comment) = &self.comment {
            out.push_str(" comment \"");
            out.push_str(comment);
            out.push('"');
        }
        if let Some(value) = self.value() {
            out.push_str(" : ");
            out.push_str(value);
        }
    }
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())?;
        if let Some(comment) = &self.comment {
            write!(f, " comment \"{comment}\"")?;
        }
        if let Some(value) = self.value() {
            write!(f, " : {value}")?;
        }
        Ok(())
    }
}
