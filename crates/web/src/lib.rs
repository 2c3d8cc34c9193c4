//! The web UI of `otlp-tape serve` and the replay report page, as files
//! built into the binary: nothing is fetched from elsewhere, so both work
//! offline. Pure: no sockets, no files; the server serves [`asset`] and the
//! replay writes [`replay_report_page`].
//!
//! The front end is plain JavaScript modules without a build step, and
//! uPlot (from npm, pinned, with its license in `assets/vendor/`) draws the
//! charts (ADR 0013).

mod assets;
mod report;

pub use assets::{Asset, asset, paths};
pub use report::{replay_report_page, report_in_page};
