//! `otlp-tape export`: a session's records as OTLP files in the Collector's
//! file exporter formats, one file per signal.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use futures::TryStreamExt;
use serde::Serialize;
use tape_otlp::{ExportRequest, Signal};
use tape_session::{SessionStore, read_session};

use crate::cli::{ExportArgs, FileFormat, OutputFormat};
use crate::output::{note, print_json};

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
    path: PathBuf,
    temp: PathBuf,
    out: BufWriter<File>,
    requests: u64,
    items: u64,
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
    let result = write_records(store, &metadata, &args, &mut files).await;
    if let Err(error) = result {
        for file in files.into_values() {
            let _ = fs::remove_file(&file.temp);
        }
        return Err(error.context(format!("export of session {} failed; no file was written", args.session)));
    }
    let mut exported = Vec::new();
    for (signal, file) in files {
        let PendingFile { path, temp, out, requests, items } = file;
        let finished = out.into_inner().map_err(std::io::IntoInnerError::into_error).and_then(|file| file.sync_all());
        if let Err(error) = finished.and_then(|()| fs::rename(&temp, &path)) {
            let _ = fs::remove_file(&temp);
            return Err(error).with_context(|| format!("cannot write {}", path.display()));
        }
        exported.push(ExportedFile { signal, path, requests, items });
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

async fn write_records(
    store: &dyn SessionStore,
    metadata: &tape_session::SessionMetadata,
    args: &ExportArgs,
    files: &mut BTreeMap<Signal, PendingFile>,
) -> anyhow::Result<()> {
    let mut records = std::pin::pin!(read_session(store, metadata, |_| true));
    while let Some((signal, record)) = records.try_next().await? {
        let file = match files.entry(signal) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let path = args.out.join(file_name(signal, args.format));
                let temp = temp_path(&path);
                let out = File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
                entry.insert(PendingFile { path, temp, out: BufWriter::new(out), requests: 0, items: 0 })
            }
        };
        let written = match args.format {
            FileFormat::OtlpProto => u32::try_from(record.payload.len())
                .map_err(std::io::Error::other)
                .and_then(|len| file.out.write_all(&len.to_be_bytes()))
                .and_then(|()| file.out.write_all(&record.payload)),
            FileFormat::OtlpJson => {
                let request = ExportRequest::decode_protobuf(signal, &record.payload).with_context(|| {
                    format!("session {}: a {signal} record received at {}", metadata.session_id, record.receive_time())
                })?;
                let json = request.encode_json()?;
                file.out.write_all(&json).and_then(|()| file.out.write_all(b"\n"))
            }
        };
        written.with_context(|| format!("cannot write {}", file.temp.display()))?;
        file.requests += 1;
        file.items += record.item_count;
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}
