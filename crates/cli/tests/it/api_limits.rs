//! Finding 9: what the control API lets a caller start is bounded: the
//! number of replays and seeds running at once, a seed's size, and where
//! replays send; and a seed can be stopped like a replay.

use predicates::str::contains;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::serve::Served;

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("not an API error: {body}"))
}

// Several threads: the seed generates on a blocking thread while the API
// answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_are_capped_in_size_and_number_and_a_running_seed_stops() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &["--max-concurrent-seeds", "1", "--max-seed-traces", "20000000"]);

    // The 9·10^8 traces: refused before anything runs.
    let (status, body) =
        served.call(Method::POST, "/api/v1/seeds", Some(json!({"rate": 10000, "duration": "25h"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        message(&body),
        "this seed would generate 900000000 traces (duration × rate), more than the 20000000 this serve allows \
         (--max-seed-traces); lower the duration or the rate"
    );
    assert_eq!(served.get("/api/v1/seeds").await["seeds"], json!([]));

    // 10^7 traces in the first second: no batch is ready until all of them
    // are generated, so only a stop checked between traces ends it early.
    let (status, big) = served
        .call(
            Method::POST,
            "/api/v1/seeds",
            Some(json!({"pattern": "high-load", "sessionId": "big", "rate": 10_000_000, "duration": "1s"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{big}");
    let id = big["id"].as_str().unwrap().to_owned();

    // One seed at a time.
    let (status, body) = served.call(Method::POST, "/api/v1/seeds", Some(json!({"duration": "1s"}))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        message(&body),
        "1 seed is running, the most this serve allows at once (--max-concurrent-seeds 1); wait for one to end or \
         stop one, then try again"
    );

    let (status, stopping) = served.call(Method::POST, &format!("/api/v1/seeds/{id}/stop"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{stopping}");
    assert_eq!(stopping["id"], id.as_str());
    let stopped = served.until_done(&format!("/api/v1/seeds/{id}")).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(stopped["error"], Value::Null, "{stopped}");
    // Its partial session is gone.
    let (status, body) = served.call(Method::GET, "/api/v1/sessions/big", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!dir.path().join("sessions/big").exists());

    // The slot is free again.
    let (status, small) =
        served.call(Method::POST, "/api/v1/seeds", Some(json!({"duration": "2s", "sessionId": "small"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{small}");
    let small = served.until_done(&format!("/api/v1/seeds/{}", small["id"].as_str().unwrap())).await;
    assert_eq!(small["state"], "completed", "{small}");
    // Stopping a seed that ended changes nothing.
    let (status, again) =
        served.call(Method::POST, &format!("/api/v1/seeds/{}/stop", small["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["state"], "completed");
    let (status, body) = served.call(Method::POST, "/api/v1/seeds/no-such-seed/stop", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(message(&body), "no seed \"no-such-seed\"");
    assert!(served.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_capped_in_number_and_sent_only_to_allowed_targets() {
    let dir = tempfile::tempdir().unwrap();
    // A minute of data replayed at its recorded pace: still running when
    // the next replay is asked for.
    crate::seed_session(dir.path(), "payment-failure", "60s", "long");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let allowed = target.http_endpoint().strip_prefix("http://").unwrap().to_owned();
    let served = Served::start(
        dir.path(),
        &["--max-concurrent-replays", "1", "--allow-target", &allowed, "--allow-target", "10.0.0.0/8"],
    );
    let replay = |endpoint: &str| json!({"session": "long", "endpoint": endpoint, "speed": 1});

    // Names are matched as written, not resolved: localhost is not 127.0.0.1.
    let port = allowed.rsplit_once(':').unwrap().1;
    for endpoint in
        ["http://192.0.2.1:4318".to_owned(), format!("http://localhost:{port}"), "http://127.0.0.1:1".to_owned()]
    {
        let (status, body) = served.call(Method::POST, "/api/v1/replays", Some(replay(&endpoint))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            message(&body),
            format!(
                "the target {endpoint} is not allowed: this serve lets replays send to {allowed}, 10.0.0.0/8 only \
                 (--allow-target)"
            )
        );
    }
    // Each signal's endpoint is checked.
    let (status, body) = served
        .call(
            Method::POST,
            "/api/v1/replays",
            Some(json!({"session": "long", "endpoint": target.grpc_endpoint(), "protocol": "grpc"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(message(&body).starts_with(&format!("the target {} is not allowed", target.grpc_endpoint())), "{body}");
    assert_eq!(served.get("/api/v1/replays").await["replays"], json!([]), "nothing was started");

    let (status, first) = served.call(Method::POST, "/api/v1/replays", Some(replay(target.http_endpoint()))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first = first["id"].as_str().unwrap().to_owned();
    target.wait_for(1).await;
    let (status, body) = served.call(Method::POST, "/api/v1/replays", Some(replay(target.http_endpoint()))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        message(&body),
        "1 replay is running, the most this serve allows at once (--max-concurrent-replays 1); wait for one to end \
         or stop one, then try again"
    );

    let (status, _) = served.call(Method::POST, &format!("/api/v1/replays/{first}/stop"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let stopped = served.until_done(&format!("/api/v1/replays/{first}")).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    // The slot is free again.
    let (status, second) = served.call(Method::POST, "/api/v1/replays", Some(replay(target.http_endpoint()))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    let (status, _) =
        served.call(Method::POST, &format!("/api/v1/replays/{}/stop", second["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(served.terminate().success());
    target.shutdown().await;
}

#[test]
fn bad_limits_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (&["--allow-target", "10.0.0.0/33"][..], "invalid target \"10.0.0.0/33\": the prefix length must be 0 to 32"),
        (
            &["--allow-target", "http://collector"],
            "invalid target \"http://collector\": a URL, where only its host and port are wanted",
        ),
        (&["--max-concurrent-replays", "0"], "--max-concurrent-replays"),
        (&["--max-concurrent-seeds", "0"], "--max-concurrent-seeds"),
        (&["--max-seed-traces", "0"], "--max-seed-traces"),
    ] {
        crate::tape(dir.path()).arg("serve").args(args).assert().code(2).stderr(contains(expected));
    }
}
