//! knc's compiler: Kubernetes Service networking in, netfilter rulesets out.
//!
//! Pure: bytes in, text out. No processes, clock, environment or file
//! writes; the `knc` binary does the I/O. Data flows one way:
//!
//! ```text
//! SourceFile ──front::load──► Loaded ──kinds::convert──► Cluster
//!            ──lower::lower(node)──► ir::Ruleset ──back::*──► text
//! ```
//!
//! * [`diagnostic`] and [`source`]: the one [`Diagnostic`] type every stage
//!   reports with, the input files and byte spans it points into; each
//!   code's documentation is in [`checks`], one file per check.
//! * [`front`]: YAML/JSON parsing into typed k8s-openapi objects that keep a
//!   span for every field.
//! * [`kinds`]: one file per Kubernetes kind, each converting loaded objects
//!   into the [`model`] once, reporting every value that fails.
//! * [`model`]: Services joined with their endpoints, the nodes and the
//!   proxy configuration, each object keeping its provenance; and lint.
//! * [`names`]: how objects are named (`namespace/name`), in one place.
//! * [`ir`]: the contract between front and back ends (read its docs).
//! * [`lower`]: the model for one node becomes the IR; every policy decision
//!   (traffic policies, endpoint fallback, masquerade) is made here.
//! * [`back`]: one module per output format, each a pure function of the IR.
//! * [`report`]: diagnostics as JSON and SARIF, for CI (`knc lint --format`).

pub mod back;
pub mod checks;
pub mod compile;
pub mod diagnostic;
pub mod explain;
pub mod front;
pub mod ir;
pub mod kinds;
pub mod lower;
pub mod model;
pub mod names;
pub mod report;
pub mod review;
pub mod session;
pub mod source;
mod text;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use source::{SourceFile, Span};

/// The front half of every command: load, validate, build the model.
#[derive(Debug)]
pub struct Analysis {
    /// Every diagnostic, errors and warnings, in a deterministic order.
    pub diagnostics: Vec<Diagnostic>,
    /// How many documents of other kinds were skipped, by kind.
    pub skipped: std::collections::BTreeMap<String, usize>,
    /// The model, when there were no errors.
    pub cluster: Option<model::Cluster>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads and validates `files` and, if nothing is wrong, builds the model.
pub fn analyse(files: &[SourceFile]) -> Analysis {
    analyse_loaded(&front::load(files))
}

/// [`analyse`] of files already loaded.
pub fn analyse_loaded(loaded: &front::Loaded) -> Analysis {
    let converted = kinds::convert(loaded);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(converted.diagnostics);
    diagnostics.sort_by_key(Diagnostic::sort_key);
    let cluster = (!diagnostics.iter().any(Diagnostic::is_error)).then_some(converted.cluster);
    Analysis {
        diagnostics,
        skipped: loaded.skipped.clone(),
        cluster,
    }
}

/// Every problem [`analyse`] finds, and when there are no errors, the lint
/// warnings of [`model::lint`] too, in a deterministic order.
pub fn lint(files: &[SourceFile]) -> Vec<Diagnostic> {
    let loaded = front::load(files);
    let converted = kinds::convert(&loaded);
    let mut diagnostics = loaded.diagnostics.clone();
    diagnostics.extend(converted.diagnostics);
    if !diagnostics.iter().any(Diagnostic::is_error) {
        let (cluster, inventory) = (converted.cluster, converted.inventory);
        // What compiling decides (contested frontends, Services compiled to
        // nothing) does not depend on the node: ask lowering, node-agnostic.
        let decisions = lower::lower_with_decisions(&cluster, &lower::Options::default())
            .map(|lowered| lowered.decisions)
            .unwrap_or_default();
        diagnostics.extend(model::lint::lint(&loaded, &cluster, &inventory, &decisions));
    }
    diagnostics.sort_by_key(Diagnostic::sort_key);
    diagnostics
}
