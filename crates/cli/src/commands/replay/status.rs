//! What a running replay shows on stderr: a progress bar on a terminal, a
//! status line every `--log-interval` otherwise.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tape_replay::{Progress, ProgressSnapshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::output::note;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A progress bar, redrawn a few times a second.
    Bar,
    /// A status line at this interval.
    Lines(Duration),
    /// Nothing.
    Off,
}

/// Shows `progress` until `stop`; the bar is cleared when the task returns.
pub fn spawn(display: Display, progress: Arc<Progress>, stop: CancellationToken) -> Option<JoinHandle<()>> {
    match display {
        Display::Off => None,
        Display::Bar => Some(tokio::spawn(show_bar(progress, stop))),
        Display::Lines(interval) => Some(tokio::spawn(show_lines(progress, interval, stop))),
    }
}

async fn show_bar(progress: Arc<Progress>, stop: CancellationToken) {
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:24}] {pos}/{len} records  {wide_msg}")
        .map(|style| style.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    let ticker = tokio::time::interval(Duration::from_millis(250));
    each_tick(&progress, ticker, &stop, |snapshot, items_per_second| {
        bar.set_length(snapshot.total_records);
        bar.set_position(snapshot.records_read);
        bar.set_message(counts(snapshot, items_per_second));
    })
    .await;
    bar.finish_and_clear();
}

async fn show_lines(progress: Arc<Progress>, interval: Duration, stop: CancellationToken) {
    let ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    each_tick(&progress, ticker, &stop, |snapshot, items_per_second| note(status_line(snapshot, items_per_second)))
        .await;
}

/// Calls `show` with the progress and the items per second since the tick
/// before, at every tick of `ticker`, until `stop` is cancelled.
async fn each_tick(
    progress: &Progress,
    mut ticker: tokio::time::Interval,
    stop: &CancellationToken,
    mut show: impl FnMut(&ProgressSnapshot, f64),
) {
    let mut rate = Rate::new(&progress.snapshot());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let snapshot = progress.snapshot();
        let items_per_second = rate.update(&snapshot);
        show(&snapshot, items_per_second);
    }
}

/// `replay: pass 1, 120/215 records, ...` for logs.
pub fn status_line(snapshot: &ProgressSnapshot, items_per_second: f64) -> String {
    format!(
        "replay: pass {}, {}/{} records, {}",
        snapshot.pass + 1,
        snapshot.records_read,
        snapshot.total_records,
        counts(snapshot, items_per_second)
    )
}

fn counts(snapshot: &ProgressSnapshot, items_per_second: f64) -> String {
    let total = snapshot.total();
    format!(
        "{} items, {items_per_second:.0} items/s, {} sent, {} rejected, {} failed, lag {} ms",
        total.sent_items, total.sent_records, total.rejected_items, total.failed_records, snapshot.lag_millis
    )
}

/// Items sent per second since the last update.
struct Rate {
    items: u64,
    at: Instant,
}

impl Rate {
    fn new(snapshot: &ProgressSnapshot) -> Self {
        Rate { items: snapshot.total().sent_items, at: Instant::now() }
    }

    #[allow(clippy::cast_precision_loss)] // a rate for people
    fn update(&mut self, snapshot: &ProgressSnapshot) -> f64 {
        let items = snapshot.total().sent_items;
        let now = Instant::now();
        let seconds = now.duration_since(self.at).as_secs_f64();
        let rate = if seconds > 0.0 { items.saturating_sub(self.items) as f64 / seconds } else { 0.0 };
        (self.items, self.at) = (items, now);
        rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_says_where_the_replay_is() {
        let mut snapshot =
            ProgressSnapshot { pass: 1, records_read: 20, total_records: 215, lag_millis: 3, ..Default::default() };
        snapshot.traces.sent_records = 12;
        snapshot.traces.sent_items = 400;
        snapshot.logs.failed_records = 1;
        assert_eq!(
            status_line(&snapshot, 123.4),
            "replay: pass 2, 20/215 records, 400 items, 123 items/s, 12 sent, 0 rejected, 1 failed, lag 3 ms"
        );
    }
}
