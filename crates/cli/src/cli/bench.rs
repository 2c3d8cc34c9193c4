//! `otlp-tape bench`: its flags.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::parse::parse_duration;

/// `otlp-tape bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Seed generation throughput (spans per second written to a compressed
    /// local session) and peak memory, in a temporary directory that is removed afterwards.
    Seed(BenchSeedArgs),
    /// Capture throughput with nothing lost (closed-loop OTLP/gRPC senders on loopback), acknowledgement
    /// latency at half that load, and peak memory, senders included; sessions go to a temporary directory.
    Capture(BenchCaptureArgs),
    /// Resident memory of a capture process (peak, and after the load) under many concurrent large uploads over
    /// OTLP/gRPC and OTLP/HTTP, each sent again after a retryable refusal until accepted; a temporary store.
    CaptureMemory(BenchCaptureMemoryArgs),
    /// Replay throughput (full speed into a discarding OTLP/gRPC receiver in the process), peak memory of a
    /// large replay, and pacing accuracy at 1x and 10x; sessions go to a temporary directory.
    Replay(BenchReplayArgs),
    /// Parquet export throughput end to end (read, decompress, decode, convert, encode, write) of a high-load
    /// session, bytes per span, where the time goes, and the peak memory of exporting a large session.
    Export(BenchExportArgs),
    /// Items compared per second by `otlp-tape compare`, in memory and partitioned on disk, of a high-load session
    /// and copies of it batched differently (as they are, and with differences), and the peak memory of comparing
    /// a large session; sessions go to a temporary directory.
    Compare(BenchCompareArgs),
    /// What opening a large session's page reads (metadata, annotations and the kept timeline; the goal is under
    /// 2 s for 1 GB), the timeline built from the blobs, and the writer's cost of counting it; a temporary directory.
    Timeline(BenchTimelineArgs),
}

/// `otlp-tape bench seed`
#[derive(Debug, Args)]
pub struct BenchSeedArgs {
    /// Pattern to generate: a built-in name or a YAML file.
    #[arg(long, value_name = "NAME|FILE", default_value = "high-load")]
    pub pattern: String,
    /// Virtual duration of the session (such as 60s or 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub duration: u64,
    /// Traces per second; default: the pattern's.
    #[arg(long, value_name = "TRACES_PER_SECOND")]
    pub rate: Option<f64>,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
}

/// `otlp-tape bench capture`
#[derive(Debug, Args)]
pub struct BenchCaptureArgs {
    /// Senders, each with an OTLP/gRPC connection of its own.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub connections: usize,
    /// Length of the throughput phase, in which each sender sends its next request as soon as the last is acknowledged.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub duration: u64,
    /// Length of the latency phase, in which the senders send at a fixed rate.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub latency_duration: u64,
    /// Spans per second of the latency phase; default: half the throughput phase's.
    #[arg(long, value_name = "SPANS_PER_SECOND")]
    pub latency_rate: Option<f64>,
    /// Compress the requests with gzip (off by default: compressing would make the sender the bottleneck).
    #[arg(long)]
    pub gzip: bool,
    /// gzip level of the capture's blobs, 0 (stored, no compression) to 9.
    #[arg(long, value_name = "0..9", value_parser = clap::value_parser!(u32).range(0..=9), default_value_t = 1)]
    pub compression_level: u32,
    /// Distinct trace requests (pattern high-load, up to 512 spans each) generated before sending and sent in turn.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub requests: usize,
}

