//! `bench seed`: how fast a seed session is generated into a compressed
//! local store, and the peak memory it takes.

use serde::{Deserialize, Serialize};

use crate::system::{cpus, peak_memory_bytes, session_id, temp_dir};
use crate::{Error, Host, SeedRequest, Valid};

/// What `bench seed` generates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedBenchConfig {
    /// Pattern to generate: a built-in name or a file; default `high-load`.
    pub pattern: String,
    /// Virtual duration, in nanoseconds; default 60 s.
    pub duration_nanos: u64,
    /// Traces per second; default: the pattern's.
    pub rate: Option<f64>,
    /// Seed of the generator; default 42.
    pub seed: u64,
}

impl Default for SeedBenchConfig {
    fn default() -> Self {
        SeedBenchConfig { pattern: "high-load".to_owned(), duration_nanos: 60_000_000_000, rate: None, seed: 42 }
    }
}

/// What `bench seed` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedBench {
    /// The pattern's name.
    pub pattern: String,
    /// The virtual duration (`60s`).
    pub duration: String,
    /// Traces per second.
    pub rate: f64,
    /// Traces generated.
    pub traces: u64,
    /// Spans generated.
    pub spans: u64,
    /// Spans, data points and log records generated.
    pub items: u64,
    /// Bytes stored (gzip).
    pub stored_bytes: u64,
    /// How long generating took.
    pub seconds: f64,
    /// Spans a second.
    pub spans_per_second: f64,
    /// Items a second.
    pub items_per_second: f64,
    /// Peak resident memory of the whole process (Linux `VmHWM`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// CPUs of this machine.
    pub cpus: usize,
}

impl SeedBenchConfig {
    /// Checks the config: every value is accepted here; the host checks the
    /// pattern and the rate when it generates.
    pub fn validate(self) -> Result<Valid<Self>, Error> {
        Ok(Valid(self))
    }
}

impl Valid<SeedBenchConfig> {
    /// Generates the session into a temporary local store, removed
    /// afterwards, and reports how fast.
    #[allow(clippy::cast_precision_loss)] // rates are for reading
    pub async fn run(&self, host: &impl Host) -> Result<SeedBench, Error> {
        let dir = temp_dir("session")?;
        let store = host.local_store(dir.path());
        let config = &self.0;
        let request = SeedRequest {
            pattern: config.pattern.clone(),
            duration_nanos: config.duration_nanos,
            rate: config.rate,
            seed: config.seed,
            session_id: session_id("bench")?,
            description: "otlp-tape bench seed".to_owned(),
        };
        let summary = host.generate(store.as_ref(), request).await.map_err(Error::Host)?;
        let seconds = summary.elapsed.as_secs_f64();
        Ok(SeedBench {
            pattern: summary.pattern,
            duration: summary.duration,
            rate: summary.rate,
            traces: summary.traces,
            spans: summary.items.traces,
            items: summary.items.total(),
            stored_bytes: summary.size_bytes,
            seconds,
            spans_per_second: summary.items.traces as f64 / seconds,
            items_per_second: summary.items.total() as f64 / seconds,
            peak_memory_bytes: peak_memory_bytes(),
            cpus: cpus(),
        })
    }
}
