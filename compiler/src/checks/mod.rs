//! Every diagnostic knc reports, one file per check (ruff's pattern): its
//! stable code, its severity, a one-line summary and its documentation
//! (what it checks, why it matters, an example), and for lint checks the
//! check itself. `knc lint --list` prints [`list`], `knc lint --explain
//! CODE` prints [`explain`].
//!
//! Adding a check: a file here with its `RULE`, a [`Code`] variant, one line
//! in [`RULES`], and a `fixtures/lint-<code>/` case (a test holds every code
//! to it).

mod affinity_timeout_range;
mod contested_address;
mod duplicate_object;
mod external_address_overlap;
mod invalid_address;
mod invalid_enum_value;
mod invalid_interface_name;
mod invalid_port_name;
mod invalid_protocol;
mod io;
mod ip_family_mismatch;
mod missing_field;
mod node_without_local_endpoints;
mod nodeport_conflict;
mod nodeport_out_of_range;
mod not_an_object;
mod orphan_endpoints;
mod port_range;
mod schema;
mod selectorless_without_endpoints;
mod service_without_endpoints;
mod syntax;
mod unallocated_cluster_ip;
mod unattached_route;
mod unknown_backend_selection;
mod unknown_field;
mod unmatched_port;

use crate::front::{Code, Diagnostic, Severity};
use crate::model::lint::Context;

/// One check: what `--list` and `--explain` show, and for lint checks the
/// function that runs it.
pub struct Rule {
    pub code: Code,
    /// The stable string (`knc::port-range`) tools and docs refer to.
    pub name: &'static str,
    pub severity: Severity,
    /// One line, for `--list`.
    pub summary: &'static str,
    /// Markdown: `## What it does`, `## Why is this bad?`, `## Example`.
    pub doc: &'static str,
    /// The lint check, for checks that run on a valid model; `None` for
    /// problems found while loading and validating.
    pub lint: Option<fn(&Context<'_>, &mut Vec<Diagnostic>)>,
}

/// Every check, in `--list` order: loading, validation, then lint.
pub const RULES: &[&Rule] = &[
    &syntax::RULE,
    &not_an_object::RULE,
    &schema::RULE,
    &unknown_field::RULE,
    &missing_field::RULE,
    &io::RULE,
    &duplicate_object::RULE,
    &port_range::RULE,
    &invalid_address::RULE,
    &invalid_protocol::RULE,
    &invalid_enum_value::RULE,
    &invalid_port_name::RULE,
    &invalid_interface_name::RULE,
    &affinity_timeout_range::RULE,
    &nodeport_conflict::RULE,
    &service_without_endpoints::RULE,
    &orphan_endpoints::RULE,
    &unmatched_port::RULE,
    &nodeport_out_of_range::RULE,
    &contested_address::RULE,
    &unallocated_cluster_ip::RULE,
    &selectorless_without_endpoints::RULE,
    &node_without_local_endpoints::RULE,
    &ip_family_mismatch::RULE,
    &external_address_overlap::RULE,
    &unknown_backend_selection::RULE,
    &unattached_route::RULE,
];

/// Codes retired by splitting, still accepted by `--explain` because users
/// may have scripted them: the old string and the codes it became.
pub const ALIASES: &[(&str, &[Code])] = &[(
    "knc::invalid-value",
    &[
        Code::InvalidEnumValue,
        Code::InvalidPortName,
        Code::AffinityTimeoutRange,
    ],
)];

/// The rule of `code`.
pub fn rule(code: Code) -> &'static Rule {
    RULES
        .iter()
        .copied()
        .find(|r| r.code == code)
        .expect("every Code has a Rule in RULES (tested)")
}

/// What a name designates: a rule, or an alias and the rules it became.
/// The `knc::` prefix may be left out.
pub enum Lookup {
    Rule(&'static Rule),
    Alias(&'static str, Vec<&'static Rule>),
}

/// Finds the rule or alias called `name`.
pub fn lookup(name: &str) -> Option<Lookup> {
    let full = if name.starts_with("knc::") {
        name.to_string()
    } else {
        format!("knc::{name}")
    };
    if let Some(rule) = RULES.iter().copied().find(|r| r.name == full) {
        return Some(Lookup::Rule(rule));
    }
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == full)
        .map(|(alias, codes)| Lookup::Alias(alias, codes.iter().map(|c| rule(*c)).collect()))
}

/// `knc lint --explain NAME`: the documentation, or `None` for an unknown
/// name.
pub fn explain(name: &str) -> Option<String> {
    let mut out = String::new();
    let rules = match lookup(name)? {
        Lookup::Rule(rule) => vec![rule],
        Lookup::Alias(alias, rules) => {
            let names: Vec<&str> = rules.iter().map(|r| r.name).collect();
            out.push_str(&format!(
                "`{alias}` is an old code, split into {}.\n\n",
                names.join(", ")
            ));
            rules
        }
    };
    for (i, rule) in rules.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "# {} ({})\n\n{}.\n\n{}\n",
            rule.name,
            severity_name(rule.severity),
            capitalised(rule.summary),
            rule.doc
        ));
    }
    Some(out)
}

