//! KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1), the parts knc reads.

use serde::{Deserialize, Serialize};

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
    #[serde(default)]
    pub nftables: Option<ModeConfig>,
    #[serde(default)]
    pub iptables: Option<ModeConfig>,
}

/// Mode-specific settings (`nftables:` / `iptables:`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeConfig {
    #[serde(default)]
    pub masquerade_all: Option<bool>,
}
