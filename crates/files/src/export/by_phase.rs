//! Export by phase: everything is written under a staging directory inside
//! the output directory and moved into place only when complete, so a
//! failed export leaves nothing behind.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use serde::Serialize;
use tape_otlp::Signal;
use tape_session::{Phase, SessionId, SessionMetadata, SessionStore, SessionType, SignalCounts, Timestamp};

use super::file::PendingFile;
use super::select::{Progress, Selection};
use super::{ExportConfig, ExportProgress, ExportedFile};
use crate::{Error, FileFormat};

/// The manifest of a by-phase export.
pub const LABELS_FILE: &str = "labels.json";

/// A time range of a phase in `labels.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeEntry {
    /// Its start, inclusive.
    pub start: Timestamp,
    /// Its end, exclusive.
    pub end: Timestamp,
}

/// A file of a phase in `labels.json`, relative to the export directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Its signal.
    pub signal: Signal,
    /// Parquet: its table (`traces`, `metrics_sum`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<&'static str>,
    /// Its path, relative to the export directory: `<phase>/<file>`, for
    /// Parquet `Phase=<phase>/<table>.parquet`.
    pub file: String,
    /// Requests in it (Parquet: requests with rows in it).
    pub requests: u64,
    /// Items in it (Parquet: its rows, one per item).
    pub items: u64,
}

/// A phase (or `unlabelled`) in `labels.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelEntry {
    /// The phase's name, or `unlabelled`.
    pub phase: String,
    /// Its directory, relative to the export directory: the phase's name,
    /// for Parquet `Phase=<name>`.
    pub directory: String,
    /// Whether it is the records outside every phase.
    pub unlabelled: bool,
    /// Its time ranges; empty for `unlabelled`.
    pub ranges: Vec<RangeEntry>,
    /// The start of its first range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_range_start: Option<Timestamp>,
    /// The end of its last range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_range_end: Option<Timestamp>,
    /// The phase's flags.
    pub flags: Vec<String>,
    /// The phase's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Requests of the phase exported, per signal.
    pub requests: SignalCounts,
    /// Items of the phase exported, per signal.
    pub items: SignalCounts,
    /// Its files.
    pub files: Vec<FileEntry>,
}

/// `labels.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Labels {
    /// The session.
    pub session_id: SessionId,
    /// Its type.
    pub session_type: SessionType,
    /// Its start.
    pub session_start: Timestamp,
    /// Its end, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_end: Option<Timestamp>,
    /// The files' format.
    pub format: FileFormat,
    /// Records are put in a phase by their receive time, start inclusive,
    /// end exclusive: `receiveTime`.
    pub assigned_by: &'static str,
    /// Whether phases overlap; then a record in several phases is in each of
    /// their directories, and the phases' counts add up to more than the
    /// session's.
    pub overlapping: bool,
    /// The session's own request counts (of every record, selected or not).
    pub requests: SignalCounts,
    /// The session's own item counts (of every record, selected or not).
    pub items: SignalCounts,
    /// The phases, in the session's order, then `unlabelled`.
    pub phases: Vec<LabelEntry>,
}

/// Whether two of `phases` share an instant and a writer.
fn overlapping(phases: &[Phase]) -> bool {
    // Phases of different writers (the sources of a merged session) never
    // label one record, however their times meet.
    let share_writers = |a: &Phase, b: &Phase| {
        a.writers.is_empty() || b.writers.is_empty() || a.writers.iter().any(|writer| b.writers.contains(writer))
    };
    let ranges: Vec<(&Phase, Timestamp, Timestamp)> = phases
        .iter()
        .flat_map(|phase| phase.ranges.iter().map(move |&(start, end)| (phase, start, end)))
        .filter(|(_, start, end)| start < end)
        .collect();
    ranges
        .iter()
        .enumerate()
        .any(|(index, a)| ranges[index + 1..].iter().any(|b| a.1 < b.2 && b.1 < a.2 && share_writers(a.0, b.0)))
}

