//! Integration tests of the session format: blobs (round trips, gzip
//! compatibility, corruption, determinism), `metadata.json`, and the worked
//! examples of `docs/FORMAT.md`.

mod blob;
mod corruption;
mod format;
mod merge;
mod metadata;
mod retention;
mod robustness;
mod support;
