//! Builds the [`Cluster`] from loaded documents.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::addr::{parse_cidr, parse_ip};
use super::{
    Cluster, Endpoint, EndpointPort, Node, NodePortAddress, Origin, ProxyConfig, Service,
    ServicePort, ServiceType, TargetPort,
};
use crate::front::{Document, KubeProxyConfiguration, Loaded, Object};
use crate::ir::Protocol;

/// The label joining an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The Node label carrying its zone.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Joins the loaded objects into a cluster. Order of the documents does not
/// matter: everything is keyed and sorted.
pub fn build(loaded: &Loaded) -> Cluster {
    let mut services = BTreeMap::new();
    let mut slices: BTreeMap<(String, String), Vec<&discovery::EndpointSlice>> = BTreeMap::new();
    let mut legacy: BTreeMap<(String, String), &core::Endpoints> = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    let mut proxy_config = ProxyConfig::default();

    for doc in &loaded.documents {
        match &doc.object {
            Object::Service(svc) => {
                if let Some(service) = service(doc, svc) {
                    services.insert((service.namespace.clone(), service.name.clone()), service);
                }
            }
            Object::EndpointSlice(slice) => {
                let labels = slice.metadata.labels.as_ref();
                if let Some(svc) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                    slices
                        .entry((namespace_of(&slice.metadata), svc.clone()))
                        .or_default()
                        .push(slice);
                }
            }
            Object::Endpoints(eps) => {
                if let Some(name) = &eps.metadata.name {
                    legacy.insert((namespace_of(&eps.metadata), name.clone()), eps);
                }
            }
            Object::Node(node) => {
                if let Some(node) = self::node(node) {
                    nodes.insert(node.name.clone(), node);
                }
            }
            Object::KubeProxyConfiguration(cfg) => merge_proxy_config(&mut proxy_config, cfg),
        }
    }

    for (key, service) in services.iter_mut() {
        service.endpoints = match slices.get_mut(key) {
            Some(found) => {
                // Slices of one Service in a stable order, whatever the input order.
                found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                found.iter().flat_map(|s| slice_endpoints(s)).collect()
            }
            None => legacy
                .get(key)
                .map(|e| legacy_endpoints(e))
                .unwrap_or_default(),
        };
    }

    Cluster {
        services: services.into_values().collect(),
        nodes,
        proxy_config,
    }
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace
        .clone()
        .unwrap_or_else(|| "default".to_string())
}

/// Parses a protocol string; absent means TCP, as in the API.
pub(crate) fn protocol(text: Option<&str>) -> Option<Protocol> {
    match text.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

fn port_number(value: i32) -> Option<u16> {
    u16::try_from(value).ok().filter(|p| *p != 0)
}

fn ips<'a>(texts: impl IntoIterator<Item = &'a String>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in texts.into_iter().filter_map(|t| parse_ip(t)) {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// A Service that may get rules, or `None` for ExternalName and headless
/// Services (kube-proxy skips those too). A Service whose ClusterIP is not
/// allocated yet is kept with no `cluster_ips`: lowering decides, and
/// records, that it compiles nothing for it.
fn service(doc: &Document, svc: &core::Service) -> Option<Service> {
    let name = svc.metadata.name.clone()?;
    let spec = svc.spec.as_ref()?;
    let service_type = match spec.type_.as_deref().unwrap_or("ClusterIP") {
        "ClusterIP" => ServiceType::ClusterIp,
        "NodePort" => ServiceType::NodePort,
        "LoadBalancer" => ServiceType::LoadBalancer,
        _ => return None,
    };
    let cluster_ip_texts: Vec<&String> = match &spec.cluster_ips {
        Some(list) if !list.is_empty() => list.iter().collect(),
        _ => spec.cluster_ip.iter().collect(),
    };
    if cluster_ip_texts.iter().any(|ip| ip.as_str() == "None") {
        return None;
    }
    let cluster_ips = ips(cluster_ip_texts);
    let load_balancer_ips = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ingress| {
            ips(ingress
                .iter()
                .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
                .filter_map(|i| i.ip.as_ref()))
        })
        .unwrap_or_default();
    let affinity_timeout_seconds =
        (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(10800)
        });
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| service_port(p, service_type))
        .collect();
    Some(Service {
        namespace: namespace_of(&svc.metadata),
        name,
        origin: Origin::of(doc),
        service_type,
        cluster_ips,
        external_ips: ips(spec.external_ips.iter().flatten()),
        load_balancer_ips,
        load_balancer_source_ranges: spec
            .load_balancer_source_ranges
            .iter()
            .flatten()
            .filter_map(|r| parse_cidr(r))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        external_policy_local: spec.external_traffic_policy.as_deref() == Some("Local"),
        internal_policy_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
        affinity_timeout_seconds,
        health_check_node_port: spec.health_check_node_port.and_then(port_number),
        ports,
        endpoints: Vec::new(),
    })
}

