//! One module per subcommand.

pub mod export;
pub mod import;
pub mod sessions;
