//! Known field names, for "did you mean `ports`?" on unknown fields.
//!
//! k8s-openapi's `Deserialize` impls pass their field names to
//! `deserialize_struct`; [`fields_of`] asks a type for them with a
//! deserializer that records the list and stops. A small table maps the
//! shape of a path (`spec.ports[]`) to the type found there.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{self, Deserialize, Visitor};

use super::kube_proxy_config::{KubeProxyConfiguration, ModeConfig};

/// The field names `T` declares to serde (empty if it declares none).
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut recorder = Recorder(&[]);
    // Recorder always fails, after noting the fields.
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

/// Field names valid at `path` (indices allowed: `spec.ports[3]`) of `kind`.
pub fn known_fields(kind: &str, path: &str) -> &'static [&'static str] {
    let shape = shape(path);
    let fields: fn() -> &'static [&'static str] = match (kind, shape.as_str()) {
        (_, "metadata") => fields_of::<ObjectMeta>,
        ("Service", "") => fields_of::<core::Service>,
        ("Service", "spec") => fields_of::<core::ServiceSpec>,
        ("Service", "spec.ports[]") => fields_of::<core::ServicePort>,
        ("Service", "spec.sessionAffinityConfig") => fields_of::<core::SessionAffinityConfig>,
        ("Service", "spec.sessionAffinityConfig.clientIP") => fields_of::<core::ClientIPConfig>,
        ("Service", "status") => fields_of::<core::ServiceStatus>,
        ("Service", "status.loadBalancer") => fields_of::<core::LoadBalancerStatus>,
        ("Service", "status.loadBalancer.ingress[]") => fields_of::<core::LoadBalancerIngress>,
        ("Endpoints", "") => fields_of::<core::Endpoints>,
        ("Endpoints", "subsets[]") => fields_of::<core::EndpointSubset>,
        ("Endpoints", "subsets[].addresses[]" | "subsets[].notReadyAddresses[]") => {
            fields_of::<core::EndpointAddress>
        }
        ("Endpoints", "subsets[].ports[]") => fields_of::<core::EndpointPort>,
        ("EndpointSlice", "") => fields_of::<discovery::EndpointSlice>,
        ("EndpointSlice", "endpoints[]") => fields_of::<discovery::Endpoint>,
        ("EndpointSlice", "endpoints[].conditions") => fields_of::<discovery::EndpointConditions>,
        ("EndpointSlice", "endpoints[].hints") => fields_of::<discovery::EndpointHints>,
        ("EndpointSlice", "ports[]") => fields_of::<discovery::EndpointPort>,
        ("Node", "") => fields_of::<core::Node>,
        ("Node", "spec") => fields_of::<core::NodeSpec>,
        ("Node", "status") => fields_of::<core::NodeStatus>,
        ("Node", "status.addresses[]") => fields_of::<core::NodeAddress>,
        ("KubeProxyConfiguration", "") => fields_of::<KubeProxyConfiguration>,
        ("KubeProxyConfiguration", "nftables" | "iptables") => fields_of::<ModeConfig>,
        _ => return &[],
    };
    fields()
}

/// The known field closest to `unknown`, if it is close enough to be a typo.
pub fn suggest(unknown: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&unknown.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min()
        .map(|(_, k)| k)
}

/// `spec.ports[3].port` → `spec.ports[].port`.
fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// A deserializer that remembers the field list of the struct asked for.
struct Recorder(&'static [&'static str]);

impl<'de> de::Deserializer<'de> for &mut Recorder {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_service_port_fields() {
        assert!(known_fields("Service", "spec.ports[7]").contains(&"targetPort"));
        assert!(known_fields("KubeProxyConfiguration", "").contains(&"clusterCIDR"));
        assert_eq!(
            suggest("prots", known_fields("Service", "spec")),
            Some("ports")
        );
        assert_eq!(
            suggest("targetport", known_fields("Service", "spec.ports[0]")),
            Some("targetPort")
        );
        assert_eq!(suggest("zzzzzz", known_fields("Service", "spec")), None);
    }
}
