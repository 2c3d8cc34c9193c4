//! `otlp-tape serve`: the flags as a [`ServeConfig`], the store and the
//! pass-through this binary picks, and what serve prints.

use std::process::ExitCode;
use std::sync::Arc;

use tape_server::{Host, ServeConfig, Server};
use tape_session::SessionStore;

use crate::cli::ServeArgs;
use crate::output::{full_stop, note};

/// serve's settings from its flags.
fn config(args: ServeArgs) -> ServeConfig {
    ServeConfig {
        api: args.api,
        api_token: args.api_token,
        insecure_api: args.insecure_api,
        max_body_kb: args.max_body_kb,
        grpc: args.grpc.0,
        http: args.http.0,
        max_request_size_mb: args.max_request_size_mb,
        receive_budget_mb: args.receive.receive_budget_mb,
        request_read_timeout: args.receive.request_read_timeout,
        reports_dir: args.reports_dir,
        spool_dir: crate::store::spool_dir(args.spool_dir.as_deref()),
        retention_interval: args.retention_interval,
        retention_older_than: args.retention_older_than,
        retention_keep_last: args.retention_keep_last,
        retention_max_total_size: args.retention_max_total_size,
        retention_types: args.retention_types,
        max_concurrent_replays: args.max_concurrent_replays,
        max_concurrent_seeds: args.max_concurrent_seeds,
        max_seed_traces: args.max_seed_traces,
        allow_targets: args.allow_targets,
        export_dir: args.export_dir,
        max_concurrent_exports: args.max_concurrent_exports,
        max_concurrent_compares: args.max_concurrent_compares,
    }
}

/// `serve`
pub async fn run(
    location: &tape_store::StoreLocation,
    store: Arc<dyn SessionStore>,
    args: ServeArgs,
) -> anyhow::Result<ExitCode> {
    let forward = args.forward.clone();
    let settings = config(args).validate()?;
    // As `capture` does: on S3, blobs being written are spooled to local
    // files, and spool files a crashed capture left are recovered first.
    let store: Arc<dyn SessionStore> = if matches!(location, tape_store::StoreLocation::S3 { .. }) {
        let recovered = tape_store::recover_spool(&store, settings.spool_dir(), tape_capture::now()).await?;
        for spool in recovered {
            note(format!(
                "Recovered spool files of session {} left by a capture that stopped:\n{}",
                spool.session_id, spool.report
            ));
        }
        Arc::new(tape_store::SpooledStore::new(store, settings.spool_dir().to_owned()))
    } else {
        store
    };
    let forward = crate::forward::forward_config(&forward)?;
    let token = settings.has_token();
    let host = Host {
        forward,
        env: Arc::new(|name| crate::env::first_set(&[name])),
        warn: Arc::new(|warning| note(warning)),
        open_output: Arc::new(|out| crate::store::open_output(out).map_err(|error| format!("{error:#}"))),
        temp_dir: std::env::temp_dir(),
    };
    let server = Server::start(store, settings, host).await?;

    let addresses = server.addresses();
    let mut receiving = Vec::new();
    if let Some(addr) = addresses.grpc {
        receiving.push(format!("OTLP/gRPC on {addr}"));
    }
    if let Some(addr) = addresses.http {
        receiving.push(format!("OTLP/HTTP on {addr}"));
    }
    // One machine-readable line first, for scripts that start serve on
    // port 0: where everything listens.
    println!(
        "{}",
        serde_json::json!({
            "api": format!("http://{}", addresses.api),
            "grpc": addresses.grpc.map(|addr| addr.to_string()),
            "http": addresses.http.map(|addr| addr.to_string()),
        })
    );
    note(full_stop(format!(
        "Serving the control API on http://{}{} and {} (idle until a capture starts); store {}",
        addresses.api,
        if token { " (bearer token required)" } else { "" },
        receiving.join(", "),
        location
    )));
    note("Stop with Ctrl-C or SIGTERM: captures are finished, replays stopped with their reports written.");

    let stop = crate::signals::stop_on_signals()?;
    server.run(stop).await?;
    note("Stopped.");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn flags(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["otlp-tape", "serve"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Serve(args) => args,
            _ => unreachable!("parsed as serve"),
        }
    }

    #[test]
    fn the_flags_defaults_are_the_configs() {
        let config = config(flags(&["--spool-dir", ".otlp-tape/spool"]));
        assert_eq!(config, ServeConfig::default());
    }

    #[test]
    fn every_flag_reaches_the_config() {
        let config = config(flags(&[
            "--api=0.0.0.0:1",
            "--api-token=t",
            "--insecure-api",
            "--max-body-kb=2",
            "--grpc=off",
            "--http=127.0.0.1:3",
            "--max-request-size-mb=4",
            "--receive-budget-mb=5",
            "--request-read-timeout=6s",
            "--reports-dir=r",
            "--spool-dir=s",
            "--retention-interval=7s",
            "--retention-older-than=8d",
            "--retention-keep-last=9",
            "--retention-max-total-size=10GB",
            "--retention-type=seed",
            "--max-concurrent-replays=11",
            "--max-concurrent-seeds=12",
            "--max-seed-traces=13",
            "--allow-target=10.0.0.0/8",
            "--export-dir=e",
            "--max-concurrent-exports=14",
            "--max-concurrent-compares=15",
        ]));
        let json: ServeConfig = serde_json::from_str(
            r#"{"api": "0.0.0.0:1", "apiToken": "t", "insecureApi": true, "maxBodyKb": 2, "grpc": null,
                "http": "127.0.0.1:3", "maxRequestSizeMb": 4, "receiveBudgetMb": 5, "requestReadTimeout": "6s",
                "reportsDir": "r", "spoolDir": "s", "retentionInterval": "7s", "retentionOlderThan": "8d",
                "retentionKeepLast": 9, "retentionMaxTotalSize": "10GB", "retentionTypes": ["seed"],
                "maxConcurrentReplays": 11, "maxConcurrentSeeds": 12, "maxSeedTraces": 13,
                "allowTargets": ["10.0.0.0/8"], "exportDir": "e", "maxConcurrentExports": 14,
                "maxConcurrentCompares": 15}"#,
        )
        .unwrap();
        assert_eq!(config, json);
    }
}
