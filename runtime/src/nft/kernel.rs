//! Running nft transactions: [`SystemKernel`] through the `nft` tool and
//! netlink, [`FakeKernel`] in memory with the compiler's [`Fake`], so the
//! reconcile logic can be tested without root.

use std::collections::BTreeMap;
use std::path::PathBuf;

use knc_compiler::back::nft::{Fake, TableFamily, Transaction, TABLE};
use serde_json::Value;

use super::live::{add_listing, expected, Summary};
use crate::tool::{self, ToolError};

/// The node's nftables as knc uses it.
pub trait Kernel {
    /// The ruleset generation (bumped by every commit, anyone's).
    fn generation(&mut self) -> std::io::Result<u32>;
    /// What knc's tables hold now (empty when they do not exist).
    fn live(&mut self) -> Result<Summary, ToolError>;
    /// Asks whether `transaction` would commit, committing nothing.
    fn check(&mut self, transaction: &Transaction) -> Result<(), ToolError>;
    /// Commits `transaction`, all or nothing.
    fn apply(&mut self, transaction: &Transaction) -> Result<(), ToolError>;
    /// The elements of the dynamic map `map` of knc's `family` table
    /// (clients remembered for session affinity) as `(key, value)` in
    /// nft's text form.
    fn list_map(
        &mut self,
        family: TableFamily,
        map: &str,
    ) -> Result<Vec<(String, String)>, ToolError>;
    /// Commits `nft -f` input that changes only elements of knc's dynamic
    /// maps (which no [`Transaction`] models), all or nothing.
    fn run_script(&mut self, script: &str) -> Result<(), ToolError>;
}

/// The real kernel: `nft -f FILE` with the transaction written whole to a
/// file first (a knc killed mid-apply cannot hand nft half a transaction),
/// `nft -j list table`, and the generation over netlink.
pub struct SystemKernel {
    /// Where transaction files are written (the state directory).
    pub dir: PathBuf,
}

impl SystemKernel {
    fn run_file(&self, check: bool, transaction: &Transaction) -> Result<(), ToolError> {
        self.run_text(check, &transaction.render())
    }

    fn run_text(&self, check: bool, text: &str) -> Result<(), ToolError> {
        let path = self.dir.join("transaction.nft");
        crate::write::atomically(&path, text.as_bytes()).map_err(|error| ToolError::Io {
            program: "nft".into(),
            error,
        })?;
        let path = path.to_string_lossy().into_owned();
        let args: &[&str] = if check {
            &["--check", "-f", &path]
        } else {
            &["-f", &path]
        };
        tool::run("nft", args, None).map(|_| ())
    }
}

impl Kernel for SystemKernel {
    fn generation(&mut self) -> std::io::Result<u32> {
        super::generation::generation()
    }

