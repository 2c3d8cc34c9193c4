//! Session stores: a local directory and S3 (or MinIO).
//!
//! Both implement [`tape_session::SessionStore`]; the command line picks one
//! from a [`StoreLocation`]. [`SpooledStore`] wraps either so that the blobs
//! being written stay in local files until they are committed. Exports
//! write their files into a [`tape_session::OutputDir`]: a
//! [`LocalOutputDir`] or an [`S3OutputDir`].
//!
//! ```no_run
//! # async fn example() -> Result<(), tape_session::Error> {
//! use tape_session::{SessionStore, list_sessions};
//! use tape_store::LocalStore;
//!
//! let store = LocalStore::new(".");
//! for session in list_sessions(&store, None).await?.sessions {
//!     println!("{} {}", session.session_id, session.status);
//! }
//! # Ok(()) }
//! ```

mod delete;
mod local;
mod location;
mod lock;
mod output;
mod s3;
mod sink_file;
mod spool;

pub use delete::{DeleteError, RepairLockError, check_repairable, delete_session};
pub use local::LocalStore;
pub use location::{InvalidStoreLocation, StoreLocation};
pub use lock::{
    CaptureLock, LockError, RecoverError, RecoveredSpool, WriterLockState, is_locked, is_writer_locked,
    locked_sessions, recover_spool, try_lock, try_lock_writer, writer_lock_state,
};
pub use output::{LocalOutputDir, S3OutputDir};
pub use s3::{S3Config, S3Store};
pub use spool::{SpooledStore, spooled_sessions};
