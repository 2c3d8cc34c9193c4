//! `otlp-tape replay`: send a stored session to an OTLP target.
//!
//! The flags become a [`tape_replay::ReplayConfig`] and run options;
//! `tape_replay` picks the session, resolves the selection and the target,
//! runs the engine, keeps the checkpoint and builds the report. Around it,
//! the command shows progress, turns Ctrl-C and SIGTERM into a drained
//! stop, writes `--report` and prints.

mod print;
mod status;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tape_replay::{AlreadyComplete, EndReason, Prepared, Speed, Start};
use tape_session::SessionStore;
use tokio_util::sync::CancellationToken;

use crate::cli::{OutputFormat, ReplayArgs};
use crate::output::{note, print_json};
use crate::signals::StopSignals;

/// Exit code of a replay refused: a resume with options that differ from
/// its checkpoint's, or a session of several writers not sealed yet.
const EXIT_REFUSED: u8 = 2;

/// Exit code of a process stopped by a second Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;

/// `replay`
pub async fn run(
    store: Arc<dyn SessionStore>,
    args: ReplayArgs,
    format: OutputFormat,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let env = |name: &str| std::env::var(name).ok();
    refuse_random_shards(&args);
    let config = args.config().validate(env)?;
    if args.log_interval == 0 {
        bail!("--log-interval must be more than zero");
    }
    for (flag, path) in [("--report", &args.report), ("--checkpoint", &args.checkpoint)] {
        if let Some(path) = path {
            check_directory(flag, path)?;
        }
    }
    let prepared = match tape_replay::prepare(store.as_ref(), config, args.run_options(), env).await {
        Ok(prepared) => prepared,
        // A session of several writers is replayed once it is sealed.
        Err(error @ tape_replay::Error::UnsealedSession { .. }) => {
            crate::output::print_error(&anyhow::Error::new(error));
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(error) => return Err(error.into()),
    };
    if let Some(picked) = prepared.picked() {
        note(format!("Picked session {} ({}).", prepared.session_id(), picked.describe()));
    }
    if args.dry_run {
        return dry_run(store.as_ref(), &prepared, format).await;
    }
    let ready = match prepared.start() {
        Ok(Start::AlreadyComplete(complete)) => return already_complete(&complete, format),
        Ok(Start::Ready(ready)) => ready,
        // A resume with options that do not match its checkpoint's (another
        // session, shard or selection, another id seed) is a wrong command line.
        Err(error @ tape_replay::Error::CheckpointMismatch(_)) => {
            crate::output::print_error(&anyhow::Error::new(error));
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(error) => return Err(error.into()),
    };

    let prepared = ready.prepared();
    let (metadata, config) = (prepared.metadata(), prepared.config());
    let target = prepared.targets().describe();
    let pace = match config.speed {
        Speed::Max => "as fast as it accepts".to_owned(),
        Speed::Factor(factor) => format!("at {factor}x the recorded pace"),
    };
    let looping = match config.passes {
        Some(1) => ", one pass".to_owned(),
        Some(passes) => format!(", {passes} passes"),
        None if config.looping => ", looping".to_owned(),
        None => String::new(),
    };
    note(format!(
        "Replaying session {} ({}) to {target} {pace}{looping}: {}; id seed {}.",
        metadata.session_id,
        metadata.session_type,
        prepared.selection(),
        ready.id_seed()
    ));
    if let Some(position) = ready.resume() {
        note(format!("Resuming at {}.", tape_replay::describe_position(position)));
    }
    if let Some(start) = config.start_at {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        if start.unix_nanos() > now {
            note(format!("Waiting until {start} (--start-at) to send the first record."));
        } else {
            note(format!("The schedule started at {start} (--start-at): records already due go at once."));
        }
    }
    // Until now Ctrl-C ends the process as usual: there is nothing to
    // finish. From here on it stops the replay cleanly.
    let stop_signals = StopSignals::register()?;
    note("Stop with Ctrl-C (or SIGTERM): the requests in flight get up to 5 s, then the replay is summarised.");

    let stop = CancellationToken::new();
    let signal_task = tokio::spawn(watch_signals(stop_signals, stop.clone(), args.checkpoint.is_some()));
    let display = if args.no_progress || quiet {
        status::Display::Off
    } else if std::io::stderr().is_terminal() {
        status::Display::Bar
    } else {
        status::Display::Lines(Duration::from_nanos(args.log_interval))
    };
    let display_stop = CancellationToken::new();
    let display = status::spawn(display, ready.progress(), display_stop.clone());

    let finished = ready.run(Arc::clone(&store), &stop).await;

    display_stop.cancel();
    if let Some(task) = display {
        // A display that panicked has stopped as well.
        let _ = task.await;
    }
    signal_task.abort();

    let mut problems: Vec<anyhow::Error> = finished.checkpoint_error.map(anyhow::Error::new).into_iter().collect();
    if let Some(path) = &args.report {
        let written = tape_replay::write_report(path, &finished.report)
            .with_context(|| format!("cannot write the report {}", path.display()));
        if let Err(error) = written {
            problems.push(error);
        }
    }
    if format == OutputFormat::Json {
        print_json(&finished.report)?;
    } else {
        print::report(&finished.report);
        if let Some(path) = &args.report {
            note(format!("Report written to {}.", path.display()));
        }
        if let Some(path) = &finished.checkpoint
            && finished.outcome.reason != EndReason::Finished
        {
            note(format!("Checkpoint in {}: resume with the same options and --resume.", path.display()));
        }
    }
    // The replay's own failure comes first; files that could not be
    // written are said too.
    let mut errors = finished.failure.map(anyhow::Error::new).into_iter().chain(problems);
    let Some(first) = errors.next() else { return Ok(ExitCode::SUCCESS) };
    for error in errors {
        tracing::error!("{error:#}");
    }
    Err(first)
}

/// `--shard` with `--strategy random` is a usage error (exit code 2): the
/// shards could pick different sessions. The config refuses it too, with
/// the same words, for the control API.
fn refuse_random_shards(args: &ReplayArgs) {
    if args.shard.is_some() && args.strategy == Some(tape_replay::Strategy::Random) {
        let config = tape_replay::ReplayConfig { shard: args.shard, strategy: args.strategy, ..Default::default() };
        if let Err(error) = config.validate(|_| None) {
            let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
            command.error(clap::error::ErrorKind::ArgumentConflict, error.to_string()).exit();
        }
    }
}

/// `--dry-run`: reads the session as the replay would, connects nowhere.
async fn dry_run(store: &dyn SessionStore, prepared: &Prepared, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let plan = prepared.dry_run(store).await?;
    if format == OutputFormat::Json {
        print_json(&plan)?;
    } else {
        print::dry_run(&plan);
        note("Nothing was sent: this was a dry run.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--resume` of a replay that got to the end.
fn already_complete(complete: &AlreadyComplete, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let total = complete.counts.total();
    note(format!(
        "The checkpoint {} is of a replay of session {} that got to the end ({} requests sent, {} failed): \
         nothing to resume. Start again without --resume to replay it once more.",
        complete.path.display(),
        complete.session_id,
        total.sent_records,
        total.failed_records
    ));
    if format == OutputFormat::Json {
        print_json(complete)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Fails early when the directory a file goes in does not exist.
fn check_directory(flag: &str, path: &Path) -> anyhow::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => return Ok(()),
    };
    if directory.is_dir() {
        Ok(())
    } else {
        bail!("{flag} {}: the directory {} does not exist", path.display(), directory.display())
    }
}

/// Cancels `stop` at the first Ctrl-C or SIGTERM and exits at the second.
async fn watch_signals(mut signals: StopSignals, stop: CancellationToken, checkpointing: bool) {
    signals.next().await;
    note(
        "Stopping: no more retries; the requests in flight get up to 5 s, a resume sends the rest (Ctrl-C again \
         to quit at once).",
    );
    stop.cancel();
    signals.next().await;
    let checkpoint = if checkpointing {
        " The checkpoint holds the position of the last record done; requests in flight are sent again on --resume."
    } else {
        ""
    };
    note(format!("Quitting at once.{checkpoint}"));
    std::process::exit(EXIT_INTERRUPTED);
}
