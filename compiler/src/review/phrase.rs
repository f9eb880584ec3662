//! The words for each change, shared by the text and markdown renderers.
//! Change phrases hold only what knc writes itself (addresses, ports,
//! numbers, fixed words), never a name from a manifest; renderers treat
//! names. Setting phrases may hold an interface name from the
//! KubeProxyConfiguration, so markdown escapes them.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::ir::{Family, FrontendKind, Selection, SetKind};

use super::model::{
    Change, FrontendRef, Presence, Refusal, RouteChange, Setting, SettingChange, Share, SourceClass,
};

/// `ClusterIP 10.96.0.10:80`, `LoadBalancer IP [fd00::1]:443`, `NodePort 30080`.
pub fn frontend(f: &FrontendRef) -> String {
    let kind = match f.kind {
        FrontendKind::ClusterIp => "ClusterIP",
        FrontendKind::ExternalIp => "external IP",
        FrontendKind::LoadBalancer => "LoadBalancer IP",
        FrontendKind::NodePort => "NodePort",
        FrontendKind::Gateway => "Gateway address",
    };
    match f.address {
        None => format!("{kind} {}", f.port),
        Some(address) => format!("{kind} {}", endpoint(address, f.port)),
    }
}

/// `10.244.1.1:8080`, `[fd00::1]:8080`.
pub fn endpoint(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

fn share(share: Share) -> String {
    format!("{:.1} %", share.percent())
}

fn set(set: SetKind) -> &'static str {
    match set {
        SetKind::Cluster => "cluster-wide",
        SetKind::Local => "node-local",
    }
}

fn class(class: SourceClass) -> &'static str {
    match class {
        SourceClass::Node => "this node",
        SourceClass::Pods => "pods",
        SourceClass::External => "outside the cluster",
    }
}

/// `pods`, `pods and outside the cluster`, `this node, pods and outside
/// the cluster`.
fn classes(classes: &[SourceClass]) -> String {
    let names: Vec<&str> = classes.iter().map(|c| class(*c)).collect();
    match names.split_last() {
        Some((last, first)) if !first.is_empty() => format!("{} and {last}", first.join(", ")),
        _ => names.join(""),
    }
}

fn ranges(ranges: &[IpNet]) -> String {
    if ranges.is_empty() {
        return "everyone".to_string();
    }
    let ranges: Vec<String> = ranges.iter().map(IpNet::to_string).collect();
    ranges.join(", ")
}

fn selection(selection: Selection) -> &'static str {
    match selection {
        Selection::Random => "random",
        Selection::SourceHash => "by source-address hash",
    }
}

fn affinity(timeout: Option<u32>) -> String {
    match timeout {
        None => "off".to_string(),
        Some(seconds) => format!("ClientIP for {seconds} s"),
    }
}

fn port(port: Option<u16>) -> String {
    port.map_or_else(|| "none".to_string(), |p| p.to_string())
}

fn route(route: &RouteChange) -> String {
    match route {
        RouteChange::StartsRefusing {
            refusal: Refusal::Reject,
        } => "starts rejecting (no usable endpoints)".into(),
        RouteChange::StartsRefusing {
            refusal: Refusal::Drop,
        } => "starts dropping (no endpoint on this node under a Local policy)".into(),
        RouteChange::StopsRefusing {
            refusal: Refusal::Reject,
        } => "stops rejecting".into(),
        RouteChange::StopsRefusing {
            refusal: Refusal::Drop,
        } => "stops dropping".into(),
        RouteChange::RefusalChanged { new, .. } => match new {
            Refusal::Reject => "rejects instead of dropping".into(),
            Refusal::Drop => "drops instead of rejecting".into(),
        },
        RouteChange::BackendSet { new, .. } => match new {
            SetKind::Local => {
                "node-local backends only, was cluster-wide (traffic policy Local)".into()
            }
            SetKind::Cluster => {
                "cluster-wide backends, was node-local only (traffic policy Cluster)".into()
            }
        },
        RouteChange::Masquerade { masquerade: true } => {
            "starts masquerading (source becomes the node's address)".into()
        }
        RouteChange::Masquerade { masquerade: false } => {
            "stops masquerading (client source kept)".into()
        }
    }
}

/// One line for one change.
pub fn change(change: &Change) -> String {
    match change {
        Change::FrontendAdded {
            frontend: f,
            rejects,
            drops,
        } => {
            let mut line = format!("new frontend: {}", frontend(f));
            if !rejects.is_empty() {
                line += &format!(", rejecting from {}", classes(rejects));
            }
            if !drops.is_empty() {
                line += &format!(", dropping from {}", classes(drops));
            }
            line
        }
        Change::FrontendRemoved { frontend: f } => format!("frontend gone: {}", frontend(f)),
        Change::BackendAdded {
            set: s,
            address,
            port,
            share: sh,
        } => format!(
            "new {} backend {}: {}",
            set(*s),
            endpoint(*address, *port),
            share(*sh)
        ),
        Change::BackendRemoved {
            set: s,
            address,
            port,
            share: sh,
        } => format!(
            "{} backend {} gone (was {})",
            set(*s),
            endpoint(*address, *port),
            share(*sh)
        ),
        Change::BackendShare {
            set: s,
            address,
            port,
            old,
            new,
        } => format!(
            "{} backend {}: {} → {}",
            set(*s),
            endpoint(*address, *port),
            share(*old),
            share(*new)
        ),
        Change::Route {
            frontend: f,
            classes: list,
            route: r,
        } => {
            format!("{} (from {}): {}", frontend(f), classes(list), route(r))
        }
        Change::SourceRanges {
            frontend: f,
            old,
            new,
        } => format!(
            "{}: allowed sources {} → {}",
            frontend(f),
            ranges(old),
            ranges(new)
        ),
        Change::Affinity { old, new } => {
            format!("session affinity: {} → {}", affinity(*old), affinity(*new))
        }
        Change::Selection { old, new } => {
            format!(
                "backend selection: {} → {}",
                selection(*old),
                selection(*new)
            )
        }
        Change::HealthCheckNodePort { old, new } => {
            format!("health-check NodePort: {} → {}", port(*old), port(*new))
        }
    }
}

/// One line for a node-wide setting.
pub fn setting(change: &SettingChange) -> String {
    let what = match change.setting {
        Setting::PodSources => "pods are",
        Setting::ServiceCidrs => "service CIDRs",
        Setting::NodeAddresses => "node addresses",
        Setting::NodePortScope => "NodePorts listen on",
    };
    format!("{what}: {} → {}", change.old, change.new)
}

/// `IPv4 tcp`, with `, new` or `, gone` for a port on one side only.
pub fn port_detail(family: Family, protocol: crate::ir::Protocol, presence: Presence) -> String {
    let family = match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    };
    let presence = match presence {
        Presence::Both => "",
        Presence::Added => ", new",
        Presence::Removed => ", gone",
    };
    format!("{family} {}{presence}", protocol.as_str())
}

/// `1 Service port changes`, `3 Service ports change`.
pub fn port_count(count: usize) -> String {
    if count == 1 {
        "1 Service port changes".to_string()
    } else {
        format!("{count} Service ports change")
    }
}
