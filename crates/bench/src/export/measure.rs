//! The export and memory measurements of `bench export`.

use std::path::Path;
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};
use tape_files::{ExportConfig, ExportProgress};
use tape_session::{SessionId, SessionMetadata, SessionStore};

use super::{EXPORT_PATTERN, ExportBenchConfig, ExportMemoryReport, ExportRun, TableFile, target_bytes};
use crate::error::ensure;
use crate::replay::SessionFacts;
use crate::system::{child_report, cpu_seconds, peak_memory_bytes, session_id};
use crate::{Error, Host, SeedRequest, Step};

/// The session the memory measurement exports, in the directory given to
/// the child process.
pub(super) const MEMORY_SESSION: &str = "bench-export-memory";

/// Generates a `high-load` seed session with id `id` into `store`, as
/// `otlp-tape seed` does, and reads back its metadata.
pub(super) async fn generate(
    host: &impl Host,
    store: &dyn SessionStore,
    id: &SessionId,
    duration_nanos: u64,
    config: &ExportBenchConfig,
) -> Result<(SessionFacts, SessionMetadata), Error> {
    let request = SeedRequest {
        pattern: EXPORT_PATTERN.to_owned(),
        duration_nanos,
        rate: config.rate,
        seed: config.seed,
        session_id: id.clone(),
        description: "otlp-tape bench export".to_owned(),
    };
    let generated = host.generate(store, request).await.map_err(Error::Host)?;
    let metadata =
        store.read_metadata(id).await.map_err(Error::session(format!("cannot read the metadata of session {id}")))?;
    Ok((SessionFacts::new(generated, &metadata), metadata))
}

/// Exports `metadata`'s session to Parquet into the local directory `out`
/// as `otlp-tape export --format parquet` does, and reads the files'
/// footers back.
#[allow(clippy::cast_precision_loss)] // rates are for reading
pub(super) async fn measure_export(
    host: &impl Host,
    store: &dyn SessionStore,
    metadata: &SessionMetadata,
    out: &Path,
) -> Result<ExportRun, Error> {
    let config: ExportConfig = serde_json::from_value(serde_json::json!({
        "session": metadata.session_id,
        "format": "parquet",
        "out": out.display().to_string(),
    }))
    .map_err(|source| Error::Json { context: "cannot make the export's config".to_owned(), source })?;
    let export = config.validate().map_err(Error::files("the export's config was refused"))?;
    let output = host.local_output(out).map_err(Error::Host)?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    export
        .run(store, output.as_ref(), &|_: ExportProgress| {})
        .await
        .map_err(Error::files(format!("the export of session {} failed", metadata.session_id)))?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before);
    let tables = read_tables(out)?;
    let file_of = |name: &str| tables.iter().find(|file| file.file == name);
    let spans = file_of("traces.parquet").map_or(0, |file| file.rows);
    let rows = tables.iter().map(|file| file.rows).sum();
    Ok(ExportRun {
        seconds,
        cpu_seconds,
        spans_per_second: spans as f64 / seconds,
        rows_per_second: rows as f64 / seconds,
        spans,
        rows,
        bytes: tables.iter().map(|file| file.bytes).sum(),
        bytes_per_span: file_of("traces.parquet").map_or(0.0, |file| file.bytes as f64 / file.rows.max(1) as f64),
        tables,
        peak_memory_bytes: peak_memory_bytes(),
    })
}

/// The Parquet files in `dir`, by name, as their footers describe them.
fn read_tables(dir: &Path) -> Result<Vec<TableFile>, Error> {
    let entries = std::fs::read_dir(dir).map_err(Error::io(format!("cannot list the export in {}", dir.display())))?;
    let mut tables = Vec::new();
    for entry in entries {
        let path = entry.map_err(Error::io(format!("cannot list the export in {}", dir.display())))?.path();
        let Some(file) = path.file_name().and_then(|name| name.to_str()).filter(|name| name.ends_with(".parquet"))
        else {
            continue;
        };
        let opened = std::fs::File::open(&path).map_err(Error::io(format!("cannot open {}", path.display())))?;
        let bytes = opened.metadata().map_err(Error::io(format!("cannot read the size of {}", path.display())))?.len();
        let reader = SerializedFileReader::new(opened).map_err(|source| Error::Files {
            context: format!("cannot read {}", path.display()),
            source: source.into(),
        })?;
        let metadata = reader.metadata();
        tables.push(TableFile {
            file: file.to_owned(),
            rows: u64::try_from(metadata.file_metadata().num_rows()).unwrap_or_default(),
            row_groups: metadata.num_row_groups(),
            bytes,
        });
    }
    tables.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(tables)
}

/// The memory measurement: generates a session of at least `memoryGb`
/// stored (from the export session's stored bytes per second of virtual
/// time, with a margin, longer again if it falls short), then exports it
/// in a child process (`--export-only`) so that the peak memory measured
/// is the export's and not the generation's.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // sizes and durations are far from the limits
pub(super) async fn measure_memory(
    host: &impl Host,
    dir: &Path,
    store: &std::sync::Arc<dyn SessionStore>,
    export_session: &SessionFacts,
    config: &ExportBenchConfig,
) -> Result<ExportMemoryReport, Error> {
    let target = target_bytes(config.memory_gb);
    let bytes_per_second =
        export_session.stored_bytes as f64 / Duration::from_nanos(config.duration_nanos).as_secs_f64();
    ensure(bytes_per_second > 0.0, || "the export session is empty, so the memory session cannot be sized".to_owned())?;
    let id = session_id(MEMORY_SESSION)?;
    let mut seconds = (target as f64 / bytes_per_second * 1.03).ceil().max(1.0);
    let session = loop {
        host.step(Step::GeneratingMemory { bench: "export", seconds, pattern: EXPORT_PATTERN, target_bytes: target });
        let duration = Duration::from_secs_f64(seconds).as_nanos() as u64;
        let (session, _) = generate(host, store.as_ref(), &id, duration, config).await?;
        if session.stored_bytes >= target {
            break session;
        }
        // Short of the target: longer, in proportion and a little more.
        seconds = (seconds * target as f64 / session.stored_bytes.max(1) as f64 * 1.03).ceil();
        store.delete_session(&id).await.map_err(Error::session("cannot delete the memory session"))?;
    };
    let generation_peak_memory_bytes = peak_memory_bytes();
    host.step(Step::Exporting { spans: session.spans, child: true });
    let args = ["--quiet", "--output", "json", "bench", "export", "--export-only"].map(Into::into);
    let export: ExportRun =
        child_report(args.into_iter().chain([dir.as_os_str().to_owned()]).collect(), "the export").await?;
    let _ = std::fs::remove_dir_all(dir.join("export"));
    store.delete_session(&id).await.map_err(Error::session("cannot delete the memory session"))?;
    Ok(ExportMemoryReport { target_bytes: target, session, generation_peak_memory_bytes, export })
}
