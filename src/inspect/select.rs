//! Which runs `ls` shows and in what order: `--where KEY=VALUE` and `--sort COLUMN`.
//!
//! Both take a column of the listing or any dotted key of the stored config, so runs can be
//! picked by a setting that was not swept. Numbers compare as numbers (`0.5` is `0.50`),
//! because configs are written by hand and YAML keeps what was typed.

use std::cmp::Ordering;

use super::row::{FINAL_COLUMNS, RunRow};

/// Columns of the listing, in display order.
pub const COLUMNS: [&str; 12] = [
    "hash",
    "status",
    "sweep",
    "swept",
    "steps",
    "time",
    "d_loss",
    "g_loss",
    "d_acc_real",
    "d_acc_fake",
    "frechet",
    "reason",
];

/// A value of a row under a key: its text and, when it is a number, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub number: Option<f64>,
}

impl Cell {
    fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        let number = text.trim().parse::<f64>().ok().filter(|n| n.is_finite());
        Cell { text, number }
    }

    fn number(value: Option<f64>) -> Self {
        match value {
            Some(v) => Cell { text: v.to_string(), number: Some(v) },
            None => Cell { text: String::new(), number: None },
        }
    }

    fn is_empty(&self) -> bool {
        self.text.is_empty() && self.number.is_none()
    }
}

/// `key=value` pairs joined by spaces, as sweeps label their points.
pub fn swept_label(swept: &[(String, String)]) -> String {
    let pairs: Vec<String> = swept.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

/// The row's value under a column or dotted config key; `None` for an unknown key.
pub fn cell(row: &RunRow, key: &str) -> Option<Cell> {
    let m = row.manifest.as_ref();
    let cell = match key {
        "hash" => Cell { text: row.hash.clone(), number: None },
        "status" => Cell::text(row.status),
        "sweep" => Cell::text(m.map(|m| m.sweep.clone()).unwrap_or_default()),
        "swept" => Cell::text(m.map(|m| swept_label(&m.swept)).unwrap_or_default()),
        "steps" => Cell::number(m.map(|m| m.steps_done as f64)),
        "steps_planned" => Cell::number(m.map(|m| m.steps_planned as f64)),
        "time" => Cell::number(m.and_then(|m| m.duration_s)),
        "frechet" => Cell::number(row.frechet),
        "reason" => Cell::text(row.reason.clone().unwrap_or_default()),
        k if FINAL_COLUMNS.contains(&k) => Cell::number(row.finals.get(k).copied().flatten()),
        k => Cell::text(row.config.get(k)?.clone()),
    };
    Some(cell)
}

/// One `--where` condition.
#[derive(Debug, Clone)]
pub struct Condition {
    pub key: String,
    pub value: String,
}

impl Condition {
    /// Parses `KEY=VALUE` (the value may hold `=` itself).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok(Condition { key: key.trim().to_string(), value: value.trim().to_string() })
            }
            _ => anyhow::bail!("--where `{text}`: expected KEY=VALUE, e.g. train.seed=1"),
        }
    }

    /// Whether the row's value equals the wanted one, as numbers when both are.
    pub fn holds(&self, row: &RunRow) -> bool {
        let Some(cell) = cell(row, &self.key) else { return false };
        let wanted = Cell::text(self.value.clone());
        match (cell.number, wanted.number) {
            (Some(a), Some(b)) => a == b,
            _ => cell.text == wanted.text,
        }
    }
}

/// Every key `--where` and `--sort` accept for these rows: the columns, then the config keys.
pub fn valid_keys(rows: &[RunRow]) -> Vec<String> {
    let mut config: Vec<String> = super::row::dotted(&Default::default()).into_keys().collect();
    config.extend(rows.iter().flat_map(|r| r.config.keys().cloned()));
    config.sort();
    config.dedup();
    let columns = COLUMNS.iter().chain(["steps_planned"].iter()).map(|c| c.to_string());
    columns.chain(config).collect()
}

/// Fails with the valid keys when `key` is none of them.
pub fn check_key(key: &str, what: &str, valid: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(
        valid.iter().any(|k| k == key),
        "{what}: unknown key `{key}`; valid keys are the columns and the config's dotted keys: {}",
        valid.join(", ")
    );
    Ok(())
}

/// Sorts by a key: numerically when both values are numbers, else as text; runs without a
/// value go last either way, and ties keep the hash order.
pub fn sort(rows: &mut [RunRow], key: &str, descending: bool) {
    rows.sort_by(|a, b| {
        let (x, y) = (cell(a, key).unwrap_or(Cell::number(None)), cell(b, key));
        let y = y.unwrap_or(Cell::number(None));
        match (x.is_empty(), y.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let order = compare(&x, &y);
                if descending { order.reverse() } else { order }
            }
        }
    });
}

fn compare(x: &Cell, y: &Cell) -> Ordering {
    match (x.number, y.number) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        _ => x.text.cmp(&y.text),
    }
}
