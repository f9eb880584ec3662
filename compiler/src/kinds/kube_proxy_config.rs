//! KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): the parts
//! knc reads, the fields it knows and ignores, and the one conversion into
//! the model's [`ProxyConfig`].

use super::{KindDef, Located};
use crate::front::fields::fields_of;
use crate::model::{DetectLocalMode, NodePortAddress, ProxyConfig};
use serde::{Deserialize, Serialize};

pub const DEF: KindDef = kind_def!(
    "kubeproxy.config.k8s.io/v1alpha1", KubeProxyConfiguration => KubeProxyConfiguration,
    named: false, namespaced: false, ignored: is_unused_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<KubeProxyConfiguration>(),
        "nftables" | "iptables" => fields_of::<ModeConfig>(),
        "detectLocal" => fields_of::<DetectLocal>(),
        _ => &[],
    }
}

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
            .filter_map(|cidr| at.cidr(|| "clusterCIDR".into(), "clusterCIDR", cidr))
            .collect();
    }
    if let Some(entries) = &config.node_port_addresses {
        let mut addresses = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry == "primary" {
                addresses.push(NodePortAddress::Primary);
            } else if let Some(net) = at.cidr(
                || format!("nodePortAddresses[{i}]"),
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
            || "mode".into(),
            "mode",
            mode,
            &["iptables", "ipvs", "nftables", "kernelspace"],
        );
    }
    if let Some(mode) = config.detect_local_mode.as_ref().filter(|m| !m.is_empty()) {
        match at.one_of(
            || "detectLocalMode".into(),
            "detectLocalMode",
            mode,
            &[
                "ClusterCIDR",
                "NodeCIDR",
                "BridgeInterface",
                "InterfaceNamePrefix",
            ],
        ) {
            Some("NodeCIDR") => into.detect_local_mode = Some(DetectLocalMode::NodeCidr),
            Some("BridgeInterface") => {
                into.detect_local_mode = Some(DetectLocalMode::BridgeInterface)
            }
            Some("InterfaceNamePrefix") => {
                into.detect_local_mode = Some(DetectLocalMode::InterfaceNamePrefix)
            }
            Some(_) => into.detect_local_mode = Some(DetectLocalMode::ClusterCidr),
            None => {}
        }
    }
    // Interface names go into rules as they are: anything but 1 to 15 of
    // [A-Za-z0-9_.-] is refused here, located, and dropped.
    if let Some(detect) = &config.detect_local {
        if let Some(prefix) = detect
            .interface_name_prefix
            .as_ref()
            .filter(|p| !p.is_empty())
        {
            if let Some(name) = at.interface_name(
                || "detectLocal.interfaceNamePrefix".into(),
                "detectLocal.interfaceNamePrefix",
                prefix,
            ) {
                into.interface_name_prefix = Some(name);
            }
        }
        if let Some(bridge) = detect.bridge_interface.as_ref().filter(|b| !b.is_empty()) {
            if let Some(name) = at.interface_name(
                || "detectLocal.bridgeInterface".into(),
                "detectLocal.bridgeInterface",
                bridge,
            ) {
                into.bridge_interface = Some(name);
            }
        }
    }
    if let Some(m) = config.nftables.as_ref().and_then(|m| m.masquerade_all) {
        into.masquerade_all_nftables = Some(m);
    }
    if let Some(m) = config.iptables.as_ref().and_then(|m| m.masquerade_all) {
        into.masquerade_all_iptables = Some(m);
    }
}

/// The fields of kube-proxy's configuration file that change the ruleset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeProxyConfiguration {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// Comma-separated pod CIDRs, one per family.
    #[serde(default, rename = "clusterCIDR")]
    pub cluster_cidr: Option<String>,
    /// CIDRs, or the word `primary`, where NodePorts listen.
    #[serde(default)]
    pub node_port_addresses: Option<Vec<String>>,
    /// `nftables` or `iptables` (kube-proxy's mode).
    #[serde(default)]
    pub mode: Option<String>,
    /// How pods are told from external clients: `ClusterCIDR` (the
    /// default), `NodeCIDR`, `BridgeInterface`, `InterfaceNamePrefix`.
    #[serde(default)]
    pub detect_local_mode: Option<String>,
    /// The interfaces of the interface detectors.
    #[serde(default)]
    pub detect_local: Option<DetectLocal>,
    #[serde(default)]
    pub nftables: Option<ModeConfig>,
    #[serde(default)]
    pub iptables: Option<ModeConfig>,
}

/// `detectLocal:`, the interfaces `BridgeInterface` and
/// `InterfaceNamePrefix` read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectLocal {
    #[serde(default)]
    pub bridge_interface: Option<String>,
    #[serde(default)]
    pub interface_name_prefix: Option<String>,
}

/// Mode-specific settings (`nftables:` / `iptables:`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeConfig {
    #[serde(default)]
    pub masquerade_all: Option<bool>,
}

/// Top-level fields of kube-proxy's configuration that do not change the
/// ruleset. knc accepts them silently: a real kube-proxy config file must not
/// drown the user in unknown-field warnings.
pub const UNUSED_FIELDS: &[&str] = &[
    "bindAddress",
    "bindAddressHardFail",
    "clientConnection",
    "configSyncPeriod",
    "conntrack",
    "enableProfiling",
    "featureGates",
    "healthzBindAddress",
    "hostnameOverride",
    "ipvs",
    "linux",
    "logging",
    "metricsBindAddress",
    "oomScoreAdj",
    "portRange",
    "showHiddenMetricsForVersion",
    "udpIdleTimeout",
    "windowsRunAsService",
    "winkernel",
];

/// Fields of `nftables:` / `iptables:` that do not change the ruleset.
pub const UNUSED_MODE_FIELDS: &[&str] = &[
    "localhostNodePorts",
    "masqueradeBit",
    "minSyncPeriod",
    "syncPeriod",
];

/// Is `path` (relative to the object) a kube-proxy field knc knows and ignores?
pub fn is_unused_field(path: &str) -> bool {
    match path.split_once('.') {
        None => UNUSED_FIELDS.contains(&path),
        Some(("nftables" | "iptables", field)) => UNUSED_MODE_FIELDS.contains(&field),
        Some((top, _)) => UNUSED_FIELDS.contains(&top),
    }
}
