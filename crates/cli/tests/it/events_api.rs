//! `GET /api/v1/events` read by a real HTTP client from `otlp-tape serve`
//! while a replay job runs, and the capture job's queue fill.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::replay::seed;
use crate::serve::{Served, exit_within, export_spans};

const TOKEN: &str = "events-token";

/// A hang guard for reading the stream, not a measure of time.
const READ_LIMIT: Duration = Duration::from_mins(1);

/// Server-sent events read from a response, one at a time.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event as (name, data), comments skipped; `None` once the
    /// stream has ended.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        value.trim().clone_into(&mut name);
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, data.join("\n")));
            }
            let chunk = tokio::time::timeout(READ_LIMIT, self.response.chunk())
                .await
                .expect("an event or the end of the stream within the limit")
                .expect("the stream reads")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The data of the next `jobs` event.
    async fn jobs(&mut self) -> Value {
        let (name, data) = self.next().await.expect("the stream goes on");
        assert_eq!(name, "jobs");
        serde_json::from_str(&data).unwrap()
    }

    /// Reads `jobs` events until replay `id` is in one with a state other
    /// than `unless`; returns that replay.
    async fn replay_not(&mut self, id: &str, unless: &str) -> Value {
        loop {
            let jobs = self.jobs().await;
            let replays = jobs["replays"].as_array().unwrap();
            if let Some(replay) = replays.iter().find(|replay| replay["id"] == id)
                && replay["state"] != unless
            {
                return replay.clone();
            }
        }
    }
}

async fn open(served: &Served, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/api/v1/events", served.api));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_shows_a_replay_running_then_ended_and_ends_with_serve() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let served = Served::start(dir.path(), &["--api-token", TOKEN]);

    let refused = open(&served, None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(open(&served, Some("wrong")).await.status(), StatusCode::UNAUTHORIZED);

    let response = open(&served, Some(TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let mut events = Events { response, buffer: String::new() };
    // At once: every job list, empty so far.
    let first = events.jobs().await;
    for list in ["captures", "replays", "seeds", "exports", "compares"] {
        assert_eq!(first[list], json!([]), "{list}: {first}");
    }
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");

    // A replay long enough to be seen running (20 s of session at 4x).
    let body = json!({"session": "S", "endpoint": target.http_endpoint(), "speed": 4, "timestamps": "none"});
    let (status, started) = served.call(reqwest::Method::POST, "/api/v1/replays", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let running = events.replay_not(&id, "none").await;
    assert_eq!(running["state"], "running", "the start is an event of its own: {running}");
    assert!(running["progress"]["lagMillis"].is_number(), "{running}");
    // Stopped, then seen ended, with its report and series.
    let (status, _) = served.call(reqwest::Method::POST, &format!("/api/v1/replays/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let ended = events.replay_not(&id, "running").await;
    assert_eq!(ended["state"], "stopped", "{ended}");
    assert_eq!(ended["report"]["reason"], "stopped", "{ended}");
    assert_eq!(ended["report"]["series"]["bucketSeconds"], 1, "{ended}");
    // The same as the replay's own endpoint shows.
    let shown = served.get(&format!("/api/v1/replays/{id}")).await;
    assert_eq!(shown["report"], ended["report"]);

    // SIGTERM with the stream open: serve ends, and so does the stream.
    let status = tokio::task::block_in_place(|| exit_within(served, Duration::from_secs(30)));
    assert!(status.success());
    while let Some((name, _)) = events.next().await {
        assert_eq!(name, "jobs");
    }
    target.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_job_shows_its_queue_fill_against_the_queue_size() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[]);
    let body = json!({"sessionId": "queued", "queueSizeMb": 3});
    let (status, started) = served.call(reqwest::Method::POST, "/api/v1/captures", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let capacity = 3 * 1024 * 1024;
    assert_eq!(started["queue"], json!({"usedBytes": 0, "capacityBytes": capacity}), "{started}");

    export_spans(&served.http, 3).await;
    let running = served.get("/api/v1/captures/queued").await;
    let used = running["queue"]["usedBytes"].as_u64().unwrap();
    assert!(used <= capacity, "{running}");
    assert_eq!(running["queue"]["capacityBytes"], capacity);
    let listed = served.get("/api/v1/captures").await;
    assert_eq!(listed["captures"][0]["queue"]["capacityBytes"], capacity, "{listed}");

    served.call(reqwest::Method::POST, "/api/v1/captures/queued/stop", None).await;
    let done = served.until_done("/api/v1/captures/queued").await;
    // Everything admitted was written: the queue is empty.
    assert_eq!(done["queue"], json!({"usedBytes": 0, "capacityBytes": capacity}), "{done}");
    assert_eq!(done["counts"]["traces"]["items"], 30, "{done}");
}
