//! The README's "Training data" section against real readers: its column
//! tables against the files the Parquet export writes, and its DuckDB,
//! pandas and polars snippets, extracted from README.md and run as they
//! stand with the Python tools of `.ci/install-python-tools`, against
//! exports of seed sessions, their counts checked against `labels.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tape_files::parquet::{Table, TableWriter};

use crate::{seed_session, tape_json};

/// The tools the snippets are written for, by their README marker.
const TOOLS: [&str; 3] = ["duckdb", "pandas", "polars"];

/// The Python of the virtual environment `.ci/install-python-tools` makes.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/python-tools/bin/python");
    assert!(
        python.exists(),
        "the Python tools the training-data tests read Parquet files with are not installed \
         ({} is missing): run `bash .ci/install-python-tools` (the test command `bash .ci/run` does)",
        python.display()
    );
    python
}

/// Runs `script` with the tools' Python in `dir` and returns its stdout.
fn run_python(dir: &Path, script: &str, what: &str) -> String {
    let output = Command::new(python()).arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n--- script ---\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap()
}

/// The code of the fenced block that follows `<!-- test: training-data/TOOL -->`.
fn snippet(readme: &str, tool: &str) -> String {
    let marker = format!("<!-- test: training-data/{tool} -->");
    let start = readme.find(&marker).unwrap_or_else(|| panic!("README.md has no `{marker}`"));
    let rest = &readme[start + marker.len()..];
    let fence = rest.find("```python\n").unwrap_or_else(|| panic!("no ```python block after `{marker}`"));
    let code = &rest[fence + "```python\n".len()..];
    code[..code.find("\n```").expect("an unclosed block")].to_owned()
}

/// A column as the README documents it and as the files hold it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    name: String,
    type_name: String,
    nullable: bool,
}

/// The rows of the table that follows `<!-- columns: NAME -->`, as cells.
fn column_rows(readme: &str, name: &str) -> Vec<Vec<String>> {
    let marker = format!("<!-- columns: {name} -->");
    let start = readme.find(&marker).unwrap_or_else(|| panic!("README.md has no `{marker}`"));
    readme[start + marker.len()..]
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| line.trim_matches('|').split('|').map(|cell| cell.trim().to_owned()).collect())
        .collect()
}

fn column(cells: &[String]) -> Column {
    let (type_name, nullable) = match cells[1].strip_suffix(", nullable") {
        Some(type_name) => (type_name.to_owned(), true),
        None => (cells[1].clone(), false),
    };
    Column { name: cells[0].trim_matches('`').to_owned(), type_name, nullable }
}

/// The columns the README gives `table`, sorted.
fn documented_columns(readme: &str, table: Table, with_phase: bool) -> Vec<Column> {
    let own: Vec<Column> = match table {
        Table::Traces => column_rows(readme, "traces").iter().map(|cells| column(cells)).collect(),
        Table::Logs => column_rows(readme, "logs").iter().map(|cells| column(cells)).collect(),
        _ => {
            let kind = table.name().trim_start_matches("metrics_");
            let points = column_rows(readme, "metrics-points");
            let in_table = points.iter().filter(|cells| cells[2].split(", ").any(|listed| listed == kind));
            column_rows(readme, "metrics").iter().chain(in_table).map(|cells| column(cells)).collect()
        }
    };
    let shared = column_rows(readme, "all").iter().map(|cells| column(cells)).collect::<Vec<_>>();
    let mut columns: Vec<Column> =
        own.into_iter().chain(shared).filter(|column| with_phase || column.name != "Phase").collect();
    columns.sort();
    columns
}

/// The columns of each Parquet file under `dir` (relative names), read
/// with pyarrow and written in the README's notation, sorted.
fn file_columns(dir: &Path) -> BTreeMap<String, Vec<Column>> {
    let script = r#"
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

def render(t):
    if pa.types.is_list(t):
        return f"list<{render(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{render(t.key_type)}, {render(t.item_type)}>"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}, {t.tz}]"
    return str(t)

files = {}
for path in sorted(Path(".").rglob("*.parquet")):
    schema = pq.read_schema(path)
    files[path.as_posix()] = [[field.name, render(field.type), field.nullable] for field in schema]
print(json.dumps(files))
"#;
    let files: BTreeMap<String, Vec<(String, String, bool)>> =
        serde_json::from_str(&run_python(dir, script, "reading the files' schemas with pyarrow")).unwrap();
    files
        .into_iter()
        .map(|(path, fields)| {
            let mut columns: Vec<Column> =
                fields.into_iter().map(|(name, type_name, nullable)| Column { name, type_name, nullable }).collect();
            columns.sort();
            (path, columns)
        })
        .collect()
}

/// The table a file holds, by its name.
fn table_of(path: &str) -> Table {
    let name = Path::new(path).file_name().unwrap().to_str().unwrap();
    Table::ALL.into_iter().find(|table| table.file_name() == name).unwrap_or_else(|| panic!("{path}: not a table"))
}

