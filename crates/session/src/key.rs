use std::fmt;
use std::str::FromStr;

use tape_otlp::Signal;

use crate::{Timestamp, WriterId};

/// The longest blob id accepted.
const MAX_BLOB_ID_LEN: usize = 32;

/// The key of a blob inside its session:
/// `raw/YYYY-MM-DD/HH/<signal>-<first-record-unix-ms>-<blob-id>.otlp.gz`,
/// the hour being the UTC hour of the first record's receive time; in a
/// session with several writers (format version 2),
/// `raw/YYYY-MM-DD/HH/<signal>-<first-record-unix-ms>-<writer-id>-<blob-id>.otlp.gz`.
///
/// Keys read from metadata are parsed strictly, so a key can never reach
/// outside its session's directory or prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey {
    first_record_unix_ms: u64,
    signal: Signal,
    writer: Option<WriterId>,
    blob_id: String,
}

/// Why a string is not a valid blob key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid blob key {key:?}: {reason}")]
pub struct InvalidBlobKey {
    /// The refused key.
    pub key: String,
    /// What rule it broke.
    pub reason: String,
}

impl BlobKey {
    /// The key of a blob of `signal` whose first record was received at
    /// `first_receive_time`; `blob_id` is 1 to 32 lowercase letters or digits.
    pub fn new(signal: Signal, first_receive_time: Timestamp, blob_id: &str) -> Result<Self, InvalidBlobKey> {
        if blob_id.is_empty()
            || blob_id.len() > MAX_BLOB_ID_LEN
            || !blob_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(InvalidBlobKey {
                key: blob_id.to_owned(),
                reason: "a blob id is 1 to 32 lowercase letters or digits".to_owned(),
            });
        }
        Ok(BlobKey {
            first_record_unix_ms: first_receive_time.unix_millis(),
            signal,
            writer: None,
            blob_id: blob_id.to_owned(),
        })
    }

    /// The key of a blob written by `writer`, one of several writers of a
    /// session; otherwise as [`new`](BlobKey::new).
    pub fn for_writer(
        signal: Signal,
        first_receive_time: Timestamp,
        writer: &WriterId,
        blob_id: &str,
    ) -> Result<Self, InvalidBlobKey> {
        Ok(BlobKey { writer: Some(writer.clone()), ..BlobKey::new(signal, first_receive_time, blob_id)? })
    }

    /// The same blob under another writer (or none): what `sessions merge`
    /// copies a source's blob to.
    #[must_use]
    pub fn with_writer(&self, writer: Option<WriterId>) -> Self {
        BlobKey { writer, ..self.clone() }
    }

    /// The writer, in a session with several.
    pub fn writer(&self) -> Option<&WriterId> {
        self.writer.as_ref()
    }

    /// The signal of the records in the blob.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The blob id, unique within the session.
    pub fn blob_id(&self) -> &str {
        &self.blob_id
    }

    /// The receive time of the first record, to the millisecond.
    pub fn first_record_time(&self) -> Timestamp {
        Timestamp::from_unix_nanos(self.first_record_unix_ms * 1_000_000)
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raw/{}/{}-{}-", self.first_record_time().hour_partition(), self.signal, self.first_record_unix_ms)?;
        if let Some(writer) = &self.writer {
            write!(f, "{writer}-")?;
        }
        write!(f, "{}.otlp.gz", self.blob_id)
    }
}

