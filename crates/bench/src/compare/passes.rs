//! Where the time of a comparison goes: both sessions (EXPECTED and its
//! identical copy) read again on one thread outside the comparison, each
//! pass doing one step more than the one before. The comparison's CPU time
//! less the last pass's is its own work: items extracted with their
//! resources and scopes, canonical hashes, partitions, matching and
//! differences.

use std::time::Instant;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tape_otlp::ExportRequest;
use tape_session::{SessionId, SessionStore, read_session};

use crate::Error;
use crate::system::cpu_seconds;

/// One pass over both sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparePass {
    /// The step this pass adds: `read` or `decode`.
    pub step: String,
    /// What the pass does in all.
    pub does: String,
    /// How long it took.
    pub seconds: f64,
    /// CPU time of the process over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Items of both sessions it saw.
    pub items: u64,
    /// Items a second.
    pub items_per_second: f64,
}

/// Runs the read pass, then the decode pass, over `sessions`.
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub(super) async fn measure_passes(
    store: &dyn SessionStore,
    sessions: [&SessionId; 2],
) -> Result<Vec<ComparePass>, Error> {
    let mut passes = Vec::new();
    for (step, does, decode) in [
        ("read", "read both sessions' blobs, decompress them and split them into records", false),
        ("decode", "and decode each record's OTLP protobuf", true),
    ] {
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut items = 0;
        for session in sessions {
            items += pass(store, session, decode).await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        passes.push(ComparePass {
            step: step.to_owned(),
            does: does.to_owned(),
            seconds,
            cpu_seconds: cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before),
            items,
            items_per_second: items as f64 / seconds,
        });
    }
    Ok(passes)
}

/// One pass over `session`; returns the items it saw (by the records'
/// counts when it only reads).
async fn pass(store: &dyn SessionStore, session: &SessionId, decode: bool) -> Result<u64, Error> {
    let cannot_read = || Error::session(format!("cannot read session {session}"));
    let metadata = store.read_metadata(session).await.map_err(cannot_read())?;
    let mut records = std::pin::pin!(read_session(store, &metadata, |_| true));
    let mut items = 0;
    while let Some((signal, record)) = records.try_next().await.map_err(cannot_read())? {
        if !decode {
            items += record.item_count;
            continue;
        }
        let request = ExportRequest::decode_protobuf(signal, &record.payload)
            .map_err(Error::files(format!("cannot decode a {signal} record of session {session}")))?;
        items += request.item_count();
        std::hint::black_box(request);
    }
    Ok(items)
}
