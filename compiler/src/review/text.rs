//! `knc diff --format text` (the default): the review for a terminal.

use std::fmt::Write;

use super::model::{NodeChanges, Presence, Review};
use super::phrase;

/// The review as indented plain text, one node after another.
pub fn render(review: &Review) -> String {
    if review.is_empty() {
        return "nothing changes for traffic.\n".to_string();
    }
    let mut out = String::new();
    for node in &review.nodes {
        let _ = writeln!(out, "{}: {}", node_title(node), node_summary(node));
        for setting in &node.settings {
            let _ = writeln!(out, "  {}", phrase::setting(setting));
        }
        for port in &node.ports {
            let _ = writeln!(
                out,
                "  {} ({})",
                plain(&port.display_name()),
                phrase::port_detail(port.family, port.protocol, port.presence)
            );
            for change in &port.changes {
                let _ = writeln!(out, "    {}", phrase::change(change));
            }
        }
    }
    out
}

fn node_title(node: &NodeChanges) -> String {
    let name = match &node.node {
        Some(name) => format!("node {}", plain(name)),
        None => "any node (no Node in the inputs)".to_string(),
    };
    match node.presence {
        Presence::Both => name,
        Presence::Added => format!("{name} (only in NEW)"),
        Presence::Removed => format!("{name} (only in OLD)"),
    }
}

fn node_summary(node: &NodeChanges) -> String {
    if node.is_empty() {
        "nothing changes".to_string()
    } else if node.ports.is_empty() {
        "node-wide settings change".to_string()
    } else {
        phrase::port_count(node.ports.len())
    }
}

/// A name from a manifest with control characters (newlines, escapes)
/// shown as `?`, so it cannot forge lines of the review.
fn plain(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
