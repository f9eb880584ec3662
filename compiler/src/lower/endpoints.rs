//! Which endpoints a Service port uses, as kube-proxy's CategorizeEndpoints
//! decides it.

use std::net::IpAddr;

use crate::ir::Family;
use crate::model;

/// An endpoint with its target port resolved for one Service port.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub address: IpAddr,
    pub port: u16,
    pub local: bool,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub zone_hints: Option<Vec<String>>,
}

impl Candidate {
    fn serving_terminating(&self) -> bool {
        self.serving && self.terminating
    }
}

/// The endpoints of `svc` that carry `port`, in `family`.
pub fn candidates(
    svc: &model::Service,
    port: &model::ServicePort,
    family: Family,
    node: Option<&str>,
) -> Vec<Candidate> {
    svc.endpoints
        .iter()
        .filter(|ep| Family::of(&ep.address) == family)
        .filter_map(|ep| {
            Some(Candidate {
                address: ep.address,
                port: ep.port_for(port)?,
                local: node.is_some() && ep.node_name.as_deref() == node,
                ready: ep.ready,
                serving: ep.serving,
                terminating: ep.terminating,
                zone_hints: ep.zone_hints.clone(),
            })
        })
        .collect()
}

/// The cluster-wide and node-local sets, and whether any endpoint at all is
/// usable (which decides between drop and reject for an empty set).
pub struct Chosen {
    pub cluster: Vec<Candidate>,
    pub local: Vec<Candidate>,
    pub has_any: bool,
}

/// Ready endpoints; when there are none, serving and terminating ones.
/// Decided separately for the cluster-wide set (with topology hints) and the
/// node-local set.
pub fn categorize(candidates: &[Candidate], zone: Option<&str>) -> Chosen {
    let topology_zone = zone.filter(|z| can_use_topology(candidates, z));
    let pick = |keep: &dyn Fn(&Candidate) -> bool| -> Vec<Candidate> {
        candidates.iter().filter(|c| keep(c)).cloned().collect()
    };
    let mut cluster = pick(&|c| c.ready && topology_zone.is_none_or(|z| hinted_for(c, z)));
    if cluster.is_empty() {
        cluster = pick(&|c| c.serving_terminating());
    }
    let mut local = pick(&|c| c.local && c.ready);
    if local.is_empty() {
        local = pick(&|c| c.local && c.serving_terminating());
    }
    let has_any = candidates
        .iter()
        .any(|c| c.ready || c.serving_terminating());
    Chosen {
        cluster,
        local,
        has_any,
    }
}

fn hinted_for(c: &Candidate, zone: &str) -> bool {
    c.zone_hints
        .as_ref()
        .is_some_and(|zones| zones.iter().any(|z| z == zone))
}

/// Topology hints apply only when every ready endpoint has zone hints and
/// at least one is hinted for this node's zone.
fn can_use_topology(candidates: &[Candidate], zone: &str) -> bool {
    let ready: Vec<&Candidate> = candidates.iter().filter(|c| c.ready).collect();
    !zone.is_empty()
        && !ready.is_empty()
        && ready
            .iter()
            .all(|c| c.zone_hints.as_ref().is_some_and(|z| !z.is_empty()))
        && ready.iter().any(|c| hinted_for(c, zone))
}
