//! The ClickHouse annotation sink: the `annotations` table, created when
//! missing from the versioned schema in `config/clickhouse/schema/`.
//!
//! Every value in a query is bound by the `clickhouse` crate, which quotes
//! and escapes it; nothing is interpolated into SQL text. Rows travel as
//! RowBinary without type headers (`with_validation(false)`), which is what
//! ClickHouse 18.16 understands; the table's columns are checked against
//! [`COLUMNS`] instead.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use clickhouse::sql::Identifier;
use serde::{Deserialize, Serialize};
use tape_session::{Annotation, SessionId, Timestamp};

/// The schema files, in the order they are applied: (file name, SQL).
pub const SCHEMA: &[(&str, &str)] =
    &[("001-annotations.sql", include_str!("../../../config/clickhouse/schema/001-annotations.sql"))];

/// The table's name.
pub const TABLE: &str = "annotations";

/// The database used when none is configured.
pub const DEFAULT_DATABASE: &str = "otel";

/// How long one request to ClickHouse may take unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The columns the sink reads and writes, with their types.
pub const COLUMNS: &[(&str, &str)] = &[
    ("annotation_id", "String"),
    ("session_id", "String"),
    ("annotation_type", "String"),
    ("annotation_key", "String"),
    ("annotation_value", "String"),
    ("time_range_start", "DateTime"),
    ("time_range_end", "DateTime"),
    ("created_at", "DateTime"),
    ("created_by", "String"),
    ("time_range_start_ns", "UInt64"),
    ("time_range_end_ns", "UInt64"),
    ("created_at_ns", "UInt64"),
];

/// Where the table is and who may write it.
#[derive(Clone)]
pub struct ClickHouseConfig {
    /// The server's HTTP interface: `http://host:8123` or `https://...`.
    pub url: String,
    /// The user; ClickHouse's `default` user when `None`.
    pub user: Option<String>,
    /// The user's password.
    pub password: Option<String>,
    /// The database holding the `annotations` table; created when missing.
    pub database: String,
    /// How long each request may take.
    pub timeout: Duration,
}

impl ClickHouseConfig {
    /// A configuration for the server at `url` with the default database,
    /// user and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        ClickHouseConfig {
            url: url.into(),
            user: None,
            password: None,
            database: DEFAULT_DATABASE.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn user_name(&self) -> &str {
        self.user.as_deref().unwrap_or("default")
    }
}

impl fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What went wrong talking to ClickHouse; each names the server.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The URL is not an `http://` or `https://` URL.
    #[error("ClickHouse URL {url:?} is not an http:// or https:// URL (set --clickhouse-url or CLICKHOUSE_URL)")]
    InvalidUrl {
        /// The URL given.
        url: String,
    },
    /// The database name is not a plain identifier.
    #[error(
        "ClickHouse database name {database:?} must be 1 to 64 letters, digits or '_', not starting with a digit \
         (CLICKHOUSE_DATABASE)"
    )]
    InvalidDatabase {
        /// The name given.
        database: String,
    },
    /// No connection could be made.
    #[error("cannot reach ClickHouse at {url}: {cause}")]
    Unreachable {
        /// The server.
        url: String,
        /// Why.
        cause: String,
    },
    /// The server refused the user or password.
    #[error(
        "ClickHouse at {url} refused user {user:?}: wrong user name or password (set CLICKHOUSE_USER and \
         CLICKHOUSE_PASSWORD): {message}"
    )]
    Credentials {
        /// The server.
        url: String,
        /// The user.
        user: String,
        /// The server's message.
        message: String,
    },
    /// The table exists with other columns.
    #[error(
        "the table {database}.{TABLE} in ClickHouse at {url} is not otlp-tape's annotations table: {problems}. \
         Use another database (CLICKHOUSE_DATABASE), or rename that table; otlp-tape will create its own \
         from config/clickhouse/schema/"
    )]
    IncompatibleSchema {
        /// The server.
        url: String,
        /// The database.
        database: String,
        /// What differs, column by column.
        problems: String,
    },
    /// The server did not answer in time.
    #[error("ClickHouse at {url} did not answer within {seconds} s while {doing}")]
    TimedOut {
        /// The server.
        url: String,
        /// The limit.
        seconds: u64,
        /// What was being done.
        doing: &'static str,
    },
    /// The server answered with an error.
    #[error("ClickHouse at {url} failed while {doing}: {message}")]
    Server {
        /// The server.
        url: String,
        /// What was being done.
        doing: &'static str,
        /// The server's message.
        message: String,
    },
    /// A row of the table cannot be read back as an annotation.
    #[error(
        "a row of {database}.{TABLE} in ClickHouse at {url} (annotation_id {id}) is not a valid annotation: {message}"
    )]
    BadRow {
        /// The server.
        url: String,
        /// The database.
        database: String,
        /// The row's `annotation_id`.
        id: String,
        /// What is wrong.
        message: String,
    },
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushOutcome {
    /// Annotations written now.
    pub inserted: usize,
    /// Annotations that were in the table already and were not written again.
    pub already_present: usize,
}

