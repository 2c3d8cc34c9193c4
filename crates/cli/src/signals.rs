//! Ctrl-C (SIGINT) and SIGTERM: the signals that stop a long-running
//! command cleanly. Every command registers them before it says it is
//! ready, so that a signal sent as soon as it is cannot kill it unfinished.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// The stop signals, registered.
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers; from now on the signals no longer kill the
    /// process.
    #[cfg(unix)]
    pub fn register() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    /// Installs the Ctrl-C handler when [`StopSignals::next`] first waits.
    #[cfg(not(unix))]
    pub fn register() -> anyhow::Result<Self> {
        Ok(StopSignals {})
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    #[cfg(unix)]
    pub async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Waits for the next Ctrl-C.
    #[cfg(not(unix))]
    pub async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A token cancelled at the first Ctrl-C or SIGTERM. The handlers are
/// installed before it returns.
pub fn stop_on_signals() -> anyhow::Result<CancellationToken> {
    let mut signals = StopSignals::register()?;
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        signals.next().await;
        cancel.cancel();
    });
    Ok(stop)
}
