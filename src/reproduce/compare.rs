//! Comparing two runs value by value: the columns of their `metrics.parquet` and the tensors
//! of their final weights. Equality is bit-exact (floats by their bits, so `-0.0` differs from
//! `0.0` and a NaN equals the same NaN); where values differ, the largest absolute and
//! relative differences say by how much.

use std::fmt::Write as _;

use polars::prelude::{AnyValue, DataFrame};

/// Columns that measure wall-clock time: they differ between any two runs and are not compared.
pub const TIMING_COLUMNS: &[&str] = &["elapsed_s"];

/// How one column or tensor of the reproduced run compares with the stored run's.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// Column or tensor name.
    pub name: String,
    pub identical: bool,
    /// Where the first difference is: the stored run's step for a column, the element index
    /// for a tensor.
    pub first: Option<u64>,
    /// Largest `|a - b|` over values present in both (None: nothing numeric to measure).
    pub max_abs: Option<f64>,
    /// Largest `|a - b| / max(|a|, |b|)`.
    pub max_rel: Option<f64>,
    /// Differences the numbers do not capture: missing columns, types, lengths, nulls.
    pub note: Option<String>,
}

impl Diff {
    fn same(name: &str) -> Self {
        Self {
            name: name.to_string(),
            identical: true,
            first: None,
            max_abs: Some(0.0),
            max_rel: Some(0.0),
            note: None,
        }
    }

    fn broken(name: &str, note: String) -> Self {
        Self {
            name: name.to_string(),
            identical: false,
            first: None,
            max_abs: None,
            max_rel: None,
            note: Some(note),
        }
    }
}

/// The comparison of two metrics tables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsComparison {
    pub columns: Vec<Diff>,
    /// Columns left out on purpose (timing).
    pub not_compared: Vec<String>,
    /// Set when the tables have different numbers of rows.
    pub rows: Option<String>,
}

impl MetricsComparison {
    pub fn identical(&self) -> bool {
        self.rows.is_none() && self.columns.iter().all(|d| d.identical)
    }
}

/// Largest differences so far; a NaN difference sticks (it is the worst there is).
#[derive(Debug, Default)]
struct Spread {
    abs: Option<f64>,
    rel: Option<f64>,
}

impl Spread {
    fn add(&mut self, a: f64, b: f64) {
        let abs = (a - b).abs();
        let scale = a.abs().max(b.abs());
        let rel = if abs == 0.0 { 0.0 } else { abs / scale };
        self.abs = Some(worst(self.abs, abs));
        self.rel = Some(worst(self.rel, rel));
    }
}

fn worst(so_far: Option<f64>, next: f64) -> f64 {
    match so_far {
        None => next,
        Some(m) if m.is_nan() => m,
        Some(_) if next.is_nan() => next,
        Some(m) => m.max(next),
    }
}

/// Bit-exact equality of two cells: floats by their bits, nulls equal nulls.
fn same_value(a: &AnyValue, b: &AnyValue) -> bool {
    match (a, b) {
        (AnyValue::Float64(x), AnyValue::Float64(y)) => x.to_bits() == y.to_bits(),
        (AnyValue::Float32(x), AnyValue::Float32(y)) => x.to_bits() == y.to_bits(),
        (AnyValue::Null, AnyValue::Null) => true,
        _ => a == b,
    }
}

