//! `otlp-tape export`: a session's records as OTLP files in the Collector's
//! file exporter formats, one file per signal; with `--by-phase`, one
//! directory per phase plus `unlabelled` and a `labels.json` manifest.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use serde::Serialize;
use tape_annotations::{Label, Phase, by_phase, session_phases};
use tape_otlp::{ExportRequest, Signal};
use tape_session::{
    Record, SessionId, SessionMetadata, SessionStore, SignalCounts, Timestamp, UNLABELLED, read_session,
};

use crate::cli::{ExportArgs, FileFormat, OutputFormat};
use crate::output::{note, print_json};

/// The manifest of a by-phase export.
const LABELS_FILE: &str = "labels.json";

/// One exported file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportedFile {
    signal: Signal,
    path: PathBuf,
    requests: u64,
    items: u64,
}

/// A file being written under a temporary name until every record is in it.
struct PendingFile {
    signal: Signal,
    path: PathBuf,
    temp: PathBuf,
    out: BufWriter<File>,
    requests: u64,
    items: u64,
}

impl PendingFile {
    fn create(signal: Signal, path: PathBuf) -> anyhow::Result<Self> {
        let temp = temp_path(&path);
        let out = File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
        Ok(PendingFile { signal, path, temp, out: BufWriter::new(out), requests: 0, items: 0 })
    }

    /// Appends one record in `format`.
    fn write(&mut self, session: &SessionId, record: &Record, format: FileFormat) -> anyhow::Result<()> {
        let signal = self.signal;
        let written = match format {
            FileFormat::OtlpProto => u32::try_from(record.payload.len())
                .map_err(std::io::Error::other)
                .and_then(|len| self.out.write_all(&len.to_be_bytes()))
                .and_then(|()| self.out.write_all(&record.payload)),
            FileFormat::OtlpJson => {
                let request = ExportRequest::decode_protobuf(signal, &record.payload).with_context(|| {
                    format!("session {session}: a {signal} record received at {}", record.receive_time())
                })?;
                let json = request.encode_json()?;
                self.out.write_all(&json).and_then(|()| self.out.write_all(b"\n"))
            }
        };
        written.with_context(|| format!("cannot write {}", self.temp.display()))?;
        self.requests += 1;
        self.items += record.item_count;
        Ok(())
    }

    /// Flushes, syncs and gives the file its name.
    fn finish(self) -> anyhow::Result<ExportedFile> {
        let PendingFile { signal, path, temp, out, requests, items } = self;
        let finished = out.into_inner().map_err(std::io::IntoInnerError::into_error).and_then(|file| file.sync_all());
        if let Err(error) = finished.and_then(|()| fs::rename(&temp, &path)) {
            let _ = fs::remove_file(&temp);
            return Err(error).with_context(|| format!("cannot write {}", path.display()));
        }
        Ok(ExportedFile { signal, path, requests, items })
    }

    fn discard(self) {
        let _ = fs::remove_file(&self.temp);
    }
}

/// The file name of a signal's export.
fn file_name(signal: Signal, format: FileFormat) -> String {
    match format {
        FileFormat::OtlpJson => format!("{signal}.jsonl"),
        FileFormat::OtlpProto => format!("{signal}.pb"),
    }
}

