//! The ClickHouse sink against a real ClickHouse server (Debian's 18.16):
//! schema creation, exact round trips, idempotent pushes, bound values, and
//! every failure named.

use std::net::TcpListener;

use serde_json::json;
use tape_annotations::{ClickHouseConfig, ClickHouseSink, PushOutcome, SinkError};
use tape_session::{Annotation, PhaseEntry, SessionId, Timestamp};
use tape_testkit::clickhouse::ClickHouseServer;

const SECOND: u64 = 1_000_000_000;
/// A start with nanoseconds, so a DateTime round trip would lose them.
const START: u64 = 1_767_225_600 * SECOND + 123_456_789;

fn config(server: &ClickHouseServer, database: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        user: Some(server.user().to_owned()),
        password: Some(server.password().to_owned()),
        database: database.to_owned(),
        ..ClickHouseConfig::new(server.http_url())
    }
}

fn phases(session: &str) -> Vec<Annotation> {
    let session: SessionId = session.parse().unwrap();
    [("baseline", 0, 10, vec![]), ("failure", 10, 20, vec!["payment-failure"]), ("rampdown", 20, 30, vec![])]
        .into_iter()
        .map(|(name, from, to, flags)| {
            let entry = PhaseEntry {
                name: name.to_owned(),
                start: Timestamp::from_unix_nanos(START + from * SECOND),
                end: Timestamp::from_unix_nanos(START + to * SECOND),
                flags: flags.into_iter().map(str::to_owned).collect(),
                source: None,
                writer: None,
            };
            Annotation::phase(&session, &entry, "checkout under failure", Timestamp::from_unix_nanos(START), "test")
        })
        .collect()
}

async fn row_count(server: &ClickHouseServer, database: &str) -> u64 {
    server.query(&format!("SELECT count() FROM {database}.annotations")).await.trim().parse().unwrap()
}

#[tokio::test]
async fn creates_the_table_and_round_trips_annotations_exactly() {
    let server = ClickHouseServer::start().await;
    let sink = ClickHouseSink::connect(config(&server, "training")).await.unwrap();
    assert_eq!(sink.location(), format!("training.annotations at {}", server.http_url()));

    // The schema's columns and types, as the server sees them.
    let columns = server
        .query(
            "SELECT name, type FROM system.columns WHERE database = 'training' AND table = 'annotations' ORDER BY name",
        )
        .await;
    for (name, ty) in tape_annotations::clickhouse::COLUMNS {
        assert!(columns.lines().any(|line| line == format!("{name}\t{ty}")), "{name} {ty} in\n{columns}");
    }

    let annotations = phases("seed-payment-failure-1");
    let outcome = sink.push(&annotations[0].session_id, &annotations).await.unwrap();
    assert_eq!(outcome, PushOutcome { inserted: 3, already_present: 0 });
    assert_eq!(sink.list(&annotations[0].session_id).await.unwrap(), annotations);

    // The readable columns hold what training queries expect.
    let rows = server
        .query(
            "SELECT session_id, annotation_type, annotation_key, toUnixTimestamp(time_range_start), \
             toUnixTimestamp(time_range_end), created_by FROM training.annotations ORDER BY time_range_start_ns",
        )
        .await;
    let expected: Vec<String> = annotations
        .iter()
        .map(|a| {
            format!(
                "seed-payment-failure-1\ttest\t{}\t{}\t{}\ttest",
                a.annotation_key,
                a.time_range_start.unix_nanos() / SECOND,
                a.time_range_end.unix_nanos() / SECOND
            )
        })
        .collect();
    assert_eq!(rows.lines().collect::<Vec<_>>(), expected);
    let value = server
        .query("SELECT annotation_value FROM training.annotations WHERE annotation_key = 'test.phase.failure'")
        .await;
    let value: serde_json::Value = serde_json::from_str(value.trim()).unwrap();
    assert_eq!(value["phase"], "failure");
    assert_eq!(value["flags"], json!(["payment-failure"]));

    // Another session's annotations are not listed.
    assert_eq!(sink.list(&"another".parse().unwrap()).await.unwrap(), []);
    // Connecting again to the existing table works and changes nothing.
    let again = ClickHouseSink::connect(config(&server, "training")).await.unwrap();
    assert_eq!(again.list(&annotations[0].session_id).await.unwrap(), annotations);
    server.stop().await;
}

#[tokio::test]
async fn pushing_twice_writes_each_annotation_once() {
    let server = ClickHouseServer::start().await;
    let sink = ClickHouseSink::connect(config(&server, "otel")).await.unwrap();
    let annotations = phases("capture-1");
    let session = annotations[0].session_id.clone();

    assert_eq!(sink.push(&session, &annotations[..2]).await.unwrap(), PushOutcome { inserted: 2, already_present: 0 });
    assert_eq!(sink.push(&session, &annotations).await.unwrap(), PushOutcome { inserted: 1, already_present: 2 });
    assert_eq!(sink.push(&session, &annotations).await.unwrap(), PushOutcome { inserted: 0, already_present: 3 });
    // The same annotation twice in one push is written once.
    let doubled = [annotations[0].clone(), annotations[0].clone()];
    assert_eq!(sink.push(&session, &doubled).await.unwrap(), PushOutcome { inserted: 0, already_present: 2 });
    assert_eq!(row_count(&server, "otel").await, 3);
    assert_eq!(sink.list(&session).await.unwrap(), annotations);

    // Who made it and when does not make it another annotation.
    let mut remade = annotations[1].clone();
    remade.created_by = "someone else".to_owned();
    assert_eq!(sink.push(&session, &[remade]).await.unwrap().inserted, 0);
    // A changed range does.
    let mut moved = annotations[1].clone();
    moved.time_range_end = Timestamp::from_unix_nanos(moved.time_range_end.unix_nanos() + 1);
    assert_eq!(sink.push(&session, std::slice::from_ref(&moved)).await.unwrap().inserted, 1);
    assert_eq!(row_count(&server, "otel").await, 4);
    server.stop().await;
}

