//! One file per Kubernetes kind knc reads, each with the one conversion
//! from a loaded object to model values ("parse, don't validate"): every
//! field is parsed once, a value that fails becomes a diagnostic located at
//! the field, and the conversion returns what it could build.
//!
//! [`convert`] runs every object through its kind's conversion, checks what
//! spans objects (duplicates, NodePort conflicts), and joins the result into
//! the [`Cluster`]: Services with their endpoints, nodes, proxy settings.
//!
//! Adding a kind: a file here with its conversion, a variant of
//! [`crate::front::Object`] with its `apiVersion`/`kind` in the loader, and
//! its arm in [`convert`].

/// A kind's [`KindDef`], in a kind file that has a `known_fields`
/// function: `kind_def!("v1", core::Service => Service, named: true,
/// namespaced: true, ignored: super::no_ignored_field)`. The variant of
/// [`Object`] names the kind.
macro_rules! kind_def {
    ($api_version:literal, $ty:ty => $variant:ident, named: $named:literal, namespaced: $namespaced:literal, ignored: $ignored:expr) => {
        $crate::kinds::KindDef {
            api_version: $api_version,
            kind: stringify!($variant),
            named: $named,
            namespaced: $namespaced,
            known_fields,
            ignored_field: $ignored,
            load: |typed, value, loaded| {
                typed
                    .typed::<$ty>(value, loaded)
                    .map(|o| $crate::kinds::Object::$variant(Box::new(o)))
            },
        }
    };
}

mod attach;
pub mod endpoint_slice;
pub mod endpoints;
pub mod gateway;
pub mod kube_proxy_config;
mod located;
pub mod node;
pub mod route;
pub mod service;
pub mod service_cidr;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

pub(crate) use located::Located;

use crate::front::load::Typed;
use crate::front::{Code, Diagnostic, Document, Loaded};
use crate::ir::Protocol;
use crate::model::gateway::RouteKind;
use crate::model::{Cluster, Endpoint, EndpointsObject, Inventory, ProxyConfig};
use crate::names::{namespaced, object_key, DEFAULT_NAMESPACE};
use kube_proxy_config::KubeProxyConfiguration;

/// What the loader knows about a kind: its `apiVersion` and `kind`, the
/// fields it has (for typo suggestions), and how to deserialize it. Each
/// kind's file has one, registered in [`KINDS`].
pub struct KindDef {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// Whether objects of the kind have a `metadata.name`.
    pub named: bool,
    /// Whether objects of the kind live in a namespace.
    pub namespaced: bool,
    /// Field names at a path shape (`spec.ports[]`, `` for the top).
    pub known_fields: fn(&str) -> &'static [&'static str],
    /// Fields the kind has that knc ignores without a warning.
    pub ignored_field: fn(&str) -> bool,
    /// Deserializes a document of the kind into an [`Object`].
    pub load: fn(&Typed<'_>, &Value, &mut Loaded) -> Option<Object>,
}

impl KindDef {
    /// How messages name an object of this kind: `namespace/name` for
    /// namespaced kinds, `name` for cluster-scoped ones.
    pub fn display_name(&self, namespace: Option<&str>, name: &str) -> String {
        if self.namespaced {
            namespaced(namespace, name)
        } else {
            name.to_owned()
        }
    }

    /// An object of this kind as messages name it: ``Service
    /// `default/web` ``, or the kind alone for unnamed kinds (there is one
    /// KubeProxyConfiguration per cluster, and it is rarely named).
    pub fn describe(&self, display_name: &str) -> String {
        if self.named {
            format!("{} `{display_name}`", self.kind)
        } else {
            self.kind.to_owned()
        }
    }
}

/// Every kind knc keeps; documents of other kinds are counted and skipped.
pub const KINDS: &[&KindDef] = &[
    &service::DEF,
    &endpoints::DEF,
    &endpoint_slice::DEF,
    &node::DEF,
    &kube_proxy_config::DEF,
    &service_cidr::DEF,
    &gateway::DEF,
    &gateway::DEF_V1BETA1,
    &route::TCP_DEF,
    &route::UDP_DEF,
];