/// `otlp-tape bench capture-memory`
#[derive(Debug, Args)]
pub struct BenchCaptureMemoryArgs {
    /// Uploads sent at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub uploads: usize,
    /// Size of each upload (one OTLP trace request, protobuf), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 15)]
    pub upload_size_mb: u64,
    /// Where the uploads go: grpc, http (protobuf), or both (half each).
    #[arg(long, value_name = "grpc|http|both", value_parser = ["grpc", "http", "both"], default_value = "both")]
    pub protocol: String,
    /// How long after the last upload is acknowledged the memory is read again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3s")]
    pub settle: u64,
    /// The otlp-tape binary whose `capture` is measured (to compare versions); default: this one.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

/// `otlp-tape bench replay`
#[derive(Debug, Args)]
pub struct BenchReplayArgs {
    /// Virtual duration of the high-load session replayed at full speed for throughput (such as 60s or 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub duration: u64,
    /// Traces per second of the high-load sessions (throughput and memory); default: the pattern's.
    #[arg(long, value_name = "TRACES_PER_SECOND")]
    pub rate: Option<f64>,
    /// Requests in flight at most (the default of `otlp-tape replay`).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,
    /// Compress the requests with gzip.
    #[arg(long)]
    pub gzip: bool,
    /// Payload (uncompressed) of the high-load session replayed for peak memory, in GB of 10^9 bytes; 0 skips it.
    #[arg(long, value_name = "GB", default_value_t = 1.0)]
    pub memory_gb: f64,
    /// Virtual duration of the payment-failure session replayed at 1x and 10x for pacing accuracy; 0 skips it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "20s")]
    pub pacing_duration: u64,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Internal, for the memory measurement's child process: only replay session bench-memory of the local
    /// store in DIR and print the report as JSON.
    #[arg(long, value_name = "DIR", hide = true)]
    pub replay_only: Option<PathBuf>,
}

/// `otlp-tape bench export`
#[derive(Debug, Args)]
pub struct BenchExportArgs {
    /// Virtual duration of the high-load session exported for throughput (such as 60s or 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub duration: u64,
    /// Traces per second of the high-load sessions; default: the pattern's.
    #[arg(long, value_name = "TRACES_PER_SECOND")]
    pub rate: Option<f64>,
    /// Stored (compressed) size of a high-load session exported in a child process for its peak memory, in GB of
    /// 10^9 bytes; 0 skips it.
    #[arg(long, value_name = "GB", default_value_t = 0.0)]
    pub memory_gb: f64,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Internal, for the memory measurement's child process: only export session bench-export-memory of the local
    /// store in DIR and print the report as JSON.
    #[arg(long, value_name = "DIR", hide = true)]
    pub export_only: Option<PathBuf>,
}

/// `otlp-tape bench timeline`
#[derive(Debug, Args)]
pub struct BenchTimelineArgs {
    /// Stored (compressed) size of the high-load session measured, in GB of 10^9 bytes.
    #[arg(long, value_name = "GB", default_value_t = 1.0)]
    pub gb: f64,
    /// Traces per second of the session; default: the pattern's.
    #[arg(long, value_name = "TRACES_PER_SECOND")]
    pub rate: Option<f64>,
    /// Times the session's page is opened.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: u32,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
}

impl BenchTimelineArgs {
    /// The benchmark these flags ask for.
    pub fn config(&self) -> tape_bench::TimelineBenchConfig {
        tape_bench::TimelineBenchConfig { gb: self.gb, rate: self.rate, seed: self.seed, runs: self.runs }
    }
}

/// `otlp-tape bench compare`
#[derive(Debug, Args)]
pub struct BenchCompareArgs {
    /// Virtual duration of the high-load session compared for throughput (such as 60s or 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub duration: u64,
    /// Traces per second of the high-load sessions; default: the pattern's.
    #[arg(long, value_name = "TRACES_PER_SECOND")]
    pub rate: Option<f64>,
    /// Rounds of the four comparisons (each copy, in memory and partitioned), interleaved.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub runs: u32,
    /// Partitions of the comparisons on disk.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub partitions: u32,
    /// Items in each request of the copies (the Collector batch processor's default send_batch_size).
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub batch_items: u64,
    /// Stored (compressed) size of a high-load session compared with its copy in a child process for the peak
    /// memory, in GB of 10^9 bytes; 0 skips it.
    #[arg(long, value_name = "GB", default_value_t = 0.0)]
    pub memory_gb: f64,
    /// Partitions of that comparison (1 is in memory); default: picked from the sessions' sizes, as
    /// `otlp-tape compare` does.
    #[arg(long, value_name = "N")]
    pub memory_partitions: Option<u32>,
    /// Seed of the generator.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Internal, for the memory measurement's child process: only compare the sessions bench-compare-memory-*
    /// of the local store in DIR and print the report as JSON.
    #[arg(long, value_name = "DIR", hide = true)]
    pub compare_only: Option<PathBuf>,
}

impl BenchCompareArgs {
    /// The benchmark these flags ask for.
    pub fn config(&self) -> tape_bench::CompareBenchConfig {
        tape_bench::CompareBenchConfig {
            duration_nanos: self.duration,
            rate: self.rate,
            seed: self.seed,
            runs: self.runs,
            partitions: self.partitions,
            batch_items: self.batch_items,
            memory_gb: self.memory_gb,
            memory_partitions: self.memory_partitions,
        }
    }
}

impl BenchSeedArgs {
    /// The benchmark these flags ask for.
    pub fn config(&self) -> tape_bench::SeedBenchConfig {
        tape_bench::SeedBenchConfig {
            pattern: self.pattern.clone(),
            duration_nanos: self.duration,
            rate: self.rate,
            seed: self.seed,
        }
    }
}

impl BenchCaptureArgs {
    /// The benchmark these flags ask for.
    pub fn config(&self) -> tape_bench::CaptureBenchConfig {
        tape_bench::CaptureBenchConfig {
            connections: self.connections,
            duration_nanos: self.duration,
            latency_duration_nanos: self.latency_duration,
            latency_rate: self.latency_rate,
            gzip: self.gzip,
            compression_level: self.compression_level,
            requests: self.requests,
        }
    }
}

impl BenchCaptureMemoryArgs {
    /// The benchmark these flags ask for.
    pub fn config(&self) -> tape_bench::CaptureMemoryBenchConfig {
        tape_bench::CaptureMemoryBenchConfig {
            uploads: self.uploads,
            upload_size_mb: self.upload_size_mb,
            protocol: match self.protocol.as_str() {
                "grpc" => tape_bench::UploadProtocol::Grpc,
                "http" => tape_bench::UploadProtocol::Http,
                _ => tape_bench::UploadProtocol::Both,
            },
            settle_nanos: self.settle,
            binary: self.binary.clone(),
        }
    }
}

impl BenchReplayArgs {
    /// The benchmark these flags ask for.
    pub fn config(&self) -> tape_bench::ReplayBenchConfig {
        tape_bench::ReplayBenchConfig {
            duration_nanos: self.duration,
            rate: self.rate,
            concurrency: self.concurrency,
            gzip: self.gzip,
            memory_gb: self.memory_gb,
            pacing_duration_nanos: self.pacing_duration,
            seed: self.seed,
        }
    }
}

impl BenchExportArgs {
    /// The benchmark these flags ask for.
    pub fn config(&self) -> tape_bench::ExportBenchConfig {
        tape_bench::ExportBenchConfig {
            duration_nanos: self.duration,
            rate: self.rate,
            seed: self.seed,
            memory_gb: self.memory_gb,
        }
    }
}
