//! Known field names, for "did you mean `ports`?" on unknown fields.
//!
//! k8s-openapi's `Deserialize` impls pass their field names to
//! `deserialize_struct`; [`fields_of`] asks a type for them with a
//! deserializer that records the list and stops. A small table maps the
//! shape of a path (`spec.ports[]`) to the type found there.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{self, Deserialize, Visitor};

/// The field names `T` declares to serde (empty if it declares none).
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut recorder = Recorder(&[]);
    // Recorder always fails, after noting the fields.
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

/// Field names valid at `path` (indices allowed: `spec.ports[3]`) of an
/// object of kind `def`.
pub fn known_fields(def: &crate::kinds::KindDef, path: &str) -> &'static [&'static str] {
    let shape = shape(path);
    if shape == "metadata" {
        return fields_of::<ObjectMeta>();
    }
    (def.known_fields)(&shape)
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
        let known_fields = |kind: &str, path: &str| {
            known_fields(crate::kinds::named(kind).expect("a kept kind"), path)
        };
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
