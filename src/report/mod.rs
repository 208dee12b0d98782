//! Reports: figures and tables comparing the runs of a sweep, regenerated from `runs/` alone.
//!
//! `dcgan report FILE.yaml` finds the run of every config of the sweep ([`runs`]), reads all
//! their metrics with polars ([`stats`]), turns them into curves ([`series`]), draws the
//! figures ([`figures`], [`charts`], [`sheets`]) and writes `report.md` ([`markdown`]).
//! Nothing here depends on the clock or on hash-map order, so the same runs give the same
//! files, byte for byte.

pub mod charts;
pub mod evals;
pub mod figures;
pub mod markdown;
pub mod runs;
pub mod series;
pub mod sheets;
pub mod stats;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::store::StoreError;
use runs::{ReportRun, RunStatus};
use series::RunSeries;
use sheets::RunSamples;
use stats::{FINAL_COLUMNS, Source, Tables};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot list runs in {path}: {cause}")]
    RunsDir { path: PathBuf, cause: std::io::Error },
    #[error("`{prefix}` is not a run hash (hex digits, as in `runs/<hash>/`)")]
    BadHash { prefix: String },
    #[error("no run in {root} starts with `{prefix}`; runs there: {candidates}")]
    UnknownHash { prefix: String, root: PathBuf, candidates: String },
    #[error("`{prefix}` matches several runs: {candidates}; give more digits")]
    AmbiguousHash { prefix: String, candidates: String },
    #[error("{reason}")]
    Unreadable { reason: String },
    #[error(
        "unknown metric `{name}`; choose one of: {}, {}",
        FINAL_COLUMNS.join(", "),
        evals::EVAL_METRICS.join(", ")
    )]
    UnknownMetric { name: String },
    #[error("--metric {metric}: no run of the report has evaluation scores (see `dcgan eval`)")]
    NotEvaluated { metric: String },
    #[error("the report has no runs")]
    NoRuns,
    #[error("reading metrics: {0}")]
    Polars(#[from] polars::error::PolarsError),
    #[error("{path}: cannot draw chart: {message}")]
    Chart { path: PathBuf, message: String },
    #[error("{path}: cannot read or write picture: {message}")]
    Picture { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to report on.
pub struct ReportInput {
    /// The sweep's name (or a name for an ad-hoc comparison), used in titles.
    pub name: String,
    pub description: Option<String>,
    /// The sweep file, when there is one.
    pub sweep_file: Option<PathBuf>,
    pub runs_dir: PathBuf,
    pub runs: Vec<ReportRun>,
    /// What the summary chart shows: a column of [`FINAL_COLUMNS`] or an evaluation score of
    /// [`evals::EVAL_METRICS`]; `None` picks the Fréchet distance when runs have been
    /// evaluated and G's loss otherwise.
    pub metric: Option<String>,
}

/// Runs that share every swept value but the seed: replicates of one config.
#[derive(Debug, Clone)]
pub struct ConfigGroup {
    pub index: u32,
    /// Swept values without the seed (and the sweep's name in a comparison of several).
    pub key: Vec<(String, String)>,
    /// Indices into the report's runs.
    pub runs: Vec<usize>,
    pub strategy: String,
    /// Swept values without the strategy, short keys: the legend label within a panel.
    pub label: String,
    /// Every swept value but the seed, short keys: the label where strategies mix.
    pub full_label: String,
}

/// Per-run and per-config numbers, by index.
#[derive(Debug, Default)]
pub struct Numbers {
    pub per_run: BTreeMap<u32, BTreeMap<String, f64>>,
    pub per_config: BTreeMap<u32, BTreeMap<String, f64>>,
    /// Metrics files polars could not read, by run index, with the reason.
    pub unreadable: BTreeMap<u32, String>,
}

/// Everything figures and tables are made from.
pub struct Report {
    pub input: ReportInput,
    pub groups: Vec<ConfigGroup>,
    pub series: BTreeMap<usize, RunSeries>,
    pub numbers: Numbers,
    /// Evaluation curves per run index, and eval files that could not be read.
    pub eval_curves: BTreeMap<usize, evals::EvalCurve>,
    pub eval_unreadable: BTreeMap<u32, String>,
    /// Whether any run of the report has been evaluated.
    pub evaluated: bool,
    /// What the summary shows, resolved.
    pub metric: String,
    /// Short names of swept keys (`balance.low` → `low`) where they stay unique.
    pub short_keys: BTreeMap<String, String>,
}

/// Files a report wrote, relative to its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub dir: PathBuf,
    pub files: Vec<String>,
}

/// Reads the runs, draws every figure and writes `report.md` into `out`.
pub fn render(input: ReportInput, out: &Path) -> Result<Written, ReportError> {
    if input.runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    if let Some(name) = &input.metric {
        let known = FINAL_COLUMNS.iter().chain(evals::EVAL_METRICS.iter());
        if !known.clone().any(|m| m == name) {
            return Err(ReportError::UnknownMetric { name: name.clone() });
        }
    }
    if inside(out, &input.runs_dir) {
        let message = format!("is inside the runs dir {}", input.runs_dir.display());
        let inside_runs = std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
        return Err(StoreError::io(out, inside_runs).into());
    }
    if out.exists() && !out.is_dir() {
        let not_a_dir = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "not a folder");
        return Err(StoreError::io(out, not_a_dir).into());
    }
    fs::create_dir_all(out).map_err(|e| StoreError::io(out, e))?;
    let started = Instant::now();
    let report = load(input)?;
    let read_s = started.elapsed().as_secs_f64();
    let figures: Vec<(&str, charts::Figure)> = figures::all(&report);
    figures
        .par_iter()
        .map(|(stem, figure)| figure.save(out, stem, true))
        .collect::<Result<Vec<()>, _>>()?;
    let mut files: Vec<String> = figures
        .iter()
        .flat_map(|(stem, _)| [format!("{stem}.png"), format!("{stem}.svg")])
        .collect();
    let charts_s = started.elapsed().as_secs_f64() - read_s;
    let (pictures, picture_problems) = write_samples(&report, out)?;
    files.extend(pictures);
    tracing::info!(
        "read {} runs in {read_s:.2} s, drew charts in {charts_s:.2} s, sample sheets in {:.2} s",
        report.series.len(),
        started.elapsed().as_secs_f64() - read_s - charts_s
    );
    let text = markdown::render(&report, &files, &picture_problems);
    crate::store::write_atomic(&out.join("report.md"), text.as_bytes())?;
    files.insert(0, "report.md".to_string());
    remove_stale(out, &files)?;
    Ok(Written { dir: out.to_path_buf(), files })
}

