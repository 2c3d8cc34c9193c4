//! One module per subcommand.

pub mod annotations;
pub mod bench;
pub mod capture;
pub mod compare;
pub mod demo;
pub mod export;
pub mod import;
pub mod merge;
pub mod patterns;
pub mod replay;
pub mod seed;
pub mod serve;
pub mod sessions;
pub mod writers;
