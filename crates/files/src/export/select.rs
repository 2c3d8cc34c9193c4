//! What an export reads: the selected signals' records in the window of
//! `from`, `until` and `phase`, in receive-time order, each with the
//! phases it falls in; and the progress of reading them.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::{Stream, TryStreamExt, future};
use tape_otlp::SignalSet;
use tape_session::{
    BlobEntry, Phase, SessionMetadata, SessionStore, TaggedRecord, UNLABELLED, Window, WriterId, find_phase,
    phase_directory, read_blobs_in_time_order_tagged, session_phases, window,
};

use super::{ExportConfig, ExportProgress};
use crate::Error;

/// Progress is reported every this many records,
const PROGRESS_RECORDS: u64 = 4096;
/// or sooner, every this many items (a busy capture's requests hold
/// hundreds of spans each).
const PROGRESS_ITEMS: u64 = 64 * 1024;

/// The records an export reads, resolved against the session.
pub(super) struct Selection {
    /// The signals.
    pub(super) signals: SignalSet,
    /// The receive times.
    pub(super) window: Window,
    /// The session's phases (read only when the export needs them).
    pub(super) phases: Vec<Phase>,
    /// The labels' names: the phases', then `unlabelled`.
    pub(super) names: Vec<String>,
    /// The labels' directories in a by-phase export, in the order of
    /// `names`: each name with a merged session's `/` made `.`.
    pub(super) directories: Vec<String>,
    /// The blobs of the selected signals that meet the window.
    blobs: Vec<BlobEntry>,
}

impl Selection {
    /// Resolves `config`'s selection for the session; reads its phases when
    /// `needs_phases` (or `config.phase` names one).
    pub(super) async fn resolve(
        store: &dyn SessionStore,
        metadata: &SessionMetadata,
        config: &ExportConfig,
        needs_phases: bool,
    ) -> Result<Self, Error> {
        let phases = if needs_phases || config.phase.is_some() {
            session_phases(store, metadata)
                .await
                .map_err(|source| Error::Phases { session: metadata.session_id.clone(), source })?
        } else {
            Vec::new()
        };
        let phase = match &config.phase {
            Some(name) => Some(find_phase(metadata, &phases, name, "exports")?),
            None => None,
        };
        let window = window(metadata.start_time, config.from, config.until, phase.as_ref())?;
        let blobs = metadata
            .blobs
            .iter()
            .filter(|blob| {
                config.signals.contains(blob.signal)
                    && phase.as_ref().is_none_or(|phase| phase.selects_blob(blob))
                    && window.overlaps(blob.first_receive_time.unix_nanos(), blob.last_receive_time.unix_nanos())
            })
            .cloned()
            .collect();
        let mut names: Vec<String> = phases.iter().map(|phase| phase.name.clone()).collect();
        names.push(UNLABELLED.to_owned());
        let directories = names.iter().map(|name| phase_directory(name)).collect();
        Ok(Selection { signals: config.signals, window, phases, names, directories, blobs })
    }

    /// Records in the blobs read; the progress's total.
    pub(super) fn records_total(&self) -> u64 {
        self.blobs.iter().map(|blob| blob.records).sum()
    }

    /// The selected records in receive-time order, each with its writer
    /// (for its phases); every record read counts in `progress`, the
    /// selected ones with their items.
    pub(super) fn records<'a>(
        &'a self,
        store: &'a dyn SessionStore,
        metadata: &'a SessionMetadata,
        progress: &'a Progress<'a>,
    ) -> impl Stream<Item = Result<TaggedRecord, Error>> + Send + 'a {
        read_blobs_in_time_order_tagged(store, &metadata.session_id, &self.blobs).map_err(Error::from).try_filter(
            move |(_, _, record)| {
                let selected = self.window.contains(record.receive_time_unix_nano);
                progress.record(if selected { record.item_count } else { 0 });
                future::ready(selected)
            },
        )
    }

    /// The labels of a record of `writer` received at `receive_time` (unix
    /// nanoseconds), as indexes into [`Selection::names`]: every phase
    /// whose range holds it and that pairs with its writer, else
    /// `unlabelled` (the last).
    pub(super) fn labels(&self, receive_time: u64, writer: Option<&WriterId>, labels: &mut Vec<usize>) {
        label(&self.phases, receive_time, writer, labels);
    }
}

/// The labels of a record of `writer` received at `receive_time` (unix
/// nanoseconds) into `labels`: the indexes of every phase whose range
/// holds it and that pairs with its writer (in a merged session, a
/// source's phases label only that source's records), else `phases.len()`
/// (`unlabelled`).
pub(super) fn label(phases: &[Phase], receive_time: u64, writer: Option<&WriterId>, labels: &mut Vec<usize>) {
    labels.clear();
    let time = tape_session::Timestamp::from_unix_nanos(receive_time);
    labels.extend(phases.iter().enumerate().filter(|(_, phase)| phase.labels(time, writer)).map(|(index, _)| index));
    if labels.is_empty() {
        labels.push(phases.len());
    }
}

/// The progress of an export, shared by the tasks that read and write.
pub(super) struct Progress<'a> {
    report: &'a (dyn Fn(ExportProgress) + Send + Sync),
    total: u64,
    records: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
    /// Items at the last report.
    reported_items: AtomicU64,
}

impl<'a> Progress<'a> {
    /// Progress of `total` records, reported at once (nothing done yet).
    pub(super) fn new(report: &'a (dyn Fn(ExportProgress) + Send + Sync), total: u64) -> Self {
        let progress = Progress {
            report,
            total,
            records: AtomicU64::new(0),
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            reported_items: AtomicU64::new(0),
        };
        progress.report();
        progress
    }

    /// One record read, with its items when it is selected (else 0).
    pub(super) fn record(&self, items: u64) {
        let items = self.items.fetch_add(items, Ordering::Relaxed) + items;
        let records = self.records.fetch_add(1, Ordering::Relaxed) + 1;
        if records.is_multiple_of(PROGRESS_RECORDS)
            || items >= self.reported_items.load(Ordering::Relaxed) + PROGRESS_ITEMS
        {
            self.reported_items.store(items, Ordering::Relaxed);
            self.report();
        }
    }

    /// Bytes written into the output.
    pub(super) fn wrote(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Reports where the export is.
    pub(super) fn report(&self) {
        (self.report)(self.snapshot());
    }

    /// Where the export is.
    pub(super) fn snapshot(&self) -> ExportProgress {
        ExportProgress {
            records_done: self.records.load(Ordering::Relaxed),
            records_total: self.total,
            items_done: self.items.load(Ordering::Relaxed),
            bytes_written: self.bytes.load(Ordering::Relaxed),
        }
    }
}