/// Whether `path` is `dir` or inside it (a report must not write among the runs).
fn inside(path: &Path, dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else { return false };
    // The report folder may not exist yet: resolve its nearest existing ancestor.
    let mut probe = path.to_path_buf();
    loop {
        if let Ok(real) = probe.canonicalize() {
            return real.starts_with(&dir);
        }
        if !probe.pop() || probe.as_os_str().is_empty() {
            return std::env::current_dir().is_ok_and(|cwd| cwd.starts_with(&dir));
        }
    }
}

/// Removes pictures an earlier report wrote that this one did not (a strip of a run that is
/// gone, the skip chart of a sweep that no longer has skip runs), so the folder is what a
/// fresh report would write. Only file names the report itself uses are touched.
fn remove_stale(out: &Path, written: &[String]) -> Result<(), ReportError> {
    let mut ours: Vec<String> = figures::STEMS
        .iter()
        .flat_map(|stem| [format!("{stem}.png"), format!("{stem}.svg")])
        .collect();
    if let Ok(entries) = fs::read_dir(out.join("strips")) {
        let names = entries.filter_map(|e| e.ok()).map(|e| e.file_name());
        let names = names.filter_map(|n| n.to_str().map(str::to_string));
        let is_strip = |n: &String| {
            n.strip_suffix(".png").is_some_and(|stem| {
                stem.len() == crate::hashing::SHORT_LEN
                    && stem.chars().all(|c| c.is_ascii_hexdigit())
            })
        };
        ours.extend(names.filter(is_strip).map(|n| format!("strips/{n}")));
    }
    for name in ours.iter().filter(|n| !written.contains(n)) {
        let path = out.join(name);
        if path.is_file() {
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            tracing::info!("removed {} (not part of this report)", path.display());
        }
    }
    Ok(())
}