/// The kind with this `apiVersion` and `kind`, if knc keeps it.
pub fn find(api_version: &str, kind: &str) -> Option<&'static KindDef> {
    KINDS
        .iter()
        .copied()
        .find(|k| k.api_version == api_version && k.kind == kind)
}

/// The kept kind called `kind`.
pub fn named(kind: &str) -> Option<&'static KindDef> {
    KINDS.iter().copied().find(|k| k.kind == kind)
}

/// For kinds without fields to ignore.
pub(crate) fn no_ignored_field(_: &str) -> bool {
    false
}

/// A kept Kubernetes object, typed.
#[derive(Debug, Clone)]
pub enum Object {
    Service(Box<Service>),
    Endpoints(Box<Endpoints>),
    EndpointSlice(Box<EndpointSlice>),
    Node(Box<Node>),
    KubeProxyConfiguration(Box<KubeProxyConfiguration>),
    ServiceCIDR(Box<ServiceCIDR>),
    /// Gateway API `Gateway` (v1 or v1beta1).
    Gateway(Box<gateway::Gateway>),
    /// Gateway API `TCPRoute` (v1alpha2).
    TCPRoute(Box<route::L4Route>),
    /// Gateway API `UDPRoute` (v1alpha2).
    UDPRoute(Box<route::L4Route>),
}

impl Object {
    /// The object's metadata; `None` for KubeProxyConfiguration, which has
    /// none.
    pub fn metadata(&self) -> Option<&ObjectMeta> {
        match self {
            Object::Service(o) => Some(&o.metadata),
            Object::Endpoints(o) => Some(&o.metadata),
            Object::EndpointSlice(o) => Some(&o.metadata),
            Object::Node(o) => Some(&o.metadata),
            Object::KubeProxyConfiguration(_) => None,
            Object::ServiceCIDR(o) => Some(&o.metadata),
            Object::Gateway(o) => Some(&o.metadata),
            Object::TCPRoute(o) | Object::UDPRoute(o) => Some(&o.metadata),
        }
    }

    /// The kind's definition.
    pub fn def(&self) -> &'static KindDef {
        match self {
            Object::Service(_) => &service::DEF,
            Object::Endpoints(_) => &endpoints::DEF,
            Object::EndpointSlice(_) => &endpoint_slice::DEF,
            Object::Node(_) => &node::DEF,
            Object::KubeProxyConfiguration(_) => &kube_proxy_config::DEF,
            Object::ServiceCIDR(_) => &service_cidr::DEF,
            Object::Gateway(_) => &gateway::DEF,
            Object::TCPRoute(_) => &route::TCP_DEF,
            Object::UDPRoute(_) => &route::UDP_DEF,
        }
    }

    /// The kind as written in manifests.
    pub fn kind(&self) -> &'static str {
        self.def().kind
    }
}

/// The model built from loaded objects, and every problem found on the
/// way. The model is only meaningful when no diagnostic is an error.
#[derive(Debug)]
pub struct Converted {
    pub cluster: Cluster,
    /// What lint needs besides the cluster.
    pub inventory: Inventory,
    pub diagnostics: Vec<Diagnostic>,
}

/// Converts every loaded object, once. Order of the documents does not
/// matter to the model: everything is keyed and sorted.
///
/// Big inputs are converted by a few threads, each taking a run of
/// documents; their results are then joined one document after the other,
/// in input order, exactly as one thread would (diagnostics in the same
/// order too).
pub fn convert(loaded: &Loaded) -> Converted {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    convert_with(loaded, threads)
}

