//! Gateway (gateway.networking.k8s.io/v1, and v1beta1 which has the same
//! shape): the addresses and listeners TCPRoutes and UDPRoutes attach to.
//!
//! The types are knc's own, declaring exactly the fields the API has at
//! the levels knc reads (so a typo gets an unknown-field warning with a
//! suggestion) and keeping the ones knc does not read as opaque values.
//! The `gateway-api` crate was not used: it depends on another
//! k8s-openapi than knc's pinned one, on kube and on schemars.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{KindDef, Located};
use crate::front::fields::fields_of;
use crate::ir::Protocol;
use crate::model::gateway::{AllowedNamespaces, Gateway as ModelGateway, Listener};

pub const DEF: KindDef = kind_def!(
    "gateway.networking.k8s.io/v1", Gateway => Gateway,
    named: true, namespaced: true, ignored: super::no_ignored_field
);

/// The same kind in its beta version.
pub const DEF_V1BETA1: KindDef = kind_def!(
    "gateway.networking.k8s.io/v1beta1", Gateway => Gateway,
    named: true, namespaced: true, ignored: super::no_ignored_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<Gateway>(),
        "spec" => fields_of::<GatewaySpec>(),
        "spec.listeners[]" => fields_of::<GatewayListener>(),
        "spec.listeners[].allowedRoutes" => fields_of::<AllowedRoutes>(),
        "spec.listeners[].allowedRoutes.namespaces" => fields_of::<RouteNamespaces>(),
        "spec.listeners[].allowedRoutes.kinds[]" => fields_of::<RouteGroupKind>(),
        "spec.addresses[]" | "status.addresses[]" => fields_of::<GatewayAddress>(),
        "status" => fields_of::<GatewayStatus>(),
        _ => &[],
    }
}

/// A Gateway, as far as knc reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<GatewaySpec>,
    #[serde(default)]
    pub status: Option<GatewayStatus>,
}

/// `spec`: listeners and requested addresses; the rest is kept opaque.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub gateway_class_name: Option<String>,
    #[serde(default)]
    pub listeners: Option<Vec<GatewayListener>>,
    #[serde(default)]
    pub addresses: Option<Vec<GatewayAddress>>,
    #[serde(default)]
    pub infrastructure: Option<Value>,
    #[serde(default, rename = "backendTLS")]
    pub backend_tls: Option<Value>,
    #[serde(default)]
    pub allowed_listeners: Option<Value>,
    #[serde(default)]
    pub tls: Option<Value>,
    #[serde(default)]
    pub default_scope: Option<Value>,
}

/// `spec.listeners[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListener {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub tls: Option<Value>,
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `allowedRoutes`: which routes may attach.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    #[serde(default)]
    pub kinds: Option<Vec<RouteGroupKind>>,
}

/// `allowedRoutes.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteNamespaces {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub selector: Option<Value>,
}

/// `allowedRoutes.kinds[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteGroupKind {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// `spec.addresses[]` and `status.addresses[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAddress {
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// `status`: the addresses the implementation assigned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[serde(default)]
    pub addresses: Option<Vec<GatewayAddress>>,
    #[serde(default)]
    pub conditions: Option<Value>,
    #[serde(default)]
    pub listeners: Option<Value>,
}

/// The model Gateway: IP addresses of `spec.addresses` then
/// `status.addresses` (type `IPAddress` or none; `Hostname` and other
/// types are not addresses knc can serve), and every listener with a name
/// and a valid port. Bad values are errors at their field.
pub(super) fn convert(at: &mut Located<'_>, gateway: &Gateway) -> Option<ModelGateway> {
    let name = gateway.metadata.name.clone().filter(|n| !n.is_empty())?;
    let mut addresses = Vec::new();
    let spec_addresses = gateway.spec.as_ref().and_then(|s| s.addresses.as_ref());
    let status_addresses = gateway.status.as_ref().and_then(|s| s.addresses.as_ref());
    let lists = [("spec", spec_addresses), ("status", status_addresses)];
    for (top, list) in lists {
        for (i, address) in list.into_iter().flatten().enumerate() {
            if !matches!(address.type_.as_deref(), None | Some("IPAddress")) {
                continue;
            }
            let Some(value) = &address.value else {
                continue;
            };
            let path = || format!("{top}.addresses[{i}].value");
            if let Some(ip) = at.ip(path, "Gateway address", value) {
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
        }
    }
    let mut listeners = Vec::new();
    let spec_listeners = gateway.spec.as_ref().and_then(|s| s.listeners.as_ref());
    for (i, listener) in spec_listeners.into_iter().flatten().enumerate() {
        let port = at.port(
            || format!("spec.listeners[{i}].port"),
            "port",
            listener.port.unwrap_or(0),
            1,
        );
        let Some(listener_name) = &listener.name else {
            let message = format!("listener {i} of {} has no `name`", super::describe(at.doc));
            at.error(
                crate::front::Code::MissingField,
                &format!("spec.listeners[{i}]"),
                message,
                "`name` is required",
            );
            continue;
        };
        let protocol = match listener.protocol.as_deref() {
            Some("TCP") => Some(Protocol::Tcp),
            Some("UDP") => Some(Protocol::Udp),
            _ => None,
        };
        let allowed = listener.allowed_routes.as_ref();
        let from = allowed
            .and_then(|a| a.namespaces.as_ref())
            .and_then(|n| n.from.as_ref())
            .and_then(|from| {
                at.one_of(
                    || format!("spec.listeners[{i}].allowedRoutes.namespaces.from"),
                    "allowedRoutes.namespaces.from",
                    from,
                    &["Same", "All", "Selector"],
                )
            });
        let from = match from {
            Some("All") => AllowedNamespaces::All,
            Some("Selector") => AllowedNamespaces::Selector,
            _ => AllowedNamespaces::Same,
        };
        let kinds = allowed
            .and_then(|a| a.kinds.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|k| k.kind.clone())
            .collect();
        if let Some(port) = port {
            listeners.push(Listener {
                name: listener_name.clone(),
                port,
                protocol,
                from,
                kinds,
            });
        }
    }
    Some(ModelGateway {
        namespace: super::namespace_of(&gateway.metadata),
        name,
        addresses,
        listeners,
    })
}
