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

use std::collections::BTreeSet;
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
        let loaded = self.cache.load(files);
        if problems.is_empty() && loaded.diagnostics.is_empty() {
            if let Some(compiled) = self.again(&loaded, settings, node) {
                return Ok(compiled);
            }
        }
        self.last = None;
        self.path = Path::Full;
        let (compiled, contested) = compile_loaded(&loaded, problems, settings, node)?;
        if compiled.warnings.is_empty() && !contested {
            self.last = Some(Last {
                settings: settings.clone(),
                node: node.clone(),
                objects: loaded.documents.iter().map(|d| d.object.clone()).collect(),
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

    /// The compile of `loaded` from the last one, when only endpoints
    /// objects changed in place; `None` otherwise (and then the last
    /// compile may be forgotten).
    fn again(
        &mut self,
        loaded: &Loaded,
        settings: &Settings,
        node: &NodeChoice,
    ) -> Option<Compiled> {
        let last = self.last.as_mut()?;
        if last.settings != *settings
            || last.node != *node
            || last.objects.len() != loaded.documents.len()
        {
            return None;
        }
        let changed = changed_documents(&last.objects, &loaded.documents)?;
        let keys: BTreeSet<(String, String)> = changed.iter().map(|(_, key)| key.clone()).collect();
        if !keys.is_empty() {
            let cluster = Arc::make_mut(&mut last.cluster);
            let mut diagnostics = Vec::new();
            kinds::refresh_endpoints(cluster, loaded, &keys, &mut diagnostics);
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
                self.last = None;
                return None;
            }
            last.rulesets = rulesets;
            for (i, _) in changed {
                last.objects[i] = loaded.documents[i].object.clone();
            }
        }
        self.path = if keys.is_empty() {
            Path::Unchanged
        } else {
            Path::Endpoints
        };
        Some(Compiled {
            rulesets: last.rulesets.clone(),
            warnings: Vec::new(),
            skipped: last.skipped.clone(),
            cluster: last.cluster.clone(),
        })
    }
}

/// The positions of the endpoints objects that differ between `old` and
/// `new` (lists of the same length), with the Services they are for
/// before and after; `None` when anything else differs: another kind of
/// document, or one whose kind, namespace or name changed.
#[allow(clippy::type_complexity)]
fn changed_documents(
    old: &[Arc<Object>],
    new: &[Document],
) -> Option<Vec<(usize, (String, String))>> {
    let mut changed = Vec::new();
    for (i, (was, is)) in old.iter().zip(new).enumerate() {
        let is = &is.object;
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
        for object in [was, is] {
            let (namespace, name) = endpoints_owner(object)?;
            changed.push((i, (namespace.to_owned(), name.to_owned())));
        }
    }
    Some(changed)
}
