//! `otlp-tape`: record, generate and replay OpenTelemetry (OTLP) traffic.

mod cli;
mod clickhouse;
mod commands;
mod env;
mod forward;
mod lock;
mod output;
mod signals;
mod store;
mod target;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{AnnotationsCommand, Cli, Command, PatternsCommand, SessionsCommand};

/// Exit code of a run that failed: an error, or a check that found problems.
const EXIT_FAILURE: u8 = 1;

/// Exit code of `compare` when it cannot compare (bad arguments, a missing
/// session, a replay report that is not one or of another session, a file
/// it cannot read or write): 1 is its verdict that the sessions differ.
const EXIT_CANNOT_COMPARE: u8 = 2;

fn main() -> ExitCode {
    output::end_quietly_when_stdout_closes();
    let cli = Cli::parse();
    init_logging(&cli);
    output::set_quiet(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let failure = if matches!(cli.command, Command::Compare(_)) { EXIT_CANNOT_COMPARE } else { EXIT_FAILURE };
    match runtime.block_on(run(cli)) {
        Ok(outcome) => outcome,
        Err(error) => {
            output::print_error(&error);
            ExitCode::from(failure)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let format = cli.output;
    // Patterns live in the binary and in files: no store needed.
    match &cli.command {
        Command::Patterns(PatternsCommand::List) => return commands::patterns::list(format),
        Command::Patterns(PatternsCommand::Show { pattern }) => return commands::patterns::show(pattern, format),
        Command::Patterns(PatternsCommand::Validate { file }) => return commands::patterns::validate(file, format),
        Command::Bench(command) => return commands::bench::run(command, format).await,
        _ => {}
    }
    let store: std::sync::Arc<dyn tape_session::SessionStore> = std::sync::Arc::from(store::open(&cli.store)?);
    let command = match cli.command {
        Command::Capture(args) => return commands::capture::run(&cli.store, store, args, format).await,
        Command::Replay(args) => return commands::replay::run(store, args, format, cli.quiet).await,
        Command::Demo(args) => return commands::demo::run(&cli.store, store, args, format).await,
        Command::Serve(args) => return commands::serve::run(&cli.store, store, args).await,
        command => command,
    };
    let store = store.as_ref();
    match command {
        Command::Sessions(SessionsCommand::List { session_type }) => {
            commands::sessions::list(store, session_type, format).await
        }
        Command::Sessions(SessionsCommand::Show { id }) => commands::sessions::show(store, &id, format).await,
        Command::Sessions(SessionsCommand::Delete { id, force, spool_dir }) => {
            commands::sessions::delete(store, &id, force, spool_dir.as_deref(), format).await
        }
        Command::Sessions(SessionsCommand::Verify { id }) => commands::sessions::verify(store, &id, format).await,
        Command::Sessions(SessionsCommand::Repair { id, writer: None, spool_dir, .. }) => {
            commands::sessions::repair(&cli.store, &id, spool_dir.as_deref(), format).await
        }
        Command::Sessions(SessionsCommand::Repair { id, writer: Some(writer), force, spool_dir }) => {
            commands::writers::repair(&cli.store, &id, &writer, force, spool_dir.as_deref(), format).await
        }
        Command::Sessions(SessionsCommand::Seal { id }) => commands::writers::seal(store, &id, format).await,
        Command::Sessions(SessionsCommand::Prune(args)) => commands::sessions::prune(store, &args, format).await,
        Command::Sessions(SessionsCommand::Merge(args)) => commands::merge::run(store, args, format).await,
        Command::Import(args) => commands::import::run(store, args, format).await,
        Command::Export(args) => commands::export::run(store, args, format).await,
        Command::Compare(args) => commands::compare::run(store, args, format).await,
        Command::Seed(args) => commands::seed::run(store, args, format).await,
        Command::Annotations(AnnotationsCommand::List { session, source, clickhouse }) => {
            commands::annotations::list(store, &session, source, &clickhouse, format).await
        }
        Command::Annotations(AnnotationsCommand::Add {
            session,
            key,
            from,
            until,
            value,
            annotation_type,
            description,
            created_by,
            clickhouse,
        }) => {
            let request =
                commands::annotations::AddRequest { key, from, until, value, annotation_type, description, created_by };
            commands::annotations::add(store, &session, request, &clickhouse, format).await
        }
        Command::Annotations(AnnotationsCommand::Push { session, clickhouse }) => {
            commands::annotations::push_session(store, &session, &clickhouse, format).await
        }
        Command::Patterns(_)
        | Command::Bench(_)
        | Command::Capture(_)
        | Command::Replay(_)
        | Command::Demo(_)
        | Command::Serve(_) => {
            unreachable!("handled above")
        }
    }
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