/// Exports the selected records by phase into the local directory `out`;
/// returns the manifest written.
pub(super) async fn run(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    selection: &Selection,
    config: &ExportConfig,
    out: &Path,
    report: &(dyn Fn(ExportProgress) + Send + Sync),
) -> Result<Labels, Error> {
    let id = &metadata.session_id;
    let directories = &selection.directories;
    fs::create_dir_all(out).map_err(|source| Error::CreateDirectory { path: out.to_owned(), source })?;
    let targets: Vec<PathBuf> =
        directories.iter().map(|directory| out.join(directory)).chain([out.join(LABELS_FILE)]).collect();
    if !config.force
        && let Some(existing) = targets.iter().find(|path| path.exists())
    {
        return Err(Error::Exists { path: existing.display().to_string() });
    }
    let staging = out.join(format!(".otlp-tape-export-{}.partial", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    for directory in directories {
        let dir = staging.join(directory);
        fs::create_dir_all(&dir).map_err(|source| Error::CreateDirectory { path: dir, source })?;
    }

    let progress = Progress::new(report, selection.records_total());
    let written = write_by_phase(store, metadata, selection, &staging, config.format, &progress).await;
    let labels = match written {
        Ok(files) => labels(metadata, &selection.phases, config.format, |index, _| {
            let directory = &directories[index];
            let mut counts = Counts::default();
            let files = files
                .get(&index)
                .into_iter()
                .flatten()
                .map(|file| {
                    counts.requests.add(file.signal, file.requests);
                    counts.items.add(file.signal, file.items);
                    FileEntry {
                        signal: file.signal,
                        table: None,
                        file: format!("{directory}/{}", file_name(&file.path)),
                        requests: file.requests,
                        items: file.items,
                    }
                })
                .collect();
            (directory.clone(), counts, files)
        }),
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(Error::ByPhaseFailed { session: id.clone(), source: Box::new(error) });
        }
    };
    let moved = move_into_place(&labels, &staging, directories, &targets);
    let _ = fs::remove_dir_all(&staging);
    moved?;
    progress.report();
    tracing::info!(session = %id, phases = selection.phases.len(), "Export by phase finished.");
    Ok(labels)
}

/// The last part of `path`.
fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Writes `labels.json` into `staging`, then moves every phase directory
/// and the manifest to its target, replacing what is there.
fn move_into_place(labels: &Labels, staging: &Path, names: &[String], targets: &[PathBuf]) -> Result<(), Error> {
    let text = serde_json::to_vec_pretty(labels)?;
    fs::write(staging.join(LABELS_FILE), text).map_err(|source| Error::WriteLabels { source })?;
    for (name, target) in names.iter().map(String::as_str).chain([LABELS_FILE]).zip(targets) {
        let replaced = if target.is_dir() {
            fs::remove_dir_all(target)
        } else if target.exists() {
            fs::remove_file(target)
        } else {
            Ok(())
        };
        replaced.map_err(|source| Error::Replace { path: target.clone(), source })?;
        fs::rename(staging.join(name), target).map_err(|source| Error::Move { path: target.clone(), source })?;
    }
    Ok(())
}

/// Writes every selected record into `staging/<label>/<signal file>` of
/// each label it has; returns the finished files by label (an index into
/// the selection's names).
async fn write_by_phase(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    selection: &Selection,
    staging: &Path,
    format: FileFormat,
    progress: &Progress<'_>,
) -> Result<BTreeMap<usize, Vec<ExportedFile>>, Error> {
    let mut files: BTreeMap<(usize, Signal), PendingFile> = BTreeMap::new();
    let written = async {
        let mut records = std::pin::pin!(selection.records(store, metadata, progress));
        let mut labels = Vec::new();
        while let Some((signal, writer, record)) = records.try_next().await? {
            selection.labels(record.receive_time_unix_nano, writer.as_ref(), &mut labels);
            for &label in &labels {
                let file = match files.entry((label, signal)) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        let path = staging.join(&selection.directories[label]).join(PendingFile::name(format, signal)?);
                        entry.insert(PendingFile::create(signal, path, format)?)
                    }
                };
                progress.wrote(file.write(&metadata.session_id, &record)?);
            }
        }
        Ok::<_, Error>(())
    }
    .await;
    if let Err(error) = written {
        files.into_values().for_each(PendingFile::discard);
        return Err(error);
    }
    let mut finished: BTreeMap<usize, Vec<ExportedFile>> = BTreeMap::new();
    for ((label, _), file) in files {
        finished.entry(label).or_default().push(file.finish()?);
    }
    Ok(finished)
}

/// Requests and items of a phase, per signal.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    /// Requests.
    pub(super) requests: SignalCounts,
    /// Items.
    pub(super) items: SignalCounts,
}

/// The manifest: `entry(index, name)` gives the directory, counts and
/// files of each label, the phases' (in the session's order) then
/// `unlabelled`'s.
pub(super) fn labels(
    metadata: &SessionMetadata,
    phases: &[Phase],
    format: FileFormat,
    mut entry: impl FnMut(usize, &str) -> (String, Counts, Vec<FileEntry>),
) -> Labels {
    let mut label = |index: usize, name: &str, phase: Option<&Phase>| {
        let (directory, counts, files) = entry(index, name);
        LabelEntry {
            phase: name.to_owned(),
            directory,
            unlabelled: phase.is_none(),
            ranges: phase
                .map(|phase| phase.ranges.iter().map(|&(start, end)| RangeEntry { start, end }).collect())
                .unwrap_or_default(),
            time_range_start: phase.map(Phase::start),
            time_range_end: phase.map(Phase::end),
            flags: phase.map(|phase| phase.flags.clone()).unwrap_or_default(),
            description: phase.and_then(|phase| phase.description.clone()),
            requests: counts.requests,
            items: counts.items,
            files,
        }
    };
    let mut entries: Vec<LabelEntry> =
        phases.iter().enumerate().map(|(index, phase)| label(index, &phase.name, Some(phase))).collect();
    entries.push(label(phases.len(), tape_session::UNLABELLED, None));
    Labels {
        session_id: metadata.session_id.clone(),
        session_type: metadata.session_type,
        session_start: metadata.start_time,
        session_end: metadata.end_time,
        format,
        assigned_by: "receiveTime",
        overlapping: overlapping(phases),
        requests: metadata.request_counts,
        items: metadata.item_counts(),
        phases: entries,
    }
}
