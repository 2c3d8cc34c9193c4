//! Rewrites a replay applies to a request: moving every timestamp by the
//! same amount, and mapping trace and span ids to new ones for a pass.

use crate::ExportRequest;
use crate::proto::metrics::v1::Exemplar;
use crate::proto::metrics::v1::metric::Data;

impl ExportRequest {
    /// Calls `visit` with every timestamp of the request: span start and
    /// end, span event times, data point start and time (every metric type),
    /// exemplar times, log record time and observed time. (OTLP span links
    /// carry no time.)
    pub fn for_each_timestamp_mut(&mut self, mut visit: impl FnMut(&mut u64)) {
        match self {
            ExportRequest::Traces(request) => {
                for span in
                    request.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans)
                {
                    visit(&mut span.start_time_unix_nano);
                    visit(&mut span.end_time_unix_nano);
                    for event in &mut span.events {
                        visit(&mut event.time_unix_nano);
                    }
                }
            }
            ExportRequest::Metrics(request) => {
                let metrics =
                    request.resource_metrics.iter_mut().flat_map(|r| &mut r.scope_metrics).flat_map(|s| &mut s.metrics);
                for data in metrics.filter_map(|metric| metric.data.as_mut()) {
                    let mut point = |start: &mut u64, time: &mut u64, exemplars: &mut Vec<Exemplar>| {
                        visit(start);
                        visit(time);
                        for exemplar in exemplars {
                            visit(&mut exemplar.time_unix_nano);
                        }
                    };
                    match data {
                        Data::Gauge(gauge) => gauge.data_points.iter_mut().for_each(|p| {
                            point(&mut p.start_time_unix_nano, &mut p.time_unix_nano, &mut p.exemplars);
                        }),
                        Data::Sum(sum) => sum.data_points.iter_mut().for_each(|p| {
                            point(&mut p.start_time_unix_nano, &mut p.time_unix_nano, &mut p.exemplars);
                        }),
                        Data::Histogram(histogram) => histogram.data_points.iter_mut().for_each(|p| {
                            point(&mut p.start_time_unix_nano, &mut p.time_unix_nano, &mut p.exemplars);
                        }),
                        Data::ExponentialHistogram(histogram) => histogram.data_points.iter_mut().for_each(|p| {
                            point(&mut p.start_time_unix_nano, &mut p.time_unix_nano, &mut p.exemplars);
                        }),
                        Data::Summary(summary) => summary.data_points.iter_mut().for_each(|p| {
                            point(&mut p.start_time_unix_nano, &mut p.time_unix_nano, &mut Vec::new());
                        }),
                    }
                }
            }
            ExportRequest::Logs(request) => {
                let records =
                    request.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs).flat_map(|s| &mut s.log_records);
                for record in records {
                    visit(&mut record.time_unix_nano);
                    visit(&mut record.observed_time_unix_nano);
                }
            }
        }
    }

    /// Moves every non-zero timestamp by `delta` nanoseconds, so that every
    /// duration and every offset inside the request is kept; a zero
    /// timestamp (unset) stays zero. Times saturate at the ends of the
    /// unix-nanosecond range rather than wrap.
    pub fn shift_timestamps(&mut self, delta: i64) {
        self.for_each_timestamp_mut(|time| *time = shift_timestamp(*time, delta));
    }

    /// Maps every trace id and span id through `remap`: span, parent span
    /// and link ids of spans, the ids of log records, and the ids of
    /// exemplars. Empty or all-zero ids (unset) are left as they are, so
    /// a root span keeps no parent.
    pub fn remap_ids(&mut self, remap: &IdRemap) {
        match self {
            ExportRequest::Traces(request) => {
                for span in
                    request.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans)
                {
                    remap.trace_id(&mut span.trace_id);
                    remap.span_id(&mut span.span_id);
                    remap.span_id(&mut span.parent_span_id);
                    for link in &mut span.links {
                        remap.trace_id(&mut link.trace_id);
                        remap.span_id(&mut link.span_id);
                    }
                }
            }
            ExportRequest::Metrics(_) => {
                let mut exemplar = |exemplar: &mut Exemplar| {
                    remap.trace_id(&mut exemplar.trace_id);
                    remap.span_id(&mut exemplar.span_id);
                };
                self.for_each_exemplar_mut(&mut exemplar);
            }
            ExportRequest::Logs(request) => {
                let records =
                    request.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs).flat_map(|s| &mut s.log_records);
                for record in records {
                    remap.trace_id(&mut record.trace_id);
                    remap.span_id(&mut record.span_id);
                }
            }
        }
    }

    fn for_each_exemplar_mut(&mut self, visit: &mut dyn FnMut(&mut Exemplar)) {
        let ExportRequest::Metrics(request) = self else { return };
        let metrics =
            request.resource_metrics.iter_mut().flat_map(|r| &mut r.scope_metrics).flat_map(|s| &mut s.metrics);
        for data in metrics.filter_map(|metric| metric.data.as_mut()) {
            let exemplars: Box<dyn Iterator<Item = &mut Exemplar>> = match data {
                Data::Gauge(gauge) => Box::new(gauge.data_points.iter_mut().flat_map(|p| &mut p.exemplars)),
                Data::Sum(sum) => Box::new(sum.data_points.iter_mut().flat_map(|p| &mut p.exemplars)),
                Data::Histogram(histogram) => Box::new(histogram.data_points.iter_mut().flat_map(|p| &mut p.exemplars)),
                Data::ExponentialHistogram(histogram) => {
                    Box::new(histogram.data_points.iter_mut().flat_map(|p| &mut p.exemplars))
                }
                Data::Summary(_) => Box::new(std::iter::empty()),
            };
            exemplars.for_each(&mut *visit);
        }
    }
}

