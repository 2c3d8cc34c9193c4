//! `bench timeline`: what a session's timeline costs, on a session of
//! about `gb` GB stored (a `high-load` seed session, written through
//! `SessionWriter` as `otlp-tape seed` writes it, so that it keeps its
//! `timeline.json`).
//!
//! - **open:** what opening the session's page in the web UI reads:
//!   `metadata.json`, `annotations.jsonl` and the kept timeline
//!   ([`tape_session::timeline`]), `runs` times; the goal is under
//!   2 s for a 1 GB session;
//! - **rebuild:** [`tape_session::timeline`] after `timeline.json` is
//!   deleted, so that it is built from every blob (read, decompress, count)
//!   and kept again;
//! - **builder:** the cost the writer pays per record: every record of the
//!   session, held in memory blob by blob, counted into a
//!   [`TimelineBuilder`] as `SessionWriter` counts it (items as given,
//!   error spans walked on the wire for trace records), timed alone.

mod measure;

use serde::{Deserialize, Serialize};

use crate::error::{check_rate, invalid_if};
use crate::replay::SessionFacts;
use crate::system::{cpus, session_id, temp_dir};
use crate::{BYTES_PER_GB, Error, Host, Valid};

/// The pattern of the measured session.
pub const TIMELINE_PATTERN: &str = "high-load";

/// What opening a session's page may take at most: the goal.
pub const OPEN_GOAL_SECONDS: f64 = 2.0;

/// What `bench timeline` measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TimelineBenchConfig {
    /// Stored (compressed) size of the session, in GB of 10^9 bytes;
    /// default 1.
    pub gb: f64,
    /// Traces per second of the session; default: the pattern's.
    pub rate: Option<f64>,
    /// Seed of the generator; default 42.
    pub seed: u64,
    /// Times the session's page is opened; default 5.
    pub runs: u32,
}

impl Default for TimelineBenchConfig {
    fn default() -> Self {
        TimelineBenchConfig { gb: 1.0, rate: None, seed: 42, runs: 5 }
    }
}

/// What `bench timeline` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineBench {
    /// `gb` in bytes: the session's stored size is at least this.
    pub target_bytes: u64,
    /// The session.
    pub session: SessionFacts,
    /// Its timeline: rows (seconds with anything in them).
    pub timeline_rows: usize,
    /// Its timeline: bytes of `timeline.json`.
    pub timeline_bytes: u64,
    /// Opening the session's page.
    pub open: OpenRun,
    /// Building the timeline from the blobs.
    pub rebuild: RebuildRun,
    /// The writer's cost of counting.
    pub builder: BuilderRun,
    /// CPUs of this machine.
    pub cpus: usize,
    /// What the measurements found wrong: counts that differ between the
    /// kept timeline, the rebuilt one, the builder's and the metadata.
    pub problems: Vec<String>,
}

/// Opening a session's page, `runs` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenRun {
    /// Times opened.
    pub runs: u32,
    /// Median seconds of reading the metadata, the annotations and the
    /// timeline.
    pub median_seconds: f64,
    /// The slowest.
    pub max_seconds: f64,
    /// Median seconds of `read_metadata` alone.
    pub metadata_seconds: f64,
    /// Median seconds of the annotations alone.
    pub annotations_seconds: f64,
    /// Median seconds of `timeline()` alone (the kept one).
    pub timeline_seconds: f64,
    /// Whether the median is under [`OPEN_GOAL_SECONDS`].
    pub within_goal: bool,
}

/// The timeline built from the blobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildRun {
    /// From the call to the timeline returned (kept again).
    pub seconds: f64,
    /// CPU time of the process over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Stored (compressed) bytes read a second, in MB of 10^6 bytes.
    pub stored_mb_per_second: f64,
    /// Uncompressed bytes (the records' frames) a second, in MB.
    pub uncompressed_mb_per_second: f64,
    /// Records a second.
    pub records_per_second: f64,
}

