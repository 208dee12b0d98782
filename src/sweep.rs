//! Sweep files: a base config plus axes, expanded into an ordered list of run configs.
//!
//! ```yaml
//! name: quickstart
//! base: { model: { width: 8 } }
//! axes:
//!   grid: { balance.strategy: [none, skip, lr-adjust] }   # every combination
//!   zip:                                                   # lists that vary together
//!     - { balance.low: [0.5, 0.6], balance.high: [0.8, 0.9] }
//!   seeds: [0, 1]                                          # replicates, innermost
//! ```
//!
//! Expansion is a cartesian product in file order: grid keys first (the first key varies
//! slowest), then each zip group, then seeds, so replicates of one config sit together.
//! A plain run config (sections at the top level, no `base`) is a sweep of one.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::config::{ConfigError, RunConfig};

/// Why a sweep file could not be turned into run configs.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("cannot read sweep file {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{}{}: unknown config key `{key}` in axes", path.display(), at(*line))]
    UnknownAxisKey { path: PathBuf, key: String, line: usize },
    #[error("{}{}: axis `{key}` must be a non-empty list of values", path.display(), at(*line))]
    NotAList { path: PathBuf, key: String, line: usize },
    #[error("{}{}: zipped axes must have equal lengths, got {lengths}", path.display(), at(*line))]
    ZipLengths { path: PathBuf, lengths: String, line: usize },
    #[error("{}{}: `{key}` appears in more than one axis", path.display(), at(*line))]
    DuplicateAxis { path: PathBuf, key: String, line: usize },
    #[error("{path}: axis value {key}={value} is not valid: {message}")]
    BadAxisValue { path: PathBuf, key: String, value: String, message: String },
    #[error("{}{}: config {swept} is not valid: {cause}", path.display(), at(*line))]
    Invalid { path: PathBuf, line: usize, swept: String, cause: ConfigError },
    #[error("{}{}: zip group {index} names no axis", path.display(), at(*line))]
    EmptyZip { path: PathBuf, index: usize, line: usize },
    #[error("{path}: `seeds` is an empty list; leave it out for a single seed")]
    NoSeeds { path: PathBuf },
    #[error(
        "{}{}: the sweep name `{name}` must be a plain name (letters, digits, `-`, `_`, `.`, \
         not starting with `.`): it names the report folder",
        path.display(), at(*line)
    )]
    BadName { path: PathBuf, name: String, line: usize },
}

/// `, line N` for a known line, nothing when the line is not known (0).
fn at(line: usize) -> String {
    if line == 0 { String::new() } else { format!(", line {line}") }
}

/// An expanded sweep: its name and one point per run config, in order.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    /// The file's `description`, shown at the top of reports.
    pub description: Option<String>,
    pub source: PathBuf,
    pub points: Vec<SweepPoint>,
}

/// One resolved config and the axis values that produced it.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub config: RunConfig,
    /// `(dotted key, value as written)` for every axis, in axis order.
    pub swept: Vec<(String, String)>,
}

impl SweepPoint {
    /// `key=value` pairs joined by spaces, or `(base)` for a sweep without axes.
    pub fn label(&self) -> String {
        label(&self.swept)
    }
}

