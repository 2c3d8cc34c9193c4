//! `otlp-tape compare`: its flags.

use std::path::PathBuf;

use clap::Args;
use tape_compare::CompareConfig;

/// `otlp-tape compare`
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// What to compare and how strictly: the flags of `tape_compare::CompareConfig`.
    #[command(flatten)]
    pub config: CompareConfig,
    /// The JSON report of the replay that produced ACTUAL from EXPECTED (`replay --report FILE`): its id
    /// remapping is undone, its selection and passes expected, and its timestamp shift allowed.
    #[arg(long, value_name = "FILE")]
    pub replay_report: Option<PathBuf>,
    /// Also write the comparison to this file: FILE.json is the evidence artifact (what --output json prints),
    /// FILE.html the same as a page to read.
    #[arg(long, value_name = "FILE.json|FILE.html", value_parser = parse_report_file)]
    pub report: Option<ReportFile>,
    /// Where the partition files of sessions larger than memory go (a new directory in it, removed at the end).
    /// [default: the system's temporary directory, TMPDIR]
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
}

/// `--report`: a file and what goes into it, by its extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFile {
    /// The comparison as pretty JSON.
    Json(PathBuf),
    /// The comparison as an HTML page.
    Html(PathBuf),
}

impl ReportFile {
    /// The file.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ReportFile::Json(path) | ReportFile::Html(path) => path,
        }
    }
}

fn parse_report_file(text: &str) -> Result<ReportFile, String> {
    let path = PathBuf::from(text);
    let extension = path.extension().and_then(|extension| extension.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("json") => Ok(ReportFile::Json(path)),
        Some("html" | "htm") => Ok(ReportFile::Html(path)),
        _ => Err(format!(
            "{text:?} ends neither in .json (the comparison as JSON) nor in .html (the comparison as a page)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn flags(args: &[&str]) -> CompareArgs {
        let cli = Cli::try_parse_from(["otlp-tape", "compare"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Compare(args) => args,
            _ => unreachable!("parsed as compare"),
        }
    }

    #[test]
    fn the_flags_are_the_configs_options() {
        let defaults = flags(&["seed-1", "capture-1"]);
        let json: CompareConfig = serde_json::from_str(r#"{"expected": "seed-1", "actual": "capture-1"}"#).unwrap();
        assert_eq!(defaults.config, json);
        let every = flags(&[
            "seed-1",
            "capture-1",
            "--signals=traces,logs",
            "--ignore-attribute=host.name",
            "--ignore-attribute=k8s.pod.uid",
            "--allow-change=deployment.environment",
            "--max-missing=10%",
            "--partitions=8",
            "--replay-report=r.json",
            "--report=c.html",
            "--temp-dir=t",
        ]);
        let json: CompareConfig = serde_json::from_str(
            r#"{"expected": "seed-1", "actual": "capture-1", "signals": "traces,logs",
                "ignoreAttributes": ["host.name", "k8s.pod.uid"], "allowChanges": ["deployment.environment"],
                "maxMissing": 0.1, "partitions": 8}"#,
        )
        .unwrap();
        assert_eq!(every.config, json);
        assert_eq!(every.replay_report, Some(PathBuf::from("r.json")));
        assert_eq!(every.report, Some(ReportFile::Html(PathBuf::from("c.html"))));
        assert_eq!(every.temp_dir, Some(PathBuf::from("t")));
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for (args, expected) in [
            (&["a", "b", "--max-missing", "2"][..], "is not a share"),
            (&["a", "b", "--partitions", "0"][..], "--partitions"),
            (&["a", "b", "--report", "x.txt"][..], ".json"),
            (&["a"][..], "<ACTUAL>"),
            (&["a/../b", "c"][..], "EXPECTED"),
        ] {
            let error = Cli::try_parse_from(["otlp-tape", "compare"].iter().chain(args)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
            assert!(error.to_string().contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn the_report_is_json_or_html_by_its_extension() {
        assert_eq!(parse_report_file("out/x.json"), Ok(ReportFile::Json(PathBuf::from("out/x.json"))));
        assert_eq!(parse_report_file("x.HTML"), Ok(ReportFile::Html(PathBuf::from("x.HTML"))));
        for bad in ["x.txt", "x", "json", "x.json.gz"] {
            let error = parse_report_file(bad).unwrap_err();
            assert!(error.contains(".json") && error.contains(bad), "{bad}: {error}");
        }
    }
}
