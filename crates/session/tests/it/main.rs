//! Integration tests of the session format: blobs (round trips, gzip
//! compatibility, corruption, determinism), `metadata.json`, and the worked
//! examples of `docs/FORMAT.md`.

mod blob;
mod corruption;
mod format;
mod format_writers;
mod merge;
mod metadata;
mod metadata_writers;
mod retention;
mod robustness;
mod support;
mod writers;
mod writers_damaged;
mod writers_live;
mod writers_read;
mod writers_repair;
