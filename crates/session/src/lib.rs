//! The otlp-tape session: ids, metadata, the blob format and the store trait.
//!
//! This crate is pure: it does no I/O of its own. It defines what a session
//! is (`docs/FORMAT.md` is the byte-level specification), the
//! [`SessionStore`] trait that the `store` crate implements for a local
//! directory and for S3, and the streaming [`SessionWriter`] and
//! [`read_blob`] that every command uses through that trait.
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore) -> Result<(), tape_session::Error> {
//! use futures::TryStreamExt;
//! use tape_session::{SessionId, read_session};
//!
//! let id: SessionId = "checkout-2026-11-22".parse()?;
//! let metadata = store.read_metadata(&id).await?;
//! let mut records = std::pin::pin!(read_session(store, &metadata, |_| true));
//! while let Some((signal, record)) = records.try_next().await? {
//!     println!("{signal}: {} items at {}", record.item_count, record.receive_time());
//! }
//! # Ok(()) }
//! ```

mod annotation;
pub mod blob;
mod bound;
pub mod config;
mod duration;
mod error;
mod id;
mod join;
mod key;
mod layer;
mod merge;
mod metadata;
mod output;
mod phase;
mod read;
mod repair;
mod repair_writer;
pub mod retention;
mod salvage;
mod seal;
mod store;
mod time;
mod timeline;
mod unsealed;
mod window;
mod writer;
mod writers;

pub use annotation::{
    ANNOTATIONS_FILE, Annotation, AnnotationError, PHASE_ANNOTATION_TYPE, PHASE_KEY_PREFIX, UNLABELLED,
    check_phase_name, parse_jsonl, phase_directory, to_jsonl,
};
pub use blob::{BlobDecoder, BlobError, BlobReader, BlobSummary, BlobWriter, Record};
pub use bound::TimeBound;
pub use duration::{format_duration, parse_duration};
pub use error::{BoxError, Error, error_chain};
pub use id::{InvalidSessionId, MAX_SESSION_ID_LEN, SessionId};
pub use key::{BlobKey, InvalidBlobKey};
pub use layer::StoreLayer;
pub use merge::{MERGE_CREATOR, MergeConfig, MergeError, MergeReport, SourceReport, ValidMergeConfig, merge_sessions};
pub use metadata::{
    BlobEntry, FORMAT_VERSION, FORMAT_VERSION_WRITERS, MetadataError, PhaseEntry, SessionMetadata, SessionStatus,
    SessionType, SignalCounts, content_hash,
};
pub use output::OutputDir;
pub use phase::{Phase, PhaseError, PhasesError, phases_of, session_phases};
pub use read::{
    SessionListing, TaggedRecord, list_sessions, read_blob, read_blobs_in_time_order, read_blobs_in_time_order_tagged,
    read_session, read_session_in_time_order,
};
pub use repair::{
    DamagedBlob, PartialOutcome, RecoveredBlob, RepairReport, RepairTotals, WriterRepairSeal, repair_session,
};
pub use salvage::{Salvaged, salvage_blob};
pub use store::{BlobSink, ByteStream, PartialBlob, SessionStore};
pub use time::Timestamp;
pub use timeline::{TIMELINE_VERSION, Timeline, TimelineBuilder, TimelineRow, timeline, timeline_of};
pub use unsealed::{is_unsealed, unsealed_advice};
pub use window::{PhaseRange, Window, WindowError, find_phase, window};
pub use writer::{SessionWriter, WriterOptions};
pub use writers::{
    InvalidWriterId, JOIN_SEAL_WAIT, Joined, MAX_WRITER_ID_LEN, SealMarker, SealOptions, SealOutcome, SessionFile,
    WRITER_HEARTBEAT, WRITER_STALE_AFTER, WriteMode, WriterEntry, WriterId, WriterLiveness, WriterManifest,
    join_session, read_manifests, repair_writer, seal_session,
};
