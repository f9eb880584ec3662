//! ServiceCIDR (networking.k8s.io/v1): the address ranges ClusterIPs are
//! allocated from. kube-proxy reads every ServiceCIDR's `spec.cidrs` and
//! drops traffic to addresses inside them that no Service holds
//! (`pkg/proxy/nftables/proxier.go`, `OnServiceCIDRsChanged` and the
//! `service-cidrs` set); knc adds them to the `--service-cidr` ranges.

use k8s_openapi::api::networking::v1 as networking;

use super::{KindDef, Located};
use crate::front::fields::fields_of;
use ipnet::IpNet;

pub const DEF: KindDef = kind_def!(
    "networking.k8s.io/v1", networking::ServiceCIDR => ServiceCIDR,
    named: true, namespaced: false, ignored: super::no_ignored_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<networking::ServiceCIDR>(),
        "spec" => fields_of::<networking::ServiceCIDRSpec>(),
        "status" => fields_of::<networking::ServiceCIDRStatus>(),
        _ => &[],
    }
}

/// The object's `spec.cidrs`, each parsed at its place; a value that is
/// not a CIDR is an error there and is left out.
pub(super) fn convert(at: &mut Located<'_>, object: &networking::ServiceCIDR) -> Vec<IpNet> {
    let cidrs = object.spec.as_ref().and_then(|s| s.cidrs.as_ref());
    cidrs
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, cidr)| at.cidr(|| format!("spec.cidrs[{i}]"), "service CIDR", cidr))
        .collect()
}
