//! `knc lint --format sarif`: SARIF 2.1.0, the format code-scanning tools
//! (GitHub's `upload-sarif` among them) read to annotate a pull request at
//! the offending line.
//!
//! One run; its tool is `knc` with every rule of [`crate::checks::RULES`]
//! (id = the code, `knc::port-range`; the summary as short description,
//! "What it does" as full description, the whole doc as help). Each
//! diagnostic is a result at the file as given on the command line (a
//! relative URI with forward slashes, resolved against the repository root
//! by the uploader) and the region of its span. Columns are Unicode code
//! points (`columnKind: unicodeCodePoints`, SARIF's default).

use serde::Serialize;

use super::{severity_word, Region};
use crate::checks::{Rule, RULES};
use crate::diagnostic::Diagnostic;

/// The schema SARIF files name.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Debug, Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool,
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
}

#[derive(Debug, Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: String,
    rules: Vec<RuleDescriptor>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleDescriptor {
    id: &'static str,
    short_description: Text,
    full_description: Text,
    help: Help,
    default_configuration: Configuration,
}

#[derive(Debug, Serialize)]
struct Text {
    text: String,
}

#[derive(Debug, Serialize)]
struct Help {
    text: &'static str,
    markdown: &'static str,
}

#[derive(Debug, Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<SarifLocation<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    physical_location: PhysicalLocation,
    message: Label<'a>,
}

#[derive(Debug, Serialize)]
struct Label<'a> {
    text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: SarifRegion,
}

#[derive(Debug, Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: usize,
    start_column: usize,
    end_line: usize,
    end_column: usize,
}

/// The SARIF log of `diagnostics`, pretty printed with a final newline;
/// `version` is knc's.
pub fn render(diagnostics: &[Diagnostic], version: &str) -> String {
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "knc",
                    version: version.to_string(),
                    rules: RULES.iter().map(|rule| descriptor(rule)).collect(),
                },
            },
            column_kind: "unicodeCodePoints",
            results: diagnostics.iter().map(result).collect(),
        }],
    };
    let mut text = serde_json::to_string_pretty(&log).expect("plain data serialises");
    text.push('\n');
    text
}

fn descriptor(rule: &'static Rule) -> RuleDescriptor {
    RuleDescriptor {
        id: rule.name,
        short_description: Text {
            text: rule.summary.to_string(),
        },
        full_description: Text {
            text: what_it_does(rule.doc),
        },
        help: Help {
            text: rule.doc,
            markdown: rule.doc,
        },
        default_configuration: Configuration {
            level: severity_word(rule.severity),
        },
    }
}

/// The "What it does" section of a rule's doc, as one line.
fn what_it_does(doc: &str) -> String {
    let section = doc
        .split("## What it does")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or(doc);
    section.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn result(diagnostic: &Diagnostic) -> SarifResult<'_> {
    let rule_index = RULES
        .iter()
        .position(|r| r.code == diagnostic.code)
        .expect("every Code has a Rule in RULES (tested)");
    let text = match &diagnostic.help {
        Some(help) => format!("{}\nhelp: {help}", diagnostic.message),
        None => diagnostic.message.clone(),
    };
    SarifResult {
        rule_id: diagnostic.code.as_str(),
        rule_index,
        level: severity_word(diagnostic.severity),
        message: Text { text },
        locations: diagnostic
            .location
            .iter()
            .map(|location| {
                let region = Region::of(location);
                SarifLocation {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation {
                            uri: uri(&location.file.name),
                        },
                        region: SarifRegion {
                            start_line: region.start_line,
                            start_column: region.start_column,
                            end_line: region.end_line,
                            end_column: region.end_column,
                        },
                    },
                    message: Label {
                        text: &location.label,
                    },
                }
            })
            .collect(),
    }
}

/// A file name as a relative URI reference: forward slashes, no leading
/// `./`, and every byte outside RFC 3986's unreserved set (and `/`)
/// percent-encoded, so a space or `#` in a path stays part of the path.
fn uri(name: &str) -> String {
    let name = name.replace('\\', "/");
    let mut name = name.as_str();
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Code;
    use crate::source::{SourceFile, Span};

    #[test]
    fn uris_are_relative_and_escaped() {
        assert_eq!(uri("./a/b c#.yaml"), "a/b%20c%23.yaml");
        assert_eq!(uri("dir\\svc.yaml"), "dir/svc.yaml");
        assert_eq!(uri("ü.yaml"), "%C3%BC.yaml");
    }

    #[test]
    fn full_description_is_what_it_does() {
        let doc = "## What it does\nFlags a\nthing.\n\n## Why is this bad?\nBecause.";
        assert_eq!(what_it_does(doc), "Flags a thing.");
    }

    #[test]
    fn a_result_points_at_its_span_in_code_points() {
        let file = SourceFile::new("x/ü.yaml", "a: 1\nné: \"\\\"}\"\n");
        let diagnostic = Diagnostic::warning(Code::UnmatchedPort, "a \"quoted\" `name`").at(
            &file,
            Span::new(10, 15),
            "here",
        );
        let log: serde_json::Value = serde_json::from_str(&render(&[diagnostic], "1.2.3")).unwrap();
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["version"], "1.2.3");
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            RULES.len()
        );
        let result = &run["results"][0];
        assert_eq!(result["ruleId"], "knc::unmatched-port");
        assert_eq!(result["level"], "warning");
        assert_eq!(result["message"]["text"], "a \"quoted\" `name`");
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "x/%C3%BC.yaml");
        // Byte 10 follows `né: ` (5 bytes of line 2, 4 characters), byte
        // 15 follows 5 more characters.
        let region = &location["region"];
        assert_eq!(
            (&region["startLine"], &region["startColumn"]),
            (&2.into(), &5.into())
        );
        assert_eq!(
            (&region["endLine"], &region["endColumn"]),
            (&2.into(), &10.into())
        );
    }
}
