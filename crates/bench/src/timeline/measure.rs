//! The measurements of `bench timeline`.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tape_otlp::Signal;
use tape_session::{Record, SessionId, SessionMetadata, SessionStore, Timeline, TimelineBuilder, read_blob, timeline};

use super::{BuilderRun, OPEN_GOAL_SECONDS, OpenRun, RebuildRun, TIMELINE_PATTERN, TimelineBenchConfig};
use crate::error::ensure;
use crate::replay::SessionFacts;
use crate::system::{cpu_seconds, percentile, session_id};
use crate::{Error, Host, SeedRequest, Step};

/// Virtual seconds of the session that sizes the measured one.
const PROBE_SECONDS: u64 = 10;

/// Bytes in an MB, for rates.
const MB: f64 = 1e6;

/// Generates a `high-load` seed session of at least `target` bytes
/// stored, as `otlp-tape seed` does: a short one first gives the stored
/// bytes per second of virtual time; the session is made longer again if
/// it falls short.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // sizes and durations are far from the limits
pub(super) async fn generate(
    host: &impl Host,
    store: &dyn SessionStore,
    id: &SessionId,
    target: u64,
    config: &TimelineBenchConfig,
) -> Result<(SessionFacts, SessionMetadata), Error> {
    host.step(Step::Generating { bench: "timeline", pattern: TIMELINE_PATTERN, measurement: "sizing" });
    let probe_id = session_id("bench-timeline-probe")?;
    let (probe, _) = seed(host, store, &probe_id, PROBE_SECONDS * 1_000_000_000, config).await?;
    store.delete_session(&probe_id).await.map_err(Error::session("cannot delete the sizing session"))?;
    let bytes_per_second = probe.stored_bytes as f64 / PROBE_SECONDS as f64;
    ensure(bytes_per_second > 0.0, || "the sizing session is empty, so the session cannot be sized".to_owned())?;
    let mut seconds = (target as f64 / bytes_per_second * 1.03).ceil().max(1.0);
    loop {
        host.step(Step::GeneratingMemory {
            bench: "timeline",
            seconds,
            pattern: TIMELINE_PATTERN,
            target_bytes: target,
        });
        let duration = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let (session, metadata) = seed(host, store, id, duration, config).await?;
        if session.stored_bytes >= target {
            return Ok((session, metadata));
        }
        // Short of the target: longer, in proportion and a little more.
        seconds = (seconds * target as f64 / session.stored_bytes.max(1) as f64 * 1.03).ceil();
        store.delete_session(id).await.map_err(Error::session("cannot delete the timeline session"))?;
    }
}

/// One seed session, and its metadata read back.
async fn seed(
    host: &impl Host,
    store: &dyn SessionStore,
    id: &SessionId,
    duration_nanos: u64,
    config: &TimelineBenchConfig,
) -> Result<(SessionFacts, SessionMetadata), Error> {
    let request = SeedRequest {
        pattern: TIMELINE_PATTERN.to_owned(),
        duration_nanos,
        rate: config.rate,
        seed: config.seed,
        session_id: id.clone(),
        description: "otlp-tape bench timeline".to_owned(),
    };
    let generated = host.generate(store, request).await.map_err(Error::Host)?;
    let metadata =
        store.read_metadata(id).await.map_err(Error::session(format!("cannot read the metadata of session {id}")))?;
    Ok((SessionFacts::new(generated, &metadata), metadata))
}

/// The timeline the writer kept; its totals must be the metadata's counts.
pub(super) async fn kept_timeline(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    problems: &mut Vec<String>,
) -> Result<Timeline, Error> {
    let id = &metadata.session_id;
    let bytes = store.read_timeline(id).await.map_err(Error::session(format!("cannot read the timeline of {id}")))?;
    let Some(bytes) = bytes else {
        return Err(Error::Measurement(format!("the writer kept no timeline.json for session {id}")));
    };
    let kept: Timeline = serde_json::from_slice(&bytes)
        .map_err(|source| Error::Json { context: format!("cannot read the timeline of {id}"), source })?;
    let totals = kept.totals();
    let counts = metadata.item_counts();
    let expected = (counts.get(Signal::Traces), counts.get(Signal::Metrics), counts.get(Signal::Logs));
    if (totals.traces, totals.metrics, totals.logs) != expected {
        problems.push(format!(
            "the kept timeline counts {} spans, {} data points and {} log records; the metadata {expected:?}",
            totals.traces, totals.metrics, totals.logs
        ));
    }
    Ok(kept)
}