/// `export`
pub async fn run(store: &dyn SessionStore, args: ExportArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let metadata = store.read_metadata(&args.session).await?;
    if args.by_phase {
        return run_by_phase(store, &metadata, &args, format).await;
    }
    let present: Vec<Signal> =
        Signal::ALL.into_iter().filter(|signal| metadata.request_counts.get(*signal) > 0).collect();
    fs::create_dir_all(&args.out).with_context(|| format!("cannot create the directory {}", args.out.display()))?;
    if !args.force {
        for signal in &present {
            let path = args.out.join(file_name(*signal, args.format));
            if path.exists() {
                bail!("{} exists; pass --force to replace it", path.display());
            }
        }
    }

    let mut files: BTreeMap<Signal, PendingFile> = BTreeMap::new();
    let written = async {
        let mut records = std::pin::pin!(read_session(store, &metadata, |_| true));
        while let Some((signal, record)) = records.try_next().await? {
            let file = match files.entry(signal) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    entry.insert(PendingFile::create(signal, args.out.join(file_name(signal, args.format)))?)
                }
            };
            file.write(&metadata.session_id, &record, args.format)?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = written {
        files.into_values().for_each(PendingFile::discard);
        return Err(error.context(format!("export of session {} failed; no file was written", args.session)));
    }
    let mut exported = Vec::new();
    for file in files.into_values() {
        exported.push(file.finish()?);
    }

    if format == OutputFormat::Json {
        print_json(&serde_json::json!({ "sessionId": args.session, "files": exported }))?;
    } else {
        for file in &exported {
            println!("{}", file.path.display());
            note(format!("  {} requests, {} {}", file.requests, file.items, file.signal.item_noun()));
        }
        if exported.is_empty() {
            note(format!("Session {} holds no records; no file was written.", args.session));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A time range of a phase in `labels.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RangeEntry {
    start: Timestamp,
    end: Timestamp,
}

/// A file of a phase in `labels.json`, relative to the export directory.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileEntry {
    signal: Signal,
    file: String,
    requests: u64,
    items: u64,
}

/// A phase (or `unlabelled`) in `labels.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelEntry {
    /// The phase's name, or `unlabelled`.
    phase: String,
    /// Its directory, relative to the export directory (the phase's name).
    directory: String,
    /// Whether it is the records outside every phase.
    unlabelled: bool,
    /// Its time ranges; empty for `unlabelled`.
    ranges: Vec<RangeEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_range_start: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_range_end: Option<Timestamp>,
    flags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    requests: SignalCounts,
    items: SignalCounts,
    files: Vec<FileEntry>,
}

/// `labels.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Labels {
    session_id: SessionId,
    session_type: tape_session::SessionType,
    session_start: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_end: Option<Timestamp>,
    format: &'static str,
    /// Records are put in a phase by their receive time, start inclusive,
    /// end exclusive.
    assigned_by: &'static str,
    /// Whether phases overlap; then a record in several phases is in each of
    /// their directories, and the phases' counts add up to more than the
    /// session's.
    overlapping: bool,
    /// The session's own counts.
    requests: SignalCounts,
    items: SignalCounts,
    phases: Vec<LabelEntry>,
}

/// Whether two of `phases` share an instant.
fn overlapping(phases: &[Phase]) -> bool {
    let mut ranges: Vec<(Timestamp, Timestamp)> =
        phases.iter().flat_map(|phase| phase.ranges.iter().copied()).filter(|(start, end)| start < end).collect();
    ranges.sort();
    ranges.windows(2).any(|pair| pair[1].0 < pair[0].1)
}

/// `export --by-phase`: everything is written under a staging directory
/// inside `--out` and moved into place only when complete, so a failed
/// export leaves nothing behind.
async fn run_by_phase(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    args: &ExportArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let id = &metadata.session_id;
    let phases =
        session_phases(store, metadata).await.with_context(|| format!("cannot export session {id} by phase"))?;
    let mut names: Vec<String> = phases.iter().map(|phase| phase.name.clone()).collect();
    names.push(UNLABELLED.to_owned());
    fs::create_dir_all(&args.out).with_context(|| format!("cannot create the directory {}", args.out.display()))?;
    let targets: Vec<PathBuf> =
        names.iter().map(|name| args.out.join(name)).chain([args.out.join(LABELS_FILE)]).collect();
    if !args.force
        && let Some(existing) = targets.iter().find(|path| path.exists())
    {
        bail!("{} exists; pass --force to replace it", existing.display());
    }
    let staging = args.out.join(format!(".otlp-tape-export-{}.partial", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    for name in &names {
        let dir = staging.join(name);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }

    let written = write_by_phase(store, metadata, &phases, &staging, args.format).await;
    let labels = match written {
        Ok(files) => labels(metadata, &phases, args.format, files),
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(error.context(format!("export of session {id} by phase failed; nothing was written")));
        }
    };
    let moved = (|| {
        let text = serde_json::to_vec_pretty(&labels)?;
        fs::write(staging.join(LABELS_FILE), text).context("cannot write labels.json")?;
        for (name, target) in names.iter().map(String::as_str).chain([LABELS_FILE]).zip(&targets) {
            if target.is_dir() {
                fs::remove_dir_all(target).with_context(|| format!("cannot replace {}", target.display()))?;
            } else if target.exists() {
                fs::remove_file(target).with_context(|| format!("cannot replace {}", target.display()))?;
            }
            fs::rename(staging.join(name), target).with_context(|| format!("cannot move {}", target.display()))?;
        }
        anyhow::Ok(())
    })();
    let _ = fs::remove_dir_all(&staging);
    moved?;

    if format == OutputFormat::Json {
        print_json(&labels)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", args.out.join(LABELS_FILE).display());
    let width = names.iter().map(String::len).max().unwrap_or(0);
    for entry in &labels.phases {
        let range = match (entry.time_range_start, entry.time_range_end) {
            (Some(start), Some(end)) => format!("{start} .. {end}"),
            _ => "outside every phase".to_owned(),
        };
        note(format!(
            "  {:<width$}  {range}  {} requests: {} spans, {} data points, {} log records",
            entry.phase,
            entry.requests.total(),
            entry.items.traces,
            entry.items.metrics,
            entry.items.logs,
        ));
    }
    if labels.overlapping {
        note("  Phases overlap: a record in several phases is in each of their directories.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes every labelled record into `staging/<label>/<signal file>`;
/// returns the finished files by label.
async fn write_by_phase(
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    phases: &[Phase],
    staging: &Path,
    file_format: FileFormat,
) -> anyhow::Result<BTreeMap<String, Vec<ExportedFile>>> {
    let mut files: BTreeMap<(Label, Signal), PendingFile> = BTreeMap::new();
    let written = async {
        let mut records = std::pin::pin!(by_phase(store, metadata, phases));
        while let Some(labelled) = records.try_next().await? {
            let file = match files.entry((labelled.label, labelled.signal)) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    let (label, signal) = entry.key();
                    let path = staging.join(label.name()).join(file_name(*signal, file_format));
                    let file = PendingFile::create(*signal, path)?;
                    entry.insert(file)
                }
            };
            file.write(&metadata.session_id, &labelled.record, file_format)?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = written {
        files.into_values().for_each(PendingFile::discard);
        return Err(error);
    }
    let mut finished: BTreeMap<String, Vec<ExportedFile>> = BTreeMap::new();
    for ((label, _), file) in files {
        finished.entry(label.name().to_owned()).or_default().push(file.finish()?);
    }
    Ok(finished)
}

fn labels(
    metadata: &SessionMetadata,
    phases: &[Phase],
    file_format: FileFormat,
    mut files: BTreeMap<String, Vec<ExportedFile>>,
) -> Labels {
    let mut entry = |name: &str, phase: Option<&Phase>| {
        let mut requests = SignalCounts::default();
        let mut items = SignalCounts::default();
        let files: Vec<FileEntry> = files
            .remove(name)
            .unwrap_or_default()
            .into_iter()
            .map(|file| {
                requests.add(file.signal, file.requests);
                items.add(file.signal, file.items);
                FileEntry {
                    signal: file.signal,
                    file: format!("{name}/{}", file_name(file.signal, file_format)),
                    requests: file.requests,
                    items: file.items,
                }
            })
            .collect();
        LabelEntry {
            phase: name.to_owned(),
            directory: name.to_owned(),
            unlabelled: phase.is_none(),
            ranges: phase
                .map(|phase| phase.ranges.iter().map(|&(start, end)| RangeEntry { start, end }).collect())
                .unwrap_or_default(),
            time_range_start: phase.map(Phase::start),
            time_range_end: phase.map(Phase::end),
            flags: phase.map(|phase| phase.flags.clone()).unwrap_or_default(),
            description: phase.and_then(|phase| phase.description.clone()),
            requests,
            items,
            files,
        }
    };
    let mut entries: Vec<LabelEntry> = phases.iter().map(|phase| entry(&phase.name, Some(phase))).collect();
    entries.push(entry(UNLABELLED, None));
    Labels {
        session_id: metadata.session_id.clone(),
        session_type: metadata.session_type,
        session_start: metadata.start_time,
        session_end: metadata.end_time,
        format: match file_format {
            FileFormat::OtlpJson => "otlp-json",
            FileFormat::OtlpProto => "otlp-proto",
        },
        assigned_by: "receiveTime",
        overlapping: overlapping(phases),
        requests: metadata.request_counts,
        items: metadata.item_counts(),
        phases: entries,
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}