/// Groups the runs, reads their metrics and splits them into curves.
fn load(input: ReportInput) -> Result<Report, ReportError> {
    let groups = group_runs(&input.runs);
    let sources = metric_sources(&input.runs, &groups);
    let (tables, unreadable) = stats::compute(&sources)?;
    let mut numbers = numbers(&tables, unreadable)?;
    let series: BTreeMap<usize, RunSeries> = series::split_runs(&tables.steps, &tables.per_run)?
        .into_iter()
        .map(|(run, s)| (run as usize, s))
        .collect();
    let eval_sources: Vec<evals::EvalSource> = sources
        .iter()
        .filter_map(|s| {
            let eval = &input.runs[s.run as usize].config.eval;
            Some(evals::EvalSource {
                run: s.run,
                config: s.config,
                dir: s.path.parent()?.to_path_buf(),
                n: eval.n as u64,
                seed: eval.seed,
            })
        })
        .collect();
    let scores = evals::read(&eval_sources)?;
    let evaluated = !scores.per_run.is_empty();
    for (table, extra) in
        [(&mut numbers.per_run, scores.per_run), (&mut numbers.per_config, scores.per_config)]
    {
        for (id, values) in extra {
            table.entry(id).or_default().extend(values);
        }
    }
    let default = if evaluated { "frechet" } else { "g_loss" };
    let metric = input.metric.clone().unwrap_or_else(|| default.to_string());
    if !evaluated && evals::EVAL_METRICS.contains(&metric.as_str()) {
        return Err(ReportError::NotEvaluated { metric });
    }
    let short_keys = short_keys(&input.runs);
    Ok(Report {
        input,
        groups,
        series,
        numbers,
        eval_curves: scores.curves,
        eval_unreadable: scores.unreadable,
        evaluated,
        metric,
        short_keys,
    })
}

/// The metrics files to read. Failed runs are read for their curves but kept out of the
/// per-config numbers (their config id is `u32::MAX`).
fn metric_sources(runs: &[ReportRun], groups: &[ConfigGroup]) -> Vec<Source> {
    let mut sources = Vec::new();
    for group in groups {
        for &i in &group.runs {
            let Some(path) = runs[i].metrics_file() else { continue };
            let completed = runs[i].status == RunStatus::Completed;
            let config = if completed { group.index } else { u32::MAX };
            sources.push(Source { run: i as u32, config, path });
        }
    }
    sources.sort_by_key(|s| s.run);
    sources
}

fn numbers(tables: &Tables, unreadable: Vec<(u32, String)>) -> Result<Numbers, ReportError> {
    let mut per_config = stats::by_id(&tables.per_config, "config")?;
    per_config.remove(&u32::MAX);
    Ok(Numbers {
        per_run: stats::by_id(&tables.per_run, "run")?,
        per_config,
        unreadable: unreadable.into_iter().collect(),
    })
}

/// Groups replicates (runs whose configs differ only in the seed) in order of first
/// appearance. Labels come from the swept values; two groups that would share a label (runs
/// of different sweeps, compared by hash) get their sweep's name or a number added.
pub fn group_runs(runs: &[ReportRun]) -> Vec<ConfigGroup> {
    let shorts = short_keys(runs);
    let short = |k: &str| shorts.get(k).cloned().unwrap_or_else(|| k.to_string());
    let join = |pairs: &mut dyn Iterator<Item = &(String, String)>| {
        let parts: Vec<String> = pairs.map(|(k, v)| format!("{}={v}", short(k))).collect();
        if parts.is_empty() { "(base)".to_string() } else { parts.join(" ") }
    };
    let mut groups: Vec<ConfigGroup> = Vec::new();
    let mut identities: Vec<String> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut config = run.config.clone();
        config.train.seed = 0;
        let identity = crate::hashing::canonical_text(&config);
        if let Some(at) = identities.iter().position(|known| *known == identity) {
            groups[at].runs.push(i);
            continue;
        }
        identities.push(identity);
        let key = run.config_key();
        let label = join(&mut key.iter().filter(|(k, _)| k != "balance.strategy"));
        let full_label = join(&mut key.iter());
        groups.push(ConfigGroup {
            index: groups.len() as u32,
            key,
            runs: vec![i],
            strategy: run.config.balance.strategy.to_string(),
            label,
            full_label,
        });
    }
    tell_apart(&mut groups, runs);
    groups
}

