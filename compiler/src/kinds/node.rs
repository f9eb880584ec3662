//! Node (v1): the one conversion from a loaded Node to the model's
//! [`model::Node`].

use k8s_openapi::api::core::v1 as core;

use super::service::unique;
use super::{KindDef, Located};
use crate::front::fields::fields_of;
use crate::model;

pub const DEF: KindDef = kind_def!(
    "v1", core::Node => Node,
    named: true, namespaced: false, ignored: super::no_ignored_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<core::Node>(),
        "spec" => fields_of::<core::NodeSpec>(),
        "status" => fields_of::<core::NodeStatus>(),
        "status.addresses[]" => fields_of::<core::NodeAddress>(),
        _ => &[],
    }
}

/// The Node label carrying its zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

pub(super) fn convert(at: &mut Located<'_>, node: &core::Node) -> Option<model::Node> {
    let mut internal_ips = Vec::new();
    let mut external_ips = Vec::new();
    let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    for (i, address) in addresses.into_iter().flatten().enumerate() {
        let list = match address.type_.as_str() {
            "InternalIP" => &mut internal_ips,
            "ExternalIP" => &mut external_ips,
            _ => continue,
        };
        list.extend(at.ip(
            || format!("status.addresses[{i}].address"),
            "node address",
            &address.address,
        ));
    }
    let mut pod_cidrs = Vec::new();
    if let Some(spec) = &node.spec {
        if let Some(cidr) = spec.pod_cidr.as_ref().filter(|s| !s.is_empty()) {
            pod_cidrs.extend(at.cidr(|| "spec.podCIDR".into(), "pod CIDR", cidr));
        }
        for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
            pod_cidrs.extend(at.cidr(|| format!("spec.podCIDRs[{i}]"), "pod CIDR", cidr));
        }
    }
    pod_cidrs.sort();
    pod_cidrs.dedup();
    Some(model::Node {
        name: node.metadata.name.clone()?,
        internal_ips: unique(internal_ips),
        external_ips: unique(external_ips),
        pod_cidrs,
        zone: node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ZONE_LABEL))
            .cloned(),
    })
}
