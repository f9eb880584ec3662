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

/// Top-level fields of kube-proxy's configuration that do not change the
/// ruleset. knc accepts them silently: a real kube-proxy config file must not
/// drown the user in unknown-field warnings.
pub const UNUSED_FIELDS: &[&str] = &[
    "bindAddress",
    "bindAddressHardFail",
    "clientConnection",
    "configSyncPeriod",
    "conntrack",
    "detectLocal",
    "detectLocalMode",
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