fn service_port(p: &core::ServicePort, service_type: ServiceType) -> Option<ServicePort> {
    let port = port_number(p.port)?;
    let target_port = match &p.target_port {
        None => TargetPort::Number(port),
        Some(IntOrString::Int(n)) => TargetPort::Number(port_number(*n)?),
        Some(IntOrString::String(s)) => match s.parse::<i32>() {
            Ok(n) => TargetPort::Number(port_number(n)?),
            Err(_) => TargetPort::Name(s.clone()),
        },
    };
    let node_port = match service_type {
        ServiceType::ClusterIp => None,
        _ => p.node_port.and_then(port_number),
    };
    Some(ServicePort {
        name: p.name.clone().unwrap_or_default(),
        protocol: protocol(p.protocol.as_deref())?,
        port,
        node_port,
        target_port,
    })
}

/// An endpoint port, from a slice or a legacy subset; `None` when unusable.
fn endpoint_port(
    name: Option<&str>,
    port: i32,
    protocol_name: Option<&str>,
) -> Option<EndpointPort> {
    Some(EndpointPort {
        name: name.unwrap_or_default().to_string(),
        port: port_number(port)?,
        protocol: protocol(protocol_name)?,
    })
}

fn slice_endpoints(slice: &discovery::EndpointSlice) -> Vec<Endpoint> {
    let family_ok = |ip: &IpAddr| match slice.address_type.as_str() {
        "IPv4" => ip.is_ipv4(),
        "IPv6" => ip.is_ipv6(),
        _ => false,
    };
    let ports: Vec<EndpointPort> = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| endpoint_port(p.name.as_deref(), p.port?, p.protocol.as_deref()))
        .collect();
    slice
        .endpoints
        .iter()
        .filter_map(|ep| {
            // kube-proxy uses only the first address of an endpoint.
            let address = parse_ip(ep.addresses.first()?).filter(family_ok)?;
            let conditions = ep.conditions.clone().unwrap_or_default();
            let ready = conditions.ready.unwrap_or(true);
            Some(Endpoint {
                address,
                node_name: ep.node_name.clone(),
                zone: ep.zone.clone(),
                zone_hints: ep
                    .hints
                    .as_ref()
                    .and_then(|h| h.for_zones.as_ref())
                    .map(|zones| zones.iter().map(|z| z.name.clone()).collect()),
                ready,
                serving: conditions.serving.unwrap_or(ready),
                terminating: conditions.terminating.unwrap_or(false),
                ports: ports.clone(),
            })
        })
        .collect()
}

fn legacy_endpoints(eps: &core::Endpoints) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for subset in eps.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .filter_map(|p| endpoint_port(p.name.as_deref(), p.port, p.protocol.as_deref()))
            .collect();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (addr, ready) in ready.chain(not_ready) {
            let Some(address) = parse_ip(&addr.ip) else {
                continue;
            };
            out.push(Endpoint {
                address,
                node_name: addr.node_name.clone(),
                zone: None,
                zone_hints: None,
                ready,
                serving: ready,
                terminating: false,
                ports: ports.clone(),
            });
        }
    }
    out
}

fn node(node: &core::Node) -> Option<Node> {
    let name = node.metadata.name.clone()?;
    let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    let of_type = |kind: &str| {
        ips(addresses
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == kind)
            .map(|a| &a.address))
    };
    let spec = node.spec.as_ref();
    let mut pod_cidrs: Vec<_> = spec
        .and_then(|s| s.pod_cidrs.as_ref())
        .into_iter()
        .flatten()
        .chain(spec.and_then(|s| s.pod_cidr.as_ref()))
        .filter_map(|c| parse_cidr(c))
        .collect();
    pod_cidrs.sort();
    pod_cidrs.dedup();
    Some(Node {
        internal_ips: of_type("InternalIP"),
        external_ips: of_type("ExternalIP"),
        pod_cidrs,
        zone: node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ZONE_LABEL))
            .cloned(),
        name,
    })
}

/// Later configuration objects override earlier ones field by field; with
/// one object (the normal case) order does not matter.
fn merge_proxy_config(into: &mut ProxyConfig, cfg: &KubeProxyConfiguration) {
    if let Some(cidrs) = &cfg.cluster_cidr {
        into.cluster_cidrs = cidrs.split(',').filter_map(parse_cidr).collect();
    }
    if let Some(addrs) = &cfg.node_port_addresses {
        into.nodeport_addresses = addrs
            .iter()
            .filter_map(|a| match a.trim() {
                "primary" => Some(NodePortAddress::Primary),
                other => parse_cidr(other).map(NodePortAddress::Cidr),
            })
            .collect();
    }
    if let Some(m) = cfg.nftables.as_ref().and_then(|m| m.masquerade_all) {
        into.masquerade_all_nftables = Some(m);
    }
    if let Some(m) = cfg.iptables.as_ref().and_then(|m| m.masquerade_all) {
        into.masquerade_all_iptables = Some(m);
    }
}
