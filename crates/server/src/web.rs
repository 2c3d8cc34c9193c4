//! The web UI: `/` and `/ui/...`, served from the files built into the
//! binary (`tape-web`). These routes need no token: they hold no data, and
//! the page asks for the token and sends it with every API request.
//!
//! Every file is sent with a content security policy that lets the page
//! load and connect to this origin only (nothing from outside: the UI works
//! offline), `nosniff`, `no-cache` (the files change with the binary) and
//! an `ETag`, so a reload revalidates and gets a 304.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::ApiError;

/// The content security policy of every UI file.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";

/// The UI's routes, outside the token check.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/ui/{*path}", get(file))
}

async fn index(request: HeaderMap) -> Response {
    serve("index.html", &request)
}

async fn file(Path(path): Path<String>, request: HeaderMap) -> Response {
    serve(&format!("ui/{path}"), &request)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = tape_web::asset(path) else {
        return ApiError::not_found(format!("no such file of the web UI: /{path}")).into_response();
    };
    let etag = asset.etag();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.bytes.into_response() };
    let headers = response.headers_mut();
    if !fresh {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}
