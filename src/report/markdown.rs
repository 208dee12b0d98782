//! `report.md`: the sweep, its configs, the summary numbers and every figure with a caption.
//!
//! Numbers come from the polars aggregates in [`Numbers`](super::Numbers); this module only
//! formats them. Nothing time-dependent is written, so the file is identical when the runs
//! are.

use std::fmt::Write;

use super::runs::{ReportRun, RunStatus};
use super::stats::FINAL_SHARE;
use super::{ConfigGroup, Report, figures};

/// Columns of the summary table: `(stat, header, as a percentage)`.
const SUMMARY: [(&str, &str, bool); 9] = [
    ("d_loss_final", "D loss", false),
    ("g_loss_final", "G loss", false),
    ("d_acc_real_final", "D acc real", false),
    ("d_acc_fake_final", "D acc fake", false),
    ("d_skip_rate", "D skipped", true),
    ("g_skip_rate", "G skipped", true),
    ("zone_below", "below", true),
    ("zone_between", "between", true),
    ("zone_above", "above", true),
];

/// The whole file.
pub fn render(report: &Report, files: &[String], picture_problems: &[String]) -> String {
    let mut md = String::new();
    header(report, &mut md);
    configs_table(report, picture_problems, &mut md);
    summary_table(report, &mut md);
    ranking_table(report, &mut md);
    figures(report, files, &mut md);
    md
}

/// A run's swept values with short keys, seed included: `strategy=skip low=0.5 seed=1`.
pub fn swept_label(report: &Report, run: &ReportRun) -> String {
    let parts: Vec<String> =
        run.swept.iter().map(|(k, v)| format!("{}={v}", short(report, k))).collect();
    if parts.is_empty() { "(base)".to_string() } else { parts.join(" ") }
}

fn short<'a>(report: &'a Report, key: &'a str) -> &'a str {
    report.short_keys.get(key).map_or(key, String::as_str)
}

fn header(report: &Report, md: &mut String) {
    let input = &report.input;
    let _ = writeln!(md, "# Report: {}\n", input.name);
    if let Some(text) = &input.description {
        let _ = writeln!(md, "{}\n", text.trim());
    }
    if let Some(file) = &input.sweep_file {
        let _ = writeln!(md, "- Sweep file: `{}`", file.display());
    }
    let words: Vec<&str> = (0..input.runs.len()).map(|i| status_word(report, i)).collect();
    let count = |word: &str| words.iter().filter(|w| **w == word).count();
    let _ = writeln!(
        md,
        "- Runs: {} ({} completed, {} failed, {} unfinished, {} missing, {} damaged) in `{}`",
        input.runs.len(),
        count("completed"),
        count("failed"),
        count("unfinished"),
        count("missing"),
        count("damaged"),
        input.runs_dir.display()
    );
    let _ = writeln!(
        md,
        "- \"Final\" values are means over the last {:.0} % of a run's steps; a spread \
         `[min, max]` is over the seeds of a config. Failed runs are drawn but left out of \
         the summary.\n",
        FINAL_SHARE * 100.0
    );
}

fn configs_table(report: &Report, picture_problems: &[String], md: &mut String) {
    let keys = swept_keys(report);
    let _ = writeln!(md, "## Runs\n");
    let mut head = vec!["run".to_string()];
    head.extend(keys.iter().map(|k| short(report, k).to_string()));
    head.extend(["status", "steps", "time"].map(String::from));
    table_row(md, &head);
    table_row(md, &head.iter().map(|_| "---".to_string()).collect::<Vec<_>>());
    for (i, run) in report.input.runs.iter().enumerate() {
        let mut row = vec![format!("`{}`", run.short)];
        for key in &keys {
            let value = run.swept.iter().find(|(k, _)| k == key).map(|p| p.1.clone());
            row.push(value.unwrap_or_else(|| "-".to_string()));
        }
        row.push(status_word(report, i).to_string());
        row.push(steps(report, i, run));
        row.push(run.manifest.as_ref().and_then(|m| m.duration_s).map_or("-".into(), duration));
        table_row(md, &row);
    }
    md.push('\n');
    problems(report, picture_problems, md);
}

/// A run's status as the report shows it: a run whose metrics polars cannot read is damaged.
fn status_word(report: &Report, i: usize) -> &'static str {
    if report.numbers.unreadable.contains_key(&(i as u32)) {
        "damaged"
    } else {
        report.input.runs[i].status.word()
    }
}