#[tokio::test]
async fn values_with_quotes_and_sql_are_bound_not_executed() {
    let server = ClickHouseServer::start().await;
    let sink = ClickHouseSink::connect(config(&server, "otel")).await.unwrap();
    let hostile = "x' OR '1'='1'); DROP TABLE otel.annotations; -- \\ \" ` ?fields ? {name:String}";
    let session: SessionId = "s-1.a_b".parse().unwrap();
    let annotation = Annotation {
        session_id: session.clone(),
        annotation_type: format!("incident{hostile}"),
        annotation_key: format!("ops.{hostile}"),
        annotation_value: json!({ "note": hostile, "nested": { "k'": ["\u{0}", "\n", "é"] } }),
        time_range_start: Timestamp::from_unix_nanos(START),
        time_range_end: Timestamp::from_unix_nanos(START + SECOND),
        created_at: Timestamp::from_unix_nanos(START),
        created_by: hostile.to_owned(),
    };
    // Another session's row, which an injected `OR 1=1` would list.
    let other = phases("other-session");
    sink.push(&other[0].session_id, &other).await.unwrap();

    sink.push(&session, std::slice::from_ref(&annotation)).await.unwrap();
    assert_eq!(sink.list(&session).await.unwrap(), std::slice::from_ref(&annotation));
    assert_eq!(sink.push(&session, &[annotation]).await.unwrap().inserted, 0);
    assert_eq!(row_count(&server, "otel").await, 4);
    assert_eq!(server.query("SELECT count() FROM system.tables WHERE database = 'otel'").await.trim(), "1");

    // A database name is an identifier, never SQL.
    let error = ClickHouseSink::connect(config(&server, "otel; DROP DATABASE otel")).await.unwrap_err();
    assert!(matches!(error, SinkError::InvalidDatabase { .. }), "{error}");
    assert!(error.to_string().contains("CLICKHOUSE_DATABASE"), "{error}");
    assert_eq!(row_count(&server, "otel").await, 4);
    server.stop().await;
}

#[tokio::test]
async fn a_table_with_another_schema_is_refused_and_left_alone() {
    let server = ClickHouseServer::start().await;
    server.query("CREATE DATABASE legacy").await;
    server
        .query(
            "CREATE TABLE legacy.annotations (session_id String, annotation_key String, time_range_start String) \
             ENGINE = MergeTree ORDER BY session_id",
        )
        .await;
    server.query("INSERT INTO legacy.annotations VALUES ('s', 'k', 'yesterday')").await;

    let error = ClickHouseSink::connect(config(&server, "legacy")).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, SinkError::IncompatibleSchema { .. }), "{message}");
    for expected in [
        "legacy.annotations",
        &server.http_url(),
        "column annotation_id is missing",
        "column time_range_start is String, not DateTime",
        "CLICKHOUSE_DATABASE",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    assert!(!message.contains("column session_id"), "{message}");
    // Nothing was changed or added.
    assert_eq!(server.query("SELECT * FROM legacy.annotations").await, "s\tk\tyesterday\n");
    server.stop().await;
}

#[tokio::test]
async fn wrong_credentials_are_named() {
    let server = ClickHouseServer::start().await;
    let mut wrong = config(&server, "otel");
    wrong.password = Some("not-the-password".to_owned());
    let error = ClickHouseSink::connect(wrong).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, SinkError::Credentials { .. }), "{message}");
    assert!(message.contains(&format!("refused user \"{}\"", server.user())), "{message}");
    assert!(message.contains("CLICKHOUSE_PASSWORD"), "{message}");
    assert!(!message.contains("not-the-password"), "the password must not be shown: {message}");
    // The database was not created by the refused user.
    assert_eq!(server.query("SELECT count() FROM system.databases WHERE name = 'otel'").await.trim(), "0");
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_and_a_bad_url_are_named() {
    // A port nobody listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let error = ClickHouseSink::connect(ClickHouseConfig::new(&url)).await.unwrap_err();
    assert!(matches!(error, SinkError::Unreachable { .. }), "{error}");
    assert!(error.to_string().starts_with(&format!("cannot reach ClickHouse at {url}: ")), "{error}");

    let error = ClickHouseSink::connect(ClickHouseConfig::new("localhost:8123")).await.unwrap_err();
    assert!(matches!(error, SinkError::InvalidUrl { .. }), "{error}");
    assert!(error.to_string().contains("CLICKHOUSE_URL"), "{error}");
}

#[test]
fn the_password_is_not_in_debug_output() {
    let config = ClickHouseConfig { password: Some("s3cret".to_owned()), ..ClickHouseConfig::new("http://x:8123") };
    let text = format!("{config:?}");
    assert!(!text.contains("s3cret") && text.contains("<redacted>"), "{text}");
}
