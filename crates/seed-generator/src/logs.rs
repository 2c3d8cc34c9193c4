//! Log records that go with the spans: the pattern's templates, and an
//! ERROR record for each span that fails on its own.

use std::fmt::Write as _;

use tape_otlp::ExportRequest;
use tape_otlp::proto::collector::logs::v1::ExportLogsServiceRequest;
use tape_otlp::proto::common::v1::{AnyValue, any_value};
use tape_otlp::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

use crate::generator::LogRecordPlan;
use crate::pattern::{Pattern, Piece, Value};
use crate::proto;

/// Severity number of ERROR in the OpenTelemetry log data model.
const SEVERITY_ERROR: i32 = 17;

/// A logs request for `service` holding `logs`.
pub(crate) fn encode(pattern: &Pattern, service: usize, logs: &[LogRecordPlan]) -> Vec<u8> {
    let log_records = logs.iter().map(|log| record(pattern, log)).collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(proto::resource(&pattern.services[service].resource)),
            scope_logs: vec![ScopeLogs { scope: Some(proto::scope()), log_records, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    };
    ExportRequest::Logs(request).encode_protobuf()
}

#[allow(clippy::single_match_else)] // two cases of equal weight
fn record(pattern: &Pattern, log: &LogRecordPlan) -> LogRecord {
    let node = &pattern.nodes[log.node as usize];
    let (severity_number, severity_text, body, attributes) = match log.template {
        Some(index) => {
            let template = &node.logs[usize::from(index)];
            let mut body = String::new();
            for piece in &template.body {
                match piece {
                    Piece::Text(text) => body.push_str(text),
                    Piece::DurationMs => {
                        let _ = write!(body, "{}", log.duration / 1_000_000);
                    }
                    Piece::StatusCode => match log.status_code {
                        Some(code) => {
                            let _ = write!(body, "{code}");
                        }
                        None => body.push('-'),
                    },
                    Piece::Attribute(attribute) => {
                        let _ = write!(body, "{}", node.attributes[*attribute].1);
                    }
                }
            }
            (template.severity_number, template.severity_text, body, proto::key_values(&template.attributes))
        }
        None => {
            let error = node.error.as_ref().expect("error logs are planned for spans that can fail");
            let mut attributes = Vec::new();
            if let Some(exception) = &error.exception {
                attributes.push(proto::key_value("exception.type", &Value::String(exception.clone())));
                attributes.push(proto::key_value("exception.message", &Value::String(error.message.clone())));
            }
            (SEVERITY_ERROR, "ERROR", format!("{}: {}", node.name, error.message), attributes)
        }
    };
    LogRecord {
        time_unix_nano: log.time,
        observed_time_unix_nano: log.time,
        severity_number,
        severity_text: severity_text.to_owned(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(body)) }),
        attributes,
        trace_id: log.trace_id.to_vec(),
        span_id: log.span_id.to_vec(),
        flags: 1,
        ..LogRecord::default()
    }
}
