//! The few protobuf messages an exporter reads from responses, written by
//! hand: the three `Export*ServiceResponse` messages share one layout, and
//! `google.rpc.Status` with `google.rpc.RetryInfo` is all the exporter needs
//! of the Google API protos.

#[cfg(test)]
use std::time::Duration;

use prost::Message;

#[cfg(test)]
use tape_otlp::rpc::{Any, ProtoDuration, RETRY_INFO_TYPE_URL, RetryInfo};

/// `ExportTraceServiceResponse`, `ExportMetricsServiceResponse` and
/// `ExportLogsServiceResponse` at once: each holds its `partial_success` at
/// field 1, which holds the rejected count (`rejected_spans`,
/// `rejected_data_points` or `rejected_log_records`) at field 1 and
/// `error_message` at field 2.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<PartialSuccess>,
}

/// `Export*PartialSuccess`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct PartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

impl ExportResponse {
    /// The rejected count and message of a `partial_success`, if the
    /// response has one. A negative count, which a target must not send,
    /// counts as none.
    pub(crate) fn into_outcome(self) -> crate::ExportOutcome {
        let Some(partial) = self.partial_success else {
            return crate::ExportOutcome::default();
        };
        crate::ExportOutcome {
            rejected_items: u64::try_from(partial.rejected).unwrap_or(0),
            message: Some(partial.error_message).filter(|message| !message.is_empty()),
        }
    }
}

pub(crate) use tape_otlp::rpc::{Status as RpcStatus, retry_delay};

#[cfg(test)]
pub(crate) fn encode_status_with_retry_delay(code: i32, delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap(),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap(),
        }),
    };
    RpcStatus {
        code,
        message: "slow down".to_owned(),
        details: vec![
            Any { type_url: "type.googleapis.com/google.rpc.DebugInfo".to_owned(), value: vec![1, 2, 3] },
            Any { type_url: RETRY_INFO_TYPE_URL.to_owned(), value: info.encode_to_vec() },
        ],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_is_found_among_the_details() {
        let details = encode_status_with_retry_delay(8, Duration::from_millis(1500));
        assert_eq!(retry_delay(&details), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn no_retry_info_means_no_delay() {
        let status = RpcStatus { code: 8, message: "full".to_owned(), details: Vec::new() };
        assert_eq!(retry_delay(&status.encode_to_vec()), None);
        assert_eq!(retry_delay(b""), None);
        assert_eq!(retry_delay(b"\xff\xff not protobuf"), None);
    }

    #[test]
    fn every_signal_response_reads_as_one_layout() {
        use tape_otlp::proto::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
        use tape_otlp::proto::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse};
        use tape_otlp::proto::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};

        let responses = [
            ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: 3,
                    error_message: "bad span".into(),
                }),
            }
            .encode_to_vec(),
            ExportMetricsServiceResponse {
                partial_success: Some(ExportMetricsPartialSuccess {
                    rejected_data_points: 3,
                    error_message: "bad span".into(),
                }),
            }
            .encode_to_vec(),
            ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: 3,
                    error_message: "bad span".into(),
                }),
            }
            .encode_to_vec(),
        ];
        for bytes in responses {
            let outcome = ExportResponse::decode(bytes.as_slice()).unwrap().into_outcome();
            assert_eq!(outcome, crate::ExportOutcome { rejected_items: 3, message: Some("bad span".into()) });
        }
        assert_eq!(ExportResponse::decode(&b""[..]).unwrap().into_outcome(), crate::ExportOutcome::default());
    }
}
