//! `knc explain` as data: the same decisions the text tells, as a typed
//! value that serialises to stable JSON (`knc explain --output json`), so
//! tools need not parse sentences. Field names and verdict tags are part
//! of the command-line contract (README, "explain JSON").

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::{
    classes, find, sets_remembered_apart, shares, source_allowed, unmatched_verdict, Query,
    SourceClass,
};
use crate::ir::{
    selection, Backend, Entry, Family, FrontendKind, LocalDetector, Protocol, Route, Ruleset,
    Selection, SetKind,
};

/// What the node's ruleset does with one new connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The connection asked about.
    pub connection: Connection,
    /// The node the ruleset was compiled for (`None`: node-agnostic).
    pub node: Option<String>,
    /// How the ruleset tells pods from other sources (as in the IR).
    pub local_detector: LocalDetector,
    /// The frontend the destination is, if any.
    pub frontend: Option<MatchedFrontend>,
    /// One verdict per source class explained: the source's own class,
    /// both pods and external under an interface detector (only the
    /// interface tells them apart), or all three classes without `--from`.
    pub sources: Vec<SourceVerdict>,
}

/// The connection of a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub to: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub from: Option<IpAddr>,
    /// `--from-this-node`: the client is a process on this node.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_this_node: bool,
    /// `--in-interface`: the interface the connection arrives on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrives_on: Option<String>,
}

/// The frontend a connection reaches and the Service port behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedFrontend {
    pub kind: FrontendKind,
    /// The frontend's address; `None` for a NodePort (any NodePort address).
    pub address: Option<IpAddr>,
    pub port: u16,
    pub protocol: Protocol,
    pub family: Family,
    pub service: ServicePort,
    /// `loadBalancerSourceRanges`: only these sources may connect (empty:
    /// everyone).
    pub allowed_sources: Vec<IpNet>,
}

/// A Service port, named as kube-proxy names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's `name`; empty for a Service's single unnamed port.
    pub port_name: String,
}

/// The verdict for one source class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceVerdict {
    pub source: SourceClass,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The fate of a new connection, tagged by `verdict`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Sent to one of `backends`, with the source rewritten to the node's
    /// address when `masquerade`.
    Forwarded {
        masquerade: bool,
        backend_set: SetKind,
        backends: Vec<Candidate>,
        /// `sessionAffinity: ClientIP`, when the Service port has it.
        affinity: Option<Affinity>,
        /// Selection by source-address hash, with the client's address
        /// known: the backend each back end always sends it to.
        #[serde(skip_serializing_if = "Option::is_none")]
        source_hash: Option<SourceHash>,
    },
    /// Refused: TCP reset, ICMP unreachable otherwise.
    Rejected { reason: Reason },
    /// Discarded silently.
    Dropped { reason: Reason },
    /// Not a Service address or NodePort here: knc's rules let it pass.
    NoFrontend,
}

/// Why a connection is rejected or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The Service port has no usable endpoints (rejected).
    NoUsableEndpoints,
    /// A node-local traffic policy and no usable endpoint on this node
    /// (dropped).
    NoLocalEndpoints,
    /// The source is outside the frontend's `loadBalancerSourceRanges`
    /// (dropped).
    SourceOutsideRanges,
    /// An active ClusterIP, but no Service port on this port (rejected).
    NoServicePort,
    /// Inside a service CIDR, but no Service has the address (dropped).
    UnallocatedServiceAddress,
}

/// A backend that may receive the connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub address: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// The chance this backend is chosen, 0 to 1; the candidates' sum to 1.
    pub probability: f64,
    /// The client is this backend: the connection comes back to it with
    /// the node's address as source (hairpin masquerade), whatever
    /// `masquerade` says.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hairpin: bool,
}

/// Where selection by source-address hash sends one client: the slot its
/// address hashes to and that slot's backend, per back end (iptables'
/// `-m cluster` table is smaller, so it may differ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceHash {
    pub nft: HashedBackend,
    pub iptables: HashedBackend,
}

/// The slot a client hashes to in a slot table and the backend there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashedBackend {
    pub slot: u32,
    pub slots: u32,
    pub address: IpAddr,
    pub port: u16,
}