/// `time` moved by `delta` nanoseconds as
/// [`ExportRequest::shift_timestamps`] moves it: zero (unset) stays zero,
/// and the result saturates inside `1..=u64::MAX`.
#[inline]
pub(crate) fn shift_timestamp(time: u64, delta: i64) -> u64 {
    if time == 0 { 0 } else { time.saturating_add_signed(delta).max(1) }
}

/// A deterministic mapping of trace and span ids for one replay pass: a
/// keyed permutation of the id space (so two different ids never map to
/// the same one), the same for the same `(seed, pass)` on any machine.
/// Every occurrence of an id, in any request and any signal, maps to the
/// same new id, so traces, parent links, span links, log correlation and
/// exemplars stay whole across requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRemap {
    keys: [u64; 4],
}

/// The finaliser of SplitMix64: a bijection on `u64` that mixes every bit.
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl IdRemap {
    /// The mapping of pass `pass` of a replay seeded with `seed`.
    pub fn new(seed: u64, pass: u64) -> Self {
        let base = mix(seed ^ mix(pass.wrapping_add(0x9e37_79b9_7f4a_7c15)));
        let key = |n: u64| mix(base.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        IdRemap { keys: [key(1), key(2), key(3), key(4)] }
    }

    /// Maps a 16-byte trace id in place (a two-round Feistel network over
    /// its halves). Ids of another length, and the all-zero id, are kept.
    pub fn trace_id(&self, id: &mut [u8]) {
        let Ok(bytes) = <[u8; 16]>::try_from(&*id) else { return };
        if bytes == [0; 16] {
            return;
        }
        let mut left = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let mut right = u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"));
        left ^= mix(right ^ self.keys[0]);
        right ^= mix(left ^ self.keys[1]);
        left ^= mix(right ^ self.keys[2]);
        id[..8].copy_from_slice(&left.to_be_bytes());
        id[8..].copy_from_slice(&right.to_be_bytes());
        if id.iter().all(|&byte| byte == 0) {
            // The one id that maps to zero (invalid in OTLP) maps to the key.
            id[8..].copy_from_slice(&self.keys[3].to_be_bytes());
        }
    }

    /// Maps an 8-byte span id in place. Ids of another length, and the
    /// all-zero id, are kept.
    pub fn span_id(&self, id: &mut [u8]) {
        let Ok(bytes) = <[u8; 8]>::try_from(&*id) else { return };
        let old = u64::from_be_bytes(bytes);
        if old == 0 {
            return;
        }
        let mut new = mix(old ^ self.keys[3]) ^ self.keys[0];
        if new == 0 {
            // The one id that maps to zero (invalid in OTLP) maps to the key.
            new = self.keys[1] | 1;
        }
        id.copy_from_slice(&new.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::sample;

    fn requests() -> Vec<ExportRequest> {
        vec![
            ExportRequest::Traces(sample::traces("checkout", 6, 0)),
            ExportRequest::Metrics(sample::metrics("checkout", 0)),
            ExportRequest::Logs(sample::logs("checkout", 4, 0)),
        ]
    }

    fn timestamps(request: &ExportRequest) -> Vec<u64> {
        let mut request = request.clone();
        let mut times = Vec::new();
        request.for_each_timestamp_mut(|time| times.push(*time));
        times
    }

    #[test]
    fn a_shift_moves_every_set_timestamp_by_the_same_amount() {
        for request in requests() {
            let before = timestamps(&request);
            assert!(before.iter().any(|&time| time != 0), "{}", request.signal());
            for delta in [3_600_000_000_000_i64, -1_000] {
                let mut shifted = request.clone();
                shifted.shift_timestamps(delta);
                let after = timestamps(&shifted);
                for (old, new) in before.iter().zip(&after) {
                    let expected = if *old == 0 { 0 } else { old.saturating_add_signed(delta) };
                    assert_eq!(*new, expected, "{}", request.signal());
                }
                assert_eq!(shifted.item_count(), request.item_count());
            }
        }
    }

    #[test]
    fn the_newest_timestamp_moves_with_the_shift() {
        for request in requests() {
            let mut shifted = request.clone();
            shifted.shift_timestamps(5_000);
            assert_eq!(shifted.newest_timestamp(), request.newest_timestamp().map(|time| time + 5_000));
        }
    }

    fn span_ids(request: &ExportRequest) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let ExportRequest::Traces(request) = request else { return Vec::new() };
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|span| (span.trace_id.clone(), span.span_id.clone(), span.parent_span_id.clone()))
            .collect()
    }

    #[test]
    fn remapped_traces_stay_whole_and_differ_per_pass() {
        let request = ExportRequest::Traces(sample::traces("checkout", 6, 0));
        let before = span_ids(&request);
        let mut first = request.clone();
        first.remap_ids(&IdRemap::new(7, 1));
        let mut again = request.clone();
        again.remap_ids(&IdRemap::new(7, 1));
        let mut second = request.clone();
        second.remap_ids(&IdRemap::new(7, 2));
        assert_eq!(first, again, "the same seed and pass give the same ids");
        let (first, second) = (span_ids(&first), span_ids(&second));
        for ((old, new), other) in before.iter().zip(&first).zip(&second) {
            assert_ne!(old.0, new.0);
            assert_ne!(old.1, new.1);
            assert_ne!(new.1, other.1, "each pass has ids of its own");
            // A parent that was unset stays unset; a parent that was set
            // maps as that span's own id maps.
            if old.2.is_empty() {
                assert!(new.2.is_empty());
            } else {
                let parent = before.iter().position(|span| span.1 == old.2).expect("the parent is in the request");
                assert_eq!(new.2, first[parent].1);
            }
        }
        let trace_ids: HashSet<_> = first.iter().map(|span| span.0.clone()).collect();
        assert_eq!(trace_ids.len(), before.iter().map(|span| span.0.clone()).collect::<HashSet<_>>().len());
    }

    #[test]
    fn logs_keep_their_correlation_with_the_remapped_spans() {
        let remap = IdRemap::new(42, 3);
        let mut trace_id = vec![0xab; 16];
        let mut span_id = vec![0xcd; 8];
        let mut logs = sample::logs("checkout", 2, 0);
        for record in logs.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs).flat_map(|s| &mut s.log_records) {
            record.trace_id.clone_from(&trace_id);
            record.span_id.clone_from(&span_id);
        }
        let mut logs = ExportRequest::Logs(logs);
        logs.remap_ids(&remap);
        remap.trace_id(&mut trace_id);
        remap.span_id(&mut span_id);
        let ExportRequest::Logs(logs) = logs else { unreachable!() };
        for record in logs.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records) {
            assert_eq!((&record.trace_id, &record.span_id), (&trace_id, &span_id));
        }
    }

    #[test]
    fn exemplars_point_at_the_remapped_spans() {
        let remap = IdRemap::new(9, 2);
        let mut metrics = ExportRequest::Metrics(sample::metrics("checkout", 0));
        let (mut trace_id, mut span_id) = (sample::trace_id(0), sample::span_id(0));
        remap.trace_id(&mut trace_id);
        remap.span_id(&mut span_id);
        metrics.remap_ids(&remap);
        let mut exemplars = 0;
        metrics.for_each_exemplar_mut(&mut |exemplar| {
            assert_eq!((&exemplar.trace_id, &exemplar.span_id), (&trace_id, &span_id));
            exemplars += 1;
        });
        assert!(exemplars > 0, "the sample has exemplars");
    }

    #[test]
    fn distinct_ids_stay_distinct_and_unset_ids_stay_unset() {
        let remap = IdRemap::new(1, 1);
        let mut seen = HashSet::new();
        for n in 1..=20_000_u64 {
            let mut id = n.to_be_bytes().to_vec();
            remap.span_id(&mut id);
            assert_ne!(id, vec![0; 8]);
            assert!(seen.insert(id), "span id {n} collided");
        }
        let mut zero = vec![0; 8];
        remap.span_id(&mut zero);
        assert_eq!(zero, vec![0; 8]);
        let mut empty = Vec::new();
        remap.trace_id(&mut empty);
        assert!(empty.is_empty());
        let mut zero = vec![0; 16];
        remap.trace_id(&mut zero);
        assert_eq!(zero, vec![0; 16]);
    }
}
