//! `otlp-tape seed`: the flags as a [`tape_seed::SeedConfig`], the run
//! (live with `--live`), and its summary printed.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::anyhow;
use tape_annotations::ClickHouseReport;
use tape_otlp::{Signal, SignalSet};
use tape_seed::{CheckedSeed, LiveOptions, LiveStart, SeedConfig};
use tape_seed_generator::{DEFAULT_START, Params, format_duration};
use tape_session::{SessionStore, SignalCounts};
use tokio_util::sync::CancellationToken;

use crate::cli::{LiveArgs, OutputFormat, SeedArgs};
use crate::output::{note, print_json};

pub use tape_seed::SeedSummary;

/// The seed the flags describe (without `--live` and ClickHouse, which are
/// arguments of the run).
pub fn config(args: &SeedArgs) -> SeedConfig {
    args.config.clone()
}

/// The seed the flags describe, checked; parameters the pattern cannot be
/// generated with say that nothing was written.
fn check(args: &SeedArgs) -> anyhow::Result<CheckedSeed> {
    Ok(config(args).validate_for_writing()?)
}

/// `seed`
pub async fn run(store: &dyn SessionStore, args: SeedArgs, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let live = if args.live.enabled {
        // Registered first, so that Ctrl-C at any moment finishes the session.
        let stop = crate::signals::stop_on_signals()?;
        let targets = crate::target::targets(&args.live.target)?;
        Some(LiveOptions { targets, concurrency: args.live.concurrency, stop, on_start: Some(Box::new(announce_live)) })
    } else {
        refuse_target_flags_without_live(&args.live);
        None
    };
    let seed = check(&args)?;
    let clickhouse = crate::clickhouse::config(&args.clickhouse);
    let summary = tape_seed::run(store, &seed, live, clickhouse, &CancellationToken::new()).await?;
    for warning in &summary.warnings {
        note(warning);
    }
    if format == OutputFormat::Json {
        print_json(&summary)?;
        return live_outcome(&summary);
    }
    println!("{}", summary.session_id);
    let verb = if summary.live.is_some() { "Seeded live" } else { "Generated" };
    note(format!(
        "{verb} {} session {} from pattern {} with seed {} in {}: {} at {} traces/s from {}, error rate {}.",
        summary.session_type,
        summary.session_id,
        summary.pattern,
        summary.seed,
        crate::output::seconds(summary.elapsed.as_secs_f64()),
        summary.duration,
        summary.rate,
        summary.start,
        summary.error_rate,
    ));
    // A live run stopped early wrote fewer traces than planned, and they
    // are not counted.
    let traces = if summary.live.as_ref().is_some_and(|live| live.stopped_early) {
        String::from("  Written:")
    } else {
        format!("  {} traces:", summary.traces)
    };
    note(format!(
        "{traces} {}",
        crate::output::session_contents(&summary.items, &summary.requests, summary.size_bytes, summary.blobs)
    ));
    note(format!("  Stored in {}", summary.location));
    note("  Phases:");
    let width = summary.phases.iter().map(|phase| phase.name.len()).max().unwrap_or(0);
    for phase in &summary.phases {
        let length = human_duration(phase.end.unix_nanos() - phase.start.unix_nanos());
        let flags = if phase.flags.is_empty() { String::new() } else { format!("  flags: {}", phase.flags.join(", ")) };
        note(format!("    {:<width$}  {} .. {}  {length}{flags}", phase.name, phase.start, phase.end));
    }
    if let Some(ClickHouseReport { table, inserted, already_present, error: None }) = &summary.clickhouse {
        note(format!("  Phases written to ClickHouse {table}: {inserted} new, {already_present} already there."));
    }
    match &summary.live {
        Some(live) => {
            print_live(live, &summary);
            note(format!("  Reproduce without sending: {}", reproduce_command(&args.config.pattern, &summary.params)));
        }
        None => note(format!("  Reproduce with: {}", reproduce_command(&args.config.pattern, &summary.params))),
    }
    live_outcome(&summary)
}