/// What session affinity remembers: a client per Service port, whichever
/// of `shared_by` it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affinity {
    pub timeout_seconds: u32,
    /// Every frontend of the Service port; they share one memory.
    pub shared_by: Vec<AffinityFrontend>,
    /// Whether the cluster-wide and the node-local backends are
    /// remembered apart (the port routes to both).
    pub sets_remembered_apart: bool,
}

/// A frontend sharing a Service port's affinity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffinityFrontend {
    pub kind: FrontendKind,
    /// `None` for a NodePort.
    pub address: Option<IpAddr>,
    pub port: u16,
}

/// Explains `query` against `ruleset` as data; [`super::explain`] tells
/// the same as text.
pub fn explanation(ruleset: &Ruleset, query: &Query) -> Explanation {
    let classes = classes(ruleset, query);
    let matched = find(ruleset, query);
    let sources = classes
        .iter()
        .map(|&source| SourceVerdict {
            source,
            verdict: match matched {
                None => unmatched_verdict(ruleset, query),
                Some((_, frontend)) if !source_allowed(frontend, query.from) => Verdict::Dropped {
                    reason: Reason::SourceOutsideRanges,
                },
                Some((service, frontend)) => route_verdict(
                    service,
                    match source {
                        SourceClass::Node => frontend.routing.node,
                        SourceClass::Pods => frontend.routing.pods,
                        SourceClass::External => frontend.routing.external,
                    },
                    query.from,
                ),
            },
        })
        .collect();
    Explanation {
        connection: Connection {
            to: query.to,
            port: query.port,
            protocol: query.protocol,
            from: query.from,
            from_this_node: query.from_this_node,
            arrives_on: query.arrives_on.clone(),
        },
        node: ruleset.node.clone(),
        local_detector: ruleset.local_detector.clone(),
        frontend: matched.map(|(service, frontend)| MatchedFrontend {
            kind: frontend.kind,
            address: frontend.address,
            port: frontend.port,
            protocol: service.protocol,
            family: service.family,
            service: ServicePort {
                namespace: service.namespace.clone(),
                name: service.name.clone(),
                port_name: service.port_name.clone(),
            },
            allowed_sources: frontend.allowed_sources.clone(),
        }),
        sources,
    }
}

fn route_verdict(service: &Entry, route: Route, from: Option<IpAddr>) -> Verdict {
    match route {
        Route::Reject => Verdict::Rejected {
            reason: Reason::NoUsableEndpoints,
        },
        Route::Drop => Verdict::Dropped {
            reason: Reason::NoLocalEndpoints,
        },
        Route::Forward { set, masquerade } => {
            let backends = service.backends.get(set);
            Verdict::Forwarded {
                masquerade,
                backend_set: set,
                backends: backends
                    .iter()
                    .zip(shares(service, backends))
                    .map(|(b, probability)| Candidate {
                        address: b.address,
                        port: b.port,
                        weight: b.weight,
                        probability,
                        hairpin: from == Some(b.address),
                    })
                    .collect(),
                affinity: service
                    .affinity_timeout_seconds
                    .map(|timeout_seconds| Affinity {
                        timeout_seconds,
                        shared_by: service
                            .frontends
                            .iter()
                            .map(|f| AffinityFrontend {
                                kind: f.kind,
                                address: f.address.filter(|_| f.kind != FrontendKind::NodePort),
                                port: f.port,
                            })
                            .collect(),
                        sets_remembered_apart: sets_remembered_apart(service),
                    }),
                source_hash: from
                    .filter(|_| service.selection == Selection::SourceHash && !backends.is_empty())
                    .map(|from| SourceHash {
                        nft: hashed(backends, from, selection::slot_table(backends)),
                        iptables: hashed(
                            backends,
                            from,
                            selection::slot_table_of(backends, selection::SMALL_TABLE_SIZE),
                        ),
                    }),
            }
        }
    }
}

