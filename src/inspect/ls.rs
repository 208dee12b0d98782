//! `dcgan ls`: one line per run directory, as a table for people or JSON/CSV for scripts.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::row::{self, RunRow};
use super::select::{self, COLUMNS, Condition};

/// How the listing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    Table,
    /// An array of objects, numbers as numbers, missing values as null.
    Json,
    /// A header line, then one line per run, quoted where needed.
    Csv,
}

/// What to list and how.
#[derive(Debug, Clone)]
pub struct LsOptions {
    pub runs_dir: PathBuf,
    pub sweep: Option<String>,
    pub conditions: Vec<String>,
    /// A key, or `-key` for descending order.
    pub sort: Option<String>,
    pub descending: bool,
    pub format: Format,
}

/// Reads, selects, orders and writes the runs; the text to print.
pub fn list(options: &LsOptions) -> anyhow::Result<String> {
    let conditions: Vec<Condition> =
        options.conditions.iter().map(|c| Condition::parse(c)).collect::<Result<_, _>>()?;
    let root = &options.runs_dir;
    let dirs = super::run_dirs(root)?;
    let rows: Vec<RunRow> = dirs.iter().map(|dir| row::read(root, dir)).collect();
    let valid = select::valid_keys(&rows);
    for c in &conditions {
        select::check_key(&c.key, "--where", &valid)?;
    }
    let sort = options.sort.as_deref().map(|s| match s.strip_prefix('-') {
        Some(key) => (key, !options.descending),
        None => (s, options.descending),
    });
    if let Some((key, _)) = sort {
        select::check_key(key, "--sort", &valid)?;
    }
    let mut rows = of_sweep(rows, options.sweep.as_deref(), root)?;
    rows.retain(|r| conditions.iter().all(|c| c.holds(r)));
    if let Some((key, descending)) = sort {
        select::sort(&mut rows, key, descending);
    }
    Ok(match options.format {
        Format::Table => table(&rows, root),
        Format::Json => json_text(&rows),
        Format::Csv => csv(&rows),
    })
}

/// Keeps the runs of one sweep; a sweep with no run is an error naming those there are.
fn of_sweep(
    rows: Vec<RunRow>,
    sweep: Option<&str>,
    root: &std::path::Path,
) -> anyhow::Result<Vec<RunRow>> {
    let Some(name) = sweep else { return Ok(rows) };
    let sweep_of = |r: &RunRow| r.manifest.as_ref().map(|m| m.sweep.clone());
    let mut known: Vec<String> = rows.iter().filter_map(sweep_of).collect();
    known.sort();
    known.dedup();
    anyhow::ensure!(
        known.iter().any(|k| k == name),
        "--sweep {name}: no run of that sweep in {}; sweeps there: {}",
        root.display(),
        if known.is_empty() { "none".to_string() } else { known.join(", ") }
    );
    Ok(rows.into_iter().filter(|r| sweep_of(r).as_deref() == Some(name)).collect())
}

/// A cell as the table shows it: numbers rounded, times readable, `-` for nothing.
fn shown(row: &RunRow, column: &str) -> String {
    let m = row.manifest.as_ref();
    let text = match column {
        "steps" => m.map(|m| format!("{}/{}", m.steps_done, m.steps_planned)),
        "time" => m.and_then(|m| m.duration_s).map(duration),
        "d_loss" | "g_loss" | "d_acc_real" | "d_acc_fake" | "frechet" => {
            select::cell(row, column).and_then(|c| c.number).map(|v| format!("{v:.4}"))
        }
        _ => select::cell(row, column).map(|c| c.text),
    };
    text.filter(|t| !t.is_empty()).unwrap_or_else(|| "-".to_string())
}

/// `42.0s`, `3m05s`, `2h07m`.
fn duration(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    match whole {
        _ if seconds < 60.0 => format!("{seconds:.1}s"),
        0..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        _ => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
    }
}

fn table(rows: &[RunRow], root: &std::path::Path) -> String {
    if rows.is_empty() {
        return format!("no runs in {}", root.display());
    }
    // One line per run: a reason of several lines (a list of unreadable files) is joined.
    let one_line = |text: String| text.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| COLUMNS.iter().map(|c| one_line(shown(r, c))).collect()).collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| cells.iter().map(|r| r[i].chars().count()).fold(COLUMNS[i].len(), usize::max))
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> =
            values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(COLUMNS.to_vec())];
    lines.extend(cells.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    lines.join("\n")
}

/// One run as a JSON object: the columns, `steps_planned` and the directory.
pub fn json_row(row: &RunRow) -> Value {
    let m = row.manifest.as_ref();
    let number = |c: &str| select::cell(row, c).and_then(|c| c.number);
    json!({
        "hash": row.hash,
        "status": row.status,
        "sweep": m.map(|m| m.sweep.clone()),
        "swept": m.map(|m| m.swept.clone()),
        "steps": m.map(|m| m.steps_done),
        "steps_planned": m.map(|m| m.steps_planned),
        "time": m.and_then(|m| m.duration_s),
        "d_loss": number("d_loss"),
        "g_loss": number("g_loss"),
        "d_acc_real": number("d_acc_real"),
        "d_acc_fake": number("d_acc_fake"),
        "frechet": row.frechet,
        "reason": row.reason,
        "dir": row.dir.display().to_string(),
    })
}

fn json_text(rows: &[RunRow]) -> String {
    let all: Vec<Value> = rows.iter().map(json_row).collect();
    serde_json::to_string_pretty(&all).expect("JSON values always serialise")
}

/// CSV with the JSON object's fields; `swept` as `key=value` pairs joined by spaces.
fn csv(rows: &[RunRow]) -> String {
    const HEADER: &str = "hash,status,sweep,swept,steps,steps_planned,time,d_loss,g_loss,\
                          d_acc_real,d_acc_fake,frechet,reason,dir";
    let header: Vec<&str> = HEADER.split(',').collect();
    let mut lines = vec![HEADER.to_string()];
    for row in rows {
        let fields: Vec<String> = header
            .iter()
            .map(|h| match *h {
                "dir" => row.dir.display().to_string(),
                h => select::cell(row, h).map(|c| c.text).unwrap_or_default(),
            })
            .map(|f| quote(&f))
            .collect();
        lines.push(fields.join(","));
    }
    lines.join("\n")
}

/// RFC 4180 quoting: fields with commas, quotes or line breaks go in quotes, quotes doubled.
pub fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn durations_read_as_clock_times() {
        assert_eq!(duration(1.34), "1.3s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7620.0), "2h07m");
    }
}