/// Adds the sweep's name (or a number) to labels that two groups share.
fn tell_apart(groups: &mut [ConfigGroup], runs: &[ReportRun]) {
    for i in 0..groups.len() {
        let twins: Vec<usize> =
            (0..groups.len()).filter(|&j| groups[j].full_label == groups[i].full_label).collect();
        if twins.len() < 2 {
            continue;
        }
        for (n, &j) in twins.iter().enumerate() {
            let sweep = &runs[groups[j].runs[0]].sweep;
            let tag = if sweep.is_empty() { format!(" #{}", n + 1) } else { format!(" ({sweep})") };
            groups[j].label.push_str(&tag);
            groups[j].full_label.push_str(&tag);
        }
    }
}

/// `balance.low` → `low` for every swept key whose last part no other key shares.
fn short_keys(runs: &[ReportRun]) -> BTreeMap<String, String> {
    let mut keys: Vec<String> =
        runs.iter().flat_map(|r| r.swept.iter().map(|p| p.0.clone())).collect();
    keys.sort();
    keys.dedup();
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    keys.iter()
        .map(|k| {
            let clash = keys.iter().filter(|o| last(o) == last(k)).count() > 1;
            (k.clone(), if clash { k.clone() } else { last(k) })
        })
        .collect()
}

/// The contact sheet and one strip per run with sample grids; also what was wrong with
/// the runs' pictures, for report.md.
fn write_samples(report: &Report, out: &Path) -> Result<(Vec<String>, Vec<String>), ReportError> {
    let with_dirs = report.input.runs.iter().filter(|r| r.dir.is_some());
    let runs: Vec<RunSamples> = with_dirs
        .map(|r| RunSamples {
            short: r.short.clone(),
            label: markdown::swept_label(report, r),
            grids: r.dir.as_deref().map(sheets::list_grids).unwrap_or_default(),
            side: r.config.data.image_size,
        })
        .collect();
    let (mut files, mut problems) = (Vec::new(), Vec::new());
    if runs.is_empty() {
        return Ok((files, problems));
    }
    let decoded: Vec<sheets::Decoded> = runs.par_iter().map(sheets::decode).collect();
    let damaged = |short: &str| {
        let run = report.input.runs.iter().find(|r| r.short == short);
        run.is_some_and(|r| matches!(r.status, RunStatus::Damaged(_)))
    };
    for (run, d) in runs.iter().zip(&decoded) {
        if run.grids.is_empty() && !damaged(&run.short) {
            problems.push(format!("`{}` has no sample grids in samples/", run.short));
        }
        problems.extend(d.problems.iter().map(|p| format!("`{}`: {p}", run.short)));
    }
    let title = format!("{}: final samples of every run (fixed z)", report.input.name);
    sheets::contact_sheet(&out.join("samples.png"), &title, &runs, &decoded)?;
    files.push("samples.png".to_string());
    let strips = out.join("strips");
    fs::create_dir_all(&strips).map_err(|e| StoreError::io(&strips, e))?;
    let made: Vec<Option<String>> = runs
        .par_iter()
        .zip(&decoded)
        .map(|(run, d)| {
            let name = format!("strips/{}.png", run.short);
            let title = format!("{}: fixed-z samples over training\n{}", run.short, run.label);
            let written = sheets::strip(&out.join(&name), &title, run, d)?;
            Ok(written.then_some(name))
        })
        .collect::<Result<_, ReportError>>()?;
    files.extend(made.into_iter().flatten());
    Ok((files, problems))
}
