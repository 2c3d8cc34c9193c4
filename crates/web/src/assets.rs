//! The files of the web UI, by the path they are served under.

/// One file of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

/// The file served at `path` (`index.html` for `/`, `ui/app.js`, ...), or
/// `None` when there is none.
pub fn asset(path: &str) -> Option<Asset> {
    let _ = path;
    todo!("web: the UI's files")
}
