//! Conntrack cleanup after an apply, as kube-proxy does it: established
//! UDP and SCTP flows have no connection to break, so a flow to a backend
//! that is gone would keep being sent there, and a flow that hit a Service
//! with no endpoints keeps its reject. TCP flows keep their backend.
//!
//! * A UDP/SCTP backend removed from a Service port: entries whose reply
//!   comes from that backend, for each of the port's frontends, are deleted.
//! * A UDP/SCTP Service port whose backends go from none to some: entries
//!   for its frontends are deleted.
//!
//! Deletion runs the `conntrack` tool (conntrack-tools), one call per
//! filter; a missing tool is reported, never fatal.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use knc_compiler::ir::{Backend, Entry, Family, FrontendKind, Protocol, Ruleset};

use crate::tool::{self, ToolError};

/// One `conntrack -D` filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stale {
    pub family: Family,
    pub protocol: Protocol,
    /// The frontend address; `None` for a NodePort (any local address).
    pub destination: Option<IpAddr>,
    pub port: u16,
    /// The removed backend whose replies identify the entries; `None`
    /// deletes every entry to the frontend.
    pub reply_from: Option<(IpAddr, u16)>,
}

impl Stale {
    /// The `conntrack` arguments that delete exactly these entries.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-D".into(),
            "-f".into(),
            match self.family {
                Family::Ipv4 => "ipv4",
                Family::Ipv6 => "ipv6",
            }
            .into(),
            "-p".into(),
            self.protocol.as_str().into(),
        ];
        if let Some(destination) = self.destination {
            args.extend(["--orig-dst".into(), destination.to_string()]);
        }
        args.extend(["--orig-port-dst".into(), self.port.to_string()]);
        if let Some((address, port)) = self.reply_from {
            args.extend(["--reply-src".into(), address.to_string()]);
            args.extend(["--reply-port-src".into(), port.to_string()]);
        }
        args
    }
}

type EntryKey<'a> = (Family, &'a str, &'a str, &'a str, Protocol);

fn entries(ruleset: &Ruleset) -> BTreeMap<EntryKey<'_>, &Entry> {
    ruleset
        .services
        .iter()
        .filter(|s| matches!(s.protocol, Protocol::Udp | Protocol::Sctp))
        .map(|s| {
            (
                (
                    s.family,
                    s.namespace.as_str(),
                    s.name.as_str(),
                    s.port_name.as_str(),
                    s.protocol,
                ),
                &**s,
            )
        })
        .collect()
}

fn backends(entry: &Entry) -> BTreeSet<(IpAddr, u16)> {
    let both = entry.backends.cluster.iter().chain(&entry.backends.local);
    both.map(|b: &Backend| (b.address, b.port)).collect()
}

/// The conntrack entries that going from `old` to `new` leaves stale.
pub fn stale(old: &Ruleset, new: &Ruleset) -> Vec<Stale> {
    let before = entries(old);
    let after = entries(new);
    let mut stale = BTreeSet::new();
    for (key, old_entry) in &before {
        let kept = after.get(key).map(|e| backends(e)).unwrap_or_default();
        for gone in backends(old_entry).difference(&kept) {
            for frontend in &old_entry.frontends {
                stale.insert(Stale {
                    family: old_entry.family,
                    protocol: old_entry.protocol,
                    destination: address_of(frontend.kind, frontend.address),
                    port: frontend.port,
                    reply_from: Some(*gone),
                });
            }
        }
    }
    for (key, new_entry) in &after {
        let had_none = before
            .get(key)
            .is_some_and(|e| e.backends.cluster.is_empty());
        if had_none && !new_entry.backends.cluster.is_empty() {
            for frontend in &new_entry.frontends {
                stale.insert(Stale {
                    family: new_entry.family,
                    protocol: new_entry.protocol,
                    destination: address_of(frontend.kind, frontend.address),
                    port: frontend.port,
                    reply_from: None,
                });
            }
        }
    }
    stale.into_iter().collect()
}

fn address_of(kind: FrontendKind, address: Option<IpAddr>) -> Option<IpAddr> {
    match kind {
        FrontendKind::NodePort => None,
        _ => address,
    }
}

