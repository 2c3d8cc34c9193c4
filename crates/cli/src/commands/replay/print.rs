//! What `replay` prints on stdout: the summary of a replay and the plan of
//! a dry run, for people (`--output json` prints the same records as JSON).

use tape_otlp::Signal;
use tape_replay::{DryRunPlan, Report, SignalProgress};

use crate::output::seconds;

/// The summary of a replay for people, on stdout.
pub fn report(report: &Report) {
    let plural = if report.passes == 1 { "pass" } else { "passes" };
    println!(
        "Replayed session {} ({}) to {}: {} after {} {plural} in {}, {:.0} items/s.",
        report.session.id,
        report.session.session_type,
        report.targets.description,
        report.reason,
        report.passes,
        seconds(report.duration_seconds),
        report.achieved_items_per_second,
    );
    for (signal, counts) in [
        (Signal::Traces, &report.counts.traces),
        (Signal::Metrics, &report.counts.metrics),
        (Signal::Logs, &report.counts.logs),
    ] {
        if report.options.signals.contains(&signal) {
            println!("  {:<8} {}", signal.as_str(), signal_line(signal, counts));
        }
    }
    if report.corrupt_blobs > 0 {
        let blobs = if report.corrupt_blobs == 1 { "blob" } else { "blobs" };
        println!("  Skipped the damaged part of {} corrupt {blobs} (--skip-corrupt).", report.corrupt_blobs);
    }
    if report.abandoned_records > 0 {
        println!(
            "  {} requests were in flight or waiting for a retry when the replay stopped: neither sent nor \
             failed; a resume sends them.",
            report.abandoned_records
        );
    }
    if let Some(position) = &report.options.resumed_from {
        println!("  Resumed at {}; the counts include the earlier runs.", tape_replay::describe_position(position));
    }
    if let Some(shard) = report.options.shard {
        println!("  Shard {shard}: the counts are of its items alone.");
    }
    if let Some(start) = report.options.start_at {
        println!("  Scheduled from {start} (--start-at).");
    }
    println!("  Id seed {}.", report.id_seed);
}

/// `124 requests (5248 spans) sent, 3 spans rejected, 1 request (40 spans) failed`: the parts that are
/// not zero, but always what was sent.
fn signal_line(signal: Signal, counts: &SignalProgress) -> String {
    let requests = |count: u64| if count == 1 { "1 request".to_owned() } else { format!("{count} requests") };
    let noun = signal.item_noun();
    let mut parts = vec![format!("{} ({} {noun}) sent", requests(counts.sent_records), counts.sent_items)];
    if counts.rejected_items > 0 {
        parts.push(format!("{} {noun} rejected by the target", counts.rejected_items));
    }
    if counts.failed_records > 0 {
        parts.push(format!("{} ({} {noun}) failed", requests(counts.failed_records), counts.failed_items));
    }
    if counts.invalid_records > 0 {
        parts.push(format!("{} invalid records not sent", counts.invalid_records));
    }
    if counts.retries > 0 {
        let retries = if counts.retries == 1 { "1 retry".to_owned() } else { format!("{} retries", counts.retries) };
        parts.push(retries);
    }
    parts.join(", ")
}

/// What a dry run would do, for people, on stdout.
pub fn dry_run(plan: &DryRunPlan) {
    let session = &plan.session;
    let end = session.end_time.map_or_else(|| "?".to_owned(), |end| end.to_string());
    println!(
        "Session    {} ({}, {}): {} .. {end}",
        session.id, session.session_type, session.status, session.start_time
    );
    if let Some(picked) = &session.picked {
        println!("Picked     {}", picked.describe());
    }
    println!("Target     {}", plan.targets.description);
    println!("Selection  {}", plan.selection);
    for (index, (name, counts)) in [
        ("traces", plan.records.traces),
        ("metrics", plan.records.metrics),
        ("logs", plan.records.logs),
        ("total", plan.records.total),
    ]
    .into_iter()
    .enumerate()
    {
        let label = if index == 0 { "Records" } else { "" };
        println!("{label:<10} {name:<8} {:>8} requests {:>10} items", counts.records, counts.items);
    }
    if plan.invalid_records > 0 {
        println!("Invalid    {} records are not valid requests and would not be sent", plan.invalid_records);
    }
    if plan.corrupt_blobs > 0 {
        let blobs = if plan.corrupt_blobs == 1 { "blob is" } else { "blobs are" };
        println!("Corrupt    {} {blobs} damaged; what follows the damage would be skipped", plan.corrupt_blobs);
    }
    match (plan.first_receive, plan.last_receive) {
        (Some(first), Some(last)) => {
            println!("Time span  {first} .. {last} ({})", seconds(plan.span_seconds));
        }
        _ => println!("Time span  none: nothing is selected"),
    }
    println!("Pacing     {}", plan.pacing.description);
    if let Some(start) = plan.options.start_at {
        println!("Start      {start} (--start-at): the first record is due then");
    }
}
