//! The export jobs: an export started through the API writes a stored
//! session's records as files, as `otlp-tape export` does, into an
//! `s3://bucket/prefix` or a directory under serve's `--export-dir`.
//!
//! The output is opened by the caller's opener ([`Host::open_output`](crate::Host));
//! a local `out` from a client is a path relative to the export directory
//! that must stay in it. Stopping an export drops its run: files not yet
//! committed are removed (local) or their uploads aborted (S3).

use std::path::{Component, Path};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path as UrlPath, State as Extract};
use axum::http::StatusCode;
use futures::FutureExt;
use serde_json::{Value, json};
use tape_files::ExportProgress;

use crate::api::{
    ApiError, ApiResult, JobLimit, WaitParam, accepted, job_id, list_jobs, ok, options, show_job, stop_job,
};
use crate::request::ExportOptions;
use crate::state::{ExportJob, Job, JobState, JobStatus, State, lock};

impl Job for ExportJob {
    fn status(&self) -> &JobStatus {
        &self.status
    }

    fn json(&self) -> Value {
        self.status.json(json!({
            "id": self.id,
            "sessionId": self.session_id,
            "options": self.options,
            "progress": *lock(&self.progress),
            "outcome": self.outcome,
        }))
    }

    /// The run is dropped at once: what it has not committed is removed.
    fn stop(&self) {
        self.stop.cancel();
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("no export {id:?}"))
}

pub(crate) async fn exports(Extract(state): Extract<Arc<State>>) -> ApiResult {
    ok(json!({ "exports": list_jobs(&state.exports) }))
}

pub(crate) async fn export(
    Extract(state): Extract<Arc<State>>,
    UrlPath(id): UrlPath<String>,
    wait: WaitParam,
) -> ApiResult {
    show_job(&state, &state.exports, &id, wait, || missing(&id)).await
}

pub(crate) async fn stop_export(Extract(state): Extract<Arc<State>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    stop_job(&state.exports, &id, || missing(&id))
}

/// Where an export of `out` writes: an `s3://` URL as it is, a local path
/// joined to `export_dir`; refused when local exports are off, or when the
/// path is absolute, climbs out with `..` or names another scheme.
fn resolve_out(export_dir: Option<&Path>, out: &str) -> Result<String, ApiError> {
    if out.starts_with("s3://") {
        return Ok(out.to_owned());
    }
    let refuse = |why: &str| {
        ApiError::bad_request(format!(
            "invalid value for \"out\" (--out): {out:?} {why}; give a path relative to serve's export directory \
             (--export-dir), or s3://<bucket>/<prefix>"
        ))
    };
    if out.contains("://") {
        return Err(refuse("is a URL that is not s3://"));
    }
    let path = Path::new(out);
    if path.has_root() || path.is_absolute() {
        return Err(refuse("is absolute"));
    }
    if path.components().any(|component| matches!(component, Component::ParentDir | Component::Prefix(_))) {
        return Err(refuse("leads out of the export directory with '..'"));
    }
    let Some(export_dir) = export_dir else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "local exports are off: this serve was started without --export-dir (OTLP_TAPE_EXPORT_DIR), so \
                 {out:?} has nowhere to go; export to s3://<bucket>/<prefix>, or start serve with --export-dir DIR"
            ),
        ));
    };
    Ok(export_dir.join(path).to_string_lossy().into_owned())
}

pub(crate) async fn start_export(
    Extract(state): Extract<Arc<State>>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if state.shutting_down.is_cancelled() {
        return Err(ApiError::shutting_down());
    }
    let config: ExportOptions = options(bytes)?;
    let target = resolve_out(state.export_dir.as_deref(), &config.out)?;
    let checked = config.validate().map_err(|error| ApiError::component(&error))?;
    let limit =
        JobLimit { most: state.limits.max_concurrent_exports, kind: "export", flag: "--max-concurrent-exports" };
    limit.check(&lock(&state.exports))?;
    let session_id = checked.config().session.clone();
    let metadata = state.store.read_metadata(&session_id).await.map_err(|error| ApiError::store(&error))?;
    if tape_session::is_unsealed(&metadata) {
        let advice = tape_session::unsealed_advice(state.store.as_ref(), &session_id).await;
        let refused = tape_files::Error::Unsealed { session: session_id, advice };
        return Err(ApiError::conflict(refused.to_string()));
    }
    let output = (state.open_output)(&target).map_err(ApiError::bad_request)?;

    let id = job_id("export");
    let stop = tokio_util::sync::CancellationToken::new();
    let progress = Arc::new(Mutex::new(ExportProgress::default()));
    let job = ExportJob {
        id: id.clone(),
        session_id,
        options: serde_json::to_value(checked.config()).unwrap_or(Value::Null),
        status: JobStatus::started(tape_capture::now()),
        progress: Arc::clone(&progress),
        stop: stop.clone(),
        outcome: None,
    };
    let body = job.json();
    limit.admit(&state.exports, id.clone(), job)?;
    state.job_started();
    let runner = Arc::clone(&state);
    state.tasks.spawn(async move {
        let report = move |now: ExportProgress| *lock(&progress) = now;
        let run = std::panic::AssertUnwindSafe(checked.run(runner.store.as_ref(), output.as_ref(), &report));
        // Stopping drops the run, and with it every sink not committed.
        let ended = tokio::select! {
            ended = run.catch_unwind() => Some(ended),
            () = stop.cancelled() => None,
        };
        runner.end_job(&runner.exports, &id, |job| match ended {
            Some(Ok(Ok(outcome))) => {
                job.outcome = serde_json::to_value(&outcome).ok();
                job.status.end(JobState::Completed, None);
            }
            Some(Ok(Err(error))) => job.status.end(JobState::Failed, Some(tape_session::error_chain(&error))),
            Some(Err(_)) => job.status.end(JobState::Failed, Some("the export task panicked".to_owned())),
            None => job.status.end(JobState::Stopped, None),
        });
    });
    accepted(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status and message (in the error's `Debug`) of a refused `out`.
    fn refused(export_dir: Option<&Path>, out: &str) -> (StatusCode, String) {
        let error = resolve_out(export_dir, out).expect_err(out);
        let message = format!("{error:?}");
        (axum::response::IntoResponse::into_response(error).status(), message)
    }

    #[test]
    fn local_outputs_stay_under_the_export_directory() {
        let dir = Path::new("/srv/exports");
        assert_eq!(resolve_out(Some(dir), "team/a").unwrap(), "/srv/exports/team/a");
        assert_eq!(resolve_out(Some(dir), "./a").unwrap(), "/srv/exports/./a");
        assert_eq!(resolve_out(None, "s3://bucket/prefix").unwrap(), "s3://bucket/prefix");
        for (out, why) in [
            ("../x", "'..'"),
            ("a/../../x", "'..'"),
            ("/etc", "absolute"),
            ("file:///etc", "not s3://"),
            ("http://x/y", "not s3://"),
        ] {
            let (status, message) = refused(Some(dir), out);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
            assert!(message.contains(why) && message.contains("--export-dir"), "{out}: {message}");
        }
        let (status, message) = refused(None, "team/a");
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("--export-dir") && message.contains("OTLP_TAPE_EXPORT_DIR"), "{message}");
        assert_eq!(refused(None, "../x").0, StatusCode::BAD_REQUEST);
    }
}