/// What a cleanup did.
#[derive(Debug, Default)]
pub struct Deleted {
    pub entries: u64,
    pub calls: usize,
    /// Wall time of the cleanup.
    pub took: std::time::Duration,
    /// Calls that failed, with why (logged by the caller).
    pub errors: Vec<String>,
}

/// Deletes the entries `stale` names.
pub fn delete(stale: &[Stale]) -> Deleted {
    let start = std::time::Instant::now();
    let mut deleted = Deleted::default();
    for filter in stale {
        let args = filter.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        deleted.calls += 1;
        // conntrack exits 1 when nothing matched; its count says so.
        let said = match tool::run("conntrack", &args, None) {
            Ok(out) => out.stderr,
            Err(ToolError::Refused { stderr, .. }) if count(&stderr).is_some() => stderr,
            Err(e) => {
                deleted.errors.push(e.to_string());
                continue;
            }
        };
        deleted.entries += count(&said).unwrap_or(0);
    }
    deleted.took = start.elapsed();
    deleted
}

/// `… N flow entries have been deleted.` → N.
fn count(stderr: &str) -> Option<u64> {
    let words: Vec<&str> = stderr.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1] == "flow")
        .and_then(|w| w[0].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use knc_compiler::ir::{BackendSets, Frontend, Route, Routing, SetKind};

    fn entry(protocol: Protocol, backends: &[&str]) -> Entry {
        let forward = Route::Forward {
            set: SetKind::Cluster,
            masquerade: false,
        };
        let routing = Routing {
            node: forward,
            pods: forward,
            external: forward,
        };
        Entry {
            family: Family::Ipv4,
            namespace: "default".into(),
            name: "dns".into(),
            port_name: String::new(),
            protocol,
            frontends: vec![
                Frontend {
                    kind: FrontendKind::ClusterIp,
                    address: Some("10.96.0.10".parse().unwrap()),
                    port: 53,
                    allowed_sources: vec![],
                    routing,
                },
                Frontend {
                    kind: FrontendKind::NodePort,
                    address: None,
                    port: 30053,
                    allowed_sources: vec![],
                    routing,
                },
            ],
            backends: BackendSets {
                cluster: backends
                    .iter()
                    .map(|a| Backend {
                        address: a.parse().unwrap(),
                        port: 5353,
                        weight: 1,
                    })
                    .collect(),
                local: vec![],
            },
            affinity_timeout_seconds: None,
            health_check_node_port: None,
            selection: Default::default(),
        }
    }

    fn ruleset(services: Vec<Entry>) -> Ruleset {
        Ruleset::with_services(None, services)
    }

    #[test]
    fn a_removed_udp_backend_is_flushed_for_every_frontend() {
        let old = ruleset(vec![entry(Protocol::Udp, &["10.244.1.1", "10.244.1.2"])]);
        let new = ruleset(vec![entry(Protocol::Udp, &["10.244.1.1"])]);
        let stale = stale(&old, &new);
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert_eq!(
            stale[0].args().join(" "),
            "-D -f ipv4 -p udp --orig-port-dst 30053 --reply-src 10.244.1.2 --reply-port-src 5353"
        );
        assert_eq!(
            stale[1].args().join(" "),
            "-D -f ipv4 -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --reply-src 10.244.1.2 --reply-port-src 5353"
        );
    }

    #[test]
    fn tcp_flows_keep_their_backend() {
        let old = ruleset(vec![entry(Protocol::Tcp, &["10.244.1.1", "10.244.1.2"])]);
        let new = ruleset(vec![entry(Protocol::Tcp, &["10.244.1.1"])]);
        assert!(stale(&old, &new).is_empty());
    }

    #[test]
    fn endpoints_appearing_flush_the_old_reject() {
        let old = ruleset(vec![entry(Protocol::Udp, &[])]);
        let new = ruleset(vec![entry(Protocol::Udp, &["10.244.1.1"])]);
        let stale = stale(&old, &new);
        assert_eq!(stale.len(), 2);
        assert!(stale.iter().all(|s| s.reply_from.is_none()));
    }

    #[test]
    fn the_tool_s_count_is_read() {
        assert_eq!(
            count("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted."),
            Some(3)
        );
    }
}
