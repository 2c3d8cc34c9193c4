//! `otlp-tape demo`: the whole loop on this machine, with nothing else
//! running. It seeds a session, starts a capture on free loopback ports,
//! replays the seed into it over OTLP with relative timestamps, one request
//! at a time so that the order is kept, stops the capture, and checks
//! record by record that the capture holds every item of the seed, each
//! record's timestamps moved by one shift and nothing else changed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use futures::{Stream, TryStreamExt};
use serde::Serialize;
use tape_capture::{Capture, CaptureConfig, DEFAULT_MAX_REQUEST_BYTES, RecorderConfig, StopReason};
use tape_otlp::{ExportRequest, Signal, SignalSet};
use tape_replay::{
    Compression, EndReason, Exporter, ExporterConfig, IdRegeneration, Progress, Protocol, ReplayOptions, Speed,
    TimestampMode, replay,
};
use tape_session::{Record, SessionId, SessionMetadata, SessionStore, SessionType, read_session};
use tape_store::StoreLocation;

use crate::cli::{DemoArgs, LiveArgs, OutputFormat, SeedArgs};
use crate::commands::seed;
use crate::output::{note, print_json, seconds};

/// What the demo did and found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DemoReport {
    seed_session: SessionId,
    capture_session: SessionId,
    store: String,
    pattern: String,
    seed: u64,
    duration: String,
    protocol: &'static str,
    speed: String,
    /// Where the capture listened.
    endpoint: String,
    /// Requests and items per signal, in the seed and in the capture.
    signals: Vec<SignalReport>,
    /// The smallest and largest shift of a record's timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    shift: Option<ShiftRange>,
    verification: Verification,
    elapsed_seconds: f64,
    seed_seconds: f64,
    replay_seconds: f64,
    /// Commands to look further.
    explore: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignalReport {
    signal: Signal,
    seed_requests: u64,
    captured_requests: u64,
    seed_items: u64,
    captured_items: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
struct ShiftRange {
    min_nanos: i64,
    max_nanos: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Verification {
    /// Every record of the seed is in the capture, in order, with its
    /// timestamps moved by one shift and nothing else changed.
    ok: bool,
    /// Record pairs that were compared and found right.
    records_compared: u64,
    /// The first record that is not right, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_difference: Option<String>,
}

/// `demo`
pub async fn run(
    location: &StoreLocation,
    store: Arc<dyn SessionStore>,
    args: DemoArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    // Registered first: Ctrl-C stops the replay, and both sessions are
    // finished rather than left active.
    let stop = crate::signals::stop_on_signals()?;
    let started = Instant::now();

    // 1. The seed session, as `otlp-tape seed` writes it.
    let seed_args = SeedArgs {
        pattern: args.pattern.clone(),
        duration: Some(args.duration),
        preset: None,
        rate: None,
        error_rate: None,
        seed: Some(args.seed),
        start: None,
        signals: SignalSet::ALL,
        session_id: None,
        description: Some("otlp-tape demo".to_owned()),
        live: LiveArgs::default(),
        clickhouse: crate::cli::ClickHouseArgs::default(),
    };
    let (seeded, seed_elapsed) = seed::generate(store.as_ref(), &seed_args).await?;
    let seed_id = seeded.session_id.clone();
    let seed_metadata = store.read_metadata(&seed_id).await?;
    note(format!(
        "Seeded session {seed_id}: pattern {}, seed {}, {}; {} requests.",
        seeded.pattern,
        seeded.seed,
        seeded.duration,
        seed_metadata.request_counts.total()
    ));

    // 2. A capture on a free loopback port of the protocol's receiver.
    let now = tape_capture::now();
    let capture_id = SessionId::generate("capture-demo", now, rand::random());
    let mut capture_metadata = SessionMetadata::new(capture_id.clone(), SessionType::Capture, now, created_by());
    capture_metadata.description = Some(format!("otlp-tape demo: a replay of {seed_id}"));
    capture_metadata.parameters = [
        ("demo", serde_json::Value::Bool(true)),
        ("replayOf", seed_id.as_str().into()),
        ("protocol", args.protocol.as_str().into()),
        ("speed", speed_name(args.speed).into()),
        ("timestamps", "relative".into()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    let loopback = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let grpc = args.protocol == Protocol::Grpc;
    let config = CaptureConfig {
        grpc: if grpc { loopback } else { None },
        http: if grpc { None } else { loopback },
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        receive: tape_capture::ReceiveLimits::default(),
        recorder: RecorderConfig::default(),
        forward: None,
    };
    let capture = Capture::start(Arc::clone(&store), capture_metadata, config)
        .await
        .with_context(|| format!("cannot start the capture into session {capture_id}"))?;
    let Some(address) = capture.grpc_addr().or(capture.http_addr()) else {
        return Err(anyhow!("the capture into session {capture_id} has no address"));
    };
    let endpoint = format!("http://{address}");

    // 3. The replay, one request at a time so that the capture receives
    // them in the seed's order.
    note(format!(
        "Replaying it at {} over {} into capture session {capture_id} on {address}.",
        speed_name(args.speed),
        args.protocol
    ));
    let mut exporter_config = ExporterConfig::new(endpoint.clone(), args.protocol);
    exporter_config.compression = Compression::Gzip;
    let exporter = Exporter::new(exporter_config).context("cannot send to the capture")?;
    let options = ReplayOptions {
        speed: args.speed,
        timestamps: TimestampMode::Relative,
        concurrency: 1,
        ids: IdRegeneration::Never,
        ..ReplayOptions::default()
    };
    let outcome = replay(Arc::clone(&store), &seed_metadata, &exporter, &options, &Progress::new(), &stop).await;

    // 4. The capture stops, and the session is finished, whatever happened.
    capture.stop();
    let captured = capture.wait().await.with_context(|| format!("the capture into session {capture_id} failed"))?;
    if let StopReason::Failed(message) = &captured.recording.reason {
        return Err(anyhow!("the capture into session {capture_id} failed: {message}"));
    }
    let both = format!("sessions {seed_id} and {capture_id} are kept");
    match outcome.reason {
        EndReason::Finished => {}
        EndReason::Stopped => return Err(anyhow!("stopped by a signal before the replay ended; {both}")),
        EndReason::Failed | EndReason::Duration => {
            let why = outcome.error.map_or_else(|| outcome.reason.to_string(), |error| error.to_string());
            return Err(anyhow!("the replay into the capture failed: {why}; {both}"));
        }
    }
    let capture_metadata = captured.recording.metadata;

    // 5. Record by record.
    let (verification, shift) = verify(store.as_ref(), &seed_metadata, &capture_metadata).await;
    let signals = Signal::ALL
        .iter()
        .map(|&signal| SignalReport {
            signal,
            seed_requests: seed_metadata.request_counts.get(signal),
            captured_requests: capture_metadata.request_counts.get(signal),
            seed_items: seed_metadata.item_counts().get(signal),
            captured_items: capture_metadata.item_counts().get(signal),
        })
        .collect();
    let store_flag = store_flag(location);
    let report = DemoReport {
        explore: vec![
            format!("otlp-tape{store_flag} sessions show {capture_id}"),
            format!("otlp-tape{store_flag} sessions verify {seed_id}"),
            format!("otlp-tape{store_flag} export --session {capture_id} --format otlp-json --out demo-export"),
            format!("otlp-tape{store_flag} replay --session {seed_id} --dry-run"),
        ],
        seed_session: seed_id,
        capture_session: capture_id,
        store: store.location(),
        pattern: seeded.pattern,
        seed: seeded.seed,
        duration: seeded.duration,
        protocol: args.protocol.as_str(),
        speed: speed_name(args.speed),
        endpoint,
        signals,
        shift,
        verification,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        seed_seconds: seed_elapsed.as_secs_f64(),
        replay_seconds: outcome.elapsed.as_secs_f64(),
    };
    if format == OutputFormat::Json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    match &report.verification.first_difference {
        None => Ok(ExitCode::SUCCESS),
        Some(difference) => Err(anyhow!(
            "verification failed: {difference} (seed session {}, capture session {})",
            report.seed_session,
            report.capture_session
        )),
    }
}

fn print_report(report: &DemoReport) {
    println!(
        "Seeded {} (seed {}, {}), replayed it over {} at {} into a capture on {}, and compared the two.",
        report.pattern,
        report.seed,
        report.duration,
        report.protocol,
        report.speed,
        report.endpoint.trim_start_matches("http://"),
    );
    println!();
    let width = report.seed_session.as_str().len().max(report.capture_session.as_str().len());
    println!("  seed     {:<width$}  written in {}", report.seed_session, seconds(report.seed_seconds));
    println!("  capture  {:<width$}  replayed in {}", report.capture_session, seconds(report.replay_seconds));
    println!();
    println!("  {:<8} {:>13} {:>9} {:>12} {:>9}", "SIGNAL", "SEED REQUESTS", "CAPTURED", "SEED ITEMS", "CAPTURED");
    for signal in &report.signals {
        println!(
            "  {:<8} {:>13} {:>9} {:>12} {:>9}  {}",
            signal.signal.as_str(),
            signal.seed_requests,
            signal.captured_requests,
            signal.seed_items,
            signal.captured_items,
            signal.signal.item_noun(),
        );
    }
    println!();
    if let Some(shift) = report.shift {
        println!("  Shift     {} .. {}", human_shift(shift.min_nanos), human_shift(shift.max_nanos));
        println!("            one per record: every duration and offset inside a record is intact, while the");
        println!(
            "            spacing between records follows the replay at {}; a cumulative metric series",
            report.speed
        );
        println!("            keeps the start time it was first sent with");
    }
    let verification = &report.verification;
    match &verification.first_difference {
        None => println!(
            "  Verified  the capture holds every item of the seed, record for record ({} records), in order",
            verification.records_compared
        ),
        Some(difference) => {
            println!("  FAILED    after {} matching records: {difference}", verification.records_compared);
        }
    }
    println!("  Done in {}.", seconds(report.elapsed_seconds));
    println!();
    println!("Explore:");
    for command in &report.explore {
        println!("  {command}");
    }
}

type Records<'a> = std::pin::Pin<Box<dyn Stream<Item = Result<(Signal, Record), tape_session::Error>> + Send + 'a>>;

/// Compares the capture with the seed, signal by signal, record by record
/// in the order each was written; returns the verdict and the range of
/// shifts.
async fn verify(
    store: &dyn SessionStore,
    seed: &SessionMetadata,
    captured: &SessionMetadata,
) -> (Verification, Option<ShiftRange>) {
    let mut compared = 0_u64;
    let mut range: Option<ShiftRange> = None;
    let verdict = |first_difference: Option<String>, compared: u64, range: Option<ShiftRange>| {
        (Verification { ok: first_difference.is_none(), records_compared: compared, first_difference }, range)
    };
    for signal in Signal::ALL {
        let mut expected: Records<'_> = Box::pin(read_session(store, seed, move |candidate| candidate == signal));
        let mut actual: Records<'_> = Box::pin(read_session(store, captured, move |candidate| candidate == signal));
        let mut index = 0_u64;
        loop {
            let want = match expected.try_next().await {
                Ok(next) => next.map(|(_, record)| record),
                Err(error) => {
                    let message = format!("cannot read the seed session: {}", super::sessions::error_chain(&error));
                    return verdict(Some(message), compared, range);
                }
            };
            let have = match actual.try_next().await {
                Ok(next) => next.map(|(_, record)| record),
                Err(error) => {
                    let message = format!("cannot read the capture session: {}", super::sessions::error_chain(&error));
                    return verdict(Some(message), compared, range);
                }
            };
            let (want, have) = match (want, have) {
                (None, None) => break,
                (Some(want), None) => {
                    let message = format!(
                        "{signal} record {index} of the seed (received {}) is missing: the capture holds {index} {signal} records, the seed {}",
                        want.receive_time(),
                        seed.request_counts.get(signal)
                    );
                    return verdict(Some(message), compared, range);
                }
                (None, Some(have)) => {
                    let message = format!(
                        "the capture holds more {signal} records than the seed's {index}: one more was received at {}",
                        have.receive_time()
                    );
                    return verdict(Some(message), compared, range);
                }
                (Some(want), Some(have)) => (want, have),
            };
            match record_shift(signal, &want, &have) {
                Ok(Some(shift)) => {
                    let (min, max) = range.map_or((shift, shift), |range| (range.min_nanos, range.max_nanos));
                    range = Some(ShiftRange { min_nanos: min.min(shift), max_nanos: max.max(shift) });
                }
                Ok(None) => {}
                Err(what) => {
                    let message =
                        format!("{signal} record {index} (received {} in the seed): {what}", want.receive_time());
                    return verdict(Some(message), compared, range);
                }
            }
            index += 1;
            compared += 1;
        }
    }
    verdict(None, compared, range)
}

/// The one shift by which every timestamp of `want` moved to become
/// `have`, with nothing else changed; `None` when the record has no
/// timestamp set. The error says what differs.
fn record_shift(signal: Signal, want: &Record, have: &Record) -> Result<Option<i64>, String> {
    if want.item_count != have.item_count {
        return Err(format!(
            "the capture holds {} {}, the seed {}",
            have.item_count,
            signal.item_noun(),
            want.item_count
        ));
    }
    let mut expected = ExportRequest::decode_protobuf(signal, &want.payload)
        .map_err(|error| format!("the seed's request does not decode: {error}"))?;
    let mut actual = ExportRequest::decode_protobuf(signal, &have.payload)
        .map_err(|error| format!("the captured request does not decode: {error}"))?;
    // A replay keeps one start time per cumulative series and pass, not
    // one shift per record: those start times are compared apart, as set
    // or unset.
    let mut want_starts = Vec::new();
    for_each_cumulative_start(&mut expected, |start| want_starts.push(std::mem::take(start) != 0));
    let mut have_starts = Vec::new();
    for_each_cumulative_start(&mut actual, |start| have_starts.push(std::mem::take(start) != 0));
    if want_starts != have_starts {
        return Err("the start times of its cumulative metric points were set or unset".to_owned());
    }
    let before = timestamps(&mut expected);
    let after = timestamps(&mut actual.clone());
    if before.len() != after.len() {
        return Err(format!("the capture's request has {} timestamps, the seed's {}", after.len(), before.len()));
    }
    let mut shift: Option<i128> = None;
    for (position, (&old, &new)) in before.iter().zip(&after).enumerate() {
        if (old == 0) != (new == 0) {
            return Err(format!(
                "timestamp {position} was {old} and is {new}: an unset timestamp was set, or a set one unset"
            ));
        }
        if old == 0 {
            continue;
        }
        let moved = i128::from(new) - i128::from(old);
        match shift {
            None => shift = Some(moved),
            Some(first) if first != moved => {
                return Err(format!(
                    "timestamp {position} moved by {moved} ns, the first by {first} ns: a duration or an offset inside the record changed"
                ));
            }
            Some(_) => {}
        }
    }
    let shift = shift.map(|shift| i64::try_from(shift).unwrap_or(if shift < 0 { i64::MIN } else { i64::MAX }));
    if let Some(shift) = shift {
        expected.shift_timestamps(shift);
    }
    if expected != actual {
        return Err("the content differs, not only the timestamps".to_owned());
    }
    Ok(shift)
}

/// Calls `each` with the start time of every point of a cumulative metric
/// series (cumulative sums, histograms and exponential histograms;
/// summaries) of a metrics request.
fn for_each_cumulative_start(request: &mut ExportRequest, mut each: impl FnMut(&mut u64)) {
    use tape_otlp::proto::metrics::v1::AggregationTemporality;
    use tape_otlp::proto::metrics::v1::metric::Data;
    let ExportRequest::Metrics(request) = request else { return };
    let cumulative = AggregationTemporality::Cumulative as i32;
    let metrics = request.resource_metrics.iter_mut().flat_map(|r| &mut r.scope_metrics).flat_map(|s| &mut s.metrics);
    for metric in metrics {
        match &mut metric.data {
            Some(Data::Sum(sum)) if sum.aggregation_temporality == cumulative => {
                sum.data_points.iter_mut().for_each(|point| each(&mut point.start_time_unix_nano));
            }
            Some(Data::Histogram(histogram)) if histogram.aggregation_temporality == cumulative => {
                histogram.data_points.iter_mut().for_each(|point| each(&mut point.start_time_unix_nano));
            }
            Some(Data::ExponentialHistogram(histogram)) if histogram.aggregation_temporality == cumulative => {
                histogram.data_points.iter_mut().for_each(|point| each(&mut point.start_time_unix_nano));
            }
            Some(Data::Summary(summary)) => {
                summary.data_points.iter_mut().for_each(|point| each(&mut point.start_time_unix_nano));
            }
            _ => {}
        }
    }
}

/// Every timestamp of a request, in a fixed order.
fn timestamps(request: &mut ExportRequest) -> Vec<u64> {
    let mut all = Vec::new();
    request.for_each_timestamp_mut(|time| all.push(*time));
    all
}

/// A shift for people: `+325d 9h 56m 1.234s`, `-2.500s`.
fn human_shift(nanos: i64) -> String {
    let sign = if nanos < 0 { '-' } else { '+' };
    let millis = nanos.unsigned_abs() / 1_000_000;
    let (days, rest) = (millis / 86_400_000, millis % 86_400_000);
    let (hours, rest) = (rest / 3_600_000, rest % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = format!("{}.{:03}s", rest / 1000, rest % 1000);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{sign}{seconds}"),
        (0, 0, _) => format!("{sign}{minutes}m {seconds}"),
        (0, _, _) => format!("{sign}{hours}h {minutes}m {seconds}"),
        _ => format!("{sign}{days}d {hours}h {minutes}m {seconds}"),
    }
}

fn speed_name(speed: Speed) -> String {
    match speed {
        Speed::Factor(factor) => format!("{factor}x"),
        Speed::Max => "max speed".to_owned(),
    }
}

/// ` --store LOCATION` for the commands to explore with, unless the store
/// is the default.
fn store_flag(location: &StoreLocation) -> String {
    match location {
        StoreLocation::Local(path) if path == Path::new(".") => String::new(),
        other => {
            let text = other.to_string();
            if text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_./:".contains(&byte)) {
                format!(" --store {text}")
            } else {
                format!(" --store '{}'", text.replace('\'', r"'\''"))
            }
        }
    }
}

fn created_by() -> String {
    format!("otlp-tape {} demo", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_read_in_days_hours_minutes_and_seconds() {
        assert_eq!(human_shift(0), "+0.000s");
        assert_eq!(human_shift(-2_500_000_000), "-2.500s");
        assert_eq!(human_shift(61_000_000_000), "+1m 1.000s");
        let shift = ((325 * 24 + 9) * 3600 + 56 * 60 + 1) * 1_000_000_000 + 234_000_000;
        assert_eq!(human_shift(shift), "+325d 9h 56m 1.234s");
    }

    fn record(request: &ExportRequest) -> Record {
        let payload = request.encode_protobuf();
        Record { receive_time_unix_nano: 1, item_count: request.item_count(), payload: payload.into() }
    }

    #[test]
    fn a_record_moved_whole_gives_its_shift_and_any_other_change_is_named() {
        let original = ExportRequest::Traces(tape_otlp::sample::traces("checkout", 3, 1_000));
        let mut moved = original.clone();
        moved.shift_timestamps(-250);
        assert_eq!(record_shift(Signal::Traces, &record(&original), &record(&moved)), Ok(Some(-250)));
        assert_eq!(record_shift(Signal::Traces, &record(&original), &record(&original)), Ok(Some(0)));

        // One timestamp more: a duration changed.
        let mut stretched = moved.clone();
        let mut first = true;
        stretched.for_each_timestamp_mut(|time| {
            if std::mem::take(&mut first) {
                *time += 1;
            }
        });
        let error = record_shift(Signal::Traces, &record(&original), &record(&stretched)).unwrap_err();
        assert!(error.contains("a duration or an offset inside the record changed"), "{error}");

        // Same times, other content.
        let other = ExportRequest::Traces(tape_otlp::sample::traces("payment", 3, 1_000));
        let error = record_shift(Signal::Traces, &record(&original), &record(&other)).unwrap_err();
        assert!(error.contains("the content differs"), "{error}");

        let fewer = ExportRequest::Traces(tape_otlp::sample::traces("checkout", 2, 1_000));
        let error = record_shift(Signal::Traces, &record(&original), &record(&fewer)).unwrap_err();
        assert!(error.contains("the capture holds 2 spans, the seed 3"), "{error}");
    }

    #[test]
    fn the_store_flag_is_left_out_for_the_default_store_and_quoted_when_needed() {
        assert_eq!(store_flag(&StoreLocation::Local(".".into())), "");
        assert_eq!(store_flag(&StoreLocation::Local("/tmp/x".into())), " --store /tmp/x");
        assert_eq!(store_flag(&StoreLocation::Local("/tmp/a b".into())), " --store '/tmp/a b'");
        let s3 = StoreLocation::S3 { bucket: "otel-data".into(), prefix: "demo".into() };
        assert_eq!(store_flag(&s3), " --store s3://otel-data/demo");
    }
}