    fn live(&mut self) -> Result<Summary, ToolError> {
        let mut summary = Summary::default();
        for family in [TableFamily::Ip, TableFamily::Ip6] {
            match tool::run(
                "nft",
                &["-j", "list", "table", family.as_str(), TABLE],
                None,
            ) {
                Ok(out) => {
                    add_listing(&mut summary, &out.stdout).map_err(|stderr| ToolError::Refused {
                        program: "nft".into(),
                        status: "unreadable listing".into(),
                        stderr,
                    })?
                }
                Err(ToolError::Refused { stderr, .. })
                    if stderr.contains("No such file or directory") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(summary)
    }

    fn check(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.run_file(true, transaction)
    }

    fn apply(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.run_file(false, transaction)
    }

    fn list_map(
        &mut self,
        family: TableFamily,
        map: &str,
    ) -> Result<Vec<(String, String)>, ToolError> {
        let out = tool::run(
            "nft",
            &["-j", "list", "map", family.as_str(), TABLE, map],
            None,
        )?;
        map_elements(&out.stdout).ok_or_else(|| ToolError::Refused {
            program: "nft".into(),
            status: "unreadable listing".into(),
            stderr: format!("map {map}: not the JSON of a map"),
        })
    }

    fn run_script(&mut self, script: &str) -> Result<(), ToolError> {
        self.run_text(false, script)
    }
}

/// The `(key, value)` elements of the map in `nft -j list map` output, in
/// nft's text form: strings as they are, numbers in decimal,
/// concatenations joined by ` . `; `None` when the JSON is not a map's.
fn map_elements(json: &str) -> Option<Vec<(String, String)>> {
    fn text(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Object(o) => {
                if let Some(Value::Array(parts)) = o.get("concat") {
                    let parts: Option<Vec<String>> = parts.iter().map(text).collect();
                    Some(parts?.join(" . "))
                } else {
                    // `{"elem": {"val": …, "timeout": …, "expires": …}}`
                    text(o.get("elem")?.get("val")?)
                }
            }
            _ => None,
        }
    }
    let root: Value = serde_json::from_str(json).ok()?;
    let map = root
        .get("nftables")?
        .as_array()?
        .iter()
        .find_map(|item| item.get("map"))?;
    let Some(elements) = map.get("elem") else {
        return Some(Vec::new());
    };
    elements
        .as_array()?
        .iter()
        .map(|pair| match pair.as_array()?.as_slice() {
            [key, value] => Some((text(key)?, text(value)?)),
            _ => None,
        })
        .collect()
}

/// An in-memory kernel: the compiler's [`Fake`] plus a generation counter,
/// and dynamic map elements (which the [`Fake`] does not model) set by the
/// test.
#[derive(Debug, Default)]
pub struct FakeKernel {
    pub fake: Fake,
    pub generation: u32,
    /// Transactions committed, for assertions.
    pub applied: Vec<Transaction>,
    /// What [`Kernel::list_map`] answers, by family and map.
    pub remembered: BTreeMap<(TableFamily, String), Vec<(String, String)>>,
    /// Scripts committed through [`Kernel::run_script`].
    pub scripts: Vec<String>,
}

impl FakeKernel {
    /// Someone else changed the ruleset: bump the generation.
    pub fn touched(&mut self) {
        self.generation += 1;
    }
}

impl Kernel for FakeKernel {
    fn generation(&mut self) -> std::io::Result<u32> {
        Ok(self.generation)
    }

    fn live(&mut self) -> Result<Summary, ToolError> {
        Ok(expected(&self.fake.tables()))
    }

    fn check(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.fake
            .clone()
            .apply(transaction)
            .map_err(|stderr| refused(&stderr))
    }

    fn apply(&mut self, transaction: &Transaction) -> Result<(), ToolError> {
        self.fake
            .apply(transaction)
            .map_err(|stderr| refused(&stderr))?;
        self.generation += 1;
        self.applied.push(transaction.clone());
        Ok(())
    }

    fn list_map(
        &mut self,
        family: TableFamily,
        map: &str,
    ) -> Result<Vec<(String, String)>, ToolError> {
        Ok(self
            .remembered
            .get(&(family, map.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    fn run_script(&mut self, script: &str) -> Result<(), ToolError> {
        self.generation += 1;
        self.scripts.push(script.to_string());
        Ok(())
    }
}

fn refused(stderr: &str) -> ToolError {
    ToolError::Refused {
        program: "nft (fake)".into(),
        status: "exit status: 1".into(),
        stderr: stderr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_listings_read_as_nft_text() {
        let ipv4 = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"map": {"family": "ip", "name": "affinity", "table": "knc", "type": ["ipv4_addr", "integer"], "map": "ipv4_addr . inet_service", "flags": ["timeout"], "elem": [[{"elem": {"val": {"concat": ["10.244.1.99", 82719220]}, "timeout": 600, "expires": 599}}, {"concat": ["10.244.1.20", 8080]}]]}}]}"#;
        assert_eq!(
            map_elements(ipv4),
            Some(vec![(
                "10.244.1.99 . 82719220".to_string(),
                "10.244.1.20 . 8080".to_string()
            )])
        );
        let ipv6 = r#"{"nftables": [{"map": {"family": "ip6", "name": "p", "elem": [[{"elem": {"val": "fd00::7", "timeout": 60, "expires": 1}}, 8080]]}}]}"#;
        assert_eq!(
            map_elements(ipv6),
            Some(vec![("fd00::7".to_string(), "8080".to_string())])
        );
        let empty = r#"{"nftables": [{"map": {"family": "ip", "name": "affinity"}}]}"#;
        assert_eq!(map_elements(empty), Some(vec![]));
        assert_eq!(map_elements("{}"), None);
    }
}