/// `knc lint --list`: every code, its severity and summary, then the
/// aliases.
pub fn list() -> String {
    let width = RULES.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for rule in RULES {
        out.push_str(&format!(
            "{:width$}  {:7}  {}\n",
            rule.name,
            severity_name(rule.severity),
            rule.summary
        ));
    }
    for (alias, codes) in ALIASES {
        let names: Vec<&str> = codes.iter().map(|c| rule(*c).name).collect();
        out.push_str(&format!(
            "{alias:width$}  {:7}  old code, split into {}\n",
            "alias",
            names.join(", ")
        ));
    }
    out
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every [`Code`], checked exhaustive by the compiler: a new variant
    /// does not build until it is listed here.
    pub(crate) fn every_code() -> Vec<Code> {
        let all = vec![
            Code::Syntax,
            Code::NotAnObject,
            Code::Schema,
            Code::UnknownField,
            Code::PortRange,
            Code::InvalidAddress,
            Code::InvalidProtocol,
            Code::MissingField,
            Code::DuplicateObject,
            Code::NodePortConflict,
            Code::InvalidEnumValue,
            Code::InvalidPortName,
            Code::InvalidInterfaceName,
            Code::AffinityTimeoutRange,
            Code::Io,
            Code::ServiceWithoutEndpoints,
            Code::OrphanEndpoints,
            Code::UnmatchedPort,
            Code::NodePortOutOfRange,
            Code::ContestedAddress,
            Code::UnallocatedClusterIp,
            Code::SelectorlessWithoutEndpoints,
            Code::NodeWithoutLocalEndpoints,
            Code::IpFamilyMismatch,
            Code::ExternalAddressOverlap,
            Code::UnknownBackendSelection,
            Code::UnattachedRoute,
        ];
        for code in &all {
            match code {
                Code::Syntax
                | Code::NotAnObject
                | Code::Schema
                | Code::UnknownField
                | Code::PortRange
                | Code::InvalidAddress
                | Code::InvalidProtocol
                | Code::MissingField
                | Code::DuplicateObject
                | Code::NodePortConflict
                | Code::InvalidEnumValue
                | Code::InvalidPortName
                | Code::InvalidInterfaceName
                | Code::AffinityTimeoutRange
                | Code::Io
                | Code::ServiceWithoutEndpoints
                | Code::OrphanEndpoints
                | Code::UnmatchedPort
                | Code::NodePortOutOfRange
                | Code::ContestedAddress
                | Code::UnallocatedClusterIp
                | Code::SelectorlessWithoutEndpoints
                | Code::NodeWithoutLocalEndpoints
                | Code::IpFamilyMismatch
                | Code::ExternalAddressOverlap
                | Code::UnknownBackendSelection
                | Code::UnattachedRoute => {}
            }
        }
        all
    }

    #[test]
    fn every_code_has_one_rule_with_a_full_doc() {
        let codes = every_code();
        assert_eq!(codes.len(), RULES.len(), "one rule per code");
        for code in codes {
            let matching = RULES.iter().filter(|r| r.code == code).count();
            assert_eq!(matching, 1, "{code:?} has one rule");
            let rule = rule(code);
            assert!(rule.name.starts_with("knc::"), "{}", rule.name);
            for section in ["## What it does", "## Why is this bad?", "## Example"] {
                assert!(rule.doc.contains(section), "{} lacks {section}", rule.name);
            }
            assert!(!rule.summary.ends_with('.'), "{}: summary", rule.name);
            assert_eq!(
                rule.lint.is_some(),
                rule.severity == Severity::Warning
                    && !matches!(
                        code,
                        Code::UnknownField | Code::UnknownBackendSelection | Code::UnattachedRoute
                    ),
                "{}: lint checks are the warnings found on a valid model \
                 (the others are found while loading)",
                rule.name
            );
        }
    }

    #[test]
    fn aliases_and_short_names_explain() {
        assert!(explain("knc::port-range")
            .unwrap()
            .contains("# knc::port-range"));
        assert_eq!(explain("port-range"), explain("knc::port-range"));
        let old = explain("knc::invalid-value").unwrap();
        assert!(old.starts_with("`knc::invalid-value` is an old code, split into"));
        assert!(old.contains("# knc::invalid-enum-value"));
        assert!(old.contains("# knc::affinity-timeout-range"));
        assert_eq!(explain("knc::nope"), None);
        assert!(list().contains("knc::invalid-value"));
    }
}
