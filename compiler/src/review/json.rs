//! `knc diff --format json`: the review for tools, through serde.

use serde::Serialize;

use super::model::{NodeChanges, Review};

/// The JSON document: whether anything changes, and the nodes.
#[derive(Serialize)]
struct Document<'a> {
    changed: bool,
    nodes: &'a [NodeChanges],
}

/// The review as pretty-printed JSON, ending in a newline.
pub fn render(review: &Review) -> String {
    let document = Document {
        changed: !review.is_empty(),
        nodes: &review.nodes,
    };
    let mut text = serde_json::to_string_pretty(&document).expect("the review serialises");
    text.push('\n');
    text
}