/// [`convert`] with at most `threads` threads.
fn convert_with(loaded: &Loaded, threads: usize) -> Converted {
    let parts = convert_each(&loaded.documents, threads);
    let mut diagnostics = Vec::new();
    let mut services = BTreeMap::new();
    let mut slices: BTreeMap<(String, String), Vec<endpoint_slice::Converted>> = BTreeMap::new();
    let mut legacy = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    let mut proxy_config = ProxyConfig::default();
    let mut service_cidrs = Vec::new();
    let mut nodeport_claims = Vec::new();
    let mut inventory = Inventory::default();
    let mut gateways = BTreeMap::new();
    let mut routes = Vec::new();

    for (index, (part, mut found)) in parts.into_iter().enumerate() {
        let doc = &loaded.documents[index];
        diagnostics.append(&mut found);
        match part {
            Part::Service(converted) => {
                let Object::Service(svc) = &*doc.object else {
                    continue;
                };
                // Lint facts are read from the object, not reported.
                let mut none = Vec::new();
                service::lint_facts(&Located::new(index, doc, &mut none), svc, &mut inventory);
                nodeport_claims.extend(converted.nodeport_claims.into_iter().map(|c| (index, c)));
                match (converted.service, &svc.metadata.name) {
                    (Some(service), _) => {
                        services.insert((service.namespace.clone(), service.name.clone()), service);
                    }
                    (None, Some(name)) => {
                        let key = namespaced(svc.metadata.namespace.as_deref(), name);
                        inventory.other_services.insert(key);
                    }
                    (None, None) => {}
                }
            }
            Part::Slice(converted) => {
                inventory
                    .endpoints
                    .push(endpoints_object(index, doc, &converted.service));
                if let Some(service) = converted.service.clone() {
                    slices.entry(service).or_default().push(converted);
                }
            }
            Part::Endpoints(converted) => {
                inventory
                    .endpoints
                    .push(endpoints_object(index, doc, &converted.service));
                if let Some(service) = converted.service {
                    legacy.insert(service, converted.endpoints);
                }
            }
            Part::Node(node) => {
                if let Some(node) = node {
                    nodes.insert(node.name.clone(), node);
                }
            }
            Part::Config => {
                // Later configurations build on earlier ones: in order, here.
                if let Object::KubeProxyConfiguration(config) = &*doc.object {
                    let mut at = Located::new(index, doc, &mut diagnostics);
                    kube_proxy_config::convert(&mut at, config, &mut proxy_config);
                }
            }
            Part::ServiceCidr(cidrs) => service_cidrs.extend(cidrs),
            Part::Gateway(gateway) => {
                if let Some(gateway) = gateway {
                    gateways.insert((gateway.namespace.clone(), gateway.name.clone()), gateway);
                }
            }
            Part::Route(route) => routes.extend(route),
        }
    }
    let routes = attach::attach(loaded, &gateways, &routes, &mut diagnostics);
    duplicate_objects(&loaded.documents, &mut diagnostics);
    nodeport_conflicts(&loaded.documents, &nodeport_claims, &mut diagnostics);

    for (key, service) in services.iter_mut() {
        service.endpoints = joined_endpoints(slices.get_mut(key), legacy.remove(key));
    }
    Converted {
        cluster: Cluster {
            services: services.into_values().collect(),
            nodes,
            proxy_config,
            service_cidrs,
            routes,
        },
        inventory,
        diagnostics,
    }
}

/// What converting one document gave, before it joins the others.
enum Part {
    Service(service::Converted),
    Slice(endpoint_slice::Converted),
    Endpoints(endpoints::Converted),
    Node(Option<crate::model::Node>),
    /// Converted when joined: configurations merge in input order.
    Config,
    ServiceCidr(Vec<ipnet::IpNet>),
    Gateway(Option<crate::model::gateway::Gateway>),
    Route(Option<crate::model::gateway::Route>),
}

/// Each document's part and the diagnostics converting it found.
type Parts = Vec<(Part, Vec<Diagnostic>)>;

/// Documents from this many on are converted by several threads.
const PARALLEL_FROM: usize = 2048;

