//! `otlp-tape replay --passes N`: a loop of exactly N whole passes to a
//! real OTLP target, each pass with the ids of its pass.

use serde_json::Value;
use tape_otlp::{ExportRequest, IdRemap, Signal};
use tape_testkit::otlp_target::{OtlpTarget, OtlpTargetOptions};

use crate::replay::{SEED_ITEMS, SEED_TOTAL, replay, run_ok, run_to_end, seed, stderr, stored};

/// Requests as sorted protobuf bodies, to compare regardless of the order
/// concurrent requests arrived in.
fn sorted(requests: impl IntoIterator<Item = (Signal, Vec<u8>)>) -> Vec<(Signal, Vec<u8>)> {
    let mut requests: Vec<_> = requests.into_iter().collect();
    requests.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_passes_delivers_exactly_that_many_passes_with_the_ids_of_each() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let recorded = stored(dir.path(), "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let args = ["--session", "S", "--speed", "max", "--timestamps", "none", "--id-seed", "5", "--protocol", "grpc"];
    run_ok(
        replay(dir.path(), &args)
            .args(["--loop", "--passes", "3", "--endpoint", target.grpc_endpoint()])
            .args(["--report", "report.json"]),
    );

    let received = target.received();
    assert_eq!(received.len(), 3 * SEED_TOTAL, "three passes of the seed's requests");
    // A pass starts once the one before is through: the requests arrive
    // pass by pass.
    for (pass, requests) in received.chunks(SEED_TOTAL).enumerate() {
        let expected = sorted(recorded.iter().map(|(signal, payload)| {
            let mut request = ExportRequest::decode_protobuf(*signal, payload).unwrap();
            if pass > 0 {
                request.remap_ids(&IdRemap::new(5, pass as u64));
            }
            (*signal, request.encode_protobuf())
        }));
        let got = sorted(requests.iter().map(|request| (request.signal, request.body.to_vec())));
        assert!(got == expected, "pass {pass} is the seed with the ids of pass {pass}");
    }

    let report: Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["reason"], "finished");
    assert_eq!(report["passes"], 3);
    assert_eq!((&report["options"]["loop"], &report["options"]["passes"]), (&Value::from(true), &Value::from(3)));
    for (index, signal) in ["traces", "metrics", "logs"].into_iter().enumerate() {
        assert_eq!(report["counts"][signal]["sentItems"], 3 * SEED_ITEMS[index], "{signal}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_imply_the_loop_and_zero_passes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), "S");
    let target = OtlpTarget::start(OtlpTargetOptions::default()).await;
    let output =
        run_ok(&mut replay(dir.path(), &["--speed", "max", "--passes", "2", "--endpoint", target.http_endpoint()]));
    assert!(stderr(&output).contains(", 2 passes:"), "{}", stderr(&output));
    assert_eq!(target.received().len(), 2 * SEED_TOTAL);

    let output = run_to_end(&mut replay(dir.path(), &["--passes", "0", "--endpoint", target.http_endpoint()]));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("invalid value '0' for '--passes <N>'"), "{}", stderr(&output));
    assert_eq!(target.received().len(), 2 * SEED_TOTAL, "nothing more was sent");
}