/// Compares every column of `stored` with the same column of `reproduced`, except the
/// timing ones; rows are matched by position and named by the stored run's `step`.
pub fn compare_metrics(stored: &DataFrame, reproduced: &DataFrame) -> MetricsComparison {
    let mut out = MetricsComparison::default();
    let (n_a, n_b) = (stored.height(), reproduced.height());
    if n_a != n_b {
        out.rows = Some(format!("the stored run has {n_a} rows, the reproduction {n_b}"));
    }
    let step_of = |i: usize| -> u64 {
        let table = if i < n_a { stored } else { reproduced };
        table
            .column("step")
            .ok()
            .and_then(|c| c.get(i).ok())
            .and_then(|v| v.extract::<u64>())
            .unwrap_or(i as u64 + 1)
    };
    let mut names: Vec<String> = stored.get_column_names().iter().map(|n| n.to_string()).collect();
    for name in reproduced.get_column_names() {
        if !names.iter().any(|n| n == name.as_str()) {
            names.push(name.to_string());
        }
    }
    for name in names {
        if TIMING_COLUMNS.contains(&name.as_str()) {
            out.not_compared.push(name);
            continue;
        }
        let (a, b) = match (stored.column(&name), reproduced.column(&name)) {
            (Ok(a), Ok(b)) => (a, b),
            (Ok(_), Err(_)) => {
                out.columns.push(Diff::broken(&name, "missing in the reproduction".into()));
                continue;
            }
            _ => {
                out.columns.push(Diff::broken(&name, "missing in the stored run".into()));
                continue;
            }
        };
        if a.dtype() != b.dtype() {
            let note = format!("types differ: {} vs {}", a.dtype(), b.dtype());
            out.columns.push(Diff::broken(&name, note));
            continue;
        }
        let numeric = a.dtype().is_primitive_numeric();
        let mut diff = Diff::same(&name);
        if !numeric {
            (diff.max_abs, diff.max_rel) = (None, None);
        }
        let mut spread = Spread::default();
        let mut null_mismatches = 0usize;
        for i in 0..n_a.min(n_b) {
            let (Ok(x), Ok(y)) = (a.get(i), b.get(i)) else {
                diff.identical = false;
                diff.note = Some(format!("row {i} cannot be read"));
                diff.first.get_or_insert(step_of(i));
                continue;
            };
            if same_value(&x, &y) {
                continue;
            }
            diff.identical = false;
            diff.first.get_or_insert(step_of(i));
            match (x.extract::<f64>(), y.extract::<f64>()) {
                (Some(x), Some(y)) if numeric => spread.add(x, y),
                _ if x.is_null() != y.is_null() => null_mismatches += 1,
                _ => {}
            }
        }
        if n_a != n_b {
            diff.identical = false;
            diff.first.get_or_insert(step_of(n_a.min(n_b)));
        }
        if numeric && !diff.identical {
            (diff.max_abs, diff.max_rel) = (spread.abs, spread.rel);
        }
        if null_mismatches > 0 {
            diff.note = Some(format!("{null_mismatches} rows null in only one run"));
        }
        out.columns.push(diff);
    }
    out
}

/// Named float tensors of a model, as [`crate::model::parameters`] returns them.
pub type Tensors = [(String, Vec<f32>)];

/// Compares two models' tensors, matched by position (both come from one architecture).
pub fn compare_tensors(prefix: &str, stored: &Tensors, reproduced: &Tensors) -> Vec<Diff> {
    let mut out = Vec::new();
    for (i, (name, a)) in stored.iter().enumerate() {
        let label = format!("{prefix}.{name}");
        let Some((other_name, b)) = reproduced.get(i) else {
            out.push(Diff::broken(&label, "missing in the reproduction".into()));
            continue;
        };
        if other_name != name {
            out.push(Diff::broken(&label, format!("the reproduction has {other_name} here")));
            continue;
        }
        if a.len() != b.len() {
            let note = format!("{} values vs {}", a.len(), b.len());
            out.push(Diff::broken(&label, note));
            continue;
        }
        let mut diff = Diff::same(&label);
        let mut spread = Spread::default();
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            if x.to_bits() != y.to_bits() {
                diff.identical = false;
                diff.first.get_or_insert(k as u64);
                spread.add(f64::from(*x), f64::from(*y));
            }
        }
        if !diff.identical {
            (diff.max_abs, diff.max_rel) = (spread.abs, spread.rel);
        }
        out.push(diff);
    }
    for (name, _) in reproduced.iter().skip(stored.len()) {
        out.push(Diff::broken(&format!("{prefix}.{name}"), "missing in the stored run".into()));
    }
    out
}