fn label(swept: &[(String, String)]) -> String {
    if swept.is_empty() {
        return "(base)".to_string();
    }
    let pairs: Vec<String> = swept.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    base: RunConfig,
    #[serde(default)]
    axes: Axes,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Axes {
    grid: Mapping,
    zip: Vec<Mapping>,
    seeds: Option<Vec<u64>>,
}

/// One dimension of the product: keys that vary together and their rows of values.
struct Dimension {
    keys: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// Reads and expands a sweep file (or a plain run config, as a sweep of one).
pub fn load(path: &Path) -> Result<Sweep, SweepError> {
    let text = std::fs::read_to_string(path)
        .map_err(|cause| SweepError::Read { path: path.to_path_buf(), cause })?;
    let yaml_err = |e: serde_yaml::Error| SweepError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let top: Value = serde_yaml::from_str(&text).map_err(yaml_err)?;
    let is_sweep = top.get("base").is_some() || top.get("name").is_some();
    let file = if is_sweep {
        serde_yaml::from_str::<SweepFile>(&text).map_err(yaml_err)?
    } else {
        let base = serde_yaml::from_str::<RunConfig>(&text).map_err(yaml_err)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        SweepFile { name: stem.unwrap_or_default(), description: None, base, axes: Axes::default() }
    };
    if is_sweep {
        check_name(&file.name, path, &text)?;
    }
    let dims = dimensions(&file.axes, path, &text)?;
    let mut points = Vec::new();
    for combo in product(&dims) {
        points.push(resolve_point(&file.base, &combo, path, &text)?);
    }
    Ok(Sweep { name: file.name, description: file.description, source: path.to_path_buf(), points })
}

/// Refuses names that would put a report outside `reports/` (`../x`, `a/b`) or hide it.
fn check_name(name: &str, path: &Path, text: &str) -> Result<(), SweepError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if !name.is_empty() && !name.starts_with('.') && name.chars().all(plain) {
        return Ok(());
    }
    let line = line_of(text, "name");
    Err(SweepError::BadName { path: path.into(), name: name.to_string(), line })
}

/// Checks the axes and turns them into dimensions, in expansion order.
fn dimensions(axes: &Axes, path: &Path, text: &str) -> Result<Vec<Dimension>, SweepError> {
    let known = known_keys();
    let mut seen: Vec<String> = Vec::new();
    let mut dims = Vec::new();
    let mut check_key = |key: &Value| -> Result<String, SweepError> {
        let key = key.as_str().unwrap_or_default().to_string();
        let line = axis_line(text, &key);
        if !known.contains(&key) {
            return Err(SweepError::UnknownAxisKey { path: path.into(), key, line });
        }
        if seen.contains(&key) || (key == "train.seed" && axes.seeds.is_some()) {
            return Err(SweepError::DuplicateAxis { path: path.into(), key, line });
        }
        seen.push(key.clone());
        Ok(key)
    };
    for (key, values) in &axes.grid {
        let key = check_key(key)?;
        let values = list(values, &key, path, text)?;
        dims.push(Dimension {
            keys: vec![key],
            rows: values.into_iter().map(|v| vec![v]).collect(),
        });
    }
    for (index, group) in axes.zip.iter().enumerate() {
        if group.is_empty() {
            let line = axis_line(text, "zip");
            return Err(SweepError::EmptyZip { path: path.into(), index: index + 1, line });
        }
        let mut keys = Vec::new();
        let mut columns = Vec::new();
        for (key, values) in group {
            let key = check_key(key)?;
            columns.push(list(values, &key, path, text)?);
            keys.push(key);
        }
        dims.push(zip_dimension(keys, columns, path, text)?);
    }
    match &axes.seeds {
        Some(seeds) if seeds.is_empty() => return Err(SweepError::NoSeeds { path: path.into() }),
        Some(seeds) => {
            let rows = seeds.iter().map(|s| vec![Value::from(*s)]).collect();
            dims.push(Dimension { keys: vec!["train.seed".into()], rows });
        }
        None => {}
    }
    Ok(dims)
}

fn zip_dimension(
    keys: Vec<String>,
    columns: Vec<Vec<Value>>,
    path: &Path,
    text: &str,
) -> Result<Dimension, SweepError> {
    let lengths: Vec<usize> = columns.iter().map(Vec::len).collect();
    if lengths.windows(2).any(|w| w[0] != w[1]) {
        let described: Vec<String> =
            keys.iter().zip(&lengths).map(|(k, n)| format!("{k}: {n}")).collect();
        let line = keys.first().map_or(0, |k| axis_line(text, k));
        return Err(SweepError::ZipLengths {
            path: path.into(),
            lengths: described.join(", "),
            line,
        });
    }
    let n = lengths.first().copied().unwrap_or(0);
    let rows = (0..n).map(|i| columns.iter().map(|c| c[i].clone()).collect()).collect();
    Ok(Dimension { keys, rows })
}

fn list(values: &Value, key: &str, path: &Path, text: &str) -> Result<Vec<Value>, SweepError> {
    match values {
        Value::Sequence(items) if !items.is_empty() => Ok(items.clone()),
        _ => Err(SweepError::NotAList {
            path: path.into(),
            key: key.into(),
            line: axis_line(text, key),
        }),
    }
}

/// Every combination of one row per dimension, as `(key, value)` pairs, first dimension
/// varying slowest.
fn product(dims: &[Dimension]) -> Vec<Vec<(String, Value)>> {
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for dim in dims {
        let mut next = Vec::with_capacity(combos.len() * dim.rows.len());
        for combo in &combos {
            for row in &dim.rows {
                let mut extended = combo.clone();
                extended.extend(dim.keys.iter().cloned().zip(row.iter().cloned()));
                next.push(extended);
            }
        }
        combos = next;
    }
    combos
}

fn resolve_point(
    base: &RunConfig,
    combo: &[(String, Value)],
    path: &Path,
    text: &str,
) -> Result<SweepPoint, SweepError> {
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut tree = serde_yaml::to_value(base).expect("a RunConfig always serialises to YAML");
    let mut swept = Vec::new();
    for (key, value) in combo {
        set_dotted(&mut tree, key, value.clone());
        swept.push((key.clone(), show(value)));
    }
    let label = label(&swept);
    let mut config: RunConfig = serde_yaml::from_value(tree).map_err(|e| {
        let (key, value) = combo.last().map(|(k, v)| (k.clone(), show(v))).unwrap_or_default();
        SweepError::BadAxisValue {
            path: path.into(),
            key,
            value,
            message: format!("{e} ({label})"),
        }
    })?;
    for data_path in config.data.paths_mut().filter(|p| p.is_relative()) {
        // Canonical when it exists, so logs and manifests show a clean absolute path.
        let joined = base_dir.join(&*data_path);
        *data_path = std::fs::canonicalize(&joined).unwrap_or(joined);
    }
    config.validate().map_err(|cause| {
        let ConfigError::OutOfRange { key, .. } = &cause;
        let line = line_of_config_key(text, key);
        SweepError::Invalid { path: path.into(), line, swept: label, cause }
    })?;
    Ok(SweepPoint { config, swept })
}

fn set_dotted(tree: &mut Value, key: &str, value: Value) {
    let mut node = tree;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        node = node
            .as_mapping_mut()
            .expect("axis keys are checked against the config's sections")
            .entry(Value::from(*part))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    if let Some(map) = node.as_mapping_mut() {
        map.insert(Value::from(parts[parts.len() - 1]), value);
    }
}

/// Every dotted key a config accepts, optional fields included.
fn known_keys() -> Vec<String> {
    let mut config = RunConfig::default();
    config.data.path = Some(PathBuf::new());
    config.data.images = Some(PathBuf::new());
    config.data.labels = Some(PathBuf::new());
    config.data.strict = true;
    config.data.limit = Some(0);
    let tree = serde_yaml::to_value(&config).expect("a RunConfig always serialises to YAML");
    let mut keys = Vec::new();
    if let Value::Mapping(sections) = tree {
        for (section, fields) in sections {
            let Value::Mapping(fields) = fields else { continue };
            for field in fields.keys() {
                keys.push(format!("{}.{}", show(&section), show(field)));
            }
        }
    }
    keys
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// The line that set a config key: its axis if it is swept, else where its field is written
/// (its last part, e.g. `dropout:` for `model.dropout`), else 0 when only a default set it.
fn line_of_config_key(text: &str, key: &str) -> usize {
    match axis_line(text, key) {
        0 => line_of(text, key.rsplit('.').next().unwrap_or(key)),
        line => line,
    }
}

/// The 1-based line where `key` is first written as a mapping key, or 0 when not found.
fn line_of(text: &str, key: &str) -> usize {
    line_after(text, key, 0)
}

/// The line of an axis key (or of `zip`), looked for below `axes:`.
fn axis_line(text: &str, key: &str) -> usize {
    line_after(text, key, axes_line(text))
}

fn line_after(text: &str, key: &str, start: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, line)| writes_key(line, key))
        .map_or(0, |(i, _)| i + 1)
}

fn axes_line(text: &str) -> usize {
    text.lines().position(|line| line.starts_with("axes:")).unwrap_or(0)
}

/// Whether a line writes `key:` as a mapping key, in block or flow style, quoted or not.
fn writes_key(line: &str, key: &str) -> bool {
    [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':")].iter().any(|pattern| {
        line.match_indices(pattern.as_str())
            .any(|(i, _)| line[..i].chars().next_back().is_none_or(|c| " \t{,-".contains(c)))
    })
}