impl FromStr for BlobKey {
    type Err = InvalidBlobKey;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let refuse = |reason: &str| InvalidBlobKey { key: key.to_owned(), reason: reason.to_owned() };
        let rest = key.strip_prefix("raw/").ok_or_else(|| refuse("it does not start with raw/"))?;
        let (partition, file) =
            rest.rsplit_once('/').ok_or_else(|| refuse("expected raw/YYYY-MM-DD/HH/<signal>-<ms>-<id>.otlp.gz"))?;
        let stem = file.strip_suffix(".otlp.gz").ok_or_else(|| refuse("it does not end with .otlp.gz"))?;
        let mut parts = stem.splitn(3, '-');
        let (Some(signal), Some(millis), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refuse("the file name is not <signal>-<ms>-<id>.otlp.gz"));
        };
        // A blob id has no '-': what comes before the last one is the writer.
        let (writer, blob_id) = match rest.rsplit_once('-') {
            Some((writer, blob_id)) => (Some(WriterId::new(writer).map_err(|error| refuse(error.reason))?), blob_id),
            None => (None, rest),
        };
        let signal = match signal {
            "traces" => Signal::Traces,
            "metrics" => Signal::Metrics,
            "logs" => Signal::Logs,
            _ => return Err(refuse("the signal is not traces, metrics or logs")),
        };
        // Canonical decimal only (no leading zero), so that the key written
        // back is the key read; and no time past what nanoseconds can hold.
        if millis.is_empty()
            || !millis.bytes().all(|b| b.is_ascii_digit())
            || millis.len() > 15
            || (millis.len() > 1 && millis.starts_with('0'))
        {
            return Err(refuse("the first-record time is not unix milliseconds"));
        }
        let nanos = millis
            .parse::<u64>()
            .ok()
            .and_then(|millis| millis.checked_mul(1_000_000))
            .ok_or_else(|| refuse("the first-record time is not unix milliseconds"))?;
        let parsed = BlobKey {
            writer,
            ..BlobKey::new(signal, Timestamp::from_unix_nanos(nanos), blob_id).map_err(|error| refuse(&error.reason))?
        };
        if parsed.first_record_time().hour_partition() != partition {
            return Err(refuse("the hour partition does not match the first-record time"));
        }
        Ok(parsed)
    }
}

tape_otlp::serde_as_text!(BlobKey: Serialize, Deserialize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_the_documented_layout() {
        let time = Timestamp::parse_rfc3339("2026-11-22T10:15:00.250Z").unwrap();
        let key = BlobKey::new(Signal::Metrics, time, "0001").unwrap();
        assert_eq!(key.to_string(), "raw/2026-11-22/10/metrics-1795342500250-0001.otlp.gz");
        assert_eq!(key.to_string().parse::<BlobKey>().unwrap(), key);
    }

    #[test]
    fn a_writer_is_part_of_the_key() {
        let time = Timestamp::parse_rfc3339("2026-11-22T10:15:00.250Z").unwrap();
        let writer = WriterId::new("node-7-x2k9q1").unwrap();
        let key = BlobKey::for_writer(Signal::Traces, time, &writer, "000003").unwrap();
        assert_eq!(key.to_string(), "raw/2026-11-22/10/traces-1795342500250-node-7-x2k9q1-000003.otlp.gz");
        let parsed: BlobKey = key.to_string().parse().unwrap();
        assert_eq!(parsed, key);
        assert_eq!(parsed.writer(), Some(&writer));
        assert_eq!(parsed.blob_id(), "000003");
        assert_eq!(parsed.with_writer(None).to_string(), "raw/2026-11-22/10/traces-1795342500250-000003.otlp.gz");
    }

    #[test]
    fn refuses_keys_that_could_escape() {
        for key in [
            "raw/../../etc/passwd",
            "raw/2026-11-22/10/../metrics-1795342500250-0001.otlp.gz",
            "raw/2026-11-22/10/metrics-1795342500250-../x.otlp.gz",
            "raw/2026-11-22/11/metrics-1795342500250-0001.otlp.gz",
            "raw/2026-11-22/10/spans-1795342500250-0001.otlp.gz",
            "raw/2026-11-22/10/metrics-1795342500250-ABC.otlp.gz",
            "/raw/2026-11-22/10/metrics-1795342500250-0001.otlp.gz",
            "raw/2026-11-22/10/metrics-1795342500250--0001.otlp.gz",
            "raw/2026-11-22/10/metrics-1795342500250-Host-0001.otlp.gz",
            "raw/2026-11-22/10/metrics-1795342500250-host--0001.otlp.gz",
            "raw/2026-11-22/10/metrics-1795342500250-host.a-0001.otlp.gz",
        ] {
            assert!(key.parse::<BlobKey>().is_err(), "{key} was accepted");
        }
    }
}
