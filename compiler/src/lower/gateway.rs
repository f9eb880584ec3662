//! Lowering Gateway API routes: each [`AttachedRoute`] becomes one IR
//! entry per IP family of its Gateway's addresses, whose frontends are
//! those addresses at the listener's port ([`FrontendKind::Gateway`]),
//! routed as a LoadBalancer IP under `externalTrafficPolicy: Cluster` is
//! (every source class forwarded to the cluster-wide set, masqueraded),
//! and whose backends are the usable endpoints of the referenced Service
//! ports, weighted so that each backendRef gets `weight / Σ weights` of
//! the connections ([`split_weights`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::endpoints;
use crate::ir::{
    gcd, gcd64, Backend, BackendSets, Entry, Family, Frontend, FrontendKind, Route, Routing,
    Selection, SetKind,
};
use crate::model::gateway::{AttachedRoute, BackendRef};
use crate::model::Cluster;

/// Largest per-endpoint weight [`split_weights`] gives; past it the exact
/// integers are scaled down and rounded.
pub const MAX_ENDPOINT_WEIGHT: u64 = 1 << 20;

/// The entries of `route` for the node `node` (its name and zone).
pub(super) fn entries(
    cluster: &Cluster,
    route: &AttachedRoute,
    node: Option<&str>,
    zone: Option<&str>,
) -> Vec<Entry> {
    let mut out = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        let addresses: Vec<IpAddr> = route
            .addresses
            .iter()
            .filter(|a| Family::of(a) == family)
            .copied()
            .collect();
        if addresses.is_empty() {
            continue;
        }
        let cluster_set = backends(cluster, route, family, node, zone);
        let route_of = if cluster_set.is_empty() {
            Route::Reject
        } else {
            Route::Forward {
                set: SetKind::Cluster,
                masquerade: true,
            }
        };
        let routing = Routing {
            node: route_of,
            pods: route_of,
            external: route_of,
        };
        let mut frontends: Vec<Frontend> = addresses
            .into_iter()
            .map(|address| Frontend {
                kind: FrontendKind::Gateway,
                address: Some(address),
                port: route.port,
                allowed_sources: Vec::new(),
                routing,
            })
            .collect();
        frontends.sort_by_key(|f| (f.kind, f.address, f.port));
        out.push(Entry {
            family,
            namespace: route.namespace.clone(),
            name: route.entry_name(),
            port_name: route.entry_port_name(),
            protocol: route.kind.protocol(),
            frontends,
            backends: BackendSets {
                cluster: cluster_set,
                // The Gateway frontend is not node-local: nothing routes
                // to a node-local set.
                local: Vec::new(),
            },
            affinity_timeout_seconds: None,
            health_check_node_port: None,
            selection: Selection::Random,
        });
    }
    out
}

/// The cluster-wide backends of `route` in `family`: every backendRef's
/// usable endpoints (as a Service's cluster-wide set is chosen), each
/// ref's weight split over them; an endpoint two refs reach gets both
/// shares. Sorted by address and port; empty when no ref with a weight
/// has a usable endpoint.
fn backends(
    cluster: &Cluster,
    route: &AttachedRoute,
    family: Family,
    node: Option<&str>,
    zone: Option<&str>,
) -> Vec<Backend> {
    let per_ref: Vec<Vec<(IpAddr, u16)>> = route
        .backends
        .iter()
        .map(|r| ref_endpoints(cluster, route, r, family, node, zone))
        .collect();
    let counts: Vec<(u32, usize)> = route
        .backends
        .iter()
        .zip(&per_ref)
        .map(|(r, eps)| (r.weight, eps.len()))
        .collect();
    let weights = split_weights(&counts);
    let mut summed: BTreeMap<(IpAddr, u16), u64> = BTreeMap::new();
    for (eps, weight) in per_ref.iter().zip(weights) {
        if weight == 0 {
            continue;
        }
        for endpoint in eps {
            *summed.entry(*endpoint).or_default() += u64::from(weight);
        }
    }
    // Sums of two refs' weights stay below 2^21 and may share a divisor.
    let divisor = summed.values().copied().fold(0, gcd64).max(1);
    summed
        .into_iter()
        .map(|((address, port), weight)| Backend {
            address,
            port,
            weight: u32::try_from(weight / divisor).unwrap_or(u32::MAX),
        })
        .collect()
}

/// The usable endpoints (address, target port) of one backendRef in
/// `family`: the Service port with the ref's port number and the route's
/// protocol, its cluster-wide set as a Service's is chosen (ready, else
/// serving and terminating; topology hints). None for a ref that is not
/// to a Service, or to a missing Service or port.
fn ref_endpoints(
    cluster: &Cluster,
    route: &AttachedRoute,
    backend: &BackendRef,
    family: Family,
    node: Option<&str>,
    zone: Option<&str>,
) -> Vec<(IpAddr, u16)> {
    if !backend.is_service {
        return Vec::new();
    }
    let Some(service) = cluster.service(&backend.namespace, &backend.name) else {
        return Vec::new();
    };
    let protocol = route.kind.protocol();
    let Some(port) = service
        .ports
        .iter()
        .find(|p| p.port == backend.port && p.protocol == protocol)
    else {
        return Vec::new();
    };
    let candidates = endpoints::candidates(service, port, family, node);
    let chosen = endpoints::categorize(&candidates, node, zone);
    chosen.cluster.iter().map(|c| (c.address, c.port)).collect()
}