/// Every document's [`Part`] and diagnostics, in input order.
fn convert_each(documents: &[Document], threads: usize) -> Parts {
    if threads < 2 || documents.len() < PARALLEL_FROM {
        return convert_run(0, documents);
    }
    let share = documents.len().div_ceil(threads);
    let runs: Option<Vec<Parts>> = std::thread::scope(|scope| {
        let handles: Vec<_> = documents
            .chunks(share)
            .enumerate()
            .map(|(i, run)| scope.spawn(move || convert_run(i * share, run)))
            .collect();
        handles.into_iter().map(|h| h.join().ok()).collect()
    });
    match runs {
        Some(runs) => runs.into_iter().flatten().collect(),
        // A thread panicked (a bug): convert on this thread, where the
        // panic is reported as usual.
        None => convert_run(0, documents),
    }
}

/// [`Part`]s of `documents`, the first of which has index `first`.
fn convert_run(first: usize, documents: &[Document]) -> Parts {
    documents
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            let mut found = Vec::new();
            let part = convert_one(first + i, doc, &mut found);
            (part, found)
        })
        .collect()
}

fn convert_one(index: usize, doc: &Document, found: &mut Vec<Diagnostic>) -> Part {
    let mut at = Located::new(index, doc, found);
    missing_name(&mut at);
    match &*doc.object {
        Object::Service(svc) => Part::Service(service::convert(&mut at, svc)),
        Object::EndpointSlice(slice) => Part::Slice(endpoint_slice::convert(&mut at, slice)),
        Object::Endpoints(eps) => Part::Endpoints(endpoints::convert(&mut at, eps)),
        Object::Node(node) => Part::Node(node::convert(&mut at, node)),
        Object::KubeProxyConfiguration(_) => Part::Config,
        Object::ServiceCIDR(object) => Part::ServiceCidr(service_cidr::convert(&mut at, object)),
        Object::Gateway(object) => Part::Gateway(gateway::convert(&mut at, object)),
        Object::TCPRoute(object) => Part::Route(route::convert(&mut at, RouteKind::Tcp, object)),
        Object::UDPRoute(object) => Part::Route(route::convert(&mut at, RouteKind::Udp, object)),
    }
}

/// A Service's endpoints: its slices' (in slice name order, whatever the
/// input order), or without slices its Endpoints object's.
fn joined_endpoints(
    slices: Option<&mut Vec<endpoint_slice::Converted>>,
    legacy: Option<Vec<Endpoint>>,
) -> Vec<Endpoint> {
    match slices {
        // One slice (the usual case): its endpoints as they are.
        Some(found) if found.len() == 1 => std::mem::take(&mut found[0].endpoints),
        Some(found) => {
            found.sort_by(|a, b| a.name.cmp(&b.name));
            found
                .iter_mut()
                .flat_map(|s| std::mem::take(&mut s.endpoints))
                .collect()
        }
        None => legacy.unwrap_or_default(),
    }
}

/// The Service an EndpointSlice or Endpoints object is for; `None` for
/// other kinds (and a slice without the label).
pub fn endpoints_owner(object: &Object) -> Option<(&str, &str)> {
    match object {
        Object::EndpointSlice(slice) => endpoint_slice::service_of(slice),
        Object::Endpoints(eps) => endpoints::service_of(eps),
        _ => None,
    }
}

