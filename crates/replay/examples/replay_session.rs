//! Replays a stored session to an OTLP target from Rust, without the
//! command line: `cargo run -p tape-replay --example replay_session -- DIR [SESSION]`
//! replays SESSION (default: the latest completed session) of the store in
//! DIR as fast as the target at `OTEL_EXPORTER_OTLP_ENDPOINT` (default
//! `http://localhost:4318`) accepts. Ctrl-C stops it.

use std::sync::Arc;

use tape_replay::{ReplayConfig, RunOptions, RunOutcome, SessionChoice, Speed, replay_session};
use tape_session::SessionStore;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let directory = args.next().ok_or("usage: replay_session DIR [SESSION]")?;
    let session = args.next().map_or(Ok(SessionChoice::Auto), |id| id.parse::<SessionChoice>())?;
    let store: Arc<dyn SessionStore> = Arc::new(tape_store::LocalStore::new(directory));

    let config = ReplayConfig { session: Some(session), speed: Some(Speed::Max), ..ReplayConfig::default() };
    let stop = CancellationToken::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    let env = |name: &str| std::env::var(name).ok();
    match replay_session(store, config, RunOptions::default(), env, &stop).await? {
        RunOutcome::AlreadyComplete(_) => println!("nothing to resume"),
        RunOutcome::Finished(finished) => {
            let report = &finished.report;
            println!(
                "{}: {} items sent to {}",
                report.reason, report.counts.total.sent_items, report.targets.description
            );
            if let Some(failure) = &finished.failure {
                return Err(failure.full().into());
            }
        }
    }
    Ok(())
}