/// Asserts that every file under `dir` has exactly the README's columns of
/// its table, with or without `Phase`; returns how many files there were.
fn assert_documented(readme: &str, dir: &Path, with_phase: bool) -> usize {
    let files = file_columns(dir);
    for (path, columns) in &files {
        let documented = documented_columns(readme, table_of(path), with_phase);
        let undocumented: Vec<&Column> = columns.iter().filter(|column| !documented.contains(column)).collect();
        let absent: Vec<&Column> = documented.iter().filter(|column| !columns.contains(column)).collect();
        assert!(
            undocumented.is_empty() && absent.is_empty(),
            "{path}: columns of the file that the README does not give so: {undocumented:?}; \
             columns the README gives that the file does not have so: {absent:?}"
        );
    }
    files.len()
}

#[test]
fn the_readme_documents_every_column_of_every_table_with_its_type() {
    let readme = readme();
    for with_phase in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        // Files of no rows from the export's own writer: the schema as written.
        for table in Table::ALL {
            let bytes = TableWriter::new(table, with_phase).unwrap().finish().unwrap();
            std::fs::write(dir.path().join(table.file_name()), &bytes).unwrap();
        }
        assert_eq!(assert_documented(&readme, dir.path(), with_phase), Table::ALL.len());
    }
}

/// Seeds `pattern` as session `id` and exports it to parquet twice under
/// a new directory: whole into `tables/`, by phase into `training/`.
/// Returns the directory (kept while the guard lives) and `labels.json`.
fn export_both(pattern: &str, id: &str) -> (tempfile::TempDir, Value) {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    seed_session(&store, pattern, "30s", id);
    for (out, by_phase) in [("tables", false), ("training", true)] {
        let out = root.path().join(out);
        let mut args = vec!["export", "--session", id, "--format", "parquet", "--out", out.to_str().unwrap()];
        if by_phase {
            args.push("--by-phase");
        }
        tape_json(&store, &args);
    }
    let labels = serde_json::from_slice(&std::fs::read(root.path().join("training/labels.json")).unwrap()).unwrap();
    (root, labels)
}

/// What one tool's snippet computed: each of its three results as records.
struct Results {
    tool: &'static str,
    error_rate: Vec<Value>,
    p99: Vec<Value>,
    counts: Vec<Value>,
}

/// Runs the README's snippet of `tool` in `dir` and collects its results.
fn run_snippet(readme: &str, tool: &'static str, dir: &Path) -> Results {
    let records = match tool {
        "duckdb" => "[dict(zip(value.columns, row)) for row in value.fetchall()]",
        "pandas" => "value.to_dict(orient='records')",
        _ => "value.to_dicts()",
    };
    let script = format!(
        "{}\n\nimport json as _json\n_results = {{}}\nfor _name in ('error_rate', 'p99', 'counts'):\n    \
         value = globals()[_name]\n    _results[_name] = {records}\n\
         print('RESULTS ' + _json.dumps(_results, default=lambda v: v.item()))\n",
        snippet(readme, tool)
    );
    let stdout = run_python(dir, &script, &format!("the README's {tool} snippet"));
    let line = stdout.lines().rev().find_map(|line| line.strip_prefix("RESULTS ")).expect("the results line");
    let mut results: BTreeMap<String, Vec<Value>> = serde_json::from_str(line).unwrap();
    let mut take = |name: &str| results.remove(name).unwrap();
    Results { tool, error_rate: take("error_rate"), p99: take("p99"), counts: take("counts") }
}

fn text(record: &Value, field: &str) -> String {
    record[field].as_str().unwrap_or_else(|| panic!("{field} in {record}")).to_owned()
}

fn number(record: &Value, field: &str) -> f64 {
    record[field].as_f64().unwrap_or_else(|| panic!("{field} in {record}"))
}

/// The items per phase and signal that `labels.json` gives, phases with
/// none left out.
fn label_counts(labels: &Value) -> BTreeMap<(String, &'static str), u64> {
    let mut counts = BTreeMap::new();
    for phase in labels["phases"].as_array().unwrap() {
        for signal in ["traces", "metrics", "logs"] {
            let items = phase["items"][signal].as_u64().unwrap();
            if items > 0 {
                counts.insert((text(phase, "phase"), signal), items);
            }
        }
    }
    counts
}

/// A snippet's rows per phase and table added up per phase and signal.
fn snippet_counts(results: &Results) -> BTreeMap<(String, &'static str), u64> {
    let mut counts = BTreeMap::new();
    for record in &results.counts {
        let signal = match text(record, "table").as_str() {
            "traces" => "traces",
            "logs" => "logs",
            table if table.starts_with("metrics_") => "metrics",
            table => panic!("{}: unknown table {table}", results.tool),
        };
        *counts.entry((text(record, "Phase"), signal)).or_default() += record["rows"].as_u64().unwrap();
    }
    counts
}

/// Spans and error rate per (phase, service).
type ErrorRates = BTreeMap<(String, String), (u64, f64)>;

