//! The benchmarks against a real capture and real seed sessions in a local
//! store, with a host built from the seed generator.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tape_bench::{
    BoxError, CaptureBenchConfig, CompareBenchConfig, ExportBenchConfig, GeneratedSession, Host, PatternDefaults,
    Report, SeedBenchConfig, SeedRequest, Step,
};
use tape_otlp::SignalSet;
use tape_seed_generator::{DEFAULT_START, Generator, Params, Pattern, builtin_pattern};
use tape_session::{
    OutputDir, SessionMetadata, SessionStatus, SessionStore, SessionType, SessionWriter, WriterOptions,
};
use tape_store::{LocalOutputDir, LocalStore};

/// Built-in patterns, sessions written straight from the generator, and
/// the steps it was told about.
#[derive(Default)]
struct TestHost {
    steps: Mutex<Vec<String>>,
}

impl Host for TestHost {
    fn pattern(&self, name: &str) -> Result<PatternDefaults, BoxError> {
        let pattern = Pattern::parse(name, builtin_pattern(name).ok_or("no such pattern")?)?;
        let (rate, error_rate) = (pattern.default_rate.unwrap_or(10.0), pattern.default_error_rate.unwrap_or(0.05));
        Ok(PatternDefaults { pattern, rate, error_rate })
    }

    async fn generate(&self, store: &dyn SessionStore, request: SeedRequest) -> Result<GeneratedSession, BoxError> {
        let started = std::time::Instant::now();
        let defaults = self.pattern(&request.pattern)?;
        let params = Params {
            seed: request.seed,
            start: DEFAULT_START,
            duration_nanos: request.duration_nanos,
            rate: request.rate.unwrap_or(defaults.rate),
            error_rate: defaults.error_rate,
            signals: SignalSet::ALL,
        };
        let metadata = SessionMetadata::new(request.session_id, SessionType::Seed, params.start, "test".to_owned());
        let mut writer = SessionWriter::create(store, metadata, WriterOptions::default()).await?;
        let mut last = params.start;
        for batch in Generator::new(&defaults.pattern, params.clone())? {
            writer.append(batch.signal, batch.receive_time, batch.items, &batch.payload).await?;
            last = last.max(batch.receive_time);
        }
        let metadata = writer.finish(last, SessionStatus::Completed).await?;
        Ok(GeneratedSession {
            pattern: defaults.pattern.name.clone(),
            duration: format!("{}s", request.duration_nanos / 1_000_000_000),
            rate: params.rate,
            traces: 0,
            items: metadata.item_counts(),
            requests: metadata.request_counts,
            size_bytes: metadata.blobs.iter().map(|blob| blob.compressed_bytes).sum(),
            elapsed: started.elapsed(),
        })
    }

    fn local_store(&self, dir: &Path) -> Arc<dyn SessionStore> {
        Arc::new(LocalStore::new(dir))
    }

    fn local_output(&self, dir: &Path) -> Result<Box<dyn OutputDir>, BoxError> {
        Ok(Box::new(LocalOutputDir::new(dir)))
    }

    fn step(&self, step: Step<'_>) {
        self.steps.lock().unwrap().push(format!("{step:?}"));
    }
}