/// Gives the Services `keys` of `cluster` their endpoints again, from the
/// EndpointSlice and Endpoints objects among `documents` (indexes into
/// `loaded`, ascending: every endpoints object of those Services, and
/// maybe others): what [`convert`] of `loaded` gives them, when they are
/// the only Services whose endpoints objects changed since `cluster` was
/// converted. Problems found in those objects go to `diagnostics`.
pub fn refresh_endpoints(
    cluster: &mut Cluster,
    loaded: &Loaded,
    documents: &[usize],
    keys: &BTreeSet<(String, String)>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let wanted = |owner: Option<(&str, &str)>| {
        owner.is_some_and(|(ns, name)| {
            keys.iter()
                .any(|(k_ns, k_name)| k_ns == ns && k_name == name)
        })
    };
    let mut slices: BTreeMap<(String, String), Vec<endpoint_slice::Converted>> = BTreeMap::new();
    let mut legacy = BTreeMap::new();
    for &index in documents {
        let Some(doc) = loaded.documents.get(index) else {
            continue;
        };
        if !wanted(endpoints_owner(&doc.object)) {
            continue;
        }
        let mut at = Located::new(index, doc, diagnostics);
        missing_name(&mut at);
        match &*doc.object {
            Object::EndpointSlice(slice) => {
                let converted = endpoint_slice::convert(&mut at, slice);
                if let Some(service) = converted.service.clone() {
                    slices.entry(service).or_default().push(converted);
                }
            }
            Object::Endpoints(eps) => {
                let converted = endpoints::convert(&mut at, eps);
                if let Some(service) = converted.service {
                    legacy.insert(service, converted.endpoints);
                }
            }
            _ => {}
        }
    }
    for key in keys {
        if let Some(i) = cluster.service_index(&key.0, &key.1) {
            cluster.services[i].endpoints =
                joined_endpoints(slices.get_mut(key), legacy.remove(key));
        }
    }
}

/// An EndpointSlice or Endpoints object for the inventory.
fn endpoints_object(
    index: usize,
    doc: &Document,
    service: &Option<(String, String)>,
) -> EndpointsObject {
    EndpointsObject {
        origin: crate::model::Origin { document: index },
        kind: doc.object.kind(),
        service: service.as_ref().map(|(ns, name)| object_key(ns, name)),
        families: match &*doc.object {
            Object::EndpointSlice(slice) => endpoint_slice::families(slice),
            Object::Endpoints(eps) => endpoints::families(eps),
            _ => Vec::new(),
        },
    }
}

/// The namespace of a namespaced object.
pub(crate) fn namespace_of(meta: &ObjectMeta) -> String {
    namespace_str(meta).to_string()
}

/// [`namespace_of`], borrowed.
pub(crate) fn namespace_str(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

/// The object as messages name it: ``Service `default/web` ``, or just the
/// kind for the (unnamed, one per cluster) KubeProxyConfiguration.
pub(crate) fn describe(doc: &Document) -> String {
    doc.object.def().describe(&display_name(doc))
}

/// `namespace/name` for namespaced kinds, `name` for cluster-scoped ones.
fn display_name(doc: &Document) -> String {
    let meta = doc.object.metadata();
    let name = meta.and_then(|m| m.name.as_deref()).unwrap_or("<unnamed>");
    let namespace = meta.and_then(|m| m.namespace.as_deref());
    doc.object.def().display_name(namespace, name)
}

/// Every named kind has a `metadata.name`: names join Services to their
/// endpoints and select the node to compile for.
fn missing_name(at: &mut Located<'_>) {
    let Some(meta) = at.doc.object.metadata() else {
        return;
    };
    if meta.name.as_deref().is_some_and(|n| !n.is_empty()) {
        return;
    }
    let message = format!("{} has no `metadata.name`", at.doc.object.kind());
    at.error(
        Code::MissingField,
        "metadata.name",
        message,
        "`name` is required",
    );
}

/// No (kind, namespace, name) twice across all inputs.
fn duplicate_objects(docs: &[Document], out: &mut Vec<Diagnostic>) {
    // (kind, namespace of namespaced kinds, name), borrowed from the objects.
    type Key<'a> = (&'static str, Option<&'a str>, Option<&'a str>);
    let mut seen: HashMap<Key<'_>, &Document> = HashMap::new();
    for doc in docs {
        let meta = doc.object.metadata();
        let name = meta.and_then(|m| m.name.as_deref());
        if name.is_some_and(str::is_empty) || (name.is_none() && meta.is_some()) {
            continue; // missing_name reports it
        }
        let def = doc.object.def();
        let namespace = def.namespaced.then(|| {
            meta.and_then(|m| m.namespace.as_deref())
                .unwrap_or(DEFAULT_NAMESPACE)
        });
        let Some(first) = seen.get(&(def.kind, namespace, name)) else {
            seen.insert((def.kind, namespace, name), doc);
            continue;
        };
        let message = format!("{} is defined more than once", describe(doc));
        let help = format!(
            "first defined at {}; remove one of them",
            first.position("metadata.name")
        );
        out.push(
            doc.error_at(
                Code::DuplicateObject,
                "metadata.name",
                message,
                "defined again here",
            )
            .with_help(help),
        );
    }
}

