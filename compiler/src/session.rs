//! Compiling the same inputs again and again, as a node agent does, at
//! the cost of what changed between two compiles.
//!
//! A [`Session`] gives exactly what [`compile::compile`] gives for the
//! same files and settings. Its documents come from a [`front::Cache`],
//! so only changed documents are parsed. And when the only changed
//! documents are EndpointSlice or Endpoints objects that changed in place
//! (same position, kind, namespace and name: endpoint churn), the model is
//! the last one with those Services' endpoints joined again, and the IR the
//! last one with those Services lowered again; anything else (a Service,
//! Node or configuration changed, documents added, removed or moved, a
//! diagnostic anywhere, a contested frontend) compiles everything, from the
//! cached documents.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::compile::{self, compile_loaded, Compiled, Failure, NodeChoice, Settings};
use crate::front::{self, Diagnostic, Document, Loaded, SourceFile};
use crate::ir::Ruleset;
use crate::kinds::{self, endpoints_owner, Object};
use crate::lower;
use crate::model::Cluster;

/// A compiler that remembers its last compile (see the module docs).
#[derive(Default)]
pub struct Session {
    cache: front::Cache,
    last: Option<Last>,
    /// How the last compile was done.
    path: Path,
}

/// How a [`Session`] compile was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Path {
    /// Everything after loading was done again.
    #[default]
    Full,
    /// Only the Services whose endpoints changed were joined and lowered
    /// again.
    Endpoints,
    /// Nothing changed since the last compile.
    Unchanged,
}

impl Path {
    /// How logs say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Full => "everything compiled",
            Path::Endpoints => "changed endpoints only",
            Path::Unchanged => "nothing changed",
        }
    }
}

/// A successful compile with no diagnostics, kept for the next one.
struct Last {
    settings: Settings,
    node: NodeChoice,
    /// The objects of the loaded documents, in order.
    objects: Vec<Arc<Object>>,
    /// The endpoints documents (indexes) of each Service.
    owners: HashMap<(String, String), Vec<usize>>,
    cluster: Arc<Cluster>,
    rulesets: Vec<Ruleset>,
    skipped: std::collections::BTreeMap<String, usize>,
}

impl Session {
    /// [`compile::compile`], reusing what the last call did when it can.
    pub fn compile(
        &mut self,
        files: &[SourceFile],
        problems: Vec<Diagnostic>,
        settings: &Settings,
        node: &NodeChoice,
    ) -> Result<Compiled, Failure> {
        self.load(files);
        self.compile_loaded(problems, settings, node)
    }

    /// The first half of [`Session::compile`]: parsing and typing the
    /// documents that changed (a caller that times phases calls the two
    /// halves itself).
    pub fn load(&mut self, files: &[SourceFile]) {
        self.cache.load(files);
    }

    /// The second half of [`Session::compile`]: the model and the IR of
    /// what [`Session::load`] loaded.
    pub fn compile_loaded(
        &mut self,
        problems: Vec<Diagnostic>,
        settings: &Settings,
        node: &NodeChoice,
    ) -> Result<Compiled, Failure> {
        let (loaded, changed) = (self.cache.loaded(), self.cache.changed());
        if problems.is_empty() && loaded.diagnostics.is_empty() {
            if let Some((compiled, path)) = again(&mut self.last, loaded, changed, settings, node) {
                self.path = path;
                return Ok(compiled);
            }
        }
        self.last = None;
        self.path = Path::Full;
        let (compiled, contested) = compile_loaded(loaded, problems, settings, node)?;
        if compiled.warnings.is_empty() && !contested {
            self.last = Some(Last {
                settings: settings.clone(),
                node: node.clone(),
                objects: loaded.documents.iter().map(|d| d.object.clone()).collect(),
                owners: owners(loaded),
                cluster: compiled.cluster.clone(),
                rulesets: compiled.rulesets.clone(),
                skipped: compiled.skipped.clone(),
            });
        }
        Ok(compiled)
    }

    /// How the last [`Session::compile`] was done.
    pub fn path(&self) -> Path {
        self.path
    }

    /// How many documents the last compile parsed (the rest came from the
    /// cache).
    pub fn parsed(&self) -> usize {
        self.cache.parsed()
    }
}