/// One row of the table.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
struct Row {
    annotation_id: String,
    session_id: String,
    annotation_type: String,
    annotation_key: String,
    annotation_value: String,
    time_range_start: u32,
    time_range_end: u32,
    created_at: u32,
    created_by: String,
    time_range_start_ns: u64,
    time_range_end_ns: u64,
    created_at_ns: u64,
}

/// Whole seconds of `time` for a `DateTime` column (which ends in 2106).
fn seconds(time: Timestamp) -> u32 {
    u32::try_from(time.unix_nanos() / 1_000_000_000).unwrap_or(u32::MAX)
}

impl Row {
    fn new(annotation: &Annotation) -> Self {
        Row {
            annotation_id: annotation.identity(),
            session_id: annotation.session_id.to_string(),
            annotation_type: annotation.annotation_type.clone(),
            annotation_key: annotation.annotation_key.clone(),
            annotation_value: annotation.value_text(),
            time_range_start: seconds(annotation.time_range_start),
            time_range_end: seconds(annotation.time_range_end),
            created_at: seconds(annotation.created_at),
            created_by: annotation.created_by.clone(),
            time_range_start_ns: annotation.time_range_start.unix_nanos(),
            time_range_end_ns: annotation.time_range_end.unix_nanos(),
            created_at_ns: annotation.created_at.unix_nanos(),
        }
    }

    fn into_annotation(self) -> Result<Annotation, String> {
        let session_id: SessionId = self.session_id.parse().map_err(|error| format!("session_id: {error}"))?;
        let annotation_value = serde_json::from_str(&self.annotation_value)
            .map_err(|error| format!("annotation_value is not JSON text: {error}"))?;
        let annotation = Annotation {
            session_id,
            annotation_type: self.annotation_type,
            annotation_key: self.annotation_key,
            annotation_value,
            time_range_start: Timestamp::from_unix_nanos(self.time_range_start_ns),
            time_range_end: Timestamp::from_unix_nanos(self.time_range_end_ns),
            created_at: Timestamp::from_unix_nanos(self.created_at_ns),
            created_by: self.created_by,
        };
        annotation.check(&annotation.session_id)?;
        Ok(annotation)
    }
}

/// A connection to the `annotations` table of one ClickHouse database.
#[derive(Clone)]
pub struct ClickHouseSink {
    client: clickhouse::Client,
    config: ClickHouseConfig,
}

