//! Printing results and errors.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences [`note`]s, for `-q`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Prints a message for people on stderr, unless `-q` was given.
pub fn note(message: impl std::fmt::Display) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("{message}");
    }
}

/// Prints an error and its causes on stderr, once each.
pub fn print_error(error: &anyhow::Error) {
    let mut text = format!("error: {error}");
    for cause in error.chain().skip(1) {
        let _ = write!(text, "\n  caused by: {cause}");
    }
    eprintln!("{text}");
}

/// Prints a JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Bytes in a human unit: `512 B`, `1.5 KiB`, `3.2 MiB`.
#[allow(clippy::cast_precision_loss)] // one decimal is all that is shown
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// A count and its noun, singular for one: `1 annotation`, `3 annotations`.
pub fn count(count: usize, singular: &str, plural: &str) -> String {
    if count == 1 { format!("1 {singular}") } else { format!("{count} {plural}") }
}

/// Seconds as the project writes durations, with two decimals and no
/// space: `3.77s`.
pub fn seconds(seconds: f64) -> String {
    format!("{seconds:.2}s")
}

/// `text` with a full stop, unless it ends with one already, so that a
/// sentence that ends with the store `.` reads `store .`, not `store ..`.
pub fn full_stop(text: impl std::fmt::Display) -> String {
    let text = text.to_string();
    if text.ends_with('.') { text } else { format!("{text}.") }
}

/// What a session holds, as the summaries of `capture` and `seed` say it:
/// `N spans, N data points, N log records in N requests; SIZE in N blobs`.
pub fn session_contents(
    items: &tape_session::SignalCounts,
    requests: &tape_session::SignalCounts,
    size_bytes: u64,
    blobs: usize,
) -> String {
    format!(
        "{} spans, {} data points, {} log records in {} requests; {} in {blobs} blobs",
        items.traces,
        items.metrics,
        items.logs,
        requests.total(),
        human_bytes(size_bytes),
    )
}

/// A progress bar of records on stderr (`12:00:03 [=====>   ] 120/300
/// records  message`), for commands that read a session record by record.
pub fn records_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:24}] {pos}/{len} records  {wide_msg}")
        .map(|style| style.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// The exit code of a process that SIGPIPE ended: 128 + 13, what a shell
/// reports for a tool whose reader went away.
const EXIT_CLOSED_STDOUT: i32 = 141;

/// Makes a closed standard output (`otlp-tape sessions list | head`) end
/// the process quietly with exit code 141, as SIGPIPE ends other Unix
/// tools, instead of the panic `println!` raises when it cannot write.
/// Whatever the command had done (a session stored, a replay sent) is done;
/// only the rest of its printing is lost, which no one reads.
pub fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if message
            .is_some_and(|message| message.starts_with("failed printing to stdout") && message.contains("Broken pipe"))
        {
            std::process::exit(EXIT_CLOSED_STDOUT);
        }
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_durations_and_sentences_read_right() {
        assert_eq!(count(1, "annotation", "annotations"), "1 annotation");
        assert_eq!(count(0, "annotation", "annotations"), "0 annotations");
        assert_eq!(count(2, "file", "files"), "2 files");
        assert_eq!(seconds(3.7712), "3.77s");
        assert_eq!(seconds(0.0), "0.00s");
        assert_eq!(full_stop("Deleted session a from ."), "Deleted session a from .");
        assert_eq!(
            full_stop("Deleted session a from /var/lib/otlp-tape"),
            "Deleted session a from /var/lib/otlp-tape."
        );
    }
}