/// Per-endpoint weights for backendRefs given as (weight, number of
/// usable endpoints): each ref's weight is split evenly over its
/// endpoints, so that ref `i`'s endpoints together get `w_i / Σ w_j` of
/// the connections, the sum over the refs that have endpoints. The exact
/// integers are `w_i × L / n_i` with `L` the least common multiple of the
/// endpoint counts, divided by their greatest common divisor; should any
/// exceed [`MAX_ENDPOINT_WEIGHT`], all are scaled so the largest is that
/// and rounded (at least 1), which moves each share by less than one part
/// in 2^20 of the largest weight. A ref without endpoints or with weight
/// 0 gets 0.
pub fn split_weights(refs: &[(u32, usize)]) -> Vec<u32> {
    let used = |&(w, n): &(u32, usize)| w > 0 && n > 0;
    let mut lcm: u128 = 1;
    let mut overflow = false;
    for &(_, n) in refs.iter().filter(|r| used(r)) {
        let n = n as u128;
        lcm = lcm / gcd(lcm, n) * n;
        if lcm > u128::from(u64::MAX) {
            overflow = true;
            break;
        }
    }
    if !overflow {
        let exact: Vec<u128> = refs
            .iter()
            .map(|r| {
                if used(r) {
                    u128::from(r.0) * lcm / r.1 as u128
                } else {
                    0
                }
            })
            .collect();
        let divisor = exact.iter().copied().fold(0, gcd).max(1);
        let reduced: Vec<u128> = exact.iter().map(|w| w / divisor).collect();
        if reduced
            .iter()
            .all(|&w| w <= u128::from(MAX_ENDPOINT_WEIGHT))
        {
            return reduced.into_iter().map(|w| w as u32).collect();
        }
    }
    // Approximate: each ref's per-endpoint share as a real number, the
    // largest scaled to MAX_ENDPOINT_WEIGHT.
    let real: Vec<f64> = refs
        .iter()
        .map(|r| {
            if used(r) {
                f64::from(r.0) / r.1 as f64
            } else {
                0.0
            }
        })
        .collect();
    let largest = real.iter().copied().fold(0.0, f64::max);
    real.iter()
        .map(|&x| {
            if x == 0.0 {
                0
            } else {
                ((x / largest * MAX_ENDPOINT_WEIGHT as f64).round() as u32).max(1)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each ref's endpoints together get weight_i / Σ weights.
    fn shares(refs: &[(u32, usize)]) -> Vec<f64> {
        let weights = split_weights(refs);
        let total: f64 = refs
            .iter()
            .zip(&weights)
            .map(|(r, w)| f64::from(*w) * r.1 as f64)
            .sum();
        refs.iter()
            .zip(&weights)
            .map(|(r, w)| f64::from(*w) * r.1 as f64 / total)
            .collect()
    }

    #[test]
    fn one_endpoint_each_keeps_the_weights() {
        assert_eq!(split_weights(&[(90, 1), (10, 1)]), [9, 1]);
        assert_eq!(split_weights(&[(1, 1), (2, 1), (7, 1)]), [1, 2, 7]);
    }

    #[test]
    fn weights_split_over_endpoints() {
        // 90 over 2 endpoints, 10 over 1: 45 : 10, reduced 9 : 2.
        assert_eq!(split_weights(&[(90, 2), (10, 1)]), [9, 2]);
        assert_eq!(shares(&[(90, 2), (10, 1)]), [0.9, 0.1]);
        // lcm(2, 3) = 6: 1×3, 2×2, 7×6 per endpoint.
        assert_eq!(split_weights(&[(1, 2), (2, 3), (7, 1)]), [3, 4, 42]);
        let s = shares(&[(1, 2), (2, 3), (7, 1)]);
        for (got, want) in s.iter().zip([0.1, 0.2, 0.7]) {
            assert!((got - want).abs() < 1e-12, "{s:?}");
        }
    }

    #[test]
    fn zero_weight_and_empty_refs_get_nothing() {
        assert_eq!(split_weights(&[(0, 3), (5, 1)]), [0, 1]);
        assert_eq!(split_weights(&[(5, 0), (3, 2)]), [0, 1]);
        assert_eq!(split_weights(&[(0, 1), (0, 1)]), [0, 0]);
        assert_eq!(split_weights(&[]), Vec::<u32>::new());
    }

    #[test]
    fn huge_lcms_are_approximated_within_bounds() {
        // Pairwise coprime endpoint counts: the lcm overflows any weight.
        let refs: Vec<(u32, usize)> = [101, 103, 107, 109, 113]
            .iter()
            .map(|&n| (1_000_000, n))
            .collect();
        let weights = split_weights(&refs);
        assert!(weights
            .iter()
            .all(|&w| w >= 1 && u64::from(w) <= MAX_ENDPOINT_WEIGHT));
        for share in shares(&refs) {
            assert!((share - 0.2).abs() < 1e-5, "{share}");
        }
        // A tiny weight next to a huge one keeps at least 1.
        assert_eq!(
            split_weights(&[(1_000_000, 1), (1, 7)]),
            [MAX_ENDPOINT_WEIGHT as u32, 1]
        );
    }
}