/// Swept keys of all runs in order of first appearance.
fn swept_keys(report: &Report) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (k, _) in report.input.runs.iter().flat_map(|r| &r.swept) {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

fn steps(report: &Report, i: usize, run: &ReportRun) -> String {
    let planned = run.config.train.steps;
    let done = report.numbers.per_run.get(&(i as u32)).and_then(|s| s.get("steps"));
    match (done, &run.manifest) {
        (Some(done), _) => format!("{done:.0}/{planned}"),
        (None, Some(m)) => format!("{}/{planned}", m.steps_done),
        (None, None) => format!("-/{planned}"),
    }
}

/// Why runs are failed, damaged or unreadable, one line each.
fn problems(report: &Report, picture_problems: &[String], md: &mut String) {
    let mut lines = Vec::new();
    for (i, run) in report.input.runs.iter().enumerate() {
        let name = format!("`{}` ({})", run.short, swept_label(report, run));
        match &run.status {
            RunStatus::Failed(reason) if reason.is_empty() => {
                lines.push(format!("{name} failed (its manifest gives no reason)"))
            }
            RunStatus::Failed(reason) => lines.push(format!("{name} failed: {reason}")),
            RunStatus::Damaged(reason) => lines.push(format!("{name} is damaged: {reason}")),
            RunStatus::Unfinished(how) => lines.push(format!("{name} is unfinished: {how}")),
            RunStatus::Missing => lines.push(format!("{name} has no run directory yet")),
            RunStatus::Completed => {}
        }
        if let Some(reason) = report.numbers.unreadable.get(&(i as u32)) {
            lines.push(format!("{name}: metrics unreadable, left out: {reason}"));
        }
        lines.extend(run.left_out.iter().map(|note| format!("{name}: {note}")));
    }
    lines.extend(picture_problems.iter().cloned());
    for (i, reason) in &report.eval_unreadable {
        let short = &report.input.runs[*i as usize].short;
        lines.push(format!("`{short}`: evaluation scores unreadable, left out: {reason}"));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(md, "Problems:\n");
    for line in lines {
        let _ = writeln!(md, "- {}", line.replace('\n', " "));
    }
    md.push('\n');
}

fn summary_table(report: &Report, md: &mut String) {
    let _ = writeln!(md, "## Summary per config\n");
    let mut head = vec!["config".to_string(), "seeds".to_string()];
    head.extend(SUMMARY.iter().map(|(_, h, _)| h.to_string()));
    table_row(md, &head);
    table_row(md, &head.iter().map(|_| "---".to_string()).collect::<Vec<_>>());
    for group in &report.groups {
        table_row(md, &summary_row(report, group));
    }
    md.push('\n');
}

/// Evaluation columns of the ranking table: `(metric, header)`.
const RANKED: [(&str, &str); 8] = [
    ("frechet", "Fréchet distance"),
    ("kid", "KID"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("density", "density"),
    ("coverage", "coverage"),
    ("classes_covered", "classes covered"),
    ("class_kl", "class KL"),
];

/// Configs ranked by the Fréchet distance of their last evaluation (lowest first).
fn ranking_table(report: &Report, md: &mut String) {
    if !report.evaluated {
        return;
    }
    let _ = writeln!(md, "## Ranking by Fréchet distance\n");
    let _ = writeln!(
        md,
        "Scores of each run's last evaluation against real images (features of a classifier \
         trained on the dataset); lower Fréchet distance and KID, higher precision, recall, \
         density and coverage are better. `[min, max]` over seeds.\n"
    );
    let mut head = ["rank", "config", "seeds", "n"].map(String::from).to_vec();
    head.extend(RANKED.iter().map(|(_, h)| h.to_string()));
    table_row(md, &head);
    table_row(md, &head.iter().map(|_| "---".to_string()).collect::<Vec<_>>());
    let fd = |g: &ConfigGroup| {
        let stats = report.numbers.per_config.get(&g.index);
        stats.and_then(|s| s.get("frechet_final_mean")).copied().unwrap_or(f64::NAN)
    };
    let mut ranked: Vec<&ConfigGroup> =
        report.groups.iter().filter(|g| fd(g).is_finite()).collect();
    ranked.sort_by(|a, b| fd(a).total_cmp(&fd(b)));
    for (rank, group) in ranked.iter().enumerate() {
        let stats = report.numbers.per_config.get(&group.index);
        let seeds = stats.and_then(|s| s.get("eval_seeds")).copied().unwrap_or(0.0);
        let n = |what: &str| stats.and_then(|s| s.get(what)).copied().unwrap_or(f64::NAN);
        let (n_min, n_max) = (n("eval_n_min"), n("eval_n_max"));
        let n =
            if n_min == n_max { format!("{n_min:.0}") } else { format!("{n_min:.0}-{n_max:.0}") };
        let mut row =
            vec![(rank + 1).to_string(), group.full_label.clone(), format!("{seeds:.0}"), n];
        for (metric, _) in RANKED {
            let get = |what: &str| stats.and_then(|s| s.get(&format!("{metric}_final_{what}")));
            let decimals = if metric == "classes_covered" { 1 } else { 4 };
            let show = |v: f64| format!("{v:.decimals$}");
            row.push(spread_cell(get("mean"), get("min"), get("max"), &show));
        }
        table_row(md, &row);
    }
    md.push('\n');
}

/// `mean [min, max]`, or the mean alone when the spread rounds away, or `-`.
fn spread_cell(
    mean: Option<&f64>,
    lo: Option<&f64>,
    hi: Option<&f64>,
    show: &dyn Fn(f64) -> String,
) -> String {
    match (mean, lo, hi) {
        (Some(m), Some(l), Some(h)) if m.is_finite() && show(*l) != show(*h) => {
            format!("{} [{}, {}]", show(*m), show(*l), show(*h))
        }
        (Some(m), _, _) if m.is_finite() => show(*m),
        _ => "-".to_string(),
    }
}

fn summary_row(report: &Report, group: &ConfigGroup) -> Vec<String> {
    let stats = report.numbers.per_config.get(&group.index);
    let seeds = stats.and_then(|s| s.get("seeds")).copied().unwrap_or(0.0);
    let mut row = vec![group.full_label.clone(), format!("{seeds:.0}")];
    for (stat, _, percent) in SUMMARY {
        let get = |what: &str| stats.and_then(|s| s.get(&format!("{stat}_{what}")));
        let show = |v: f64| if percent { format!("{:.1} %", v * 100.0) } else { format!("{v:.4}") };
        row.push(spread_cell(get("mean"), get("min"), get("max"), &show));
    }
    row
}

fn figures(report: &Report, files: &[String], md: &mut String) {
    let _ = writeln!(md, "## Figures\n");
    for (stem, caption) in captions(report) {
        let png = format!("{stem}.png");
        if !files.contains(&png) {
            continue;
        }
        let _ = writeln!(md, "### {}\n", caption.0);
        let _ = writeln!(md, "![{}]({png})\n", caption.0);
        let svg = format!("{stem}.svg");
        let vector = if files.contains(&svg) { format!(" ([SVG]({svg}))") } else { String::new() };
        let _ = writeln!(md, "{}{vector}\n", caption.1);
    }
    let strips: Vec<&String> = files.iter().filter(|f| f.starts_with("strips/")).collect();
    if !strips.is_empty() {
        let _ = writeln!(md, "### Samples over training, per run\n");
        for run in &report.input.runs {
            let file = format!("strips/{}.png", run.short);
            if strips.contains(&&file) {
                let _ = writeln!(md, "- [`{}` {}]({file})", run.short, swept_label(report, run));
            }
        }
        md.push('\n');
    }
}

/// `(file stem, (title, one-line caption))` of every figure.
fn captions(report: &Report) -> Vec<(&'static str, (String, String))> {
    let metric = figures::metric_label(&report.metric);
    let c = |a: &str, b: &str| (a.to_string(), b.to_string());
    let losses = "Loss per step: raw values faint, moving average bold; configs with several \
                  seeds as mean line and min-max band; one panel per strategy.";
    let accuracy = "D's accuracy on each half of its batch, with the thresholds dashed.";
    let zones = "Share of steps where the balancing signal was below the low threshold, \
                 between, or above the high one.";
    let evaluation = "Fréchet distance (lower is closer to the real images) and coverage \
                      (higher is better) at each evaluation.";
    let summary = format!(
        "{metric} of each config ({}; mean over seeds), against the swept values.",
        figures::metric_basis(&report.metric)
    );
    vec![
        ("losses", c("D and G loss", losses)),
        ("accuracy", c("D accuracy on real and fake", accuracy)),
        ("zones", c("Time in each zone", zones)),
        ("learning-rates", c("Learning rates (lr-adjust)", "lr_D and lr_G, log axis.")),
        ("skips", c("Skipped updates (skip)", "Share of recent steps without a D or G update.")),
        ("evaluation", c("Sample quality over training", evaluation)),
        ("summary", (format!("{metric} by config"), summary)),
        ("samples", c("Final samples", "The last sample grid of every run (fixed z).")),
    ]
}

fn table_row(md: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    let _ = writeln!(md, "| {} |", cells.join(" | "));
}

/// Seconds as `42.0 s`, `12 min 5 s` or `3 h 20 min`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        _ if seconds < 60.0 => format!("{seconds:.1} s"),
        0..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
