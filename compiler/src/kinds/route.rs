//! TCPRoute and UDPRoute (gateway.networking.k8s.io/v1alpha2): which
//! Gateway listeners a route attaches to (`parentRefs`) and which Services
//! get its traffic, with weights (`rules[].backendRefs`). Both kinds have
//! the same shape; like [`super::gateway`], the types are knc's own.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{KindDef, Located};
use crate::front::fields::fields_of;
use crate::model::gateway::{BackendRef, ParentRef, Route, RouteKind};

/// The group of Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

pub const TCP_DEF: KindDef = kind_def!(
    "gateway.networking.k8s.io/v1alpha2", L4Route => TCPRoute,
    named: true, namespaced: true, ignored: super::no_ignored_field
);

pub const UDP_DEF: KindDef = kind_def!(
    "gateway.networking.k8s.io/v1alpha2", L4Route => UDPRoute,
    named: true, namespaced: true, ignored: super::no_ignored_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<L4Route>(),
        "spec" => fields_of::<RouteSpec>(),
        "spec.parentRefs[]" => fields_of::<RouteParentRef>(),
        "spec.rules[]" => fields_of::<RouteRule>(),
        "spec.rules[].backendRefs[]" => fields_of::<RouteBackendRef>(),
        _ => &[],
    }
}

/// A TCPRoute or UDPRoute, as far as knc reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4Route {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<RouteSpec>,
    /// Written by Gateway controllers; knc decides attachment itself.
    #[serde(default)]
    pub status: Option<Value>,
}

/// `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    #[serde(default)]
    pub parent_refs: Option<Vec<RouteParentRef>>,
    #[serde(default)]
    pub rules: Option<Vec<RouteRule>>,
    #[serde(default)]
    pub use_default_gateways: Option<Value>,
}

/// `spec.parentRefs[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub section_name: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
}

/// `spec.rules[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub backend_refs: Option<Vec<RouteBackendRef>>,
}

/// `spec.rules[].backendRefs[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteBackendRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(default)]
    pub weight: Option<i32>,
}

/// The model route, every field parsed once: parents and backends
/// defaulted as the API defaults them (namespace: the route's; backend
/// kind: Service; weight: 1). A backend ref to a Service without a
/// `port`, or with a weight outside 0..=1000000, is an error at the field
/// and is left out.
pub(super) fn convert(at: &mut Located<'_>, kind: RouteKind, route: &L4Route) -> Option<Route> {
    let name = route.metadata.name.clone().filter(|n| !n.is_empty())?;
    let namespace = super::namespace_of(&route.metadata);
    let spec = route.spec.as_ref();
    let mut parents = Vec::new();
    for (i, parent) in spec
        .and_then(|s| s.parent_refs.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let port = parent
            .port
            .and_then(|p| at.port(|| format!("spec.parentRefs[{i}].port"), "port", p, 1));
        let Some(parent_name) = parent.name.clone() else {
            let message = format!("parentRef {i} of {} has no `name`", super::describe(at.doc));
            at.error(
                crate::front::Code::MissingField,
                &format!("spec.parentRefs[{i}]"),
                message,
                "`name` is required",
            );
            continue;
        };
        let is_gateway = parent.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
            && parent.kind.as_deref().unwrap_or("Gateway") == "Gateway";
        parents.push(ParentRef {
            index: i,
            is_gateway,
            namespace: parent
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.clone()),
            name: parent_name,
            section_name: parent.section_name.clone(),
            port,
        });
    }
    let mut backends = Vec::new();
    for (r, rule) in spec
        .and_then(|s| s.rules.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (i, backend) in rule.backend_refs.iter().flatten().enumerate() {
            let path = |field: &str| format!("spec.rules[{r}].backendRefs[{i}].{field}");
            let is_service = backend.group.as_deref().unwrap_or("").is_empty()
                && backend.kind.as_deref().unwrap_or("Service") == "Service";
            let Some(backend_name) = backend.name.clone() else {
                let message = format!(
                    "backendRef {i} of {} has no `name`",
                    super::describe(at.doc)
                );
                at.error(
                    crate::front::Code::MissingField,
                    &format!("spec.rules[{r}].backendRefs[{i}]"),
                    message,
                    "`name` is required",
                );
                continue;
            };
            // A Service ref needs a port (the API's CEL rule); refs of other
            // kinds get no traffic, and their port (0 when absent) is not read.
            let port = match (is_service, backend.port) {
                (true, port) => at.port(|| path("port"), "port", port.unwrap_or(0), 1),
                (false, Some(port)) => at.port(|| path("port"), "port", port, 0).or(Some(0)),
                (false, None) => Some(0),
            };
            let weight = match backend.weight {
                None => Some(1),
                Some(w) => weight(at, &path("weight"), w),
            };
            let (Some(weight), Some(port)) = (weight, port) else {
                continue;
            };
            backends.push(BackendRef {
                is_service,
                namespace: backend
                    .namespace
                    .clone()
                    .unwrap_or_else(|| namespace.clone()),
                name: backend_name,
                port,
                weight,
            });
        }
    }
    Some(Route {
        kind,
        namespace,
        name,
        origin: at.origin(),
        parents,
        backends,
    })
}

/// The largest `weight` the API accepts.
const MAX_WEIGHT: i32 = 1_000_000;

/// A backendRef's `weight`, if within the API's 0..=1000000.
fn weight(at: &mut Located<'_>, path: &str, weight: i32) -> Option<u32> {
    if (0..=MAX_WEIGHT).contains(&weight) {
        return u32::try_from(weight).ok();
    }
    let message = format!(
        "weight `{weight}` of {} is out of range",
        super::describe(at.doc)
    );
    at.error(
        crate::front::Code::Schema,
        path,
        message,
        format!("must be between 0 and {MAX_WEIGHT}"),
    );
    None
}
