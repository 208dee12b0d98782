//! Sweep files: expansion order, zipped axes, seeds, hashing across spellings, and errors
//! that name the file, the line and the key.

mod common;

use dcgan_harness::balance::Strategy;
use dcgan_harness::hashing::run_hash;
use dcgan_harness::sweep::{self, SweepError};

use common::write_file;

fn load(text: &str) -> Result<sweep::Sweep, SweepError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.yaml", text);
    sweep::load(&path)
}

fn hashes(s: &sweep::Sweep) -> Vec<String> {
    s.points.iter().map(|p| run_hash(&p.config, "fp")).collect()
}

const FULL: &str = "
name: demo
base:
  model: { width: 8 }
axes:
  grid:
    balance.strategy: [none, skip, lr-adjust]
    train.lr_g: [1e-4, 2e-4]
  zip:
    - balance.low: [0.5, 0.6]
      balance.high: [0.8, 0.9]
  seeds: [1, 2]
";

#[test]
fn expansion_is_a_product_in_file_order_with_seeds_innermost() {
    let s = load(FULL).unwrap();
    assert_eq!(s.name, "demo");
    assert_eq!(s.points.len(), 3 * 2 * 2 * 2);
    let first = &s.points[0];
    assert_eq!(
        first.label(),
        "balance.strategy=none train.lr_g=0.0001 balance.low=0.5 balance.high=0.8 train.seed=1"
    );
    assert_eq!(s.points[1].config.train.seed, 2, "seeds vary fastest");
    assert_eq!(s.points[2].config.balance.low, 0.6, "zip pairs vary together");
    assert_eq!(s.points[2].config.balance.high, 0.9);
    assert_eq!(s.points[4].config.train.lr_g, 2e-4);
    assert_eq!(s.points[8].config.balance.strategy, Strategy::Skip, "first key varies slowest");
    assert!(s.points.iter().all(|p| p.config.model.width == 8), "base applies everywhere");
}

#[test]
fn expansion_is_deterministic_and_every_config_distinct() {
    let a = hashes(&load(FULL).unwrap());
    let b = hashes(&load(FULL).unwrap());
    assert_eq!(a, b);
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), a.len());
}

#[test]
fn how_a_value_is_expressed_does_not_change_the_hash() {
    let via_axis = load("name: a\naxes:\n  grid:\n    train.lr_g: [0.0002]\n").unwrap();
    let via_base = load("name: b\nbase:\n  train:\n    lr_g: 2.0e-4\n").unwrap();
    let by_default = load("name: c\n").unwrap();
    let plain = load("train:\n  lr_g: 2e-4\n").unwrap();
    let h = hashes(&via_axis);
    assert_eq!(h, hashes(&via_base));
    assert_eq!(h, hashes(&by_default));
    assert_eq!(h, hashes(&plain));
}

#[test]
fn a_plain_config_is_a_sweep_of_one_named_after_the_file() {
    let s = load("model:\n  width: 4\n").unwrap();
    assert_eq!(s.points.len(), 1);
    assert_eq!(s.name, "s");
    assert_eq!(s.points[0].label(), "(base)");
}

#[test]
fn relative_data_paths_are_relative_to_the_sweep_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "s.yaml", "name: x\nbase:\n  data: { path: some/data }\n");
    let s = sweep::load(&path).unwrap();
    let expected = dir.path().join("some/data");
    assert_eq!(s.points[0].config.data.path.as_deref(), Some(expected.as_path()));

    std::fs::create_dir_all(dir.path().join("real")).unwrap();
    let path =
        write_file(dir.path(), "t.yaml", "name: x\nbase:\n  data: { path: ./real/../real }\n");
    let s = sweep::load(&path).unwrap();
    let expected = std::fs::canonicalize(dir.path().join("real")).unwrap();
    assert_eq!(s.points[0].config.data.path.as_deref(), Some(expected.as_path()));
}

#[test]
fn unknown_keys_in_the_base_name_the_key_and_line() {
    let err = load("name: x\nbase:\n  train:\n    lr_gg: 1e-4\n").unwrap_err().to_string();
    assert!(err.contains("lr_gg") && err.contains("line 4"), "{err}");
    assert!(err.contains("s.yaml"), "{err}");
}

