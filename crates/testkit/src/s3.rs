//! An in-process S3 server for tests: `s3s` with the `s3s-fs` file-system
//! backend, served over HTTP on `127.0.0.1` with SigV4 authentication.
//!
//! ```no_run
//! # async fn example() {
//! let server = tape_testkit::s3::S3TestServer::start().await;
//! println!("s3://{} at {}", server.bucket(), server.endpoint());
//! # }
//! ```

use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s_fs::FileSystem;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The access key the server accepts.
const ACCESS_KEY: &str = "otlp-tape-test";

/// The secret key the server accepts.
const SECRET_KEY: &str = "otlp-tape-test-secret";

/// The bucket created at start.
const BUCKET: &str = "otlp-tape-test";

/// An S3 server on a free port of `127.0.0.1`, storing objects in a
/// temporary directory (a key is a file path under the bucket's directory).
/// It requires SigV4 signatures made with [`access_key`](Self::access_key)
/// and [`secret_key`](Self::secret_key) and holds one empty bucket,
/// [`bucket`](Self::bucket). Dropping it stops the server, closes its
/// connections and removes the directory.
pub struct S3TestServer {
    endpoint: String,
    // Dropped after the task is aborted (see `Drop`), so nothing writes to
    // the directory while it is removed.
    root: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl S3TestServer {
    /// Starts a server. Panics when it cannot (no temporary directory, no
    /// free port): this is a test helper.
    pub async fn start() -> S3TestServer {
        let root = tempfile::tempdir().expect("create the S3 test server's directory");
        std::fs::create_dir(root.path().join(BUCKET)).expect("create the S3 test server's bucket");
        let file_system = FileSystem::new(root.path()).expect("open the S3 test server's directory");
        let mut builder = S3ServiceBuilder::new(file_system);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();

        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind the S3 test server to 127.0.0.1");
        let address = listener.local_addr().expect("the S3 test server's address");
        let task = tokio::spawn(serve(listener, service));
        S3TestServer { endpoint: format!("http://{address}"), root, task }
    }

    /// The endpoint URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The access key id the server accepts.
    pub fn access_key(&self) -> &str {
        ACCESS_KEY
    }

    /// The secret access key the server accepts.
    pub fn secret_key(&self) -> &str {
        SECRET_KEY
    }

    /// The bucket that exists from the start.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The directory that holds the server's data. Multipart uploads in
    /// progress keep their parts here as `.upload_id-*` files.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The directory that holds the bucket's objects: the object
    /// `a/b/c` is the file `<bucket_dir>/a/b/c`.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }
}

impl std::fmt::Debug for S3TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3TestServer")
            .field("endpoint", &self.endpoint)
            .field("bucket", &BUCKET)
            .field("root", &self.root.path())
            .finish_non_exhaustive()
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its `JoinSet`, which aborts every
        // connection task.
        self.task.abort();
    }
}

/// Accepts connections until the task is aborted; each connection is served
/// on a task of `connections`, so they end with the loop.
async fn serve(listener: TcpListener, service: S3Service) {
    let http = ConnectionBuilder::new(TokioExecutor::new());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // A failed accept (a client that hung up early) concerns
                // that client only.
                let Ok((socket, _)) = accepted else { continue };
                let connection = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                connections.spawn(async move {
                    // A client that goes away mid-request is not the server's problem.
                    let _ = connection.await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
