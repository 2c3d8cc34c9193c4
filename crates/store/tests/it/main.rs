//! The store conformance suite against every backend.

#[path = "../common/mod.rs"]
mod common;
mod disk_full;
mod local;
mod output;
mod s3;
mod time_order;