#[test]
fn unknown_axis_keys_name_the_key_and_line() {
    let text = "name: x\naxes:\n  grid:\n    train.lr_gg: [1e-4]\n";
    let err = load(text).unwrap_err();
    assert!(matches!(err, SweepError::UnknownAxisKey { line: 4, .. }), "{err}");
    assert!(err.to_string().contains("train.lr_gg"));
}

#[test]
fn yaml_syntax_errors_give_line_and_column() {
    let err = load("name: x\nbase:\n  model: {width: 8\n").unwrap_err().to_string();
    assert!(err.contains("line") && err.contains("column"), "{err}");
}

#[test]
fn bad_values_are_errors_naming_the_config() {
    let err = load("name: x\naxes:\n  grid:\n    balance.strategy: [none, sometimes]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("sometimes"), "{err}");

    let err = load("name: x\naxes:\n  grid:\n    model.dropout: [0.2, 1.5]\n").unwrap_err();
    assert!(err.to_string().contains("model.dropout"), "{err}");
}

#[test]
fn zipped_axes_of_different_lengths_are_an_error() {
    let text = "name: x\naxes:\n  zip:\n    - balance.low: [0.1, 0.2]\n      balance.high: [0.9]\n";
    let err = load(text).unwrap_err();
    assert!(matches!(err, SweepError::ZipLengths { line: 4, .. }), "{err}");
}

#[test]
fn an_axis_must_be_a_non_empty_list() {
    let err = load("name: x\naxes:\n  grid:\n    train.lr_g: 1e-4\n").unwrap_err();
    assert!(matches!(err, SweepError::NotAList { .. }), "{err}");
    let err = load("name: x\naxes:\n  grid:\n    train.lr_g: []\n").unwrap_err();
    assert!(matches!(err, SweepError::NotAList { .. }), "{err}");
}

#[test]
fn a_key_in_two_axes_is_an_error() {
    let text = "name: x\naxes:\n  grid:\n    train.seed: [1]\n  seeds: [1, 2]\n";
    assert!(matches!(load(text).unwrap_err(), SweepError::DuplicateAxis { .. }));
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = sweep::load(std::path::Path::new("/nonexistent/sweep.yaml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/sweep.yaml"), "{err}");
}

#[test]
fn empty_zip_groups_and_empty_seed_lists_are_errors() {
    let err = load("name: x\naxes:\n  zip:\n    - {}\n").unwrap_err();
    assert!(matches!(err, SweepError::EmptyZip { index: 1, .. }), "{err}");
    let err = load("name: x\naxes:\n  seeds: []\n").unwrap_err();
    assert!(matches!(err, SweepError::NoSeeds { .. }), "{err}");
}

#[test]
fn out_of_range_values_point_at_the_line_that_set_them() {
    let err = load("name: x\nbase:\n  model:\n    dropout: 1.5\n").unwrap_err();
    assert!(matches!(err, SweepError::Invalid { line: 4, .. }), "{err}");
    assert!(err.to_string().contains("must be in [0, 1)"), "{err}");

    let err = load("name: x\naxes:\n  grid:\n    model.dropout: [0.2, 1.5]\n").unwrap_err();
    assert!(matches!(err, SweepError::Invalid { line: 4, .. }), "{err}");
}

#[test]
fn flow_style_axes_get_their_own_line_not_the_base_section() {
    let text = "name: x\nbase:\n  data: { split: test }\naxes:\n  grid: {data: [1]}\n";
    let err = load(text).unwrap_err();
    assert!(matches!(err, SweepError::UnknownAxisKey { line: 5, .. }), "{err}");
    let text = "name: x\naxes: {grid: {train.lr_g: []}}\n";
    assert!(matches!(load(text).unwrap_err(), SweepError::NotAList { line: 2, .. }));
}

#[test]
fn a_value_set_only_by_default_gets_no_made_up_line() {
    let err = load("name: x\nbase: {balance: {low: 0.9}}\n").unwrap_err().to_string();
    assert!(err.contains("balance.high") && !err.contains("line 0"), "{err}");
}
