//! What lowering decided that the IR alone does not say: a frontend given
//! to one of two Services that claim it, a Service that gets no rule. Each
//! decision names the model objects it concerns with their provenance, so
//! `knc lint` reports what `knc compile` did instead of guessing it again.

use std::collections::btree_map::{self, BTreeMap};
use std::net::IpAddr;

use crate::ir::{Entry, Family, FrontendKind, Protocol};
use crate::model::{self, Cluster, Origin};

/// One decision of lowering, about Services of the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Two Services claim one frontend: `kept_by` has it in the IR,
    /// `lost_by` does not.
    FrontendLost {
        claim: Claim,
        kept_by: ServiceRef,
        lost_by: ServiceRef,
    },
    /// A Service that gets no rule at all, and why.
    NothingCompiled {
        service: ServiceRef,
        reason: NothingCompiled,
    },
}

/// Why a Service gets no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NothingCompiled {
    /// No ClusterIP is allocated yet (`clusterIP` absent or empty, as in a
    /// manifest kept in Git). kube-proxy skips such a Service whole,
    /// NodePorts and external IPs included, and so does knc.
    NoClusterIp,
}

/// A frontend as two Services claim it: what, where, which protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub kind: FrontendKind,
    /// `None` for a NodePort (every node address).
    pub address: Option<IpAddr>,
    pub port: u16,
    pub protocol: Protocol,
}

impl std::fmt::Display for Claim {
    /// `203.0.113.5:80/TCP`, `[fd00::5]:80/TCP`, `nodePort 30080/TCP`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = crate::names::protocol_name(self.protocol);
        match self.address {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}/{protocol}", self.port),
            Some(ip) => write!(f, "{ip}:{}/{protocol}", self.port),
            None => write!(f, "nodePort {}/{protocol}", self.port),
        }
    }
}

/// A model Service (or Gateway API route) as a decision names it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRef {
    /// `Service`, or `TCPRoute` / `UDPRoute` for a route's entry.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub origin: Origin,
}

impl ServiceRef {
    fn of(service: &model::Service) -> ServiceRef {
        ServiceRef {
            kind: "Service",
            namespace: service.namespace.clone(),
            name: service.name.clone(),
            origin: service.origin,
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        crate::names::object_key(&self.namespace, &self.name)
    }

    /// ``Service `namespace/name` ``, ``TCPRoute `namespace/name` ``.
    pub fn describe(&self) -> String {
        format!("{} `{}`", self.kind, self.key())
    }
}

/// Services of the model that lowering compiles nothing for.
pub(super) fn nothing_compiled(cluster: &Cluster) -> Vec<Decision> {
    cluster
        .services
        .iter()
        .filter(|s| s.cluster_ips.is_empty())
        .map(|s| Decision::NothingCompiled {
            service: ServiceRef::of(s),
            reason: NothingCompiled::NoClusterIp,
        })
        .collect()
}

/// Two Services may claim one address and port (a shared ExternalIP, a
/// NodePort reused); the first in IR order keeps it, so the result is
/// deterministic and every frontend key is unique for the emitters. Every
/// frontend dropped is one [`Decision::FrontendLost`].
pub(super) fn drop_claimed_frontends(services: &mut [Entry], cluster: &Cluster) -> Vec<Decision> {
    type Key = (Family, Option<IpAddr>, Protocol, u16);
    let mut claimed: BTreeMap<Key, usize> = BTreeMap::new();
    let mut lost = Vec::new();
    for (i, service) in services.iter_mut().enumerate() {
        let (family, protocol) = (service.family, service.protocol);
        service.frontends.retain(|f| {
            let address = if f.kind == FrontendKind::NodePort {
                None
            } else {
                f.address
            };
            match claimed.entry((family, address, protocol, f.port)) {
                btree_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                    true
                }
                btree_map::Entry::Occupied(winner) => {
                    let claim = Claim {
                        kind: f.kind,
                        address,
                        port: f.port,
                        protocol,
                    };
                    lost.push((claim, *winner.get(), i));
                    false
                }
            }
        });
    }
    lost.into_iter()
        .filter_map(|(claim, winner, loser)| {
            Some(Decision::FrontendLost {
                claim,
                kept_by: service_ref(cluster, &services[winner])?,
                lost_by: service_ref(cluster, &services[loser])?,
            })
        })
        .collect()
}

/// The model Service (or Gateway API route) an IR entry was lowered from
/// (the model's Services are sorted by namespace and name).
fn service_ref(cluster: &Cluster, entry: &Entry) -> Option<ServiceRef> {
    if let Some(service) = cluster.service(&entry.namespace, &entry.name) {
        return Some(ServiceRef::of(service));
    }
    let route = cluster
        .routes
        .iter()
        .find(|r| r.namespace == entry.namespace && r.entry_name() == entry.name)?;
    Some(ServiceRef {
        kind: route.kind.kind(),
        namespace: route.namespace.clone(),
        name: route.name.clone(),
        origin: route.origin,
    })
}
