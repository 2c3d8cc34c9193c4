//! `bench export`: how fast a session becomes Parquet tables end to end
//! (read, decompress, decode, convert, encode, write), how small the
//! tables are, where the time goes, and the peak memory of exporting a
//! large session.
//!
//! - **export:** a `high-load` seed session exported to Parquet in a
//!   temporary directory exactly as `otlp-tape export --format parquet`
//!   does; spans per second, and the files' rows and bytes read back from
//!   their footers (bytes per span of `traces.parquet`);
//! - **passes:** the same session read four times on one thread, each pass
//!   doing one step more (read and decompress; decode; convert into rows;
//!   encode as Parquet, bytes discarded), so that the differences between
//!   them say where the time goes;
//! - **memory:** a session of at least `memoryGb` GB stored exported in a
//!   child process (`otlp-tape bench export --export-only DIR`), whose
//!   peak resident memory is then the export's own.

mod measure;
mod passes;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{check_memory_gb, check_rate, invalid_if};
use crate::replay::SessionFacts;
use crate::system::{cpus, session_id, temp_dir};
use crate::{BYTES_PER_GB, Error, Host, Step, Valid};

pub use self::passes::Pass;

/// The pattern of the exported sessions.
pub const EXPORT_PATTERN: &str = "high-load";

/// What `bench export` measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportBenchConfig {
    /// Virtual duration of the high-load session exported for throughput,
    /// in nanoseconds; default 60 s.
    pub duration_nanos: u64,
    /// Traces per second of the high-load sessions; default: the pattern's.
    pub rate: Option<f64>,
    /// Seed of the generator; default 42.
    pub seed: u64,
    /// Stored (compressed) size of the session exported for peak memory,
    /// in GB of 10^9 bytes; 0 skips it; default 0.
    pub memory_gb: f64,
}

impl Default for ExportBenchConfig {
    fn default() -> Self {
        ExportBenchConfig { duration_nanos: 60_000_000_000, rate: None, seed: 42, memory_gb: 0.0 }
    }
}

/// What `bench export` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportBench {
    /// The session exported for throughput.
    pub session: SessionFacts,
    /// Its export.
    pub export: ExportRun,
    /// The passes over it, each doing one step more than the one before.
    pub passes: Vec<Pass>,
    /// The large session's export; `None` with `memoryGb` 0.
    pub memory: Option<ExportMemoryReport>,
    /// CPUs of this machine.
    pub cpus: usize,
}

/// A session exported to Parquet, and the files it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportRun {
    /// From the start of the export to its last file committed.
    pub seconds: f64,
    /// CPU time of the process over the export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Spans (rows of `traces.parquet`) a second.
    pub spans_per_second: f64,
    /// Rows of every table a second.
    pub rows_per_second: f64,
    /// The files, as their footers give them.
    pub tables: Vec<TableFile>,
    /// Rows of `traces.parquet`.
    pub spans: u64,
    /// Rows of every table.
    pub rows: u64,
    /// Bytes of every file.
    pub bytes: u64,
    /// Bytes of `traces.parquet` per span.
    pub bytes_per_span: f64,
    /// Peak resident memory of the process when the export ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableFile {
    /// Its name: `traces.parquet`, ...
    pub file: String,
    /// Rows, from its footer.
    pub rows: u64,
    /// Row groups, from its footer.
    pub row_groups: usize,
    /// Its size.
    pub bytes: u64,
}

/// The peak memory measurement: a large session exported in a child
/// process.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportMemoryReport {
    /// `memoryGb` in bytes: the session's stored size is at least this.
    pub target_bytes: u64,
    /// The session.
    pub session: SessionFacts,
    /// Peak resident memory of this process after generating the sessions
    /// and the throughput export (not the export below).
    pub generation_peak_memory_bytes: Option<u64>,
    /// The export, in a child process, with its peak memory.
    pub export: ExportRun,
}

impl ExportBench {
    /// The checks that fail the benchmark: every span and item of each
    /// session in the tables once (`high-load` has one phase, so one row
    /// per item), and every pass seeing every span.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |what: &str, session: &SessionFacts, export: &ExportRun| {
            if export.spans != session.spans || export.rows != session.items {
                problems.push(format!(
                    "{what}: the tables hold {} rows of traces for {} spans and {} rows in all for {} items",
                    export.spans, session.spans, export.rows, session.items
                ));
            }
        };
        check("export", &self.session, &self.export);
        if let Some(memory) = &self.memory {
            check("memory", &memory.session, &memory.export);
        }
        for pass in self.passes.iter().filter(|pass| pass.spans != self.session.spans) {
            problems.push(format!("the {} pass saw {} of {} spans", pass.step, pass.spans, self.session.spans));
        }
        problems
    }
}

impl crate::Report for ExportBench {
    /// Fails with the [`problems`](ExportBench::problems), if any.
    fn check(&self) -> Result<(), Error> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::Measurement(format!("the export did not hold every record once: {}", problems.join("; "))))
    }
}