/// A table of differences as lines of text: name, identical?, first difference, max abs,
/// max rel, note. `first` names what the first-difference column counts (`step`, `index`);
/// `skipped` rows were left out of the comparison on purpose (timing).
pub fn table(title: &str, first: &str, diffs: &[Diff], skipped: &[String]) -> Vec<String> {
    let names = diffs.iter().map(|d| d.name.len()).chain(skipped.iter().map(String::len));
    let width = names.max().unwrap_or(0).max(title.len());
    let mut lines = vec![format!(
        "{title:<width$}  {:<9}  {:>10}  {:>12}  {:>12}",
        "identical",
        format!("first {first}"),
        "max abs diff",
        "max rel diff"
    )];
    let number = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3e}"));
    for d in diffs {
        let mut line = format!(
            "{:<width$}  {:<9}  {:>10}  {:>12}  {:>12}",
            d.name,
            if d.identical { "bit-exact" } else { "DIFFERS" },
            d.first.map_or_else(|| "-".to_string(), |s| s.to_string()),
            number(d.max_abs),
            number(d.max_rel),
        );
        if let Some(note) = &d.note {
            let _ = write!(line, "  ({note})");
        }
        lines.push(line);
    }
    for name in skipped {
        lines.push(format!("{name:<width$}  not compared (timing)"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn frame(d_loss: &[f64], g_loss: &[Option<f64>]) -> DataFrame {
        let n = d_loss.len() as u64;
        df!(
            "step" => (1..=n).collect::<Vec<u64>>(),
            "elapsed_s" => (0..n).map(|i| i as f64 * 0.37).collect::<Vec<f64>>(),
            "d_loss" => d_loss,
            "g_loss" => g_loss,
            "d_updated" => vec![true; n as usize],
            "zone" => vec!["between"; n as usize],
        )
        .unwrap()
    }

    #[test]
    fn equal_tables_are_bit_exact_and_timing_is_left_out() {
        let a = frame(&[1.0, 2.0, 3.0], &[None, Some(0.5), Some(0.25)]);
        let mut b = a.clone();
        b.replace("elapsed_s", Series::new("elapsed_s".into(), [9.0, 9.0, 9.0]).into()).unwrap();
        let c = compare_metrics(&a, &b);
        assert!(c.identical(), "{c:?}");
        assert_eq!(c.not_compared, ["elapsed_s"]);
        assert_eq!(c.columns.len(), 5);
    }

    #[test]
    fn one_changed_value_names_its_column_step_and_size() {
        let a = frame(&[1.0, 2.0, 3.0, 4.0], &[None; 4]);
        let b = frame(&[1.0, 2.0, 3.5, 4.0], &[None, None, None, Some(1.0)]);
        let c = compare_metrics(&a, &b);
        assert!(!c.identical());
        let d = c.columns.iter().find(|d| d.name == "d_loss").unwrap();
        assert_eq!((d.identical, d.first), (false, Some(3)));
        assert_eq!(d.max_abs, Some(0.5));
        assert_eq!(d.max_rel, Some(0.5 / 3.5));
        let g = c.columns.iter().find(|d| d.name == "g_loss").unwrap();
        assert_eq!((g.identical, g.first), (false, Some(4)));
        assert!(g.note.as_deref().unwrap().contains("null"), "{g:?}");
        assert!(c.columns.iter().filter(|d| !d.identical).count() == 2);
    }

    #[test]
    fn negative_zero_and_extra_rows_differ() {
        let a = frame(&[0.0, 1.0], &[None, None]);
        let b = frame(&[-0.0, 1.0, 2.0], &[None, None, None]);
        let c = compare_metrics(&a, &b);
        assert!(c.rows.is_some());
        let d = c.columns.iter().find(|d| d.name == "d_loss").unwrap();
        assert_eq!((d.identical, d.first, d.max_abs), (false, Some(1), Some(0.0)));
        let s = c.columns.iter().find(|d| d.name == "step").unwrap();
        assert_eq!((s.identical, s.first), (false, Some(3)));
    }

    #[test]
    fn tensors_compare_by_bits_and_name_the_first_index() {
        let a = vec![("w".to_string(), vec![1.0f32, 2.0, 3.0]), ("b".into(), vec![0.0])];
        let mut b = a.clone();
        assert!(compare_tensors("g", &a, &b).iter().all(|d| d.identical));
        b[0].1[1] = 2.5;
        let diffs = compare_tensors("g", &a, &b);
        assert_eq!(diffs[0].name, "g.w");
        assert_eq!((diffs[0].identical, diffs[0].first), (false, Some(1)));
        assert_eq!(diffs[0].max_abs, Some(0.5));
        assert!(diffs[1].identical);
        b.pop();
        assert!(!compare_tensors("g", &a, &b)[1].identical);
    }

    #[test]
    fn nan_differences_stick() {
        let mut s = Spread::default();
        s.add(1.0, f64::NAN);
        s.add(1.0, 5.0);
        assert!(s.abs.unwrap().is_nan());
    }
}
