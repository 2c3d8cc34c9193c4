//! `otlp-tape import`: OTLP files in the Collector's file exporter formats
//! become a new session.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use tape_otlp::{Encoding, ExportRequest, Signal};
use tape_session::{
    SessionId, SessionMetadata, SessionStatus, SessionStore, SessionWriter, SignalCounts, Timestamp, WriterOptions,
};

use crate::cli::{FileFormat, ImportArgs, OutputFormat};
use crate::output::{note, print_json};

/// The largest message or line accepted: the blob frame limit.
const MAX_MESSAGE_BYTES: usize = tape_session::blob::MAX_FRAME_LEN - 64;

/// What an import wrote.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportSummary {
    session_id: SessionId,
    store: String,
    files: usize,
    requests: SignalCounts,
    items: SignalCounts,
}

/// One request read from a file, with where it came from.
struct Message {
    signal: Signal,
    request: ExportRequest,
    /// `file:line` or `file: message N at byte B`, for errors.
    origin: String,
}

/// `import`
pub async fn run(store: &dyn SessionStore, args: ImportArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let now = Timestamp::from_datetime(chrono::Utc::now()).context("the system clock is before 1970")?;
    let id = args.session_id.clone().unwrap_or_else(|| SessionId::generate("import", now, rand::random()));
    let mut metadata = SessionMetadata::new(id.clone(), args.session_type, now, created_by());
    metadata.description.clone_from(&args.description);
    metadata.parameters.insert("format".to_owned(), serde_json::json!(format_name(args.format)));
    metadata.parameters.insert(
        "files".to_owned(),
        serde_json::json!(args.files.iter().map(|path| path.display().to_string()).collect::<Vec<_>>()),
    );

    let mut writer = SessionWriter::create(store, metadata, WriterOptions::default())
        .await
        .with_context(|| format!("cannot create session {id} in {}", store.location()))?;
    let span = match write_files(&mut writer, &args, now).await {
        Ok(span) => span,
        Err(error) => {
            // Nothing is written half-way: the partial session goes.
            if let Err(cleanup) = writer.discard().await {
                tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
            }
            return Err(error.context(format!("import into session {id} failed; nothing was stored")));
        }
    };
    let (first, last) = span.unwrap_or((now, now));
    writer.metadata_mut().start_time = first;
    let metadata = match writer.finish(last, SessionStatus::Completed).await {
        Ok(metadata) => metadata,
        Err(error) => {
            // Without its metadata.json the session is not listed: it goes.
            if let Err(cleanup) = store.delete_session(&id).await {
                tracing::warn!(session = %id, "Could not remove the partial session: {cleanup}");
            }
            return Err(
                anyhow::Error::new(error).context(format!("import into session {id} failed; nothing was stored"))
            );
        }
    };

    let summary = ImportSummary {
        session_id: id,
        store: store.location(),
        files: args.files.len(),
        requests: metadata.request_counts,
        items: metadata.item_counts(),
    };
    if format == OutputFormat::Json {
        print_json(&summary)?;
    } else {
        println!("{}", summary.session_id);
        note(format!(
            "Imported {} into session {} in {}: {} spans, {} data points, {} log records in {} requests.",
            crate::output::count(summary.files, "file", "files"),
            summary.session_id,
            summary.store,
            summary.items.traces,
            summary.items.metrics,
            summary.items.logs,
            summary.requests.total(),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes every file's requests; returns the first and last receive time.
async fn write_files(
    writer: &mut SessionWriter<'_>,
    args: &ImportArgs,
    now: Timestamp,
) -> anyhow::Result<Option<(Timestamp, Timestamp)>> {
    // Records get the newest timestamp they carry as their receive time,
    // never going back in time within a signal.
    let mut last_time = [0u64; 3];
    let mut fallback = now.unix_nanos();
    let mut span: Option<(Timestamp, Timestamp)> = None;
    for path in &args.files {
        let messages = read_file(path, args.format, args.signal)?;
        for message in messages {
            let message = message?;
            let slot = Signal::ALL.iter().position(|signal| *signal == message.signal).unwrap_or(0);
            let time = message.request.newest_timestamp().unwrap_or_else(|| {
                fallback += 1;
                fallback
            });
            let time = time.max(last_time[slot]);
            last_time[slot] = time;
            let time = Timestamp::from_unix_nanos(time);
            span = Some(span.map_or((time, time), |(first, last)| (first.min(time), last.max(time))));
            let payload = message.request.encode_protobuf();
            writer
                .append(message.signal, time, message.request.item_count(), &payload)
                .await
                .with_context(|| format!("cannot store the request from {}", message.origin))?;
        }
    }
    Ok(span)
}

fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::OtlpJson => "otlp-json",
        FileFormat::OtlpProto => "otlp-proto",
    }
}

fn created_by() -> String {
    format!("otlp-tape {} import", env!("CARGO_PKG_VERSION"))
}

/// Opens a file, decompressing gzip or zstd as its first bytes say.
fn open_decompressed(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let magic = reader.fill_buf().with_context(|| format!("cannot read {}", path.display()))?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)
            .with_context(|| format!("cannot start decompressing {}", path.display()))?;
        Box::new(BufReader::new(decoder))
    } else {
        Box::new(reader)
    })
}

