//! Every span, log record and data point of seeded sessions and of
//! third-party files appears exactly once in the Parquet tables, with the
//! right values, ids and timestamps, read back with the `parquet` crate.

use std::collections::BTreeMap;
use std::path::Path;

use tape_files::parquet::{RowContext, Table};
use tape_otlp::{ExportRequest, Signal, SignalSet};
use tape_seed_generator::{BUILTIN_PATTERNS, DEFAULT_START, Generator, Params, Pattern, builtin_pattern};

use crate::parquet_tables::{Cell, Record, Row, read_rows, write_tables};
use crate::{parquet_direct, parquet_expected};

const PHASES: [&str; 3] = ["warm-up", "incident", "unlabelled"];

/// Writes the tables of `records`, reads them back and checks that they
/// hold exactly the expected rows; returns the rows read, per table.
fn assert_round_trip(records: &[Record], with_phase: bool, batch_rows: usize) -> BTreeMap<Table, Vec<Row>> {
    parquet_direct::assert_direct_equals_prost(records, with_phase);
    let files = write_tables(records, with_phase, batch_rows);
    let mut expected: BTreeMap<Table, Vec<Row>> = BTreeMap::new();
    for (request, context) in records {
        for (table, rows) in parquet_expected::rows(request, context, with_phase) {
            expected.entry(table).or_default().extend(rows);
        }
    }
    assert_eq!(files.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "the tables written");
    let mut read = BTreeMap::new();
    for (table, bytes) in &files {
        let mut rows = read_rows(*table, with_phase, bytes);
        let mut want = expected.remove(table).expect("expected rows");
        rows.sort();
        want.sort();
        assert_eq!(rows.len(), want.len(), "{table}: rows");
        for (got, want) in rows.iter().zip(&want) {
            assert_eq!(got, want, "{table}: a row");
        }
        read.insert(*table, rows);
    }
    read
}

fn json_lines(path: &Path, signal: Signal) -> Vec<ExportRequest> {
    let text = std::fs::read_to_string(path).expect("a fixture");
    text.lines().map(|line| ExportRequest::decode_json(signal, line.as_bytes()).expect("OTLP/JSON")).collect()
}

#[test]
fn seeded_sessions_of_every_pattern_round_trip() {
    for (name, _) in BUILTIN_PATTERNS {
        let pattern = Pattern::parse(name, builtin_pattern(name).expect("built in")).expect("valid");
        let params = Params {
            seed: 15,
            start: DEFAULT_START,
            duration_nanos: 2_000_000_000,
            rate: 5.0,
            error_rate: 0.2,
            signals: SignalSet::ALL,
        };
        let session: &'static str = Box::leak(format!("seed-{name}").into_boxed_str());
        let records: Vec<Record> = Generator::new(&pattern, params)
            .expect("valid parameters")
            .enumerate()
            .map(|(n, batch)| {
                let request = ExportRequest::decode_protobuf(batch.signal, &batch.payload).expect("decodes");
                assert_eq!(request.item_count(), batch.items);
                let context = RowContext {
                    session,
                    receive_time: batch.receive_time.unix_nanos(),
                    phase: Some(PHASES[n % PHASES.len()]),
                };
                (request, context)
            })
            .collect();
        let read = assert_round_trip(&records, true, 500);
        for table in [Table::Traces, Table::Logs] {
            assert!(read.get(&table).is_some_and(|rows| !rows.is_empty()), "{name}: {table} rows");
        }
        assert!(read.keys().any(|table| table.signal() == Signal::Metrics), "{name}: metrics rows");
    }
}

#[test]
fn the_collector_file_exporter_samples_round_trip_without_the_phase_column() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let mut records = Vec::new();
    for (file, signal) in
        [("traces.jsonl", Signal::Traces), ("logs.jsonl", Signal::Logs), ("metrics.jsonl", Signal::Metrics)]
    {
        for (n, request) in json_lines(&data.join(file), signal).into_iter().enumerate() {
            let context =
                RowContext { session: "imported", receive_time: 1_795_341_600_000_000_000 + n as u64, phase: None };
            records.push((request, context));
        }
    }
    let read = assert_round_trip(&records, false, 3);
    let tables: Vec<Table> = read.keys().copied().collect();
    assert_eq!(tables, [Table::Traces, Table::Logs, Table::MetricsGauge, Table::MetricsSum, Table::MetricsHistogram]);
}

/// The value of column `name` in `row` of `table`.
fn value<'a>(table: Table, row: &'a Row, name: &str) -> &'a Cell {
    &row[table.schema(true).index_of(name).expect("a column")]
}

fn text(value: &str) -> Cell {
    Cell::Str(value.to_owned())
}

fn entry<'a>(cell: &'a Cell, key: &str) -> Option<&'a str> {
    let Cell::Map(entries) = cell else { panic!("not a map: {cell:?}") };
    entries.iter().find(|(known, _)| known == key).map(|(_, value)| value.as_str())
}

