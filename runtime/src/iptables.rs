//! The iptables back end on a node: reads knc's live chains and jumps with
//! `iptables-save`, and loads `iptables-restore --noflush` files that
//! install every jump exactly once whatever was there, refill knc's chains,
//! and delete the KNC chains the new ruleset no longer has. Each family's
//! file commits its tables atomically; IPv4 goes first, then IPv6.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use knc_compiler::back::iptables::{self as emit, hooks};
use knc_compiler::ir::{Family, Ruleset};

use crate::state::{Backend, Record, StateDir};
use crate::sync::{Change, SyncError, Synced};
use crate::tool::{self, ToolError};

/// Prefix of every chain knc owns.
const PREFIX: &str = "KNC-";
/// The tables knc's chains live in.
const TABLES: [&str; 2] = ["nat", "filter"];

fn tools(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Ipv4 => ("iptables-save", "iptables-restore"),
        Family::Ipv6 => ("ip6tables-save", "ip6tables-restore"),
    }
}

/// knc's part of one family's live iptables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// Copies of each of [`hooks`] present, by index.
    pub hook_counts: Vec<usize>,
    /// Rules in each live KNC chain, by (table, chain).
    pub chains: BTreeMap<(String, String), usize>,
}

impl Live {
    fn chain_list(&self) -> Vec<(String, String)> {
        self.chains.keys().cloned().collect()
    }
}

/// Reads `iptables-save` output for knc's chains and jumps.
pub fn parse_save(text: &str) -> Live {
    let mut live = Live {
        hook_counts: vec![0; hooks().len()],
        chains: BTreeMap::new(),
    };
    let mut table = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.to_string();
        } else if let Some(declaration) = line.strip_prefix(':') {
            let chain = declaration.split_whitespace().next().unwrap_or_default();
            if chain.starts_with(PREFIX) {
                live.chains.insert((table.clone(), chain.to_string()), 0);
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let (chain, body) = rule.split_once(' ').unwrap_or((rule, ""));
            if let Some(count) = live.chains.get_mut(&(table.clone(), chain.to_string())) {
                *count += 1;
            }
            for (i, hook) in hooks().iter().enumerate() {
                if hook.table == table && hook.chain == chain && hook.rule == body {
                    live.hook_counts[i] += 1;
                }
            }
        }
    }
    live
}

/// knc's live chains and jumps of `family`; nothing when the tool is
/// missing (then nothing of knc can be there either).
pub fn live(family: Family) -> Result<Live, ToolError> {
    let (save, _) = tools(family);
    let mut text = String::new();
    for table in TABLES {
        match tool::run(save, &["-t", table], None) {
            Ok(out) => text.push_str(&out.stdout),
            Err(ToolError::Missing(_)) => return Ok(parse_save("")),
            Err(e) => return Err(e),
        }
    }
    Ok(parse_save(&text))
}

/// The counts the rules rendered for `ruleset` leave in the kernel.
fn expected(ruleset: &Ruleset, family: Family) -> Live {
    let restore = emit::restore(ruleset, family);
    let mut chains = BTreeMap::new();
    for table in TABLES {
        for chain in restore.chains(table) {
            let rules = restore.rule_count(table, chain).unwrap_or(0);
            chains.insert((table.to_string(), chain.to_string()), rules);
        }
    }
    Live {
        hook_counts: vec![1; hooks().len()],
        chains,
    }
}

fn describe(expected: &Live, live: &Live) -> Vec<String> {
    let mut out = Vec::new();
    for (i, hook) in hooks().iter().enumerate() {
        if live.hook_counts.get(i) != Some(&1) {
            out.push(format!(
                "{} {} jump to knc: {} copies",
                hook.table,
                hook.chain,
                live.hook_counts.get(i).copied().unwrap_or(0)
            ));
        }
    }
    for (key, rules) in &expected.chains {
        match live.chains.get(key) {
            None => out.push(format!("{} {} missing", key.0, key.1)),
            Some(n) if n != rules => {
                out.push(format!("{} {}: {n} rules instead of {rules}", key.0, key.1))
            }
            _ => {}
        }
    }
    for key in live.chains.keys() {
        if !expected.chains.contains_key(key) {
            out.push(format!("{} {} unexpected", key.0, key.1));
        }
    }
    out
}

