//! Reading the timestamps a request carries.

use crate::ExportRequest;
use crate::proto::metrics::v1::metric::Data;

impl ExportRequest {
    /// The newest non-zero timestamp in the request, unix nanoseconds: span
    /// ends and events, data point times, log record times and observed
    /// times. `None` when the request carries no timestamp at all.
    pub fn newest_timestamp(&self) -> Option<u64> {
        let newest = match self {
            ExportRequest::Traces(request) => request
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .flat_map(|scope| &scope.spans)
                .flat_map(|span| {
                    [span.start_time_unix_nano, span.end_time_unix_nano]
                        .into_iter()
                        .chain(span.events.iter().map(|event| event.time_unix_nano))
                })
                .max(),
            ExportRequest::Metrics(request) => request
                .resource_metrics
                .iter()
                .flat_map(|resource| &resource.scope_metrics)
                .flat_map(|scope| &scope.metrics)
                .filter_map(|metric| metric.data.as_ref())
                .flat_map(|data| -> Box<dyn Iterator<Item = u64> + '_> {
                    match data {
                        Data::Gauge(gauge) => Box::new(gauge.data_points.iter().map(|point| point.time_unix_nano)),
                        Data::Sum(sum) => Box::new(sum.data_points.iter().map(|point| point.time_unix_nano)),
                        Data::Histogram(histogram) => {
                            Box::new(histogram.data_points.iter().map(|point| point.time_unix_nano))
                        }
                        Data::ExponentialHistogram(histogram) => {
                            Box::new(histogram.data_points.iter().map(|point| point.time_unix_nano))
                        }
                        Data::Summary(summary) => {
                            Box::new(summary.data_points.iter().map(|point| point.time_unix_nano))
                        }
                    }
                })
                .max(),
            ExportRequest::Logs(request) => request
                .resource_logs
                .iter()
                .flat_map(|resource| &resource.scope_logs)
                .flat_map(|scope| &scope.log_records)
                .map(|record| record.time_unix_nano.max(record.observed_time_unix_nano))
                .max(),
        };
        newest.filter(|&time| time != 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ExportRequest, sample};

    #[test]
    fn finds_the_newest_timestamp_of_each_signal() {
        let traces = ExportRequest::from(sample::traces("a", 3, 0));
        // Span 2 starts 2 ms in and lasts 750 µs plus 2 × 10 µs.
        assert_eq!(traces.newest_timestamp(), Some(sample::BASE_TIME_UNIX_NANO + 2_000_000 + 770_000));
        let metrics = ExportRequest::from(sample::metrics("a", 5_000));
        assert_eq!(metrics.newest_timestamp(), Some(sample::BASE_TIME_UNIX_NANO + 5_000));
        let logs = ExportRequest::from(sample::logs("a", 2, 0));
        assert_eq!(logs.newest_timestamp(), Some(sample::BASE_TIME_UNIX_NANO + 1_000_000 + 20_000));
        let empty = ExportRequest::from(crate::proto::collector::logs::v1::ExportLogsServiceRequest::default());
        assert_eq!(empty.newest_timestamp(), None);
    }
}