/// No two Service ports claim one NodePort and protocol.
fn nodeport_conflicts(
    docs: &[Document],
    claims: &[(usize, service::NodePortClaim)],
    out: &mut Vec<Diagnostic>,
) {
    let mut claimed: HashMap<(u16, Protocol), &(usize, service::NodePortClaim)> = HashMap::new();
    for entry in claims {
        let (index, claim) = entry;
        let key = (claim.node_port, claim.protocol);
        let Some(&&(first, ref first_claim)) = claimed.get(&key) else {
            claimed.insert(key, entry);
            continue;
        };
        let (doc, first) = (&docs[*index], &docs[first]);
        let message = format!(
            "nodePort `{}/{}` of Service `{}` is already used by Service `{}`",
            claim.node_port,
            crate::names::protocol_name(claim.protocol),
            display_name(doc),
            display_name(first)
        );
        let help = format!("first claimed at {}", first.position(&first_claim.path()));
        out.push(
            doc.error_at(
                Code::NodePortConflict,
                &claim.path(),
                message,
                "already in use",
            )
            .with_help(help),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::{load, SourceFile};
    use crate::model::addr::{parse_cidr, parse_ip};
    use std::net::IpAddr;

    #[test]
    fn threads_convert_what_one_thread_converts() {
        let mut text = String::from(
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.244.0.0/16\n",
        );
        for i in 0..1500 {
            let port = if i % 97 == 5 { 70000 } else { 80 };
            let ns = if i % 300 == 7 { "dup" } else { "ns" };
            let name = if ns == "dup" {
                "same".to_string()
            } else {
                format!("s{i}")
            };
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  clusterIP: 10.96.{}.{}\n  ports: [{{port: {port}, nodePort: {}}}]\n  type: NodePort\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, namespace: {ns}, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nports: [{{port: 8080}}]\nendpoints: [{{addresses: [\"10.1.{}.{}\"]}}]\n",
                i / 250,
                i % 250 + 1,
                30000 + i % 2000,
                i / 250,
                i % 250 + 1,
            ));
            if i == 700 {
                text.push_str("---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.245.0.0/16\nmode: bogus\n");
            }
        }
        let loaded = load(&[SourceFile::new("many.yaml", text)]);
        assert!(loaded.documents.len() > PARALLEL_FROM);
        let render = |c: &Converted| {
            let diagnostics: Vec<String> = c
                .diagnostics
                .iter()
                .map(|d| format!("{d} {:?}", d.position()))
                .collect();
            format!("{:?}\n{:?}\n{diagnostics:?}", c.cluster, c.inventory)
        };
        let one = render(&convert_with(&loaded, 1));
        assert!(
            one.contains("out of range") || one.contains("65535"),
            "the input has problems to report"
        );
        for threads in [2, 3, 4] {
            assert_eq!(
                render(&convert_with(&loaded, threads)),
                one,
                "{threads} threads"
            );
        }
    }

    /// Codes and `line:column` of every diagnostic for these files.
    fn check(files: &[(&str, &str)]) -> Vec<(Code, String)> {
        let files: Vec<_> = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
        let loaded = load(&files);
        assert!(
            loaded.diagnostics.is_empty(),
            "load: {:?}",
            loaded.diagnostics
        );
        let mut diags = convert(&loaded).diagnostics;
        diags.sort_by_key(Diagnostic::sort_key);
        diags
            .iter()
            .map(|d| (d.code, d.position().unwrap_or_default()))
            .collect()
    }

    fn one(text: &str) -> Vec<(Code, String)> {
        check(&[("t.yaml", text)])
    }

    fn service(spec: &str) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n{spec}")
    }

    #[test]
    fn port_out_of_range() {
        let diags = one(&service(
            "  ports:\n  - port: 70000\n    nodePort: -1\n    targetPort: 0\n",
        ));
        assert_eq!(
            diags,
            vec![
                (Code::PortRange, "t.yaml:7:11".into()),
                (Code::PortRange, "t.yaml:8:15".into()),
                (Code::PortRange, "t.yaml:9:17".into()),
            ]
        );
    }

    #[test]
    fn service_cidr_objects() {
        let text = "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata:\n  name: extra\nspec:\n  cidrs: [10.100.0.0/16, 10.1.0.0/33, 'fd00:100::/112']\n";
        assert_eq!(
            one(text),
            vec![(Code::InvalidAddress, "t.yaml:6:26".into())]
        );
        let files = [SourceFile::new("t.yaml", text)];
        let cidrs = convert(&load(&files)).cluster.service_cidrs;
        let want: Vec<_> = ["10.100.0.0/16", "fd00:100::/112"]
            .iter()
            .map(|c| parse_cidr(c).unwrap())
            .collect();
        assert_eq!(cidrs, want);
    }

    #[test]
    fn port_missing() {
        assert_eq!(
            one(&service("  ports:\n  - name: http\n")),
            vec![(Code::MissingField, "t.yaml:7:5".into())]
        );
    }

    /// An interface name that would change a rule is refused where it is
    /// written and never reaches the model.
    #[test]
    fn interface_names_are_checked() {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
                    detectLocalMode: InterfaceNamePrefix\ndetectLocal:\n  \
                    interfaceNamePrefix: 'cali\"; drop'\n  bridgeInterface: cni0\n";
        assert_eq!(
            one(text),
            vec![(Code::InvalidInterfaceName, "t.yaml:5:24".into())]
        );
        // An error stops compilation; even the converted model keeps none
        // of the bad name.
        let analysis = crate::analyse(&[SourceFile::new("t.yaml", text)]);
        assert!(analysis.has_errors() && analysis.cluster.is_none());
        let loaded = load(&[SourceFile::new("t.yaml", text)]);
        let config = convert(&loaded).cluster.proxy_config;
        assert_eq!(config.interface_name_prefix, None);
        assert_eq!(config.bridge_interface.as_deref(), Some("cni0"));
    }

    #[test]
    fn target_port_names() {
        let diags = one(&service("  ports:\n  - port: 80\n    targetPort: \"8080\"\n  - port: 81\n    targetPort: http-alt\n"));
        assert_eq!(diags, vec![(Code::InvalidPortName, "t.yaml:8:17".into())]);
    }

    #[test]
    fn protocols() {
        let diags = one(&service(
            "  ports:\n  - port: 80\n    protocol: tcp\n  - port: 81\n    protocol: SCTP\n",
        ));
        assert_eq!(diags, vec![(Code::InvalidProtocol, "t.yaml:8:15".into())]);
    }

    #[test]
    fn service_addresses_and_sloppy_ipv4() {
        let spec = "  clusterIP: 010.0.0.1\n  clusterIPs: [010.0.0.1, 'fd00::1', None]\n  externalIPs: [1.2.3.4, 1.2.3.256]\n  loadBalancerIP: nope\n  loadBalancerSourceRanges: [10.0.0.0/33]\n";
        let diags = one(&service(spec));
        assert_eq!(
            diags,
            vec![
                (Code::InvalidAddress, "t.yaml:8:26".into()),
                (Code::InvalidAddress, "t.yaml:9:19".into()),
                (Code::InvalidAddress, "t.yaml:10:30".into()),
            ]
        );
    }

    #[test]
    fn ingress_ip_and_mode() {
        let text = service("  type: LoadBalancer\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 1.2.3\n      ipMode: proxy\n");
        assert_eq!(
            one(&text),
            vec![
                (Code::InvalidAddress, "t.yaml:10:11".into()),
                (Code::InvalidEnumValue, "t.yaml:11:15".into())
            ]
        );
    }

    #[test]
    fn enums_and_timeout() {
        let spec = "  type: Nodeport\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 86401\n  externalTrafficPolicy: local\n  internalTrafficPolicy: Local\n";
        assert_eq!(
            one(&service(spec)),
            vec![
                (Code::InvalidEnumValue, "t.yaml:6:9".into()),
                (Code::AffinityTimeoutRange, "t.yaml:10:23".into()),
                (Code::InvalidEnumValue, "t.yaml:11:26".into()),
            ]
        );
    }

    #[test]
    fn missing_name_is_reported() {
        assert_eq!(
            one("apiVersion: v1\nkind: Node\nmetadata:\n  labels: {}\n"),
            vec![(Code::MissingField, "t.yaml:4:3".into())]
        );
    }

    #[test]
    fn endpoint_slices() {
        let text = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\nendpoints:\n- addresses: [10.0.0.1, 'fd00::1', 10.0.0]\nports:\n- port: 0\n  protocol: ICMP\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidAddress, "t.yaml:6:25".into()),
                (Code::InvalidAddress, "t.yaml:6:36".into()),
                (Code::PortRange, "t.yaml:8:9".into()),
                (Code::InvalidProtocol, "t.yaml:9:13".into()),
            ]
        );
    }

    #[test]
    fn legacy_endpoints() {
        let text = "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\nsubsets:\n- addresses: [{ip: 10.0.0.x}]\n  ports: [{port: 65536}]\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidAddress, "t.yaml:5:20".into()),
                (Code::PortRange, "t.yaml:6:18".into())
            ]
        );
    }

    #[test]
    fn node_addresses_and_pod_cidrs() {
        let text = "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec:\n  podCIDR: 10.244.0.0\nstatus:\n  addresses:\n  - {type: Hostname, address: n1}\n  - {type: InternalIP, address: n1}\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidAddress, "t.yaml:5:12".into()),
                (Code::InvalidAddress, "t.yaml:9:33".into())
            ]
        );
    }

    #[test]
    fn proxy_config() {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftabels\nclusterCIDR: 10.244.0.0/16,fd00::/300\nnodePortAddresses: [primary, 1.2.3.4]\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidEnumValue, "t.yaml:3:7".into()),
                (Code::InvalidAddress, "t.yaml:4:14".into()),
                (Code::InvalidAddress, "t.yaml:5:30".into()),
            ]
        );
    }

    #[test]
    fn duplicates_point_at_the_second() {
        let a = service("  ports: [{port: 80}]\n");
        let diags = check(&[("a.yaml", &a), ("b.yaml", &a)]);
        assert_eq!(diags, vec![(Code::DuplicateObject, "b.yaml:4:9".into())]);
    }

    #[test]
    fn nodeport_conflicts_across_services() {
        let a = service("  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n");
        let b = a.replace("name: web", "name: api");
        let c = a
            .replace("name: web", "name: dns")
            .replace("port: 80,", "port: 53, protocol: UDP,");
        let diags = check(&[("a.yaml", &a), ("b.yaml", &b), ("c.yaml", &c)]);
        assert_eq!(diags, vec![(Code::NodePortConflict, "b.yaml:7:32".into())]);
    }

    #[test]
    fn sloppy_parsers() {
        assert_eq!(
            parse_ip("010.001.0.1"),
            Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, 1)))
        );
        assert_eq!(parse_ip("1.2.3.4.5"), None);
        assert_eq!(parse_ip("1.2.3.-4"), None);
        assert_eq!(parse_cidr("10.0.0.1/8").map(|c| c.prefix_len()), Some(8));
        assert_eq!(parse_cidr("fd00::/129"), None);
        assert_eq!(parse_cidr("10.0.0.0/"), None);
    }
}
