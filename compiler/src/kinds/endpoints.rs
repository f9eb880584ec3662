//! Endpoints (v1, legacy): the one conversion from a loaded Endpoints
//! object to the model's [`Endpoint`]s of the Service of the same name
//! (used when the Service has no EndpointSlice).

use k8s_openapi::api::core::v1 as core;

use super::{KindDef, Located};
use crate::front::fields::fields_of;
use crate::ir::Family;
use crate::model::addr::parse_ip;
use crate::model::{Endpoint, EndpointPort};

pub const DEF: KindDef = kind_def!(
    "v1", core::Endpoints => Endpoints,
    named: true, namespaced: true, ignored: super::no_ignored_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<core::Endpoints>(),
        "subsets[]" => fields_of::<core::EndpointSubset>(),
        "subsets[].addresses[]" | "subsets[].notReadyAddresses[]" => {
            fields_of::<core::EndpointAddress>()
        }
        "subsets[].ports[]" => fields_of::<core::EndpointPort>(),
        _ => &[],
    }
}

/// The endpoints for the Service `(namespace, name)`.
pub(super) struct Converted {
    /// `None` for an unnamed object.
    pub service: Option<(String, String)>,
    pub endpoints: Vec<Endpoint>,
}

/// The Service `(namespace, name)` an Endpoints object is for: its own.
pub(super) fn service_of(eps: &core::Endpoints) -> Option<(&str, &str)> {
    let name = eps.metadata.name.as_deref()?;
    Some((super::namespace_str(&eps.metadata), name))
}

/// The family of every address, with its field, for lint.
pub(super) fn families(eps: &core::Endpoints) -> Vec<(String, Family)> {
    let mut out = Vec::new();
    for (i, subset) in eps.subsets.iter().flatten().enumerate() {
        let lists = [
            ("addresses", &subset.addresses),
            ("notReadyAddresses", &subset.not_ready_addresses),
        ];
        for (field, list) in lists {
            for (j, address) in list.iter().flatten().enumerate() {
                if let Some(ip) = parse_ip(&address.ip) {
                    out.push((format!("subsets[{i}].{field}[{j}].ip"), Family::of(&ip)));
                }
            }
        }
    }
    out
}

pub(super) fn convert(at: &mut Located<'_>, eps: &core::Endpoints) -> Converted {
    let mut endpoints = Vec::new();
    for (i, subset) in eps.subsets.iter().flatten().enumerate() {
        let mut ports = Vec::new();
        for (j, port) in subset.ports.iter().flatten().enumerate() {
            let number = at.port(
                || format!("subsets[{i}].ports[{j}].port"),
                "port",
                port.port,
                1,
            );
            let protocol = at.protocol(
                || format!("subsets[{i}].ports[{j}].protocol"),
                port.protocol.as_ref(),
            );
            if let (Some(number), Some(protocol)) = (number, protocol) {
                ports.push(EndpointPort {
                    name: port.name.clone().unwrap_or_default(),
                    port: number,
                    protocol,
                });
            }
        }
        let lists = [
            ("addresses", &subset.addresses, true),
            ("notReadyAddresses", &subset.not_ready_addresses, false),
        ];
        for (field, list, ready) in lists {
            for (j, address) in list.iter().flatten().enumerate() {
                let path = || format!("subsets[{i}].{field}[{j}].ip");
                let Some(ip) = at.ip(path, "endpoint address", &address.ip) else {
                    continue;
                };
                endpoints.push(Endpoint {
                    address: ip,
                    node_name: address.node_name.clone(),
                    zone: None,
                    zone_hints: None,
                    node_hints: None,
                    ready,
                    serving: ready,
                    terminating: false,
                    ports: ports.clone(),
                });
            }
        }
    }
    Converted {
        service: service_of(eps).map(|(ns, name)| (ns.to_owned(), name.to_owned())),
        endpoints,
    }
}