/// Error rate per (phase, service), with the spans counted.
fn error_rates(results: &Results) -> ErrorRates {
    results
        .error_rate
        .iter()
        .map(|record| {
            let key = (text(record, "Phase"), text(record, "ServiceName"));
            (key, (record["spans"].as_u64().unwrap(), number(record, "error_rate")))
        })
        .collect()
}

/// p99 in milliseconds per phase.
fn p99s(results: &Results) -> BTreeMap<String, f64> {
    results.p99.iter().map(|record| (text(record, "Phase"), number(record, "p99_ms"))).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Runs every snippet on the exports of `pattern` and checks them against
/// `labels.json` and against one another; returns the error rates and
/// p99s (the tools agree on them) for checks of the pattern's story.
fn check_snippets(pattern: &str) -> (ErrorRates, BTreeMap<String, f64>) {
    let readme = readme();
    let (root, labels) = export_both(pattern, &format!("training-data-{pattern}"));
    // The exported files have the README's columns too.
    assert!(assert_documented(&readme, &root.path().join("tables"), true) > 0);
    assert!(assert_documented(&readme, &root.path().join("training"), false) > 0);

    let expected = label_counts(&labels);
    let results: Vec<Results> = TOOLS.into_iter().map(|tool| run_snippet(&readme, tool, root.path())).collect();
    for result in &results {
        assert_eq!(
            snippet_counts(result),
            expected,
            "{pattern}: {}'s rows per phase are not labels.json's",
            result.tool
        );
        let rates = error_rates(result);
        let mut spans_per_phase: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for ((phase, _), (spans, rate)) in &rates {
            assert!((0.0..=1.0).contains(rate), "{pattern}, {}: error rate {rate}", result.tool);
            *spans_per_phase.entry((phase.clone(), "traces")).or_default() += spans;
        }
        let expected_spans: BTreeMap<_, _> =
            expected.iter().filter(|((_, signal), _)| *signal == "traces").map(|(key, n)| (key.clone(), *n)).collect();
        assert_eq!(spans_per_phase, expected_spans, "{pattern}, {}: spans of the error rates", result.tool);
        let p99 = p99s(result);
        assert_eq!(
            p99.keys().collect::<Vec<_>>(),
            expected_spans.keys().map(|(phase, _)| phase).collect::<Vec<_>>(),
            "{pattern}, {}: the phases of the p99s",
            result.tool
        );
        assert!(p99.values().all(|ms| *ms > 0.0), "{pattern}, {}: {p99:?}", result.tool);
    }
    // DuckDB on both layouts, pandas on the whole export and polars on the
    // Hive layout compute the same figures.
    let (first, others) = results.split_first().unwrap();
    let (rates, p99) = (error_rates(first), p99s(first));
    for other in others {
        let other_rates = error_rates(other);
        assert_eq!(other_rates.keys().collect::<Vec<_>>(), rates.keys().collect::<Vec<_>>(), "{}", other.tool);
        for (key, (spans, rate)) in &rates {
            let (other_spans, other_rate) = other_rates[key];
            assert!(
                *spans == other_spans && close(*rate, other_rate),
                "{key:?}: {} and {} differ",
                first.tool,
                other.tool
            );
        }
        for (phase, ms) in &p99 {
            assert!(close(*ms, p99s(other)[phase]), "p99 of {phase}: {} and {} differ", first.tool, other.tool);
        }
    }
    (rates, p99)
}

fn rate(rates: &ErrorRates, phase: &str, service: &str) -> f64 {
    rates.get(&(phase.to_owned(), service.to_owned())).unwrap_or_else(|| panic!("no {service} in {phase}: {rates:?}")).1
}

#[test]
fn the_readme_snippets_count_payment_failure_as_labels_json_does_and_see_payment_fail() {
    let (rates, p99) = check_snippets("payment-failure");
    // Three charges in four fail at the payment service in the failure
    // phase only; browsing never touches it.
    let (baseline, failure) = (rate(&rates, "baseline", "payment"), rate(&rates, "failure", "payment"));
    assert!(failure > 0.2 && failure > baseline + 0.2, "payment: baseline {baseline}, failure {failure}");
    assert!(rate(&rates, "rampdown", "payment") < failure, "{rates:?}");
    assert!(rate(&rates, "failure", "product-catalog") < failure, "{rates:?}");
    // Charges also get slower while they fail.
    assert!(p99["failure"] > p99["baseline"], "{p99:?}");
}

#[test]
fn the_readme_snippets_count_training_phases_as_labels_json_does_and_see_the_database_slow_down() {
    let (rates, p99) = check_snippets("training-phases");
    // The database slows down in `degraded`, then fails in `failure`.
    assert!(p99["degraded"] > p99["baseline"], "{p99:?}");
    let (baseline, failure) = (rate(&rates, "baseline", "storefront"), rate(&rates, "failure", "storefront"));
    assert!(failure > baseline, "storefront: baseline {baseline}, failure {failure}");
}
