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
use serde::Serialize;
use tape_capture::{Capture, CaptureConfig, DEFAULT_MAX_REQUEST_BYTES, RecorderConfig, StopReason};
use tape_otlp::{Signal, SignalSet};
use tape_replay::delivery::{self, DeliveryCheck, ShiftRange, Verification};
use tape_replay::{
    Compression, EndReason, Exporter, ExporterConfig, IdRegeneration, Progress, Protocol, ReplayOptions, Speed,
    TimestampMode, replay,
};
use tape_session::{SessionId, SessionMetadata, SessionStore, SessionType};
use tape_store::StoreLocation;

use crate::cli::{DemoArgs, OutputFormat};
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
    let config = tape_seed::SeedConfig {
        pattern: args.pattern.clone(),
        duration: Some(args.duration),
        seed: Some(args.seed),
        signals: SignalSet::ALL,
        description: Some("otlp-tape demo".to_owned()),
        ..tape_seed::SeedConfig::default()
    };
    let seeded = tape_seed::generate_session(store.as_ref(), &config).await?;
    let seed_elapsed = seeded.elapsed;
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
    let DeliveryCheck { verification, shift } =
        delivery::verify(store.as_ref(), &seed_metadata, &capture_metadata).await;
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

/// A shift for people: `+325d 9h 56m 1.234s`, `-2.500s` (also `compare`'s).
pub(crate) fn human_shift(nanos: i64) -> String {
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

    #[test]
    fn the_store_flag_is_left_out_for_the_default_store_and_quoted_when_needed() {
        assert_eq!(store_flag(&StoreLocation::Local(".".into())), "");
        assert_eq!(store_flag(&StoreLocation::Local("/tmp/x".into())), " --store /tmp/x");
        assert_eq!(store_flag(&StoreLocation::Local("/tmp/a b".into())), " --store '/tmp/a b'");
        let s3 = StoreLocation::S3 { bucket: "otel-data".into(), prefix: "demo".into() };
        assert_eq!(store_flag(&s3), " --store s3://otel-data/demo");
    }
}
