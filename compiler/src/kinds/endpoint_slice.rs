//! EndpointSlice (discovery.k8s.io/v1): the one conversion from a loaded
//! slice to the model's [`Endpoint`]s of the Service it is labelled for.

use k8s_openapi::api::discovery::v1 as discovery;

use super::{KindDef, Located};
use crate::front::fields::fields_of;
use crate::ir::Family;
use crate::model::{Endpoint, EndpointPort};

pub const DEF: KindDef = kind_def!(
    "discovery.k8s.io/v1", discovery::EndpointSlice => EndpointSlice,
    named: true, namespaced: true, ignored: super::no_ignored_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<discovery::EndpointSlice>(),
        "endpoints[]" => fields_of::<discovery::Endpoint>(),
        "endpoints[].conditions" => fields_of::<discovery::EndpointConditions>(),
        "endpoints[].hints" => fields_of::<discovery::EndpointHints>(),
        "ports[]" => fields_of::<discovery::EndpointPort>(),
        _ => &[],
    }
}

/// The label joining an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The Service `(namespace, name)` a slice is labelled for.
pub(super) fn service_of(slice: &discovery::EndpointSlice) -> Option<(&str, &str)> {
    let labels = slice.metadata.labels.as_ref()?;
    let name = labels.get(SERVICE_NAME_LABEL)?;
    Some((super::namespace_str(&slice.metadata), name))
}

/// The family a slice's `addressType` declares (none for FQDN), for lint.
pub(super) fn families(slice: &discovery::EndpointSlice) -> Vec<(String, Family)> {
    let family = match slice.address_type.as_str() {
        "IPv4" => Family::Ipv4,
        "IPv6" => Family::Ipv6,
        _ => return Vec::new(),
    };
    vec![("addressType".to_string(), family)]
}

/// A slice's endpoints, for the Service `(namespace, name)` it names.
pub(super) struct Converted {
    /// `None` without a `kubernetes.io/service-name` label.
    pub service: Option<(String, String)>,
    /// The slice's own name: a Service's slices are joined in name order.
    pub name: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

pub(super) fn convert(at: &mut Located<'_>, slice: &discovery::EndpointSlice) -> Converted {
    let address_type = at.one_of(
        || "addressType".into(),
        "addressType",
        &slice.address_type,
        &["IPv4", "IPv6", "FQDN"],
    );
    let mut ports = Vec::new();
    for (i, port) in slice.ports.iter().flatten().enumerate() {
        let number = port
            .port
            .and_then(|n| at.port(|| format!("ports[{i}].port"), "port", n, 1));
        let protocol = at.protocol(|| format!("ports[{i}].protocol"), port.protocol.as_ref());
        if let (Some(port_number), Some(protocol)) = (number, protocol) {
            ports.push(EndpointPort {
                name: port.name.clone().unwrap_or_default(),
                port: port_number,
                protocol,
            });
        }
    }
    // kube-proxy ignores FQDN slices (and cannot read an unknown type).
    let want_v4 = match address_type {
        Some("IPv4") => Some(true),
        Some("IPv6") => Some(false),
        _ => None,
    };
    let mut endpoints = Vec::new();
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        let mut first = None;
        for (j, address) in endpoint.addresses.iter().enumerate() {
            let Some(want_v4) = want_v4 else { break };
            let path = || format!("endpoints[{i}].addresses[{j}]");
            let Some(ip) = at.ip(path, "endpoint address", address) else {
                continue;
            };
            if ip.is_ipv4() != want_v4 {
                at.wrong_family(path, address, &slice.address_type);
            } else if j == 0 {
                first = Some(ip);
            }
        }
        // kube-proxy uses only the first address of an endpoint.
        let Some(address) = first else { continue };
        // As kube-proxy reads them: an absent `ready` or `serving` is true,
        // an absent `terminating` false (each on its own: an absent
        // `serving` does not follow `ready`).
        let conditions = endpoint.conditions.clone().unwrap_or_default();
        endpoints.push(Endpoint {
            address,
            node_name: endpoint.node_name.clone(),
            zone: endpoint.zone.clone(),
            zone_hints: endpoint
                .hints
                .as_ref()
                .and_then(|h| h.for_zones.as_ref())
                .map(|zones| zones.iter().map(|z| z.name.clone()).collect()),
            node_hints: endpoint
                .hints
                .as_ref()
                .and_then(|h| h.for_nodes.as_ref())
                .map(|nodes| nodes.iter().map(|n| n.name.clone()).collect()),
            ready: conditions.ready.unwrap_or(true),
            serving: conditions.serving.unwrap_or(true),
            terminating: conditions.terminating.unwrap_or(false),
            ports: ports.clone(),
        });
    }
    Converted {
        service: service_of(slice).map(|(ns, name)| (ns.to_owned(), name.to_owned())),
        name: slice.metadata.name.clone(),
        endpoints,
    }
}
