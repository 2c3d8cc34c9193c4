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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves the UI's routes on a loopback port and answers one raw
    /// HTTP/1.1 request with its status line, headers and body.
    async fn get(path: &str, extra_header: &str) -> (String, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, super::router::<()>()).await });
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra_header}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        server.abort();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head.to_ascii_lowercase(), body.to_string())
    }

    #[tokio::test]
    async fn the_page_is_served_with_its_security_headers() {
        let (head, body) = get("/", "").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
        assert!(head.contains(&format!("content-security-policy: {}", super::CONTENT_SECURITY_POLICY)), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(head.contains("cache-control: no-cache"), "{head}");
        assert!(body.contains("id=\"token-dialog\""), "{body:.200}");
    }

    #[tokio::test]
    async fn modules_and_vendored_files_are_served_by_type() {
        let (head, _) = get("/ui/app.js", "").await;
        assert!(head.contains("content-type: text/javascript"), "{head}");
        let (head, _) = get("/ui/vendor/uPlot.min.css", "").await;
        assert!(head.contains("content-type: text/css"), "{head}");
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_json_404() {
        let (head, body) = get("/ui/nothing.js", "").await;
        assert!(head.starts_with("http/1.1 404"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(body["error"]["status"], 404);
        assert!(body["error"]["message"].as_str().unwrap().contains("/ui/nothing.js"), "{body}");
    }

    #[tokio::test]
    async fn a_known_etag_is_answered_304() {
        let etag = tape_web::asset("ui/app.js").unwrap().etag();
        let (head, body) = get("/ui/app.js", &format!("If-None-Match: {etag}\r\n")).await;
        assert!(head.starts_with("http/1.1 304"), "{head}");
        assert!(head.contains(&format!("etag: {}", etag.to_ascii_lowercase())), "{head}");
        assert!(body.is_empty());
        let (head, _) = get("/ui/app.js", "If-None-Match: \"0.0.0-other\"\r\n").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
    }
}
