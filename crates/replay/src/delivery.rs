//! Delivery check: did a replay deliver a session whole? Compares the
//! session a replay sent (the seed) with the session that recorded what
//! arrived (a capture), signal by signal and record by record in the order
//! each was written: every record is there, each moved by a single shift
//! of its timestamps and nothing else changed; the start times of
//! cumulative metric series, which a replay keeps per series and pass,
//! are compared as set or unset.
//!
//! `otlp-tape demo` runs it after replaying a seed session into a capture.
//!
//! ```no_run
//! # async fn example(
//! #     store: &dyn tape_session::SessionStore,
//! #     seed: &tape_session::SessionMetadata,
//! #     captured: &tape_session::SessionMetadata,
//! # ) {
//! let check = tape_replay::delivery::verify(store, seed, captured).await;
//! match &check.verification.first_difference {
//!     None => println!("{} records delivered whole", check.verification.records_compared),
//!     Some(difference) => println!("not delivered whole: {difference}"),
//! }
//! # }
//! ```

use futures::{Stream, TryStreamExt};
use serde::Serialize;
use tape_otlp::{ExportRequest, Signal};
use tape_session::{Record, SessionMetadata, SessionStore, error_chain, read_session};

/// The smallest and largest shift of a record's timestamps, in
/// nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftRange {
    /// The smallest shift.
    pub min_nanos: i64,
    /// The largest shift.
    pub max_nanos: i64,
}

/// The verdict of a delivery check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Every record of the seed is in the capture, in order, with its
    /// timestamps moved by one shift and nothing else changed.
    pub ok: bool,
    /// Record pairs that were compared and found right.
    pub records_compared: u64,
    /// The first record that is not right, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<String>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCheck {
    /// The verdict.
    pub verification: Verification,
    /// The range of the records' shifts, over the records compared that
    /// have a timestamp; `None` when there are none.
    pub shift: Option<ShiftRange>,
}

type Records<'a> = std::pin::Pin<Box<dyn Stream<Item = Result<(Signal, Record), tape_session::Error>> + Send + 'a>>;

/// Compares the `captured` session with the `seed` session, signal by
/// signal, record by record in the order each was written; returns the
/// verdict and the range of shifts. A session that cannot be read is a
/// difference, named in the verdict.
pub async fn verify(store: &dyn SessionStore, seed: &SessionMetadata, captured: &SessionMetadata) -> DeliveryCheck {
    let mut compared = 0_u64;
    let mut range: Option<ShiftRange> = None;
    let verdict = |first_difference: Option<String>, compared: u64, shift: Option<ShiftRange>| DeliveryCheck {
        verification: Verification { ok: first_difference.is_none(), records_compared: compared, first_difference },
        shift,
    };
    for signal in Signal::ALL {
        let mut expected: Records<'_> = Box::pin(read_session(store, seed, move |candidate| candidate == signal));
        let mut actual: Records<'_> = Box::pin(read_session(store, captured, move |candidate| candidate == signal));
        let mut index = 0_u64;
        loop {
            let want = match expected.try_next().await {
                Ok(next) => next.map(|(_, record)| record),
                Err(error) => {
                    let message = format!("cannot read the seed session: {}", error_chain(&error));
                    return verdict(Some(message), compared, range);
                }
            };
            let have = match actual.try_next().await {
                Ok(next) => next.map(|(_, record)| record),
                Err(error) => {
                    let message = format!("cannot read the capture session: {}", error_chain(&error));
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
/// timestamp set. The error says what differs, as a phrase for people.
pub fn record_shift(signal: Signal, want: &Record, have: &Record) -> Result<Option<i64>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Writes `requests` as a session `id` of `store`, one record each,
    /// received a second apart.
    async fn write_session(store: &dyn SessionStore, id: &str, requests: &[ExportRequest]) -> SessionMetadata {
        use tape_session::{SessionId, SessionStatus, SessionType, SessionWriter, Timestamp, WriterOptions};
        let start = Timestamp::from_unix_nanos(1_000_000_000);
        let id = SessionId::new(id).expect("a valid id");
        let metadata = SessionMetadata::new(id, SessionType::Seed, start, "test".to_owned());
        let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await.expect("create");
        let mut last = start;
        for (number, request) in (0_u64..).zip(requests) {
            last = Timestamp::from_unix_nanos(1_000_000_000 * (number + 1));
            let payload = request.encode_protobuf();
            writer.append(request.signal(), last, request.item_count(), &payload).await.expect("append");
        }
        writer.finish(last, SessionStatus::Completed).await.expect("finish")
    }

    #[tokio::test]
    async fn a_session_delivered_whole_passes_and_a_missing_record_is_named() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = tape_store::LocalStore::new(dir.path());
        let seed = vec![
            ExportRequest::Traces(tape_otlp::sample::traces("checkout", 3, 1_000)),
            ExportRequest::Metrics(tape_otlp::sample::metrics("checkout", 1_000)),
            ExportRequest::Traces(tape_otlp::sample::traces("payment", 2, 5_000)),
        ];
        // Replayed: every record moved by its own shift, the cumulative
        // series keeping their start times.
        let replayed: Vec<ExportRequest> = seed
            .iter()
            .zip([700_i64, 900, 1_100])
            .map(|(request, shift)| {
                let mut moved = request.clone();
                let mut starts = Vec::new();
                for_each_cumulative_start(&mut moved.clone(), |start| starts.push(*start));
                moved.shift_timestamps(shift);
                let mut kept = starts.into_iter();
                for_each_cumulative_start(&mut moved, |start| *start = kept.next().expect("as many"));
                moved
            })
            .collect();
        let seed_metadata = write_session(&store, "seed", &seed).await;
        let whole = write_session(&store, "whole", &replayed).await;
        let check = verify(&store, &seed_metadata, &whole).await;
        assert_eq!(check.verification, Verification { ok: true, records_compared: 3, first_difference: None });
        assert_eq!(check.shift, Some(ShiftRange { min_nanos: 700, max_nanos: 1_100 }));

        let short = write_session(&store, "short", &replayed[..2]).await;
        let check = verify(&store, &seed_metadata, &short).await;
        assert!(!check.verification.ok);
        let difference = check.verification.first_difference.expect("a difference");
        assert!(difference.starts_with("traces record 1 of the seed"), "{difference}");
        assert!(difference.contains("is missing: the capture holds 1 traces records, the seed 2"), "{difference}");
    }
}
