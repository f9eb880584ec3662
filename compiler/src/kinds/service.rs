//! Service (v1): the one conversion from a loaded Service to the model's
//! [`model::Service`], every field parsed once and every bad value located.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{KindDef, Located};
use crate::front::fields::fields_of;
use crate::ir::{Protocol, Selection};
use crate::model::{self, ServiceType, TargetPort};

pub const DEF: KindDef = kind_def!(
    "v1", core::Service => Service,
    named: true, namespaced: true, ignored: super::no_ignored_field
);

fn known_fields(shape: &str) -> &'static [&'static str] {
    match shape {
        "" => fields_of::<core::Service>(),
        "spec" => fields_of::<core::ServiceSpec>(),
        "spec.ports[]" => fields_of::<core::ServicePort>(),
        "spec.sessionAffinityConfig" => fields_of::<core::SessionAffinityConfig>(),
        "spec.sessionAffinityConfig.clientIP" => fields_of::<core::ClientIPConfig>(),
        "status" => fields_of::<core::ServiceStatus>(),
        "status.loadBalancer" => fields_of::<core::LoadBalancerStatus>(),
        "status.loadBalancer.ingress[]" => fields_of::<core::LoadBalancerIngress>(),
        _ => &[],
    }
}

/// The annotation choosing how a Service's connections pick a backend:
/// `random` (the default) or `source-hash` ([`Selection`]).
pub const BACKEND_SELECTION: &str = "knc.dev/backend-selection";

/// A NodePort one Service port claims, for the cross-object check.
pub(super) struct NodePortClaim {
    pub node_port: u16,
    pub protocol: Protocol,
    /// The port's index in `spec.ports`.
    pub port_index: usize,
}

impl NodePortClaim {
    /// Where the claim is written.
    pub fn path(&self) -> String {
        format!("spec.ports[{}].nodePort", self.port_index)
    }
}

/// What a Service converts to: the model Service when it gets rules (not
/// ExternalName, not headless, named), and its NodePort claims.
pub(super) struct Converted {
    pub service: Option<model::Service>,
    pub nodeport_claims: Vec<NodePortClaim>,
}

/// `clusterIP` values that are not addresses.
fn is_set(ip: &str) -> bool {
    !ip.is_empty() && ip != "None"
}

