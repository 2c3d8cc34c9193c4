//! The store conformance suite against every backend.

mod disk_full;
mod local;
mod s3;
mod time_order;