/// Brings knc's iptables chains (both families) to `new`.
pub fn sync_iptables(state: &StateDir, new: &Ruleset, dry_run: bool) -> Result<Synced, SyncError> {
    let record = state.record().filter(|r| r.backend == Backend::Iptables);
    let generation = crate::nft::generation::generation().ok();
    let mut drift = Vec::new();
    let mut files = Vec::new();
    let mut same = record.as_ref().is_some_and(|r| &r.ruleset == new);
    let quiet = record
        .as_ref()
        .is_some_and(|r| r.generation.is_some() && r.generation == generation);
    let mut lives = Vec::new();
    if !(same && quiet) {
        for family in [Family::Ipv4, Family::Ipv6] {
            let live = live(family)?;
            if let Some(record) = &record {
                let differences = describe(&expected(&record.ruleset, family), &live);
                if !differences.is_empty() {
                    same = false;
                    drift.extend(differences);
                }
            }
            lives.push((family, live));
        }
    }
    let mut synced = Synced {
        change: if same {
            Change::Unchanged
        } else {
            Change::Full
        },
        commands: 0,
        drift: (!drift.is_empty()).then_some(drift),
        transaction: String::new(),
        previous: record.as_ref().map(|r| r.ruleset.clone()),
        kernel_time: Duration::ZERO,
        record_time: Duration::ZERO,
        generation,
    };
    if !same {
        for (family, live) in &lives {
            let text =
                emit::restore(new, *family).render_live(&live.hook_counts, &live.chain_list());
            synced.commands += text.lines().filter(|l| !l.starts_with('#')).count();
            synced.transaction.push_str(&text);
            files.push((*family, text));
        }
    }
    if dry_run {
        return Ok(synced);
    }
    if same {
        if record.as_ref().and_then(|r| r.generation) != generation {
            let record = Record::new(Backend::Iptables, new.clone(), generation);
            state.save(&record).map_err(SyncError::Record)?;
        }
        return Ok(synced);
    }
    let start = Instant::now();
    for (family, text) in &files {
        let (_, restore) = tools(*family);
        let path = state
            .transaction_file(&format!("transaction.{restore}"), text)
            .map_err(SyncError::Record)?;
        let path = path.to_string_lossy().into_owned();
        tool::run(restore, &["--noflush", "-w", "5", &path], None)?;
    }
    synced.kernel_time = start.elapsed();
    let generation = crate::nft::generation::generation().ok();
    synced.generation = generation;
    state
        .save(&Record::new(Backend::Iptables, new.clone(), generation))
        .map_err(SyncError::Record)?;
    Ok(synced)
}

/// Removes every knc chain and jump of both families.
pub fn remove_all() -> Result<usize, ToolError> {
    let mut removed = 0;
    for family in [Family::Ipv4, Family::Ipv6] {
        let live = live(family)?;
        let text = emit::removal(&live.hook_counts, &live.chain_list(), family);
        if text.trim().is_empty() {
            continue;
        }
        removed += live.chains.len();
        let (_, restore) = tools(family);
        tool::run(restore, &["--noflush", "-w", "5"], Some(&text))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_knc_chains_and_counts_hooks() {
        let save = "*nat\n:PREROUTING ACCEPT [0:0]\n:KNC-SERVICES - [0:0]\n:OTHER - [0:0]\n\
            -A PREROUTING -m comment --comment knc-services -j KNC-SERVICES\n\
            -A PREROUTING -m comment --comment knc-services -j KNC-SERVICES\n\
            -A KNC-SERVICES -j RETURN\n-A OTHER -j RETURN\nCOMMIT\n";
        let live = parse_save(save);
        assert_eq!(live.hook_counts[0], 2);
        assert_eq!(live.hook_counts[1], 0);
        assert_eq!(live.chains.len(), 1);
        assert_eq!(live.chains[&("nat".into(), "KNC-SERVICES".into())], 1);
    }
}
