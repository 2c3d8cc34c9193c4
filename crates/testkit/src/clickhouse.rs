//! A real ClickHouse server for tests: Debian's `clickhouse-server` (18.16)
//! run as a child process from a temporary directory, with its HTTP and
//! native ports on free ports of `127.0.0.1`.
//!
//! The binary must be installed (`.ci/install-clickhouse`, or
//! `apt-get install clickhouse-server`); nothing here installs it.
//!
//! ```no_run
//! # async fn example() {
//! let server = tape_testkit::clickhouse::ClickHouseServer::start().await;
//! println!("{} as {}", server.http_url(), server.user());
//! server.stop().await;
//! # }
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The user that needs a password. Requests without credentials run as
/// ClickHouse's `default` user, whose password is empty.
const USER: &str = "tape";

/// The password of [`USER`].
const PASSWORD: &str = "otlp-tape-test-secret";

/// The server binary's name, looked up on `PATH` first.
const BINARY_NAME: &str = "clickhouse-server";

/// Where Debian's `clickhouse-server` package puts the binary; `/usr/sbin`
/// is often not on a non-root user's `PATH`.
const DEBIAN_BINARY: &str = "/usr/sbin/clickhouse-server";

/// How long the server gets to answer `/ping` (it takes well under a second).
const START_LIMIT: Duration = Duration::from_secs(20);

/// How often readiness is checked while starting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long one `/ping` request may take.
const PING_LIMIT: Duration = Duration::from_secs(2);

/// How long the server gets to exit after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// How long `Drop` waits for the killed server to exit before removing its
/// directory.
const KILL_LIMIT: Duration = Duration::from_secs(5);

/// How many times a start is tried with fresh ports when another process
/// took a port between choosing it and the server binding it.
const START_ATTEMPTS: usize = 3;

/// How many lines of each log end up in an error message.
const LOG_TAIL_LINES: usize = 30;

/// A ClickHouse server on free ports of `127.0.0.1`, keeping its data,
/// configuration and logs in a temporary directory. It accepts the
/// password user [`user`](Self::user) / [`password`](Self::password) and
/// ClickHouse's `default` user with an empty password, from loopback only;
/// its time zone is UTC. Dropping it kills the server and removes the
/// directory; [`stop`](Self::stop) shuts it down cleanly first.
pub struct ClickHouseServer {
    child: Child,
    http_port: u16,
    tcp_port: u16,
    // Dropped after the child has exited (see `Drop`), so the server does
    // not write into the directory while it is removed.
    dir: tempfile::TempDir,
}

impl ClickHouseServer {
    /// Starts a server and waits until it answers. Panics with the reason
    /// and the end of the server's log when it cannot: this is a test
    /// helper. [`try_start`](Self::try_start) returns the message instead.
    pub async fn start() -> ClickHouseServer {
        match ClickHouseServer::try_start().await {
            Ok(server) => server,
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts a server and waits until `GET /ping` answers `Ok.`; the error
    /// says why it could not (the binary is missing, or the server exited
    /// or did not answer within 20 s, with the end of its log).
    pub async fn try_start() -> Result<ClickHouseServer, String> {
        let binary = find_binary()?;
        let mut attempt = 1;
        loop {
            match start_once(&binary).await {
                Err(failure) if failure.port_taken && attempt < START_ATTEMPTS => attempt += 1,
                result => return result.map_err(|failure| failure.message),
            }
        }
    }

    /// The HTTP interface's URL, `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The HTTP interface's port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The native protocol's port (used by `clickhouse-client`).
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// The user that needs [`password`](Self::password).
    pub fn user(&self) -> &str {
        USER
    }

    /// The password of [`user`](Self::user).
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// Runs one SQL statement over HTTP as ClickHouse's `default` user and
    /// returns its output (TabSeparated unless the statement says
    /// otherwise). Panics with the server's message when it fails: this is
    /// how tests look at tables independently of the code under test.
    pub async fn query(&self, sql: &str) -> String {
        let exchange = async {
            let mut stream = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port))).await?;
            let head = format!(
                "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                sql.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(sql.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            std::io::Result::Ok(response)
        };
        let response = match tokio::time::timeout(START_LIMIT, exchange).await {
            Ok(Ok(response)) => String::from_utf8_lossy(&response).into_owned(),
            Ok(Err(error)) => panic!("send `{sql}` to the ClickHouse test server: {error}"),
            Err(elapsed) => panic!("the ClickHouse test server did not answer `{sql}`: {elapsed}"),
        };
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "`{sql}` failed: {head}\n{body}");
        body.to_owned()
    }

    /// The directory holding the server's configuration (`config.xml`,
    /// `users.xml`), data (`data/`) and logs (`log/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the server's error log and of its standard error,
    /// for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(self.dir.path())
    }

    /// Sends SIGTERM and waits for the server to exit; when it has not
    /// exited after 10 s it is killed and this panics. Its ports are closed
    /// once this returns.
    pub async fn stop(mut self) {
        // No id once the server has been reaped: it has exited already.
        if let Some(pid) = self.child.id() {
            send_sigterm(pid).await;
        }
        let Ok(status) = tokio::time::timeout(STOP_LIMIT, self.child.wait()).await else {
            let _ = self.child.kill().await;
            panic!("the ClickHouse test server did not exit within {STOP_LIMIT:?} of SIGTERM{}", self.log_tail());
        };
        if let Err(error) = status {
            panic!("wait for the ClickHouse test server to exit: {error}");
        }
    }
}