#[test]
fn a_file_with_every_field_set_round_trips_with_the_exporters_renderings() {
    let lines =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/parquet_every_field.jsonl"))
            .expect("the fixture");
    let records: Vec<Record> = lines
        .lines()
        .zip([Signal::Traces, Signal::Logs, Signal::Metrics])
        .map(|(line, signal)| {
            let request = ExportRequest::decode_json(signal, line.as_bytes()).expect("OTLP/JSON");
            (
                request,
                RowContext { session: "every-field", receive_time: 1_795_341_601_000_000_000, phase: Some("incident") },
            )
        })
        .collect();
    let read = assert_round_trip(&records, true, 1);
    assert_eq!(read.len(), Table::ALL.len(), "every table has rows");
    let counts: Vec<usize> = Table::ALL.iter().map(|table| read[table].len()).collect();
    assert_eq!(counts, [8, 7, 4, 3, 2, 2, 2]);

    // Spot checks against the exporter's renderings, written out.
    let traces = &read[&Table::Traces];
    let cart = traces.iter().find(|row| *value(Table::Traces, row, "SpanName") == text("POST /cart")).expect("a span");
    let resource = value(Table::Traces, cart, "ResourceAttributes");
    assert_eq!(entry(resource, "host.cores"), Some("-8"));
    assert_eq!(entry(resource, "k8s.ready"), Some("true"));
    assert_eq!(entry(resource, "cpu.ratio"), Some("0.75"));
    assert_eq!(entry(resource, "blob"), Some("AAEC/w=="));
    assert_eq!(entry(resource, "tags"), Some(r#"["a",1,false,2.5,"AQ==",null]"#));
    assert_eq!(entry(resource, "nested"), Some(r#"{"a":3,"m":{"x":"wins"},"z":"last"}"#));
    assert_eq!(entry(resource, "dup"), Some("two"));
    assert_eq!(entry(resource, "empty"), Some(""));
    assert_eq!(*value(Table::Traces, cart, "ServiceName"), text("checkout"));
    assert_eq!(*value(Table::Traces, cart, "TraceId"), text("5b8efff798038103d269b633813fc60c"));
    assert_eq!(*value(Table::Traces, cart, "ParentSpanId"), text("eee19b7ec3c1b173"));
    assert_eq!(*value(Table::Traces, cart, "SpanKind"), text("Server"));
    assert_eq!(*value(Table::Traces, cart, "StatusCode"), text("Error"));
    assert_eq!(*value(Table::Traces, cart, "Duration"), Cell::Int(12_345_678));
    assert_eq!(*value(Table::Traces, cart, "Timestamp"), Cell::Int(1_795_341_600_000_000_000));
    assert_eq!(
        *value(Table::Traces, cart, "Links.TraceId"),
        Cell::List(vec![text("0af7651916cd43dd8448eb211c80319c"), text("")])
    );
    let Cell::List(link_attributes) = value(Table::Traces, cart, "Links.Attributes") else { panic!("a list") };
    assert_eq!(entry(&link_attributes[0], "link.weight"), Some("1e-7"));
    let by_name =
        |name: &str| traces.iter().find(|row| *value(Table::Traces, row, "SpanName") == text(name)).expect(name);
    assert_eq!(*value(Table::Traces, by_name("clock skew"), "Duration"), Cell::Int(0));
    assert_eq!(*value(Table::Traces, by_name("unknown kind"), "SpanKind"), text("7"));
    assert_eq!(*value(Table::Traces, by_name("unknown kind"), "StatusCode"), text("9"));
    assert_eq!(*value(Table::Traces, by_name("service name not a string"), "ServiceName"), text(""));
    assert_eq!(*value(Table::Traces, by_name("no resource"), "ParentSpanId"), text(""));

    let logs = &read[&Table::Logs];
    let body = |row: &Row| value(Table::Logs, row, "Body").clone();
    let bodies: Vec<Cell> = logs.iter().map(body).collect();
    for rendered in [r#"{"code":137,"msg":"crash"}"#, "", "3q2+7w==", "1e+21", r#"["x",true]"#, "no scope", "-1"] {
        assert!(bodies.contains(&text(rendered)), "a body {rendered:?} in {bodies:?}");
    }
    let crash = logs.iter().find(|row| *value(Table::Logs, row, "EventName") == text("app.crash")).expect("a record");
    assert_eq!(*value(Table::Logs, crash, "TraceFlags"), Cell::Int(1));
    assert_eq!(*value(Table::Logs, crash, "SeverityNumber"), Cell::Int(21));
    assert_eq!(*value(Table::Logs, crash, "ScopeSchemaUrl"), text("https://opentelemetry.io/schemas/1.27.0"));
    let debug = logs.iter().find(|row| *value(Table::Logs, row, "SeverityText") == text("DEBUG")).expect("a record");
    assert_eq!(*value(Table::Logs, debug, "Timestamp"), Cell::Int(1_795_341_600_004_000_000));

    let histograms = &read[&Table::MetricsHistogram];
    let mins: Vec<&Cell> = histograms.iter().map(|row| value(Table::MetricsHistogram, row, "Min")).collect();
    assert!(mins.contains(&&Cell::Null) && mins.contains(&&Cell::Float(0.05f64.to_bits())), "{mins:?}");
    let sums = &read[&Table::MetricsSum];
    let big = sums
        .iter()
        .find(|row| {
            *value(Table::MetricsSum, row, "MetricName") == text("requests")
                && *value(Table::MetricsSum, row, "Flags") == Cell::Int(0)
        })
        .expect("a point");
    assert_eq!(*value(Table::MetricsSum, big, "Value"), Cell::Float(9_007_199_254_740_992f64.to_bits()));
    assert_eq!(entry(value(Table::MetricsSum, big, "Attributes"), "route"), Some("/b"));
    assert_eq!(*value(Table::MetricsSum, big, "ScopeDroppedAttrCount"), Cell::Int(7));
}