/// Opens the session's page `runs` times: metadata, annotations, timeline.
pub(super) async fn measure_open(store: &dyn SessionStore, id: &SessionId, runs: u32) -> Result<OpenRun, Error> {
    let mut totals = Vec::new();
    let (mut metadata_times, mut annotations_times, mut timeline_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        store.read_metadata(id).await.map_err(Error::session(format!("cannot read the metadata of {id}")))?;
        let metadata_done = Instant::now();
        store.read_annotations(id).await.map_err(Error::session(format!("cannot read the annotations of {id}")))?;
        let annotations_done = Instant::now();
        timeline(store, id).await.map_err(Error::session(format!("cannot read the timeline of {id}")))?;
        let done = Instant::now();
        metadata_times.push((metadata_done - started).as_secs_f64());
        annotations_times.push((annotations_done - metadata_done).as_secs_f64());
        timeline_times.push((done - annotations_done).as_secs_f64());
        totals.push((done - started).as_secs_f64());
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        percentile(times, 0.5)
    };
    let median_seconds = median(&mut totals);
    Ok(OpenRun {
        runs,
        median_seconds,
        max_seconds: totals.last().copied().unwrap_or_default(),
        metadata_seconds: median(&mut metadata_times),
        annotations_seconds: median(&mut annotations_times),
        timeline_seconds: median(&mut timeline_times),
        within_goal: median_seconds < OPEN_GOAL_SECONDS,
    })
}

/// Deletes `timeline.json` (at `path`, in the local store's layout) and
/// times [`timeline`] building it from the blobs; it must equal the kept
/// one and be kept again.
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub(super) async fn measure_rebuild(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    path: &Path,
    kept: &Timeline,
    problems: &mut Vec<String>,
) -> Result<RebuildRun, Error> {
    let id = &metadata.session_id;
    std::fs::remove_file(path).map_err(Error::io(format!("cannot delete {}", path.display())))?;
    let gone = store.read_timeline(id).await.map_err(Error::session(format!("cannot read the timeline of {id}")))?;
    ensure(gone.is_none(), || {
        format!("the timeline of session {id} is still there after deleting {}", path.display())
    })?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let rebuilt = timeline(store, id).await.map_err(Error::session(format!("cannot build the timeline of {id}")))?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);
    if rebuilt != *kept {
        problems.push("the timeline built from the blobs differs from the one the writer kept".to_owned());
    }
    let again = store.read_timeline(id).await.map_err(Error::session(format!("cannot read the timeline of {id}")))?;
    if again.is_none() {
        problems.push("the timeline built from the blobs was not kept".to_owned());
    }
    let stored: u64 = metadata.blobs.iter().map(|blob| blob.compressed_bytes).sum();
    let uncompressed: u64 = metadata.blobs.iter().map(|blob| blob.uncompressed_bytes).sum();
    let records: u64 = metadata.request_counts.total();
    Ok(RebuildRun {
        seconds,
        cpu_seconds,
        stored_mb_per_second: stored as f64 / MB / seconds,
        uncompressed_mb_per_second: uncompressed as f64 / MB / seconds,
        records_per_second: records as f64 / seconds,
    })
}

/// Counts every record of the session into builders as the writer does
/// (one per blob, merged into the session's), timing only the builder:
/// each blob's records are read into memory first.
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub(super) async fn measure_builder(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    session: &SessionFacts,
    kept: &Timeline,
    problems: &mut Vec<String>,
) -> Result<BuilderRun, Error> {
    let id = &metadata.session_id;
    let mut builder = TimelineBuilder::new();
    let mut elapsed = Duration::ZERO;
    let (mut records, mut trace_records, mut payload_bytes, mut trace_payload_bytes) = (0, 0, 0, 0);
    for blob in &metadata.blobs {
        let read: Vec<Record> = read_blob(store, id, &blob.key)
            .await
            .map_err(Error::session(format!("cannot read blob {} of {id}", blob.key)))?
            .try_collect()
            .await
            .map_err(Error::session(format!("cannot read blob {} of {id}", blob.key)))?;
        let started = Instant::now();
        let mut blob_builder = TimelineBuilder::new();
        for record in &read {
            blob_builder.add_record(blob.signal, record.receive_time(), record.item_count, &record.payload);
        }
        builder.merge(blob_builder);
        elapsed += started.elapsed();
        let bytes: u64 = read.iter().map(|record| record.payload.len() as u64).sum();
        records += read.len() as u64;
        payload_bytes += bytes;
        if blob.signal == Signal::Traces {
            trace_records += read.len() as u64;
            trace_payload_bytes += bytes;
        }
    }
    if builder.build(id.clone(), metadata.content_hash.clone()) != *kept {
        problems.push("the builder's timeline differs from the one the writer kept".to_owned());
    }
    let seconds = elapsed.as_secs_f64();
    Ok(BuilderRun {
        records,
        trace_records,
        payload_bytes,
        trace_payload_bytes,
        seconds,
        nanos_per_record: seconds * 1e9 / records.max(1) as f64,
        payload_mb_per_second: payload_bytes as f64 / MB / seconds,
        share_of_generation: seconds / session.generation_seconds,
    })
}
