//! The comparison as a self-contained page a person can read (`--report
//! FILE.html`): no script, no style sheet or font fetched from anywhere.

use crate::Comparison;

impl Comparison {
    /// The comparison as one HTML page: the verdict first, both sides'
    /// ids, hashes and counts, the options, the counts per signal and
    /// service, the attribute and field changes, the traces, and the
    /// example differences. Every text from the sessions is escaped.
    pub fn to_html(&self) -> String {
        todo!("the page")
    }
}