/// The backend `from` hashes to in slot table `table` of `backends`.
fn hashed(backends: &[Backend], from: IpAddr, table: Vec<u32>) -> HashedBackend {
    let slots = table.len() as u32;
    let slot = selection::slot_of(from, slots);
    let backend = &backends[table[slot as usize] as usize];
    HashedBackend {
        slot,
        slots,
        address: backend.address,
        port: backend.port,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{query, ruleset};
    use super::*;

    #[test]
    fn a_nodeport_from_outside_is_forwarded_to_local_backends() {
        let e = explanation(&ruleset(), &query("172.30.0.1", 30080, Some("192.0.2.1")));
        assert_eq!(e.frontend.as_ref().unwrap().kind, FrontendKind::NodePort);
        assert_eq!(e.sources.len(), 1);
        assert_eq!(e.sources[0].source, SourceClass::External);
        let Verdict::Forwarded {
            masquerade,
            backend_set,
            backends,
            affinity,
            source_hash: None,
        } = &e.sources[0].verdict
        else {
            panic!("{e:#?}");
        };
        assert!(!masquerade);
        assert_eq!(*backend_set, SetKind::Local);
        assert_eq!(backends.len(), 1);
        assert_eq!(backends[0].probability, 1.0);
        assert_eq!(*affinity, None);
    }

    #[test]
    fn unmatched_destinations_have_the_same_verdict_for_every_source() {
        let rs = ruleset();
        let verdicts = |to: &str, port| -> Vec<Verdict> {
            let e = explanation(&rs, &query(to, port, None));
            assert_eq!(e.frontend, None);
            e.sources.into_iter().map(|s| s.verdict).collect()
        };
        let refused = Verdict::Rejected {
            reason: Reason::NoServicePort,
        };
        assert_eq!(verdicts("10.96.0.1", 81), vec![refused; 3]);
        let dropped = Verdict::Dropped {
            reason: Reason::UnallocatedServiceAddress,
        };
        assert_eq!(verdicts("10.96.3.3", 80), vec![dropped; 3]);
        assert_eq!(verdicts("192.0.2.9", 80), vec![Verdict::NoFrontend; 3]);
    }

    #[test]
    fn affinity_names_every_frontend_of_the_port() {
        let mut rs = ruleset();
        rs.entry_mut(0).affinity_timeout_seconds = Some(600);
        let e = explanation(&rs, &query("10.96.0.1", 80, Some("10.244.7.7")));
        let Verdict::Forwarded {
            affinity: Some(affinity),
            ..
        } = &e.sources[0].verdict
        else {
            panic!("{e:#?}");
        };
        assert_eq!(affinity.timeout_seconds, 600);
        assert_eq!(affinity.shared_by.len(), 2);
        assert_eq!(affinity.shared_by[1].address, None);
        assert!(affinity.sets_remembered_apart);
    }

    /// With a source, selection by source hash names the backend each
    /// back end's slot table gives it.
    #[test]
    fn source_hash_names_each_back_ends_backend() {
        let mut rs = ruleset();
        rs.entry_mut(0).selection = Selection::SourceHash;
        let e = explanation(&rs, &query("10.96.0.1", 80, Some("10.244.7.7")));
        let Verdict::Forwarded {
            source_hash: Some(hash),
            backends,
            ..
        } = &e.sources[0].verdict
        else {
            panic!("{e:#?}");
        };
        assert_eq!((hash.nft.slots, hash.iptables.slots), (251, 32));
        for chosen in [&hash.nft, &hash.iptables] {
            assert!(backends.iter().any(|b| b.address == chosen.address));
            assert!(chosen.slot < chosen.slots);
        }
        let e = explanation(&rs, &query("10.96.0.1", 80, None));
        assert!(matches!(
            &e.sources[0].verdict,
            Verdict::Forwarded {
                source_hash: None,
                ..
            }
        ));
    }

    #[test]
    fn serialises_with_the_documented_names() {
        let e = explanation(&ruleset(), &query("10.96.0.1", 80, Some("172.30.0.1")));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["frontend"]["kind"], "cluster-ip");
        assert_eq!(json["frontend"]["service"]["name"], "web");
        assert_eq!(json["sources"][0]["source"], "node");
        assert_eq!(json["sources"][0]["verdict"], "forwarded");
        assert_eq!(json["sources"][0]["masquerade"], true);
        assert_eq!(json["sources"][0]["backend_set"], "cluster");
        assert_eq!(json["sources"][0]["backends"][0]["probability"], 0.5);
    }
}
