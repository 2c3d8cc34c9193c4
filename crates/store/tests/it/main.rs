//! The store conformance suite against every backend.

mod local;
mod s3;
mod time_order;
