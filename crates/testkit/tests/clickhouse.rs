//! The ClickHouse test server: it starts, answers queries over HTTP, checks
//! passwords, stops, and runs next to another one.

use std::net::{Ipv4Addr, SocketAddr};

use reqwest::StatusCode;
use tape_testkit::clickhouse::ClickHouseServer;

/// Credentials for a query: ClickHouse's `default` user (no password), the
/// server's password user, or that user with a wrong password.
#[derive(Clone, Copy)]
enum As {
    Default,
    PasswordUser,
    WrongPassword,
}

/// Sends `sql` as the body of a POST to the HTTP interface and returns the
/// status and the response body.
async fn send(server: &ClickHouseServer, who: As, sql: &str) -> (StatusCode, String) {
    let request = reqwest::Client::new().post(server.http_url()).body(sql.to_owned());
    let request = match who {
        As::Default => request,
        As::PasswordUser => request.basic_auth(server.user(), Some(server.password())),
        As::WrongPassword => request.basic_auth(server.user(), Some("not-the-password")),
    };
    let response = request.send().await.unwrap_or_else(|error| panic!("send `{sql}`: {error}"));
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Runs `sql` and returns its output; panics with the server's message
/// when it fails.
async fn query(server: &ClickHouseServer, who: As, sql: &str) -> String {
    let (status, body) = send(server, who, sql).await;
    assert_eq!(status, StatusCode::OK, "`{sql}` failed: {body}");
    body
}

/// Whether something accepts connections on `port` of 127.0.0.1.
async fn is_listening(port: u16) -> bool {
    tokio::net::TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await.is_ok()
}

#[tokio::test]
async fn answers_queries_over_http() {
    let server = ClickHouseServer::start().await;

    let version = query(&server, As::Default, "SELECT version()").await;
    let version = version.trim_end();
    assert!(
        !version.is_empty() && version.split('.').all(|part| part.parse::<u32>().is_ok()),
        "not a version: {version:?}"
    );

    query(&server, As::Default, "CREATE DATABASE t").await;
    query(&server, As::Default, "CREATE TABLE t.x (a String, b DateTime, c UInt64) ENGINE = MergeTree ORDER BY a")
        .await;
    query(&server, As::Default, "INSERT INTO t.x VALUES ('a', '2024-01-02 03:04:05', 1), ('b', 1700000000, 2)").await;
    query(
        &server,
        As::PasswordUser,
        "INSERT INTO t.x FORMAT JSONEachRow {\"a\":\"c\",\"b\":\"1970-01-01 00:00:00\",\"c\":3}",
    )
    .await;
    assert_eq!(query(&server, As::Default, "SELECT count() FROM t.x").await, "3\n");
    // The server's time zone is UTC, so DateTime text is UTC.
    assert_eq!(
        query(&server, As::PasswordUser, "SELECT a, toUnixTimestamp(b), c FROM t.x ORDER BY a FORMAT TabSeparated")
            .await,
        "a\t1704164645\t1\nb\t1700000000\t2\nc\t0\t3\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn checks_the_password() {
    let server = ClickHouseServer::start().await;

    // The query sees itself in `system.processes`, with the user it runs as.
    let who = "SELECT user FROM system.processes";
    assert_eq!(query(&server, As::PasswordUser, who).await, format!("{}\n", server.user()));
    assert_eq!(query(&server, As::Default, who).await, "default\n");

    // 18.16 answers 401 with its error code 193; later versions say
    // "Authentication failed" with code 516.
    let (status, body) = send(&server, As::WrongPassword, "SELECT 1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("Code: 193") && body.contains("Wrong password for user tape"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn stop_closes_the_ports() {
    let server = ClickHouseServer::start().await;
    let (http_port, tcp_port) = (server.http_port(), server.tcp_port());
    assert!(is_listening(http_port).await && is_listening(tcp_port).await);

    server.stop().await;
    assert!(!is_listening(http_port).await, "port {http_port} still open after stop");
    assert!(!is_listening(tcp_port).await, "port {tcp_port} still open after stop");
}

#[tokio::test]
async fn drop_kills_the_server_and_removes_its_directory() {
    let server = ClickHouseServer::start().await;
    let (dir, http_port) = (server.dir().to_owned(), server.http_port());
    assert!(dir.join("config.xml").is_file());

    drop(server);
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
    assert!(!is_listening(http_port).await, "port {http_port} still open after drop");
}

#[tokio::test]
async fn two_servers_run_side_by_side() {
    let (first, second) = tokio::join!(ClickHouseServer::start(), ClickHouseServer::start());
    assert_ne!(first.http_port(), second.http_port());
    assert_ne!(first.tcp_port(), second.tcp_port());
    assert_ne!(first.dir(), second.dir());

    query(&first, As::Default, "CREATE DATABASE only_first").await;
    let count = "SELECT count() FROM system.databases WHERE name = 'only_first'";
    assert_eq!(query(&first, As::Default, count).await, "1\n");
    assert_eq!(query(&second, As::Default, count).await, "0\n");

    tokio::join!(first.stop(), second.stop());
}
