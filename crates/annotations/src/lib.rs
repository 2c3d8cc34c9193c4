//! otlp-tape's annotations beyond the session: adding one to a session
//! ([`add`]), the ClickHouse sink that
//! keeps them in an `annotations` table for training pipelines
//! ([`clickhouse`]), a session's annotations on their way there
//! ([`session`]), and the training-data reader that labels a session's
//! records with their phases ([`reader`]).
//!
//! ```no_run
//! # async fn example(store: &dyn tape_session::SessionStore, id: &tape_session::SessionId) -> anyhow::Result<()> {
//! use futures::TryStreamExt;
//!
//! let metadata = store.read_metadata(id).await?;
//! let phases = tape_annotations::session_phases(store, &metadata).await?;
//! let mut records = std::pin::pin!(tape_annotations::by_phase(store, &metadata, &phases));
//! while let Some(labelled) = records.try_next().await? {
//!     println!("{} {} {} items", labelled.label.name(), labelled.signal, labelled.record.item_count);
//! }
//! # Ok(())
//! # }
//! ```

pub mod add;
pub mod clickhouse;
pub mod reader;
pub mod session;

pub use crate::add::{
    AddAnnotationConfig, AddAnnotationError, AddOutcome, DEFAULT_CREATED_BY, add_annotation, parse_value_text,
};
pub use crate::clickhouse::{ClickHouseConfig, ClickHouseSink, PushOutcome, SinkError};
pub use crate::reader::{Label, Labelled, Phase, PhaseError, PhasesError, by_phase, phases_of, session_phases};
pub use crate::session::{
    CLICKHOUSE_DATABASE, CLICKHOUSE_PASSWORD, CLICKHOUSE_URL, CLICKHOUSE_USER, ClickHouseReport, ClickHouseSettings,
    SessionAnnotationsError, push, push_and_report, session_annotations,
};