#[tokio::test]
async fn the_seed_bench_reports_what_the_host_generated() {
    let config =
        SeedBenchConfig { pattern: "basic-topology".to_owned(), duration_nanos: 2_000_000_000, ..Default::default() };
    let report = config.validate().unwrap().run(&TestHost::default()).await.unwrap();
    assert_eq!((report.pattern.as_str(), report.duration.as_str()), ("basic-topology", "2s"));
    assert!(report.spans > 0 && report.items >= report.spans && report.stored_bytes > 0, "{report:?}");
    assert!(report.spans_per_second > 0.0, "{report:?}");
    report.check().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_bench_finds_every_span_in_the_tables_and_in_every_pass() {
    let host = TestHost::default();
    let config = ExportBenchConfig { duration_nanos: 1_000_000_000, ..Default::default() };
    let report = config.validate().unwrap().run(&host).await.unwrap();
    report.check().unwrap();
    assert!(report.session.spans > 0, "{report:?}");
    assert_eq!((report.export.spans, report.export.rows), (report.session.spans, report.session.items));
    let traces = report.export.tables.iter().find(|file| file.file == "traces.parquet").expect("a traces table");
    assert_eq!(traces.rows, report.session.spans);
    let steps: Vec<&str> = report.passes.iter().map(|pass| pass.step.as_str()).collect();
    assert_eq!(steps, ["read", "decode", "convert", "encode"]);
    assert!(report.memory.is_none());
    let told = host.steps.lock().unwrap().join("\n");
    assert!(told.contains("Exporting") && told.contains("ExportPasses"), "{told}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capture_bench_records_every_span_it_acknowledged() {
    let host = TestHost::default();
    let config = CaptureBenchConfig {
        connections: 2,
        duration_nanos: Duration::from_millis(300).as_nanos() as u64,
        latency_duration_nanos: Duration::from_millis(300).as_nanos() as u64,
        requests: 10,
        ..Default::default()
    };
    let report = config.validate().unwrap().run(&host).await.unwrap();
    report.check().unwrap();
    assert_eq!((report.pattern.as_str(), report.connections, report.distinct_requests), ("high-load", 2, 10));
    assert!(report.throughput.spans > 0, "{report:?}");
    assert_eq!(report.throughput.recorded_spans, report.throughput.spans);
    assert!(report.latency.spans > 0 && report.latency.lost == 0, "{report:?}");
    assert!(report.latency.p50_ms <= report.latency.p99_ms, "{report:?}");
    let steps = host.steps.lock().unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0].starts_with("CapturePhases"), "{steps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_bench_finds_the_copy_identical_and_exactly_the_differences_of_the_other() {
    let host = TestHost::default();
    let config = CompareBenchConfig { duration_nanos: 1_000_000_000, runs: 2, partitions: 3, ..Default::default() };
    let report = config.validate().unwrap().run(&host).await.unwrap();
    report.check().unwrap();
    let items = report.session.items;
    assert!(report.session.spans > tape_bench::ALTERATION_PERIOD, "{report:?}");
    assert_eq!(report.identical.items, items);
    let alterations = report.differences.alterations;
    assert!(alterations.dropped_spans > 0 && alterations.changed() > 0, "{alterations:?}");
    assert_eq!(report.differences.items, items - alterations.dropped_spans);

    // Two rounds of the four comparisons, interleaved.
    let order: Vec<(u32, &str, Option<u32>)> =
        report.runs.iter().map(|run| (run.round, run.variant.as_str(), run.partitions)).collect();
    let round = |n| {
        [(n, "identical", Some(1)), (n, "identical", Some(3)), (n, "differences", Some(1)), (n, "differences", Some(3))]
    };
    assert_eq!(order, [round(1), round(2)].concat());
    for run in &report.runs {
        assert_eq!((run.expected_items, run.partitions_matched), (items, run.partitions.unwrap()), "{run:?}");
        assert!(run.items_per_second > run.expected_items_per_second, "{run:?}");
        let identical = run.variant == "identical";
        assert_eq!(run.passed, identical, "{run:?}");
        let (missing, changed) = if identical { (0, 0) } else { (alterations.dropped_spans, alterations.changed()) };
        assert_eq!((run.counts.missing, run.counts.changed, run.counts.unexpected), (missing, changed, 0), "{run:?}");
    }
    assert_eq!(report.summaries.len(), 4);
    assert!(report.summaries.iter().all(|summary| summary.runs == 2), "{:?}", report.summaries);
    let steps: Vec<&str> = report.passes.iter().map(|pass| pass.step.as_str()).collect();
    assert_eq!(steps, ["read", "decode"]);
    assert!(report.passes.iter().all(|pass| pass.items == 2 * items), "{:?}", report.passes);
    let told = host.steps.lock().unwrap().join("\n");
    assert!(told.contains("Rebatching") && told.contains("Comparing") && told.contains("ComparePasses"), "{told}");
}