impl fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseSink").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Whether `name` is a plain ClickHouse identifier.
fn valid_database(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl ClickHouseSink {
    /// Connects to the server, creates the database and the table when
    /// they are missing, and checks that the table has the columns of
    /// [`COLUMNS`].
    pub async fn connect(config: ClickHouseConfig) -> Result<Self, SinkError> {
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(SinkError::InvalidUrl { url: config.url.clone() });
        }
        if !valid_database(&config.database) {
            return Err(SinkError::InvalidDatabase { database: config.database.clone() });
        }
        let mut server = clickhouse::Client::default().with_url(&config.url).with_validation(false);
        if let Some(user) = &config.user {
            server = server.with_user(user);
        }
        if let Some(password) = &config.password {
            server = server.with_password(password);
        }
        let client = server.clone().with_database(&config.database);
        let sink = ClickHouseSink { client, config };

        // The database must exist before a request may name it.
        sink.run(
            "creating the database",
            server.query("CREATE DATABASE IF NOT EXISTS ?").bind(Identifier(&sink.config.database)).execute(),
        )
        .await?;
        for (_, sql) in SCHEMA {
            sink.run("creating the annotations table", sink.client.query(sql).execute()).await?;
        }
        sink.check_columns().await?;
        Ok(sink)
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// `database.annotations at URL`, for messages.
    pub fn location(&self) -> String {
        format!("{}.{TABLE} at {}", self.config.database, self.config.url)
    }

    async fn check_columns(&self) -> Result<(), SinkError> {
        let columns: Vec<(String, String)> = self
            .run(
                "reading the annotations table's columns",
                self.client
                    .query("SELECT name, type FROM system.columns WHERE database = ? AND table = ?")
                    .bind(self.config.database.as_str())
                    .bind(TABLE)
                    .fetch_all(),
            )
            .await?;
        let mut problems = Vec::new();
        for (name, expected) in COLUMNS {
            match columns.iter().find(|(column, _)| column == name) {
                None => problems.push(format!("column {name} is missing")),
                // A current server may add the time zone: DateTime('UTC').
                Some((_, actual))
                    if actual == expected || (*expected == "DateTime" && actual.starts_with("DateTime(")) => {}
                Some((_, actual)) => problems.push(format!("column {name} is {actual}, not {expected}")),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SinkError::IncompatibleSchema {
                url: self.config.url.clone(),
                database: self.config.database.clone(),
                problems: problems.join(", "),
            })
        }
    }

    /// Writes those of `annotations` whose [`Annotation::identity`] the
    /// table does not hold yet for `session`, in one insert: a push that
    /// fails writes nothing, and pushing again never duplicates a row.
    pub async fn push(&self, session: &SessionId, annotations: &[Annotation]) -> Result<PushOutcome, SinkError> {
        let present: HashSet<String> = self
            .run(
                "reading the session's annotations",
                self.client
                    .query("SELECT annotation_id FROM annotations WHERE session_id = ?")
                    .bind(session.as_str())
                    .fetch_all::<String>(),
            )
            .await?
            .into_iter()
            .collect();
        let mut seen = present.clone();
        let rows: Vec<Row> =
            annotations.iter().map(Row::new).filter(|row| seen.insert(row.annotation_id.clone())).collect();
        let outcome = PushOutcome { inserted: rows.len(), already_present: annotations.len() - rows.len() };
        if rows.is_empty() {
            return Ok(outcome);
        }
        self.run("writing annotations", async {
            let mut insert = self.client.insert::<Row>(TABLE).await?;
            for row in &rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
        .await?;
        Ok(outcome)
    }

    /// The annotations of `session`, by start of their time range, then key.
    pub async fn list(&self, session: &SessionId) -> Result<Vec<Annotation>, SinkError> {
        let rows: Vec<Row> = self
            .run(
                "reading the session's annotations",
                self.client
                    .query(
                        "SELECT ?fields FROM annotations WHERE session_id = ? \
                         ORDER BY time_range_start_ns, annotation_key, time_range_end_ns, annotation_id",
                    )
                    .bind(session.as_str())
                    .fetch_all(),
            )
            .await?;
        let mut seen = HashSet::new();
        rows.into_iter()
            .filter(|row| seen.insert(row.annotation_id.clone()))
            .map(|row| {
                let id = row.annotation_id.clone();
                row.into_annotation().map_err(|message| SinkError::BadRow {
                    url: self.config.url.clone(),
                    database: self.config.database.clone(),
                    id,
                    message,
                })
            })
            .collect()
    }

    /// Runs one request within the timeout and turns its error into a
    /// [`SinkError`] naming the server.
    async fn run<T>(
        &self,
        doing: &'static str,
        request: impl Future<Output = clickhouse::error::Result<T>>,
    ) -> Result<T, SinkError> {
        let url = self.config.url.clone();
        match tokio::time::timeout(self.config.timeout, request).await {
            Err(_) => Err(SinkError::TimedOut { url, seconds: self.config.timeout.as_secs(), doing }),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.classify(doing, error)),
        }
    }

    fn classify(&self, doing: &'static str, error: clickhouse::error::Error) -> SinkError {
        let url = self.config.url.clone();
        match error {
            clickhouse::error::Error::Network(cause) => SinkError::Unreachable { url, cause: chain(&*cause) },
            clickhouse::error::Error::TimedOut => {
                SinkError::TimedOut { url, seconds: self.config.timeout.as_secs(), doing }
            }
            clickhouse::error::Error::BadResponse(message) if is_credentials_error(&message) => {
                SinkError::Credentials { url, user: self.config.user_name().to_owned(), message: first_line(&message) }
            }
            clickhouse::error::Error::BadResponse(message) => {
                SinkError::Server { url, doing, message: first_line(&message) }
            }
            other => SinkError::Server { url, doing, message: other.to_string() },
        }
    }
}

/// Codes ClickHouse gives a refused login: 192 unknown user, 193 wrong
/// password, 194 password required, 516 authentication failed (current
/// servers say only that, whatever the reason).
fn is_credentials_error(message: &str) -> bool {
    ["Code: 192", "Code: 193", "Code: 194", "Code: 516"].iter().any(|code| message.contains(code))
        || message.contains("Authentication failed")
}

/// The first line of a server message (its stack trace, if any, is noise).
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

/// An error and its causes, joined by `: `.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_plain_identifiers() {
        for name in ["otel", "_x", "otlp_tape_2"] {
            assert!(valid_database(name), "{name}");
        }
        for name in ["", "2x", "a-b", "a.b", "x`; DROP TABLE annotations", &"x".repeat(65)] {
            assert!(!valid_database(name), "{name}");
        }
    }

    #[test]
    fn the_schema_file_creates_every_column_with_its_type() {
        let sql = SCHEMA[0].1;
        for (name, ty) in COLUMNS {
            assert!(
                sql.lines().any(|line| line.trim() == format!("{name} {ty},") || line.trim() == format!("{name} {ty}")),
                "{name} {ty}"
            );
        }
        // The crate binds `?`: a question mark in the file would be taken
        // for a placeholder.
        assert!(!sql.contains('?'));
    }

    #[test]
    fn credential_errors_of_old_and_new_servers_are_recognised() {
        assert!(is_credentials_error("Code: 193, e.displayText() = DB::Exception: Wrong password for user tape"));
        assert!(is_credentials_error("Code: 516. DB::Exception: tape: Authentication failed: password is incorrect"));
        assert!(!is_credentials_error("Code: 60. DB::Exception: Table otel.annotations doesn't exist"));
    }
}
