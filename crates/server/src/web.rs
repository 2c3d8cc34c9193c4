//! The web UI: `/` and `/ui/...`, served from the files built into the
//! binary (`tape-web`). These routes need no token: they hold no data, and
//! the page asks for the token and sends it with every API request.

use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;

/// The UI's routes, outside the token check.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/ui/{*path}", get(file))
}

async fn index() -> Response {
    todo!("web: index.html")
}

async fn file(Path(path): Path<String>) -> Response {
    let _ = path;
    todo!("web: a UI file")
}