pub(super) fn convert(at: &mut Located<'_>, svc: &core::Service) -> Converted {
    let mut out = Converted {
        service: None,
        nodeport_claims: Vec::new(),
    };
    let Some(spec) = &svc.spec else { return out };

    let service_type = spec.type_.as_ref().and_then(|t| {
        at.one_of(
            || "spec.type".into(),
            "type",
            t,
            &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
        )
    });
    let affinity = spec.session_affinity.as_ref().and_then(|a| {
        at.one_of(
            || "spec.sessionAffinity".into(),
            "sessionAffinity",
            a,
            &["None", "ClientIP"],
        )
    });
    let mut policy = |path: &'static str, field: &str, value: Option<&String>| {
        value.and_then(|v| at.one_of(|| path.into(), field, v, &["Cluster", "Local"]))
    };
    let external_policy = policy(
        "spec.externalTrafficPolicy",
        "externalTrafficPolicy",
        spec.external_traffic_policy.as_ref(),
    );
    let internal_policy = policy(
        "spec.internalTrafficPolicy",
        "internalTrafficPolicy",
        spec.internal_traffic_policy.as_ref(),
    );
    if let Some(value) = &spec.ip_family_policy {
        at.one_of(
            || "spec.ipFamilyPolicy".into(),
            "ipFamilyPolicy",
            value,
            &["SingleStack", "PreferDualStack", "RequireDualStack"],
        );
    }
    for (i, family) in spec.ip_families.iter().flatten().enumerate() {
        at.one_of(
            || format!("spec.ipFamilies[{i}]"),
            "ipFamily",
            family,
            &["IPv4", "IPv6"],
        );
    }
    let timeout = spec
        .session_affinity_config
        .as_ref()
        .and_then(|a| a.client_ip.as_ref())
        .and_then(|ip| ip.timeout_seconds)
        .and_then(|t| {
            at.affinity_timeout(
                || "spec.sessionAffinityConfig.clientIP.timeoutSeconds".into(),
                t,
            )
        });

    let selection = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BACKEND_SELECTION))
        .map_or(Selection::Random, |value| {
            at.backend_selection(&format!("metadata.annotations.{BACKEND_SELECTION}"), value)
        });

    // Addresses.
    let cluster_ip = spec
        .cluster_ip
        .as_ref()
        .filter(|ip| is_set(ip))
        .and_then(|ip| at.ip(|| "spec.clusterIP".into(), "clusterIP", ip));
    let mut cluster_ips_listed = Vec::new();
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        if is_set(ip) {
            cluster_ips_listed.extend(at.ip(|| format!("spec.clusterIPs[{i}]"), "clusterIP", ip));
        }
    }
    let mut external_ips = Vec::new();
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        external_ips.extend(at.ip(|| format!("spec.externalIPs[{i}]"), "external IP", ip));
    }
    if let Some(ip) = spec.load_balancer_ip.as_ref().filter(|ip| !ip.is_empty()) {
        at.ip(|| "spec.loadBalancerIP".into(), "loadBalancerIP", ip);
    }
    let mut source_ranges = BTreeSet::new();
    for (i, range) in spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .enumerate()
    {
        source_ranges.extend(at.cidr(
            || format!("spec.loadBalancerSourceRanges[{i}]"),
            "source range",
            range.trim(),
        ));
    }
    let mut load_balancer_ips = Vec::new();
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for (i, ingress) in ingress.into_iter().flatten().enumerate() {
        let ip = ingress.ip.as_ref().and_then(|ip| {
            at.ip(
                || format!("status.loadBalancer.ingress[{i}].ip"),
                "ingress IP",
                ip,
            )
        });
        let mode = ingress.ip_mode.as_ref().and_then(|mode| {
            at.one_of(
                || format!("status.loadBalancer.ingress[{i}].ipMode"),
                "ipMode",
                mode,
                &["VIP", "Proxy"],
            )
        });
        // `ipMode: Proxy`: the load balancer proxies, the node does not.
        if mode != Some("Proxy") {
            load_balancer_ips.extend(ip);
        }
    }

    // Ports.
    let node_ports_apply = !matches!(service_type, None | Some("ClusterIP"));
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let port = at.port(|| format!("spec.ports[{i}].port"), "port", p.port, 1);
        let node_port_path = || format!("spec.ports[{i}].nodePort");
        let node_port = p
            .node_port
            .and_then(|n| at.port(node_port_path, "nodePort", n, 0));
        let target_path = || format!("spec.ports[{i}].targetPort");
        let target_port = match &p.target_port {
            None => port.map(TargetPort::Number),
            Some(IntOrString::Int(n)) => at
                .port(target_path, "targetPort", *n, 1)
                .map(TargetPort::Number),
            Some(IntOrString::String(name)) => {
                at.port_name(target_path, name).map(TargetPort::Name)
            }
        };
        let protocol = at.protocol(|| format!("spec.ports[{i}].protocol"), p.protocol.as_ref());
        if let (Some(node_port), Some(protocol)) = (node_port, protocol) {
            out.nodeport_claims.push(NodePortClaim {
                node_port,
                protocol,
                port_index: i,
            });
        }
        if let (Some(port), Some(target_port), Some(protocol)) = (port, target_port, protocol) {
            ports.push(model::ServicePort {
                index: i,
                name: p.name.clone().unwrap_or_default(),
                protocol,
                port,
                node_port: node_port.filter(|_| node_ports_apply),
                target_port,
            });
        }
    }

    // What gets rules: kube-proxy skips ExternalName and headless Services.
    let service_type = match service_type.unwrap_or("ClusterIP") {
        "ClusterIP" => ServiceType::ClusterIp,
        "NodePort" => ServiceType::NodePort,
        "LoadBalancer" => ServiceType::LoadBalancer,
        _ => return out,
    };
    let listed = spec.cluster_ips.as_ref().filter(|l| !l.is_empty());
    let headless = match listed {
        Some(list) => list.iter().any(|ip| ip == "None"),
        None => spec.cluster_ip.as_deref() == Some("None"),
    };
    let Some(name) = svc.metadata.name.clone().filter(|_| !headless) else {
        return out;
    };
    let cluster_ips = if listed.is_some() {
        cluster_ips_listed
    } else {
        cluster_ip.into_iter().collect()
    };
    out.service = Some(model::Service {
        namespace: super::namespace_of(&svc.metadata),
        name,
        origin: at.origin(),
        service_type,
        cluster_ips: unique(cluster_ips),
        external_ips: unique(external_ips),
        load_balancer_ips: unique(load_balancer_ips),
        load_balancer_source_ranges: source_ranges.into_iter().collect(),
        external_policy_local: external_policy == Some("Local"),
        internal_policy_local: internal_policy == Some("Local"),
        affinity_timeout_seconds: (affinity == Some("ClientIP")).then(|| timeout.unwrap_or(10800)),
        health_check_node_port: spec
            .health_check_node_port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0),
        selection,
        ports,
        endpoints: Vec::new(),
    });
    out
}

/// What lint needs of a Service besides its model: whether it has a
/// selector, and where each of its external addresses is written. Values
/// that do not parse are skipped ([`convert`] reports them).
pub(super) fn lint_facts(at: &Located<'_>, svc: &core::Service, inventory: &mut model::Inventory) {
    let (Some(spec), Some(name)) = (&svc.spec, &svc.metadata.name) else {
        return;
    };
    let service = model::ServiceRef {
        key: model::object_key(super::namespace_str(&svc.metadata), name),
        origin: at.origin(),
    };
    let selected = spec.selector.as_ref().is_some_and(|s| !s.is_empty());
    if !selected && spec.type_.as_deref() != Some("ExternalName") {
        inventory.selectorless.push(service.clone());
    }
    let external = spec
        .external_ips
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, ip)| (ip, format!("spec.externalIPs[{i}]")));
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let load_balancer = ingress
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, ingress)| ingress.ip_mode.as_deref() != Some("Proxy"))
        .filter_map(|(i, ingress)| {
            let ip = ingress.ip.as_ref()?;
            Some((ip, format!("status.loadBalancer.ingress[{i}].ip")))
        });
    for (text, path) in external.chain(load_balancer) {
        if let Some(address) = crate::model::addr::parse_ip(text) {
            inventory.external_addresses.push(model::ExternalAddress {
                service: service.clone(),
                address,
                path,
            });
        }
    }
}

/// Addresses in first-seen order, each once.
pub(super) fn unique(ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(ips.len());
    for ip in ips {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}
