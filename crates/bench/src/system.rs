//! What the benchmarks read of this machine and its processes (Linux
//! `/proc`), and small helpers they share.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tape_session::SessionId;

use crate::Error;
use crate::error::ensure;

/// CPUs available to this process.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// CPU time the process has used, user and system, in seconds, from
/// `/proc/self/stat` (Linux).
#[allow(clippy::cast_precision_loss)] // hundredths of a second
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces; after it come
    // field 3 (state) on, so utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Clock ticks of USER_HZ, which Linux fixes at 100 a second for user space.
    Some(ticks as f64 / 100.0)
}

/// CPU time that the hypervisor gave to other guests while this machine's
/// CPUs wanted to run (`steal`, over every CPU), in seconds, from
/// `/proc/stat` (Linux).
#[allow(clippy::cast_precision_loss)] // hundredths of a second
pub fn steal_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // `cpu  user nice system idle iowait irq softirq steal ...`
    let ticks: u64 = stat.lines().next()?.split_whitespace().nth(8)?.parse().ok()?;
    // Clock ticks of USER_HZ, which Linux fixes at 100 a second for user space.
    Some(ticks as f64 / 100.0)
}

/// This process's peak resident memory (`VmHWM`), when known.
pub fn peak_memory_bytes() -> Option<u64> {
    memory_field(Path::new("/proc/self/status"), "VmHWM:")
}

/// A memory figure of process `pid` (`VmRSS:`, `VmHWM:`) from
/// `/proc/<pid>/status` (Linux), in bytes.
pub fn process_memory(pid: u32, field: &str) -> Option<u64> {
    memory_field(Path::new(&format!("/proc/{pid}/status")), field)
}

fn memory_field(status: &Path, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.trim_start_matches(field).trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The nearest-rank percentile of `sorted`: the smallest value with at
/// least `fraction` of the values at or below it; zero when empty.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // ranks are small
pub fn percentile<T: Copy + Default>(sorted: &[T], fraction: f64) -> T {
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().unwrap_or_default()
}

/// Milliseconds of a duration, for reading.
pub(crate) fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs this process's own program with `args` (a hidden flag that runs
/// one measurement and prints its report as JSON) and reads the report;
/// `what` names the measurement in messages (`the replay`).
pub(crate) async fn child_report<T: serde::de::DeserializeOwned>(args: Vec<OsString>, what: &str) -> Result<T, Error> {
    let program = std::env::current_exe()
        .map_err(Error::io(format!("cannot find this program to run {what} in a child process")))?;
    let mut command = std::process::Command::new(program);
    command.args(args).stdin(Stdio::null()).stderr(Stdio::inherit());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|source| Error::Task {
            context: "the child process's waiter stopped unexpectedly".to_owned(),
            source,
        })?
        .map_err(Error::io(format!("cannot run {what} in a child process")))?;
    ensure(output.status.success(), || {
        format!("{what} in a child process failed ({}); its error is above", output.status)
    })?;
    serde_json::from_slice(&output.stdout).map_err(|source| Error::Json {
        context: format!("cannot read the report of {what} in a child process"),
        source,
    })
}

/// A temporary directory for a benchmark's sessions, removed when dropped.
pub(crate) fn temp_dir(what: &str) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix("otlp-tape-bench-")
        .tempdir()
        .map_err(Error::io(format!("cannot create a temporary directory for the benchmark {what}")))
}

/// One of the benchmarks' own session ids.
pub(crate) fn session_id(id: &str) -> Result<SessionId, Error> {
    id.parse().map_err(|error: tape_session::InvalidSessionId| Error::Invalid(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_is_the_nearest_rank_and_zero_for_nothing() {
        let values = [1.0_f64, 2.0, 3.0, 4.0];
        assert!((percentile(&values, 0.5) - 2.0).abs() < f64::EPSILON);
        assert!((percentile(&values, 0.99) - 4.0).abs() < f64::EPSILON);
        assert!((percentile(&values, 0.0) - 1.0).abs() < f64::EPSILON);
        assert_eq!(percentile::<Duration>(&[], 0.5), Duration::ZERO);
        let durations = [Duration::from_millis(5), Duration::from_millis(7)];
        assert_eq!(percentile(&durations, 1.0), Duration::from_millis(7));
    }
}
