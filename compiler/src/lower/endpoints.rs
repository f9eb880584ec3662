//! Which endpoints a Service port uses, as kube-proxy's CategorizeEndpoints
//! decides it.

use std::collections::hash_map::{Entry, HashMap};
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
    pub node_hints: Option<Vec<String>>,
}

impl Candidate {
    fn serving_terminating(&self) -> bool {
        self.serving && self.terminating
    }
}

/// The endpoints of `svc` that carry `port`, in `family`, one per address
/// and target port.
///
/// The same address and port may appear more than once: an endpoint moving
/// between slices, or a pod IP reused by a new pod while the old one is
/// still terminating. kube-proxy keeps one endpoint for them
/// (`EndpointSliceCache.addEndpoints`): a later copy replaces the one kept
/// unless it is terminating, so a non-terminating copy's conditions win
/// over a terminating one's whatever the order. It stays where the first
/// copy was.
pub fn candidates(
    svc: &model::Service,
    port: &model::ServicePort,
    family: Family,
    node: Option<&str>,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut at: HashMap<(IpAddr, u16), usize> = HashMap::new();
    let copies = svc
        .endpoints
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
                node_hints: ep.node_hints.clone(),
            })
        });
    for copy in copies {
        match at.entry((copy.address, copy.port)) {
            Entry::Vacant(slot) => {
                slot.insert(out.len());
                out.push(copy);
            }
            Entry::Occupied(slot) if !copy.terminating => out[*slot.get()] = copy,
            Entry::Occupied(_) => {}
        }
    }
    out
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
/// node-local set. `node` and `zone` are this node's name and zone label.
pub fn categorize(candidates: &[Candidate], node: Option<&str>, zone: Option<&str>) -> Chosen {
    let topology = Topology::from_hints(candidates, node, zone);
    let pick = |keep: &dyn Fn(&Candidate) -> bool| -> Vec<Candidate> {
        candidates.iter().filter(|c| keep(c)).cloned().collect()
    };
    let mut cluster = pick(&|c| c.ready && topology.admits(c));
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

/// Which hints restrict the cluster-wide set, as kube-proxy's
/// `topologyModeFromHints` decides it.
enum Topology<'a> {
    /// No hints apply: every ready endpoint.
    All,
    /// `PreferSameNode`: the ready endpoints hinted for this node.
    SameNode(&'a str),
    /// `PreferSameZone` (and topology-aware routing): the ready endpoints
    /// hinted for this node's zone.
    SameZone(&'a str),
}

impl<'a> Topology<'a> {
    /// Node hints when every ready endpoint has some and one names this
    /// node; failing that, zone hints when every ready endpoint has some
    /// and one names this node's zone; failing that, none.
    fn from_hints(candidates: &[Candidate], node: Option<&'a str>, zone: Option<&'a str>) -> Self {
        let ready: Vec<&Candidate> = candidates.iter().filter(|c| c.ready).collect();
        let usable = |hints: fn(&Candidate) -> &Option<Vec<String>>, name: &str| {
            !name.is_empty()
                && !ready.is_empty()
                && ready
                    .iter()
                    .all(|c| hints(c).as_ref().is_some_and(|h| !h.is_empty()))
                && ready.iter().any(|c| hinted(hints(c), name))
        };
        if let Some(node) = node.filter(|n| usable(|c| &c.node_hints, n)) {
            Topology::SameNode(node)
        } else if let Some(zone) = zone.filter(|z| usable(|c| &c.zone_hints, z)) {
            Topology::SameZone(zone)
        } else {
            Topology::All
        }
    }

    fn admits(&self, c: &Candidate) -> bool {
        match self {
            Topology::All => true,
            Topology::SameNode(node) => hinted(&c.node_hints, node),
            Topology::SameZone(zone) => hinted(&c.zone_hints, zone),
        }
    }
}

fn hinted(hints: &Option<Vec<String>>, name: &str) -> bool {
    hints
        .as_ref()
        .is_some_and(|names| names.iter().any(|n| n == name))
}

#[cfg(test)]
mod tests {
    use crate::front::SourceFile;
    use crate::ir::Family;

    /// The candidates of the one port of the one Service in `yaml`, as
    /// `(address, ready, serving, terminating)`.
    fn conditions(yaml: &str) -> Vec<(String, bool, bool, bool)> {
        let analysis = crate::analyse(&[SourceFile::new("in.yaml", yaml)]);
        let cluster = analysis.cluster.expect("a valid cluster");
        let svc = &cluster.services[0];
        super::candidates(svc, &svc.ports[0], Family::Ipv4, Some("node1"))
            .into_iter()
            .map(|c| (c.address.to_string(), c.ready, c.serving, c.terminating))
            .collect()
    }

    const SERVICE: &str =
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\n\
        spec:\n  clusterIP: 10.96.0.1\n  ports:\n  - {port: 80, targetPort: 8080}\n";

    fn slice(name: &str, endpoints: &str) -> String {
        format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {{name: {name}, namespace: default, labels: {{kubernetes.io/service-name: s}}}}\n\
             addressType: IPv4\nports: [{{port: 8080}}]\nendpoints:\n{endpoints}"
        )
    }

    #[test]
    fn absent_serving_means_serving_whatever_ready_says() {
        let yaml = SERVICE.to_owned()
            + &slice(
                "s-1",
                "- {addresses: [10.244.1.1], conditions: {ready: false, terminating: true}}\n\
                 - {addresses: [10.244.1.2], conditions: {ready: false}}\n\
                 - {addresses: [10.244.1.3]}\n",
            );
        assert_eq!(
            conditions(&yaml),
            [
                ("10.244.1.1".into(), false, true, true),
                ("10.244.1.2".into(), false, true, false),
                ("10.244.1.3".into(), true, true, false),
            ]
        );
    }

    #[test]
    fn one_endpoint_per_address_and_port_the_non_terminating_copy_wins() {
        let terminating = "conditions: {ready: false, serving: true, terminating: true}";
        let starting = "conditions: {ready: false, serving: false}";
        // The terminating copy first (slice names order the slices), then
        // last: the starting pod's conditions either way.
        for (a, b) in [(terminating, starting), (starting, terminating)] {
            let yaml = SERVICE.to_owned()
                + &slice("s-a", &format!("- {{addresses: [10.244.1.1], {a}}}\n"))
                + &slice("s-b", &format!("- {{addresses: [10.244.1.1], {b}}}\n"));
            assert_eq!(
                conditions(&yaml),
                [("10.244.1.1".into(), false, false, false)],
                "{a} then {b}"
            );
        }
        // Two terminating copies: the first is kept. Two ready ones: one.
        let yaml = SERVICE.to_owned()
            + &slice(
                "s-a",
                "- {addresses: [10.244.1.1], conditions: {ready: false, serving: true, terminating: true}}\n\
                 - {addresses: [10.244.1.2]}\n",
            )
            + &slice(
                "s-b",
                "- {addresses: [10.244.1.1], conditions: {ready: false, serving: false, terminating: true}}\n\
                 - {addresses: [10.244.1.2]}\n",
            );
        assert_eq!(
            conditions(&yaml),
            [
                ("10.244.1.1".into(), false, true, true),
                ("10.244.1.2".into(), true, true, false),
            ]
        );
    }
}