/// The builder's cost per record, as the writer pays it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuilderRun {
    /// Records counted.
    pub records: u64,
    /// Of them trace records (walked on the wire for error spans).
    pub trace_records: u64,
    /// Payload bytes of them.
    pub payload_bytes: u64,
    /// Payload bytes of the trace records.
    pub trace_payload_bytes: u64,
    /// Seconds spent in the builder.
    pub seconds: f64,
    /// Nanoseconds per record.
    pub nanos_per_record: f64,
    /// Payload a second through the builder, in MB.
    pub payload_mb_per_second: f64,
    /// The builder's seconds over the session's generation seconds (which
    /// include the builder): its share of writing the session.
    pub share_of_generation: f64,
}

impl crate::Report for TimelineBench {
    /// Fails with the [`problems`](TimelineBench::problems), if any.
    fn check(&self) -> Result<(), Error> {
        if self.problems.is_empty() {
            return Ok(());
        }
        Err(Error::Measurement(format!("the timelines do not agree: {}", self.problems.join("; "))))
    }
}

impl TimelineBenchConfig {
    /// Checks the config; the messages name the flags.
    pub fn validate(self) -> Result<Valid<Self>, Error> {
        invalid_if(!(self.gb.is_finite() && self.gb > 0.0), || {
            format!("--gb is {}; expected a positive number of GB (10^9 bytes) stored", self.gb)
        })?;
        invalid_if(self.runs == 0, || "--runs must be at least 1".to_owned())?;
        check_rate(self.rate)?;
        Ok(Valid(self))
    }
}

impl Valid<TimelineBenchConfig> {
    /// Runs the measurements over a session in a temporary directory,
    /// removed afterwards. The report is returned even when the timelines
    /// disagree: [`Report::check`](crate::Report::check) says so.
    pub async fn run(&self, host: &impl Host) -> Result<TimelineBench, Error> {
        let config = &self.0;
        let dir = temp_dir("timeline")?;
        let store = host.local_store(dir.path());
        let id = session_id("bench-timeline")?;
        let target_bytes = target_bytes(config.gb);
        let (session, metadata) = measure::generate(host, store.as_ref(), &id, target_bytes, config).await?;
        let mut problems = Vec::new();
        let kept = measure::kept_timeline(store.as_ref(), &metadata, &mut problems).await?;
        let open = measure::measure_open(store.as_ref(), &id, config.runs).await?;
        let layout_path = dir.path().join("sessions").join(id.as_str()).join("timeline.json");
        let rebuild = measure::measure_rebuild(store.as_ref(), &metadata, &layout_path, &kept, &mut problems).await?;
        let builder = measure::measure_builder(store.as_ref(), &metadata, &session, &kept, &mut problems).await?;
        store.delete_session(&id).await.map_err(Error::session("cannot delete the timeline session"))?;
        Ok(TimelineBench {
            target_bytes,
            session,
            timeline_rows: kept.rows.len(),
            timeline_bytes: kept.to_json().len() as u64,
            open,
            rebuild,
            builder,
            cpus: cpus(),
            problems,
        })
    }
}

/// `gb` in bytes.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a positive number of GB
fn target_bytes(gb: f64) -> u64 {
    (gb * BYTES_PER_GB).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_take_their_defaults_and_name_the_flag_out_of_range() {
        let config: TimelineBenchConfig = serde_json::from_value(serde_json::json!({ "gb": 0.5 })).unwrap();
        assert_eq!(config, TimelineBenchConfig { gb: 0.5, ..TimelineBenchConfig::default() });
        let error = serde_json::from_value::<TimelineBenchConfig>(serde_json::json!({ "memoryGb": 1 })).unwrap_err();
        assert!(error.to_string().contains("unknown field `memoryGb`"), "{error}");
        let error = TimelineBenchConfig { gb: 0.0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(error.to_string(), "--gb is 0; expected a positive number of GB (10^9 bytes) stored");
        let error = TimelineBenchConfig { runs: 0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(error.to_string(), "--runs must be at least 1");
        assert_eq!(target_bytes(1.0), 1_000_000_000);
    }
}