/// The messages of one file, read lazily.
fn read_file(
    path: &Path,
    format: FileFormat,
    signal: Option<Signal>,
) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<Message>>>> {
    let reader = open_decompressed(path)?;
    let name = path.display().to_string();
    Ok(match format {
        FileFormat::OtlpJson => Box::new(JsonLines { reader, name, signal, line: 0, done: false }),
        FileFormat::OtlpProto => {
            let Some(signal) = signal.or_else(|| signal_from_file_name(path)) else {
                bail!(
                    "{name}: cannot tell whether it holds traces, metrics or logs; pass --signal, or name the file after its signal (traces.pb, metrics.pb, logs.pb)"
                );
            };
            Box::new(ProtoMessages { reader, name, signal, index: 0, offset: 0, done: false })
        }
    })
}

/// The one signal whose marker `text` contains; `None` for none or several.
fn only_signal_named(text: &str, markers: [(&str, Signal); 3]) -> Option<Signal> {
    let mut found = markers.into_iter().filter(|(marker, _)| text.contains(marker)).map(|(_, signal)| signal);
    match (found.next(), found.next()) {
        (Some(signal), None) => Some(signal),
        _ => None,
    }
}

/// The signal named by a file name: `traces`, `metrics` or `logs` in it.
fn signal_from_file_name(path: &Path) -> Option<Signal> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    only_signal_named(&name, [("trace", Signal::Traces), ("metric", Signal::Metrics), ("log", Signal::Logs)])
}

/// The signal of an OTLP/JSON line, from its top-level field.
fn signal_of_json(line: &str) -> Option<Signal> {
    only_signal_named(
        line,
        [
            ("\"resourceSpans\"", Signal::Traces),
            ("\"resourceMetrics\"", Signal::Metrics),
            ("\"resourceLogs\"", Signal::Logs),
        ],
    )
}

/// JSON Lines: one OTLP/JSON `TracesData`, `MetricsData` or `LogsData` per line.
struct JsonLines {
    reader: Box<dyn BufRead>,
    name: String,
    signal: Option<Signal>,
    line: u64,
    done: bool,
}

impl Iterator for JsonLines {
    type Item = anyhow::Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.line += 1;
            let origin = format!("{}:{}", self.name, self.line);
            let mut bytes = Vec::new();
            let limit = (MAX_MESSAGE_BYTES + 1) as u64;
            match self.reader.by_ref().take(limit).read_until(b'\n', &mut bytes) {
                Ok(0) => self.done = true,
                Ok(_) if bytes.len() > MAX_MESSAGE_BYTES => {
                    self.done = true;
                    return Some(Err(anyhow!("{origin}: the line is longer than {} MiB", MAX_MESSAGE_BYTES >> 20)));
                }
                Ok(_) => {
                    let Ok(text) = std::str::from_utf8(&bytes) else {
                        self.done = true;
                        return Some(Err(anyhow!("{origin}: the line is not UTF-8 text, so not OTLP/JSON")));
                    };
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let Some(signal) = signal_of_json(text).or(self.signal) else {
                        self.done = true;
                        return Some(Err(anyhow!(
                            "{origin}: not an OTLP/JSON line: expected one of resourceSpans, resourceMetrics or resourceLogs at the top level (or pass --signal)"
                        )));
                    };
                    return Some(match ExportRequest::decode(signal, Encoding::Json, text.as_bytes()) {
                        Ok(request) => Ok(Message { signal, request, origin }),
                        Err(error) => {
                            self.done = true;
                            Err(anyhow::Error::new(error).context(origin))
                        }
                    });
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(anyhow::Error::new(error).context(format!("cannot read {origin}"))));
                }
            }
        }
        None
    }
}

/// Length-prefixed protobuf: a 4-byte big-endian length, then the message.
struct ProtoMessages {
    reader: Box<dyn BufRead>,
    name: String,
    signal: Signal,
    index: u64,
    offset: u64,
    done: bool,
}

impl Iterator for ProtoMessages {
    type Item = anyhow::Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.index += 1;
        let origin = format!("{}: message {} at byte {}", self.name, self.index, self.offset);
        let result = (|| -> anyhow::Result<Option<Message>> {
            let mut prefix = [0u8; 4];
            match read_exact_or_eof(&mut self.reader, &mut prefix) {
                Ok(0) => return Ok(None),
                Ok(4) => {}
                Ok(read) => bail!("{origin}: the file ends inside a length prefix ({read} of 4 bytes)"),
                Err(error) => return Err(anyhow::Error::new(error).context(format!("cannot read {origin}"))),
            }
            let len = u32::from_be_bytes(prefix) as usize;
            if len > MAX_MESSAGE_BYTES {
                bail!(
                    "{origin}: declares {len} bytes, over the {} MiB limit; is this really otlp-proto?",
                    MAX_MESSAGE_BYTES >> 20
                );
            }
            let mut body = vec![0; len];
            let read = read_exact_or_eof(&mut self.reader, &mut body)
                .map_err(|error| anyhow::Error::new(error).context(format!("cannot read {origin}")))?;
            if read < len {
                bail!("{origin}: the file ends after {read} of the {len} bytes the message declares");
            }
            self.offset += 4 + len as u64;
            let request = ExportRequest::decode(self.signal, Encoding::Protobuf, &body)
                .map_err(|error| anyhow::Error::new(error).context(origin.clone()))?;
            Ok(Some(Message { signal: self.signal, request, origin: origin.clone() }))
        })();
        match result {
            Ok(Some(message)) => Some(Ok(message)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn read_exact_or_eof(reader: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}
