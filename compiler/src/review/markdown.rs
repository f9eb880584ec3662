//! `knc diff --format markdown`: the review as a pull-request comment.
//! Every name from a manifest is escaped, so none can add markup, links,
//! HTML or table cells to the comment.

use std::fmt::Write;

use super::model::{NodeChanges, Presence, Review};
use super::phrase;

/// The review as GitHub-flavoured markdown: a heading with the totals, a
/// section per node, a bold line per Service port and a list of changes.
pub fn render(review: &Review) -> String {
    let mut out = String::from("### knc diff: what changes for traffic\n\n");
    if review.is_empty() {
        out.push_str("Nothing changes for traffic.\n");
        return out;
    }
    let ports: usize = review.nodes.iter().map(|n| n.ports.len()).sum();
    let changed = review.nodes.iter().filter(|n| !n.is_empty()).count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "Changes for {ports} Service port{} on {changed} of {} node{}.",
        plural(ports),
        review.nodes.len(),
        plural(review.nodes.len())
    );
    for node in &review.nodes {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = writeln!(out, "#### {}\n", node_title(node));
        if node.is_empty() {
            out.push_str("Nothing changes.\n");
            continue;
        }
        if !node.settings.is_empty() {
            out.push_str("Node-wide:\n\n");
            // Settings may hold an interface name (`cali_*`): escaped.
            for setting in &node.settings {
                let _ = writeln!(out, "- {}", escape(&phrase::setting(setting)));
            }
            out.push('\n');
        }
        for port in &node.ports {
            let _ = writeln!(
                out,
                "**{}** ({})\n",
                escape(&port.display_name()),
                phrase::port_detail(port.family, port.protocol, port.presence)
            );
            // Change phrases hold only what knc writes (addresses, ports,
            // numbers, fixed words): nothing to escape.
            for change in &port.changes {
                let _ = writeln!(out, "- {}", phrase::change(change));
            }
            out.push('\n');
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn node_title(node: &NodeChanges) -> String {
    let name = match &node.node {
        Some(name) => format!("Node {}", escape(name)),
        None => "Any node (no Node in the inputs)".to_string(),
    };
    match node.presence {
        Presence::Both => name,
        Presence::Added => format!("{name} (only in NEW)"),
        Presence::Removed => format!("{name} (only in OLD)"),
    }
}

/// Escapes markdown: every ASCII punctuation character that markdown or
/// GitHub gives a meaning to gets a backslash (CommonMark allows one before
/// any ASCII punctuation), and line breaks and other control characters
/// become spaces, so a name stays one piece of plain text on its line.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push(' ');
            continue;
        }
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '<'
                | '>'
                | '('
                | ')'
                | '#'
                | '+'
                | '!'
                | '|'
                | '~'
                | '&'
                | '@'
                | '$'
                | '='
                | '"'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    /// A hostile name stays literal text: no code span, emphasis, HTML,
    /// link, table cell or new line survives escaping.
    #[test]
    fn names_cannot_add_markup() {
        assert_eq!(
            escape("a|b*c_d`e<script>[x](y)\n# h"),
            "a\\|b\\*c\\_d\\`e\\<script\\>\\[x\\]\\(y\\) \\# h"
        );
        assert_eq!(escape("default/web-1:http"), "default/web-1:http");
    }
}