/// The endpoints documents of each Service, by index.
fn owners(loaded: &Loaded) -> HashMap<(String, String), Vec<usize>> {
    let mut owners: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, doc) in loaded.documents.iter().enumerate() {
        if let Some((namespace, name)) = endpoints_owner(&doc.object) {
            owners
                .entry((namespace.to_owned(), name.to_owned()))
                .or_default()
                .push(i);
        }
    }
    owners
}

/// The compile of `loaded` from the `last` one, when only endpoints
/// objects changed in place (`changed`, when the cache knows); `None`
/// otherwise (and then the last compile may be forgotten).
fn again(
    last_compile: &mut Option<Last>,
    loaded: &Loaded,
    changed: Option<&[usize]>,
    settings: &Settings,
    node: &NodeChoice,
) -> Option<(Compiled, Path)> {
    let last = last_compile.as_mut()?;
    if last.settings != *settings
        || last.node != *node
        || last.objects.len() != loaded.documents.len()
    {
        return None;
    }
    let changed = changed_documents(&last.objects, &loaded.documents, changed)?;
    let keys: BTreeSet<(String, String)> = changed
        .iter()
        .flat_map(|c| [c.was.clone(), c.is.clone()])
        .collect();
    if !keys.is_empty() {
        // The owners' index follows slices that changed Service.
        for c in &changed {
            if c.was != c.is {
                if let Some(docs) = last.owners.get_mut(&c.was) {
                    docs.retain(|&d| d != c.index);
                }
                let docs = last.owners.entry(c.is.clone()).or_default();
                docs.push(c.index);
                docs.sort_unstable();
            }
            last.objects[c.index] = loaded.documents[c.index].object.clone();
        }
        let mut documents: Vec<usize> = keys
            .iter()
            .filter_map(|key| last.owners.get(key))
            .flatten()
            .copied()
            .collect();
        documents.sort_unstable();
        documents.dedup();
        let cluster = Arc::make_mut(&mut last.cluster);
        let mut diagnostics = Vec::new();
        kinds::refresh_endpoints(cluster, loaded, &documents, &keys, &mut diagnostics);
        let mut rulesets = Vec::with_capacity(last.rulesets.len());
        if diagnostics.is_empty() {
            let mut options = compile::options(settings);
            for old in &last.rulesets {
                options.node = old.node.clone();
                match lower::relower(cluster, &options, old, &keys) {
                    Ok(Some(ruleset)) => rulesets.push(ruleset),
                    _ => break,
                }
            }
        }
        if rulesets.len() != last.rulesets.len() {
            // The model was changed in place: it is not the last one any more.
            *last_compile = None;
            return None;
        }
        last.rulesets = rulesets;
    }
    let path = if keys.is_empty() {
        Path::Unchanged
    } else {
        Path::Endpoints
    };
    let compiled = Compiled {
        rulesets: last.rulesets.clone(),
        warnings: Vec::new(),
        skipped: last.skipped.clone(),
        cluster: last.cluster.clone(),
    };
    Some((compiled, path))
}

/// An endpoints document that changed in place, and the Service it was
/// and is for.
struct Change {
    index: usize,
    was: (String, String),
    is: (String, String),
}

/// The endpoints documents that differ between `old` and `new` (lists of
/// the same length; `hint` names the indexes that may differ, when
/// known); `None` when anything else differs: another kind of document,
/// or one whose kind, namespace or name changed.
fn changed_documents(
    old: &[Arc<Object>],
    new: &[Document],
    hint: Option<&[usize]>,
) -> Option<Vec<Change>> {
    let all: Vec<usize>;
    let indexes = match hint {
        Some(hint) => hint,
        None => {
            all = (0..new.len()).collect();
            &all
        }
    };
    let mut changed = Vec::new();
    for &i in indexes {
        let (was, is) = (&old[i], &new[i].object);
        if Arc::ptr_eq(was, is) {
            continue;
        }
        let same_kind = matches!(
            (&**was, &**is),
            (Object::EndpointSlice(_), Object::EndpointSlice(_))
                | (Object::Endpoints(_), Object::Endpoints(_))
        );
        let identity = |object: &Object| {
            object
                .metadata()
                .map(|m| (m.namespace.clone(), m.name.clone()))
        };
        if !same_kind || identity(was) != identity(is) {
            return None;
        }
        let owner = |object: &Object| {
            endpoints_owner(object).map(|(ns, name)| (ns.to_owned(), name.to_owned()))
        };
        changed.push(Change {
            index: i,
            was: owner(was)?,
            is: owner(is)?,
        });
    }
    Some(changed)
}