/// The line a live run starts with, on stderr.
fn announce_live(start: &LiveStart) {
    note(format!(
        "Seeding session {} live to {}: {} of pattern {} from {}, in real time; Ctrl-C stops early and keeps what was written.",
        start.session_id, start.target, start.duration, start.pattern, start.start,
    ));
}

/// The live run's sent and failed counts, on stderr.
fn print_live(live: &tape_seed::LiveSummary, summary: &SeedSummary) {
    let per_signal = |counts: &SignalCounts| {
        Signal::ALL.iter().map(|&signal| format!("{} {}", signal, counts.get(signal))).collect::<Vec<_>>().join(", ")
    };
    let failed = match live.failed.total() {
        0 => "none failed".to_owned(),
        failed => format!("{failed} failed ({})", per_signal(&live.failed)),
    };
    note(format!(
        "  Sent live to {}: {} requests delivered ({}), {failed}.",
        live.target,
        live.sent.total(),
        per_signal(&live.sent),
    ));
    if live.rejected_items.total() > 0 {
        note(format!(
            "  The target rejected {} items in partial successes ({}).",
            live.rejected_items.total(),
            per_signal(&live.rejected_items)
        ));
    }
    if live.stopped_early {
        note(format!(
            "  Stopped early: the session holds the {} requests written until {}, and is finished; sessions verify checks its blobs but cannot regenerate it.",
            summary.requests.total(),
            summary.end
        ));
    }
}

/// Exit 0, or the error of a live run whose sends failed.
fn live_outcome(summary: &SeedSummary) -> anyhow::Result<ExitCode> {
    match &summary.live {
        Some(live) if live.failed.total() > 0 => Err(anyhow!(
            "{} of {} requests could not be sent to {}: {}; session {} is complete all the same",
            live.failed.total(),
            live.failed.total() + live.sent.total(),
            live.target,
            live.last_error.as_deref().unwrap_or("no error message"),
            summary.session_id,
        )),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The target's flags mean nothing without --live: a command-line error
/// (exit code 2) rather than flags silently ignored.
fn refuse_target_flags_without_live(live: &LiveArgs) {
    let target = &live.target.config;
    let given = [
        ("--endpoint", target.endpoint.is_some()),
        ("--protocol", target.protocol.is_some()),
        ("--header", !target.headers.is_empty()),
        ("--compression", target.compression.is_some()),
        ("--timeout", target.timeout.is_some()),
        ("--ca-file", live.target.ca_file.is_some()),
        ("--insecure", target.insecure),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
        let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
        let message = format!("{flag} only applies with --live (seed sends nothing otherwise)");
        command.error(clap::error::ErrorKind::MissingRequiredArgument, message).exit();
    }
}

/// A duration for people: exact when in whole milliseconds, else seconds
/// with three decimals.
#[allow(clippy::cast_precision_loss)] // three decimals are all that is shown
fn human_duration(nanos: u64) -> String {
    if nanos.is_multiple_of(1_000_000) { format_duration(nanos) } else { format!("{:.3}s", nanos as f64 / 1e9) }
}

/// The command line that makes the same session again.
fn reproduce_command(pattern: &str, params: &Params) -> String {
    let quote = |text: &str| {
        if text.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_./:,".contains(&byte)) {
            text.to_owned()
        } else {
            format!("'{}'", text.replace('\'', r"'\''"))
        }
    };
    let mut command = format!(
        "otlp-tape seed --pattern {} --seed {} --duration {} --rate {} --error-rate {}",
        quote(pattern),
        params.seed,
        format_duration(params.duration_nanos),
        params.rate,
        params.error_rate
    );
    if params.start != DEFAULT_START {
        let _ = write!(command, " --start {}", params.start);
    }
    if params.signals != SignalSet::ALL {
        let _ = write!(command, " --signals {}", params.signals);
    }
    command
}
