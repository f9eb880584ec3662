//! KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): the one
//! conversion from a loaded configuration into the model's
//! [`ProxyConfig`].

use super::Located;
use crate::front::KubeProxyConfiguration;
use crate::model::{NodePortAddress, ProxyConfig};

/// Later configuration objects override earlier ones field by field; with
/// one object (the normal case) order does not matter.
pub(super) fn convert(
    at: &mut Located<'_>,
    config: &KubeProxyConfiguration,
    into: &mut ProxyConfig,
) {
    if let Some(cidrs) = &config.cluster_cidr {
        into.cluster_cidrs = cidrs
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|cidr| at.cidr("clusterCIDR", "clusterCIDR", cidr))
            .collect();
    }
    if let Some(entries) = &config.node_port_addresses {
        let mut addresses = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry == "primary" {
                addresses.push(NodePortAddress::Primary);
            } else if let Some(net) = at.cidr(
                &format!("nodePortAddresses[{i}]"),
                "nodePortAddresses entry",
                entry,
            ) {
                addresses.push(NodePortAddress::Cidr(net));
            }
        }
        into.nodeport_addresses = addresses;
    }
    if let Some(mode) = config.mode.as_ref().filter(|m| !m.is_empty()) {
        at.one_of(
            "mode",
            "mode",
            mode,
            &["iptables", "ipvs", "nftables", "kernelspace"],
        );
    }
    if let Some(m) = config.nftables.as_ref().and_then(|m| m.masquerade_all) {
        into.masquerade_all_nftables = Some(m);
    }
    if let Some(m) = config.iptables.as_ref().and_then(|m| m.masquerade_all) {
        into.masquerade_all_iptables = Some(m);
    }
}
