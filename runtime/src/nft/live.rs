//! What knc's live tables hold, in a form comparable with what knc
//! applied: per object, the number of rules (chains) or elements (sets and
//! maps). Counting catches the drift that matters (a table or chain
//! deleted, a rule inserted or removed, elements deleted or added) without
//! turning nft's canonical rule text back into knc's. Elements of dynamic
//! maps (session affinity) are written by packets and not counted.

use std::collections::BTreeMap;

use knc_compiler::back::nft::{Object, Tables, TABLE};
use serde_json::Value;

/// Per table family and object (`chain`, `set`, `map`) name: its count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub objects: BTreeMap<(String, String, String), usize>,
}

impl Summary {
    /// What differs from `other`, for the log (at most a few lines).
    pub fn differences(&self, other: &Summary) -> Vec<String> {
        let mut out = Vec::new();
        for (key, count) in &self.objects {
            match other.objects.get(key) {
                None => out.push(format!("{} {} {} missing", key.0, key.1, key.2)),
                Some(other) if other != count => out.push(format!(
                    "{} {} {}: {other} instead of {count}",
                    key.0, key.1, key.2
                )),
                _ => {}
            }
        }
        for key in other.objects.keys() {
            if !self.objects.contains_key(key) {
                out.push(format!("{} {} {} unexpected", key.0, key.1, key.2));
            }
        }
        out
    }
}

/// The summary of the tables knc renders for `tables`.
pub fn expected(tables: &Tables) -> Summary {
    let mut summary = Summary::default();
    for table in &tables.tables {
        let family = table.family.as_str().to_string();
        for object in &table.objects {
            let count = match object {
                Object::Chain { rules, .. } => rules.len(),
                _ if object.is_dynamic() => 0,
                _ => table.element_count(object.name()),
            };
            summary.objects.insert(
                (
                    family.clone(),
                    object.kind().as_str().to_string(),
                    object.name().to_string(),
                ),
                count,
            );
        }
    }
    summary
}

/// Adds `nft -j list table FAMILY knc` output to `summary`.
pub fn add_listing(summary: &mut Summary, json: &str) -> Result<(), String> {
    let listing: Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable nft listing: {e}"))?;
    let items = listing["nftables"]
        .as_array()
        .ok_or("nft listing without `nftables`")?;
    for item in items {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        if body["table"].as_str() != Some(TABLE) {
            continue;
        }
        let family = body["family"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "chain" | "set" | "map" => {
                let name = body["name"].as_str().unwrap_or_default().to_string();
                let dynamic = body["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "dynamic"));
                let count = match body["elem"].as_array() {
                    Some(elements) if !dynamic => elements.len(),
                    _ => 0,
                };
                *summary
                    .objects
                    .entry((family, kind.clone(), name))
                    .or_default() += count;
            }
            "rule" => {
                let chain = body["chain"].as_str().unwrap_or_default().to_string();
                *summary
                    .objects
                    .entry((family, "chain".into(), chain))
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_rules_and_elements_of_knc_tables_only() {
        let json = r#"{"nftables":[{"metainfo":{}},
            {"table":{"family":"ip","name":"knc"}},
            {"chain":{"family":"ip","table":"knc","name":"services"}},
            {"rule":{"family":"ip","table":"knc","chain":"services","expr":[]}},
            {"rule":{"family":"ip","table":"knc","chain":"services","expr":[]}},
            {"map":{"family":"ip","table":"knc","name":"frontends","elem":[1,2,3]}},
            {"map":{"family":"ip","table":"knc","name":"affinity","flags":["dynamic","timeout"],"elem":[1]}},
            {"chain":{"family":"ip","table":"other","name":"x"}}]}"#;
        let mut summary = Summary::default();
        add_listing(&mut summary, json).unwrap();
        let get = |k: &str, n: &str| summary.objects[&("ip".into(), k.into(), n.into())];
        assert_eq!(get("chain", "services"), 2);
        assert_eq!(get("map", "frontends"), 3);
        assert_eq!(get("map", "affinity"), 0);
        assert_eq!(summary.objects.len(), 3);
    }
}
