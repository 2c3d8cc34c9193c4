//! The few `google.rpc` messages OTLP uses around its own: `Status` (the
//! body of an OTLP/HTTP error and the `grpc-status-details-bin` of a gRPC
//! one) and `RetryInfo`, which tells a client when to retry. Written by
//! hand; nothing else of the Google API protos is needed.

use std::time::Duration;

use prost::Message;

/// The `type_url` of a `google.rpc.RetryInfo` in `Status.details`.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Status {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The message for people.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details, such as a `RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Any {
    /// What `value` holds.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct RetryInfo {
    /// How long the client should wait before it retries.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds past the seconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// An encoded `Status` of `code` and `message` whose details carry a
/// `RetryInfo` of `delay`.
pub fn status_with_retry_delay(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: delay.subsec_nanos().cast_signed(),
        }),
    };
    Status {
        code,
        message: message.to_owned(),
        details: vec![Any { type_url: RETRY_INFO_TYPE_URL.to_owned(), value: info.encode_to_vec() }],
    }
    .encode_to_vec()
}

/// The retry delay of the first `RetryInfo` in the details of an encoded
/// `Status`, if it carries one. A negative delay reads as zero.
pub fn retry_delay(status: &[u8]) -> Option<Duration> {
    let status = Status::decode(status).ok()?;
    let info = status.details.iter().find(|any| any.type_url == RETRY_INFO_TYPE_URL)?;
    let delay = RetryInfo::decode(info.value.as_slice()).ok()?.retry_delay.unwrap_or_default();
    let seconds = u64::try_from(delay.seconds).unwrap_or(0);
    let nanos = u32::try_from(delay.nanos).unwrap_or(0).min(999_999_999);
    Some(if delay.seconds < 0 { Duration::ZERO } else { Duration::new(seconds, nanos) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_delay_survives_the_round_trip() {
        let status = status_with_retry_delay(8, "slow down", Duration::from_millis(1500));
        assert_eq!(retry_delay(&status), Some(Duration::from_millis(1500)));
        assert_eq!(Status::decode(&status[..]).unwrap().message, "slow down");
    }

    #[test]
    fn a_status_without_retry_info_has_no_delay() {
        let status = Status { code: 14, message: "down".to_owned(), details: Vec::new() }.encode_to_vec();
        assert_eq!(retry_delay(&status), None);
        assert_eq!(retry_delay(b"\xff\xff"), None);
    }
}