impl ExportBenchConfig {
    /// Checks the config; the messages name the flags.
    pub fn validate(self) -> Result<Valid<Self>, Error> {
        invalid_if(self.duration_nanos == 0, || "--duration must be more than zero".to_owned())?;
        check_memory_gb(self.memory_gb)?;
        check_rate(self.rate)?;
        Ok(Valid(self))
    }
}

impl Valid<ExportBenchConfig> {
    /// Runs the measurements over sessions in a temporary directory,
    /// removed afterwards. The report is returned even when a table missed
    /// something: [`Report::check`](crate::Report::check) says so.
    pub async fn run(&self, host: &impl Host) -> Result<ExportBench, Error> {
        let config = &self.0;
        let dir = temp_dir("sessions")?;
        let store = host.local_store(dir.path());

        host.step(Step::Generating { bench: "export", pattern: EXPORT_PATTERN, measurement: "export" });
        let id = session_id("bench-export")?;
        let (session, metadata) = measure::generate(host, store.as_ref(), &id, config.duration_nanos, config).await?;
        host.step(Step::Exporting { spans: session.spans, child: false });
        let export = measure::measure_export(host, store.as_ref(), &metadata, &dir.path().join("export")).await?;
        host.step(Step::ExportPasses { spans: session.spans });
        let passes = passes::measure_passes(store.as_ref(), &metadata).await?;
        store.delete_session(&id).await.map_err(Error::session("cannot delete the export session"))?;
        let _ = std::fs::remove_dir_all(dir.path().join("export"));

        let memory = if config.memory_gb > 0.0 {
            Some(measure::measure_memory(host, dir.path(), &store, &session, config).await?)
        } else {
            None
        };
        Ok(ExportBench { session, export, passes, memory, cpus: cpus() })
    }

    /// The memory measurement's child process (`--export-only DIR`):
    /// exports the memory session of the local store in `dir` as the
    /// export measurement does, and reports.
    pub async fn export_only(&self, host: &impl Host, dir: &Path) -> Result<ExportRun, Error> {
        let store = host.local_store(dir);
        let id = session_id(measure::MEMORY_SESSION)?;
        let metadata = store
            .read_metadata(&id)
            .await
            .map_err(Error::session(format!("cannot read session {id} in {}", dir.display())))?;
        measure::measure_export(host, store.as_ref(), &metadata, &dir.join("export")).await
    }
}

/// `memoryGb` in bytes.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a positive number of GB
fn target_bytes(memory_gb: f64) -> u64 {
    (memory_gb * BYTES_PER_GB).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Report;

    fn session() -> SessionFacts {
        SessionFacts {
            pattern: EXPORT_PATTERN.to_owned(),
            duration: "2s".to_owned(),
            rate: 10.0,
            spans: 100,
            items: 110,
            requests: 3,
            uncompressed_bytes: 1000,
            stored_bytes: 500,
            generation_seconds: 0.1,
        }
    }

    fn export(spans: u64, rows: u64) -> ExportRun {
        ExportRun {
            seconds: 1.0,
            cpu_seconds: None,
            spans_per_second: 1.0,
            rows_per_second: 1.0,
            tables: Vec::new(),
            spans,
            rows,
            bytes: 100,
            bytes_per_span: 1.0,
            peak_memory_bytes: None,
        }
    }

    #[test]
    fn a_report_fails_for_rows_missing_from_the_tables_or_spans_a_pass_missed() {
        let pass = Pass {
            step: "read".to_owned(),
            does: String::new(),
            seconds: 1.0,
            cpu_seconds: None,
            spans: 100,
            spans_per_second: 100.0,
            step_seconds: 1.0,
        };
        let mut report = ExportBench {
            session: session(),
            export: export(100, 110),
            passes: vec![pass.clone()],
            memory: None,
            cpus: 1,
        };
        assert!(report.check().is_ok());
        report.export = export(99, 110);
        report.passes.push(Pass { step: "decode".to_owned(), spans: 98, ..pass });
        assert_eq!(
            report.check().unwrap_err().to_string(),
            "the export did not hold every record once: export: the tables hold 99 rows of traces for 100 spans \
             and 110 rows in all for 110 items; the decode pass saw 98 of 100 spans"
        );
    }

    #[test]
    fn configs_take_their_defaults_and_name_the_flag_out_of_range() {
        let config: ExportBenchConfig = serde_json::from_value(serde_json::json!({ "memoryGb": 1 })).unwrap();
        assert_eq!(config, ExportBenchConfig { memory_gb: 1.0, ..ExportBenchConfig::default() });
        let error = serde_json::from_value::<ExportBenchConfig>(serde_json::json!({ "byPhase": true })).unwrap_err();
        assert!(error.to_string().contains("unknown field `byPhase`"), "{error}");
        let error = ExportBenchConfig { memory_gb: f64::NAN, ..Default::default() }.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "--memory-gb is NaN; expected a number of GB (10^9 bytes) stored, or 0 to skip the memory measurement"
        );
        let error = ExportBenchConfig { duration_nanos: 0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(error.to_string(), "--duration must be more than zero");
        assert_eq!(target_bytes(1.0), 1_000_000_000);
    }
}
