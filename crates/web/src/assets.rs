//! The files of the web UI, by the path they are served under.
//!
//! Every file is built into the binary with `include_bytes!`, so the UI
//! needs nothing at run time: `index.html` is served for `/`, the rest
//! under `ui/` (the UI's modules and stylesheet, and uPlot in
//! `ui/vendor/`).

use sha2::{Digest, Sha256};

/// One file of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

impl Asset {
    /// A strong `ETag` for the file: the crate's version and the start of
    /// the SHA-256 of its bytes, quoted, so a browser revalidates it cheaply
    /// and gets a new file with a new binary.
    pub fn etag(&self) -> String {
        let digest = Sha256::digest(self.bytes);
        let hash = hex::encode(&digest[..10]);
        format!("\"{}-{hash}\"", env!("CARGO_PKG_VERSION"))
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file, by path (without the leading `/`).
const FILES: &[(&str, Asset)] = &[
    ("index.html", file(include_bytes!("../assets/index.html"), HTML)),
    ("ui/app.css", file(include_bytes!("../assets/app.css"), CSS)),
    ("ui/app.js", file(include_bytes!("../assets/ui/app.js"), JAVASCRIPT)),
    ("ui/api.js", file(include_bytes!("../assets/ui/api.js"), JAVASCRIPT)),
    ("ui/format.js", file(include_bytes!("../assets/ui/format.js"), JAVASCRIPT)),
    ("ui/sessions.js", file(include_bytes!("../assets/ui/sessions.js"), JAVASCRIPT)),
    ("ui/session.js", file(include_bytes!("../assets/ui/session.js"), JAVASCRIPT)),
    ("ui/timeline.js", file(include_bytes!("../assets/ui/timeline.js"), JAVASCRIPT)),
    ("ui/traces.js", file(include_bytes!("../assets/ui/traces.js"), JAVASCRIPT)),
    ("ui/waterfall.js", file(include_bytes!("../assets/ui/waterfall.js"), JAVASCRIPT)),
    ("ui/live.js", file(include_bytes!("../assets/ui/live.js"), JAVASCRIPT)),
    ("ui/forms.js", file(include_bytes!("../assets/ui/forms.js"), JAVASCRIPT)),
    ("ui/replay.js", file(include_bytes!("../assets/ui/replay.js"), JAVASCRIPT)),
    ("ui/compare.js", file(include_bytes!("../assets/ui/compare.js"), JAVASCRIPT)),
    ("ui/replay-charts.js", file(include_bytes!("../assets/replay-charts.js"), JAVASCRIPT)),
    ("ui/vendor/uPlot.iife.min.js", file(include_bytes!("../assets/vendor/uPlot.iife.min.js"), JAVASCRIPT)),
    ("ui/vendor/uPlot.min.css", file(include_bytes!("../assets/vendor/uPlot.min.css"), CSS)),
    ("ui/vendor/uPlot.LICENSE", file(include_bytes!("../assets/vendor/uPlot.LICENSE"), TEXT)),
];

const fn file(bytes: &'static [u8], content_type: &'static str) -> Asset {
    Asset { bytes, content_type }
}

/// The file served at `path` (`index.html` for `/`, `ui/app.js`, ...), or
/// `None` when there is none. A leading `/` is ignored; `""` is
/// `index.html`.
pub fn asset(path: &str) -> Option<Asset> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = if path.is_empty() { "index.html" } else { path };
    FILES.iter().find(|(name, _)| *name == path).map(|(_, asset)| *asset)
}

/// The paths of every file, `index.html` first.
pub fn paths() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(name, _)| *name)
}

#[cfg(test)]
#[path = "assets_tests.rs"]
#[allow(clippy::case_sensitive_file_extension_comparisons)] // the paths are ours, all lowercase
mod tests;
