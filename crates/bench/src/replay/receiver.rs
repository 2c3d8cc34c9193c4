//! The discarding receiver the replays send to, and the sinks that count
//! and time what the replay hands to the exporter.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tape_capture::{DEFAULT_MAX_REQUEST_BYTES, Intake, Stats};
use tape_otlp::Signal;
use tape_replay::{Compression, ExportError, ExportOutcome, Exporter, ExporterConfig, Protocol, Sink};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// How long the receiver may take to stop once the replay is over.
const RECEIVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// An OTLP/gRPC receiver on a free loopback port that acknowledges every
/// valid request, counts it and discards it: the capture's receiver
/// without a recorder.
pub(super) struct DiscardingReceiver {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), Error>>,
}

impl DiscardingReceiver {
    pub(super) async fn start() -> Result<Self, Error> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(Error::io("cannot listen on 127.0.0.1 for the discarding receiver"))?;
        let addr = listener.local_addr().map_err(Error::io("cannot read the discarding receiver's address"))?;
        let stats = Arc::new(Stats::default());
        let intake = Intake::new(
            None,
            None,
            Arc::clone(&stats),
            DEFAULT_MAX_REQUEST_BYTES,
            tape_capture::ReceiveLimits::default(),
        );
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let server = tokio::spawn(async move {
            tape_capture::grpc::serve(listener, intake, shutdown).await.map_err(|source| Error::Capture {
                context: "the discarding receiver failed".to_owned(),
                source: Box::new(source),
            })
        });
        Ok(DiscardingReceiver { addr, stats, stop, server })
    }

    /// An exporter to this receiver, with a connection of its own.
    pub(super) fn exporter(&self, gzip: bool) -> Result<Exporter, Error> {
        let mut config = ExporterConfig::new(format!("http://{}", self.addr), Protocol::Grpc);
        config.compression = if gzip { Compression::Gzip } else { Compression::None };
        Exporter::new(config).map_err(|source| Error::Exporter {
            context: "cannot make an OTLP/gRPC exporter for the discarding receiver".to_owned(),
            source,
        })
    }

    /// Stops the receiver once its connections are closed (at most
    /// [`RECEIVER_STOP_TIMEOUT`]) and returns its counters.
    pub(super) async fn stop(self) -> Result<Arc<Stats>, Error> {
        self.stop.cancel();
        let mut server = self.server;
        match tokio::time::timeout(RECEIVER_STOP_TIMEOUT, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => return Err(error),
            Ok(Err(error)) => {
                return Err(Error::Measurement(format!("the discarding receiver stopped unexpectedly: {error}")));
            }
            // A connection still open: what was counted stands.
            Err(_) => server.abort(),
        }
        Ok(self.stats)
    }
}

/// The exporter, counting the protobuf bytes handed to it.
pub(super) struct CountingSink {
    pub(super) exporter: Exporter,
    pub(super) payload_bytes: AtomicU64,
}

impl Sink for CountingSink {
    fn export(
        &self,
        signal: Signal,
        payload: Bytes,
    ) -> impl Future<Output = Result<ExportOutcome, ExportError>> + Send {
        self.payload_bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
        self.exporter.export(signal, payload)
    }
}

/// A request as the replay handed it to the exporter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dispatch {
    pub(super) at: Instant,
    pub(super) signal: Signal,
    pub(super) bytes: usize,
}

/// The exporter, noting when each request is dispatched: when the replay
/// first polls its export.
pub(super) struct TimingSink {
    pub(super) exporter: Exporter,
    pub(super) dispatches: Mutex<Vec<Dispatch>>,
}

impl Sink for TimingSink {
    async fn export(&self, signal: Signal, payload: Bytes) -> Result<ExportOutcome, ExportError> {
        let dispatch = Dispatch { at: Instant::now(), signal, bytes: payload.len() };
        if let Ok(mut dispatches) = self.dispatches.lock() {
            dispatches.push(dispatch);
        }
        self.exporter.export(signal, payload).await
    }
}
