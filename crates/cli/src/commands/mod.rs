//! One module per subcommand.

pub mod bench;
pub mod capture;
pub mod export;
pub mod import;
pub mod patterns;
pub mod seed;
pub mod sessions;
