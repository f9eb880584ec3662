//! knc's compiler: Kubernetes Service networking in, netfilter rulesets out.
//!
//! Pure: bytes in, text out. No processes, clock, environment or file
//! writes; the `knc` binary does the I/O. Data flows one way:
//!
//! ```text
//! SourceFile ──front::load──► Loaded ──model::Cluster::build──► Cluster
//!            ──lower::lower(node)──► ir::Ruleset ──back::*──► text
//! ```
//!
//! * [`front`]: YAML/JSON parsing into typed k8s-openapi objects that keep a
//!   span for every field, and the one [`front::Diagnostic`] type.
//! * [`model`]: validation, and Services joined with their endpoints, the
//!   nodes and the proxy configuration.
//! * [`ir`]: the contract between front and back ends (read its docs).
//! * [`lower`]: the model for one node becomes the IR; every policy decision
//!   (traffic policies, endpoint fallback, masquerade) is made here.
//! * [`back`]: one module per output format, each a pure function of the IR.

pub mod back;
pub mod front;
pub mod ir;
pub mod lower;
pub mod model;