impl std::fmt::Debug for ClickHouseServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseServer")
            .field("http_port", &self.http_port)
            .field("tcp_port", &self.tcp_port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        // `kill_on_drop` would kill it too, but without waiting; the
        // directory must outlive the process. SIGKILL takes effect at once,
        // so this blocks only for a moment.
        if self.child.start_kill().is_ok() {
            let deadline = Instant::now() + KILL_LIMIT;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Why one start failed.
struct StartFailure {
    message: String,
    /// The server could not bind a port: worth another try with new ports.
    port_taken: bool,
}

impl StartFailure {
    fn new(message: String) -> StartFailure {
        StartFailure { message, port_taken: false }
    }
}

/// Finds the server binary on `PATH`, then at Debian's path.
fn find_binary() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join(BINARY_NAME)).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from(DEBIAN_BINARY)]).find(|candidate| candidate.is_file()).ok_or_else(|| {
        format!(
            "the ClickHouse test server needs `{BINARY_NAME}`, which is neither on PATH nor at {DEBIAN_BINARY}; \
             install it with `.ci/install-clickhouse` or `apt-get install clickhouse-server`"
        )
    })
}

/// Writes the configuration into a new temporary directory, spawns the
/// server and waits until it answers.
async fn start_once(binary: &Path) -> Result<ClickHouseServer, StartFailure> {
    let dir = tempfile::Builder::new()
        .prefix("clickhouse-test-")
        .tempdir()
        .map_err(|error| StartFailure::new(format!("create the ClickHouse test server's directory: {error}")))?;
    let [http_port, tcp_port] = free_ports()
        .map_err(|error| StartFailure::new(format!("find free ports for the ClickHouse test server: {error}")))?;
    write_config(dir.path(), http_port, tcp_port).map_err(|error| {
        StartFailure::new(format!(
            "write the ClickHouse test server's configuration in {}: {error}",
            dir.path().display()
        ))
    })?;

    let log_dir = dir.path().join("log");
    let output_file = |name: &str| {
        File::create(log_dir.join(name)).map_err(|error| {
            StartFailure::new(format!(
                "create {} for the ClickHouse test server: {error}",
                log_dir.join(name).display()
            ))
        })
    };
    let (stdout, stderr) = (output_file("stdout.log")?, output_file("stderr.log")?);
    let mut child = Command::new(binary)
        .arg(format!("--config-file={}", dir.path().join("config.xml").display()))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| StartFailure::new(format!("run {}: {error}", binary.display())))?;

    let deadline = Instant::now() + START_LIMIT;
    loop {
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => return Err(exited_early(dir.path(), status)),
            Err(error) => {
                return Err(StartFailure::new(format!("check on the ClickHouse test server: {error}")));
            }
        }
        if ping(http_port).await {
            return Ok(ClickHouseServer { child, http_port, tcp_port, dir });
        }
        if Instant::now() >= deadline {
            // Gone before its directory is removed.
            let _ = child.kill().await;
            return Err(StartFailure::new(format!(
                "the ClickHouse test server did not answer GET http://127.0.0.1:{http_port}/ping within \
                 {START_LIMIT:?}{}",
                log_tail(dir.path())
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The failure for a server that exited before it answered.
fn exited_early(dir: &Path, status: ExitStatus) -> StartFailure {
    let error_log = std::fs::read_to_string(dir.join("log/server.err.log")).unwrap_or_default();
    StartFailure {
        message: format!("the ClickHouse test server exited while starting ({status}){}", log_tail(dir)),
        port_taken: error_log.contains("Address already in use"),
    }
}

/// Two distinct ports that were free a moment ago: bound to port 0 at the
/// same time, then released.
fn free_ports() -> std::io::Result<[u16; 2]> {
    let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let second = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok([first.local_addr()?.port(), second.local_addr()?.port()])
}

/// Whether `GET /ping` answers `200` with the body `Ok.`. HTTP/1.0 makes
/// the server close the connection after the response, so reading to the
/// end reads exactly one response.
async fn ping(port: u16) -> bool {
    let exchange = async {
        let mut stream = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        stream.write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        std::io::Result::Ok(response)
    };
    match tokio::time::timeout(PING_LIMIT, exchange).await {
        Ok(Ok(response)) => {
            let response = String::from_utf8_lossy(&response);
            response.starts_with("HTTP/1.") && response.contains(" 200 ") && response.ends_with("\r\n\r\nOk.\n")
        }
        _ => false,
    }
}

/// Sends SIGTERM through the shell's `kill` builtin: the standard library
/// only sends SIGKILL, and this crate has no `unsafe` for `libc::kill`.
async fn send_sigterm(pid: u32) {
    // A `kill` that fails means the server has already exited, which the
    // caller's `wait` reports; only a shell that cannot run is a problem.
    let shell =
        Command::new("sh").args(["-c", "kill -TERM \"$1\"", "sh", &pid.to_string()]).stdin(Stdio::null()).status();
    if let Err(error) = shell.await {
        panic!("run `sh` to send SIGTERM to the ClickHouse test server: {error}");
    }
}

/// Writes `config.xml` and `users.xml` and creates the directories they
/// name.
fn write_config(dir: &Path, http_port: u16, tcp_port: u16) -> std::io::Result<()> {
    for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
        std::fs::create_dir(dir.join(sub))?;
    }
    let path = |sub: &str| xml_escape(&dir.join(sub).display().to_string());
    // 18.16 reads `<yandex>` as the root element, requires
    // `mark_cache_size` (later versions default it) and wants directory
    // paths with a trailing slash. Without `interserver_http_port` it opens
    // no replication port. A short keep-alive lets a stop finish quickly
    // while a client still holds an idle connection.
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{log}</log>
        <errorlog>{error_log}</errorlog>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{data}/</path>
    <tmp_path>{tmp}/</tmp_path>
    <user_files_path>{user_files}/</user_files_path>
    <format_schema_path>{format_schemas}/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <keep_alive_timeout>1</keep_alive_timeout>
</yandex>
"#,
        log = path("log/server.log"),
        error_log = path("log/server.err.log"),
        data = path("data"),
        tmp = path("tmp"),
        user_files = path("user_files"),
        format_schemas = path("format_schemas"),
    );
    let user = |name: &str, password: &str| {
        format!(
            "        <{name}>
            <password>{password}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{name}>
"
        )
    };
    // An empty profile and an empty quota (no limits) are the least the
    // server accepts.
    let users = format!(
        r#"<?xml version="1.0"?>
<yandex>
    <profiles><default/></profiles>
    <quotas><default/></quotas>
    <users>
{default}{tape}    </users>
</yandex>
"#,
        default = user("default", ""),
        tape = user(USER, &xml_escape(PASSWORD)),
    );
    std::fs::write(dir.join("config.xml"), config)?;
    std::fs::write(dir.join("users.xml"), users)
}

/// Escapes text for an XML element's content.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The last lines of the server's error log and standard error, each under
/// a heading; empty when both are empty.
fn log_tail(dir: &Path) -> String {
    let mut tail = String::new();
    for name in ["server.err.log", "stderr.log"] {
        let path = dir.join("log").join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(error) => {
                let _ = write!(tail, "\n(cannot read {}: {error})", path.display());
                continue;
            }
        };
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let _ = write!(tail, "\n--- last lines of {} ---", path.display());
        for line in &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..] {
            let _ = write!(tail, "\n{line}");
        }
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_escapes_markup() {
        assert_eq!(xml_escape("/tmp/a&b<c>"), "/tmp/a&amp;b&lt;c&gt;");
    }

    #[test]
    fn free_ports_are_distinct() {
        let [first, second] = free_ports().unwrap();
        assert_ne!(first, second);
    }
}
