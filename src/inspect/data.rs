//! `dcgan data inspect PATH_OR_CONFIG`: what a dataset holds as training would see it
//! (count, shape, fingerprint, classes, unreadable files) and a PNG grid of its images.
//!
//! A YAML file is read as a config or sweep (each distinct data section is inspected); a
//! folder is a Fashion-MNIST folder when it holds its IDX files, else an image folder; any
//! other file is an IDX images file, with its labels file found by name when it is there.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::config::{DataConfig, DatasetName, Split};
use crate::data::batches::unit_range;
use crate::data::{DatasetCache, Shape, list_skipped, shaped_name};
use crate::store::samples;

/// What to inspect and where to write.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: PathBuf,
    /// `<runs>/.cache`: decoded images and fingerprints are kept (and found) there.
    pub cache_dir: PathBuf,
    /// Shape for a PATH target (a config says its own).
    pub shape: Shape,
    /// The grid's file; by default `reports/data/<fingerprint>-<side>px-<c>ch.png`.
    pub out: Option<PathBuf>,
    /// Images in the grid.
    pub n: usize,
}

/// The data sections a target stands for.
pub fn configs(target: &Path, shape: Shape) -> anyhow::Result<Vec<DataConfig>> {
    let is_yaml = target
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if is_yaml {
        let sweep = crate::sweep::load(target)?;
        let mut found: Vec<DataConfig> = Vec::new();
        for point in sweep.points {
            if !found.contains(&point.config.data) {
                found.push(point.config.data);
            }
        }
        return Ok(found);
    }
    let base =
        DataConfig { image_size: shape.side, channels: shape.channels, ..Default::default() };
    anyhow::ensure!(target.exists(), "{} does not exist", target.display());
    if target.is_dir() {
        let has =
            |stem: &str| ["", ".gz"].iter().any(|gz| target.join(format!("{stem}{gz}")).is_file());
        let path = Some(target.to_path_buf());
        if has("train-images-idx3-ubyte") || has("t10k-images-idx3-ubyte") {
            let split = if has("train-images-idx3-ubyte") { Split::Train } else { Split::Test };
            return Ok(vec![DataConfig { split, path, ..base }]);
        }
        return Ok(vec![DataConfig { dataset: DatasetName::Folder, path, ..base }]);
    }
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    anyhow::ensure!(
        !crate::data::folder::is_image_name(&name),
        "{} is an image; give the folder that holds the images",
        target.display()
    );
    let labels = labels_beside(target);
    let images = Some(target.to_path_buf());
    Ok(vec![DataConfig { dataset: DatasetName::Idx, images, labels, ..base }])
}

/// The labels file beside an images file, when there is one: `images` -> `labels` and
/// `idx3` -> `idx1` in the name (`t10k-images-idx3-ubyte.gz`, `t10k-images.idx3-ubyte`).
fn labels_beside(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_string_lossy();
    let labels = images.with_file_name(name.replace("images", "labels").replace("idx3", "idx1"));
    (labels != images && labels.is_file()).then_some(labels)
}

/// Inspects every data section of the target; returns the report's text.
pub fn inspect(request: &Request) -> anyhow::Result<String> {
    let mut cache = DatasetCache::on_disk(&request.cache_dir);
    let mut text = String::new();
    let configs = configs(&request.target, request.shape)?;
    let several = configs.len() > 1;
    for (i, mut cfg) in configs.into_iter().enumerate() {
        // Inspect what is there, unreadable files included, whatever the config says.
        cfg.strict = false;
        // Several data sections given one --out: number the grids, or each overwrites the last.
        let out = request.out.as_ref().filter(|_| several).map(|out| numbered(out, i + 1));
        let request = Request { out: out.or_else(|| request.out.clone()), ..request.clone() };
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&inspect_one(&mut cache, &cfg, &request)?);
    }
    Ok(text)
}

/// `grid.png` -> `grid-2.png`.
fn numbered(out: &Path, n: usize) -> PathBuf {
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let ext = out.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    out.with_file_name(format!("{stem}-{n}{ext}"))
}

fn inspect_one(
    cache: &mut DatasetCache,
    cfg: &DataConfig,
    request: &Request,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let data = cache.dataset(cfg)?;
    let seconds = started.elapsed().as_secs_f64();
    let source = &data.source;
    let shape = data.shape();
    let mut lines = vec![
        format!("dataset      {} ({})", cfg.dataset.as_str(), source.location().display()),
        format!("files        {}", files_line(source)),
        format!("images       {}{}", data.len(), limit_note(cfg.limit, data.len())),
        format!("shape        {0}x{0}, {1} channel(s), as trained", shape.side, shape.channels),
        format!("fingerprint  {}", source.fingerprint),
        format!("classes      {}", classes_line(&source.classes, &data.labels)),
    ];
    let how = if data.decoded_here { "decoded" } else { "read from the cache" };
    let rate = source.count as f64 / seconds.max(1e-9);
    lines.push(format!("loading      {how} in {seconds:.2} s ({rate:.0} images/s)"));
    if !data.skipped.is_empty() {
        let n = data.skipped.len();
        lines.push(format!("unreadable   {n} of {} files, left out:", source.count));
        lines.push(list_skipped(&data.skipped));
    }
    let out = request.out.clone().unwrap_or_else(|| default_grid_path(&source.fingerprint, shape));
    let shown = write_grid(&data, request.n, &out)?;
    lines.push(format!("grid         {} ({shown} images)", out.display()));
    Ok(lines.join("\n") + "\n")
}

fn files_line(source: &crate::data::DataSource) -> String {
    let files: Vec<String> = source.files().iter().map(|f| f.display().to_string()).collect();
    match &source.origin {
        crate::data::Origin::Idx { labels: None, .. } => format!("{} (no labels)", files[0]),
        _ => files.join(", "),
    }
}

/// What `data.limit` makes of the count, when it cuts it.
fn limit_note(limit: Option<usize>, count: usize) -> String {
    match limit {
        Some(limit) if limit < count => format!(" (training uses the first {limit}: data.limit)"),
        _ => String::new(),
    }
}

fn classes_line(names: &[String], labels: &[u8]) -> String {
    if names.is_empty() {
        return "none (no labels)".to_string();
    }
    let mut counts = vec![0usize; names.len()];
    for &label in labels {
        if let Some(count) = counts.get_mut(label as usize) {
            *count += 1;
        }
    }
    let each: Vec<String> = names.iter().zip(&counts).map(|(n, c)| format!("{n}: {c}")).collect();
    format!("{}: {}", names.len(), each.join(", "))
}

fn default_grid_path(fingerprint: &str, shape: Shape) -> PathBuf {
    let name = format!("{}.png", shaped_name(fingerprint, shape));
    PathBuf::from("reports").join("data").join(name)
}

/// Writes up to `n` images, spread evenly over the dataset, as one grid; returns how many.
fn write_grid(data: &crate::data::Dataset, n: usize, out: &Path) -> anyhow::Result<usize> {
    let n = n.clamp(1, data.len());
    let mut values = Vec::with_capacity(n * data.shape().bytes());
    for k in 0..n {
        let i = k * data.len() / n;
        values.extend(data.image(i).iter().map(|&p| unit_range(p)));
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    samples::save_grid(out, &values, n, data.shape())?;
    Ok(n)
}
