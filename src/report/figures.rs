//! The report's charts, described as data for [`charts`](super::charts) to draw.
//!
//! Curves are grouped into panels by strategy, one colour per config within a panel; a
//! strategy with more than ten configs gets several panels, so colours never repeat within
//! one. Replicates (seeds) of a config are drawn as their mean with a min-max band.

use super::charts::{
    Band, Bar, Curves, Figure, GREY, Heatmap, LegendEntry, Line, PALETTE, Panel, Plot, colour_map,
    value_text,
};
use super::evals::EvalCurve;
use super::series::{self, BUCKETS, Metric, RunSeries};
use super::{ConfigGroup, Report};
use crate::balance::Signal;
use plotters::style::RGBColor;

/// How a curve is smoothed before drawing.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    /// Raw values faint, a moving average on top (losses, accuracies).
    Noisy,
    /// Values as they are (learning rates).
    Exact,
    /// A 0/1 column as the share of steps in a moving window (skipped updates).
    Rate,
}

/// The file stems of every figure a report can draw.
pub const STEMS: [&str; 8] =
    ["losses", "accuracy", "zones", "learning-rates", "skips", "evaluation", "summary", "samples"];

/// Every figure of the report with its file stem, in the order report.md shows them.
pub fn all(report: &Report) -> Vec<(&'static str, Figure)> {
    let mut figures = vec![("losses", losses(report)), ("accuracy", accuracy(report))];
    figures.push(("zones", zones(report)));
    if let Some(figure) = learning_rates(report) {
        figures.push(("learning-rates", figure));
    }
    if let Some(figure) = skips(report) {
        figures.push(("skips", figure));
    }
    if report.evaluated {
        figures.push(("evaluation", evaluation(report)));
    }
    figures.push(("summary", summary(report)));
    figures
}

/// Panels of at most ten configs each, per strategy: `(title, configs)`.
fn facets(
    report: &Report,
    keep: impl Fn(&ConfigGroup) -> bool,
) -> Vec<(String, Vec<&ConfigGroup>)> {
    let mut strategies: Vec<&str> = Vec::new();
    for g in report.groups.iter().filter(|g| keep(g)) {
        if !strategies.contains(&g.strategy.as_str()) {
            strategies.push(&g.strategy);
        }
    }
    let mut out = Vec::new();
    for strategy in strategies {
        let groups: Vec<&ConfigGroup> =
            report.groups.iter().filter(|g| keep(g) && g.strategy == strategy).collect();
        let parts = groups.len().div_ceil(PALETTE.len());
        for (k, chunk) in groups.chunks(PALETTE.len()).enumerate() {
            let part = if parts > 1 { format!(" ({}/{parts})", k + 1) } else { String::new() };
            out.push((format!("strategy {strategy}{part}"), chunk.to_vec()));
        }
    }
    out
}

/// The series of a config's runs that have metrics.
fn runs_of<'a>(report: &'a Report, group: &ConfigGroup) -> Vec<&'a RunSeries> {
    group.runs.iter().filter_map(|i| report.series.get(i)).collect()
}

/// A config's curve of one metric: bands and lines in its colour.
fn group_curve(
    report: &Report,
    group: &ConfigGroup,
    metric: Metric,
    style: Style,
    colour: RGBColor,
    curves: &mut Curves,
) {
    let runs = runs_of(report, group);
    let shaped = |run: &RunSeries| {
        let values = run.get(metric);
        match style {
            Style::Noisy => series::moving_average(values, series::window_for(values.len())),
            Style::Rate => series::moving_average(values, (values.len() / 20).max(1)),
            Style::Exact => values.to_vec(),
        }
    };
    let line = |points, opacity, width| Line { points, colour, opacity, width };
    match runs.as_slice() {
        [] => {}
        [run] => {
            if style == Style::Noisy {
                let raw = series::envelope(&run.steps, run.get(metric), BUCKETS);
                curves.lines.push(line(raw, 0.22, 1));
            }
            let smooth = if style == Style::Exact {
                series::envelope(&run.steps, run.get(metric), BUCKETS)
            } else {
                series::bucket_means(&run.steps, &shaped(run), BUCKETS)
            };
            curves.lines.push(line(smooth, 1.0, 2));
        }
        many => {
            let shaped: Vec<Vec<f64>> = many.iter().map(|r| shaped(r)).collect();
            let longest = many.iter().max_by_key(|r| r.steps.len()).map(|r| &r.steps);
            let band = series::seed_band(longest.map_or(&[][..], |s| s), &shaped);
            let low = series::bucket_means(&band.steps, &band.min, BUCKETS);
            let high = series::bucket_means(&band.steps, &band.max, BUCKETS);
            if low.len() == high.len() {
                curves.bands.push(Band {
                    x: low.iter().map(|p| p.0).collect(),
                    low: low.iter().map(|p| p.1).collect(),
                    high: high.iter().map(|p| p.1).collect(),
                    colour,
                });
            }
            curves.lines.push(line(series::bucket_means(&band.steps, &band.mean, BUCKETS), 1.0, 2));
        }
    }
}

/// The legend label of a config: its values, seeds (unless the panel title gives them) and
/// failures.
fn legend_label(report: &Report, group: &ConfigGroup, with_seeds: bool) -> String {
    let seeds = runs_of(report, group).len();
    let failed = group.runs.iter().filter(|i| report.input.runs[**i].status.word() == "failed");
    let failed = failed.count();
    let mut label = group.label.clone();
    if seeds > 1 && with_seeds {
        label.push_str(&format!(" ({seeds} seeds)"));
    }
    if failed > 0 {
        label.push_str(&format!(" [{failed} failed]"));
    }
    label
}

fn empty_curves(y_label: &str, log_y: bool, y_range: Option<(f64, f64)>) -> Curves {
    Curves {
        x_label: "step".to_string(),
        y_label: y_label.to_string(),
        log_y,
        y_range,
        bands: Vec::new(),
        lines: Vec::new(),
        rules: Vec::new(),
    }
}

/// Panels of one figure: for each facet, one panel per `(metric, y label, panel title)`.
fn curve_panels(
    report: &Report,
    keep: impl Fn(&ConfigGroup) -> bool,
    metrics: &[(Metric, &str, &str)],
    style: Style,
    log_y: bool,
    y_range: Option<(f64, f64)>,
) -> Vec<Panel> {
    let mut panels = Vec::new();
    for (facet, groups) in facets(report, keep) {
        let seeds: Vec<usize> = groups.iter().map(|g| runs_of(report, g).len()).collect();
        let same_seeds = seeds.windows(2).all(|w| w[0] == w[1]) && seeds[0] > 1;
        let facet = if same_seeds { format!("{facet}, {} seeds each", seeds[0]) } else { facet };
        for (metric, y_label, what) in metrics {
            let mut curves = empty_curves(y_label, log_y, y_range);
            let mut legend = Vec::new();
            for (group, colour) in groups.iter().zip(PALETTE) {
                group_curve(report, group, *metric, style, colour, &mut curves);
                let label = legend_label(report, group, !same_seeds);
                legend.push(LegendEntry::line(label, colour));
            }
            if *metric == Metric::AccReal || *metric == Metric::AccFake {
                threshold_rules(report, &groups, &mut curves, &mut legend);
            }
            let title = format!("{what}, {facet}");
            panels.push(Panel { title, plot: Plot::Curves(curves), legend });
        }
    }
    panels
}

/// Dashed lines at the low and high thresholds: grey when the panel's configs share them,
/// in each config's colour when they differ.
fn threshold_rules(
    report: &Report,
    groups: &[&ConfigGroup],
    curves: &mut Curves,
    legend: &mut Vec<LegendEntry>,
) {
    let balance = |g: &ConfigGroup| &report.input.runs[g.runs[0]].config.balance;
    // With `signal: loss` the thresholds are not compared with accuracies: no lines.
    let coloured: Vec<((f64, f64), RGBColor)> = groups
        .iter()
        .zip(PALETTE)
        .filter(|(g, _)| balance(g).signal == Signal::Accuracy)
        .map(|(g, colour)| ((balance(g).low, balance(g).high), colour))
        .collect();
    let Some(&(first, _)) = coloured.first() else { return };
    if coloured.iter().all(|(t, _)| *t == first) {
        curves.rules.extend([(first.0, GREY), (first.1, GREY)]);
        let label = format!("thresholds {} / {}", first.0, first.1);
        legend.push(LegendEntry { label, colour: GREY, dashed: true });
        return;
    }
    for ((low, high), colour) in coloured {
        curves.rules.extend([(low, colour), (high, colour)]);
    }
    let label = "thresholds (config's colour)".to_string();
    legend.push(LegendEntry { label, colour: GREY, dashed: true });
}

fn title(report: &Report, what: &str) -> String {
    format!("{}: {what}", report.input.name)
}

/// Figure 1: D and G loss over steps.
fn losses(report: &Report) -> Figure {
    let metrics = [
        (Metric::DLoss, "D loss (BCE, real + fake)", "D loss"),
        (Metric::GLoss, "G loss (BCE)", "G loss"),
    ];
    let panels = curve_panels(report, |_| true, &metrics, Style::Noisy, false, None);
    let seeds = report.groups.iter().any(|g| runs_of(report, g).len() > 1);
    let what = if seeds {
        "losses (bold: mean over seeds of the moving average over 4 % of steps; band: min-max)"
    } else {
        "losses (faint: raw; bold: moving average over 4 % of steps)"
    };
    Figure { title: title(report, what), columns: 2, panels }
}

/// Figure 2: D's accuracy on real and on fake images, with the thresholds.
fn accuracy(report: &Report) -> Figure {
    let metrics = [
        (Metric::AccReal, "D accuracy on real (share)", "D accuracy on real"),
        (Metric::AccFake, "D accuracy on fake (share)", "D accuracy on fake"),
    ];
    // A little past 0 and 1, so curves lying on them are not hidden by the axes.
    let range = Some((-0.02, 1.02));
    let panels = curve_panels(report, |_| true, &metrics, Style::Noisy, false, range);
    let what = "D accuracy (dashed: low and high thresholds)";
    Figure { title: title(report, what), columns: 2, panels }
}

/// Figure 2b: the share of steps in each zone, per config.
fn zones(report: &Report) -> Figure {
    let colours = vec![RGBColor(225, 87, 89), RGBColor(160, 160, 160), RGBColor(78, 121, 167)];
    let names = ["zone_below_mean", "zone_between_mean", "zone_above_mean"];
    let rows = report
        .groups
        .iter()
        .map(|g| {
            let stats = report.numbers.per_config.get(&g.index);
            let share = |n: &str| stats.and_then(|s| s.get(n)).copied().unwrap_or(f64::NAN);
            (g.full_label.clone(), names.iter().map(|n| share(n)).collect())
        })
        .collect();
    let legend = vec![
        LegendEntry::line("below low (D too weak)", colours[0]),
        LegendEntry::line("between thresholds", colours[1]),
        LegendEntry::line("above high (D too strong)", colours[2]),
    ];
    let plot = Plot::Shares { x_label: "share of steps (mean over seeds)".into(), rows, colours };
    let what = "zone of the balancing signal (min accuracy, or D's losses against the margin)";
    let panel = Panel { title: what.into(), plot, legend };
    Figure { title: title(report, "time spent in each zone"), columns: 1, panels: vec![panel] }
}

/// Figure 3: learning rates of `lr-adjust` runs, on a log axis.
fn learning_rates(report: &Report) -> Option<Figure> {
    let keep = |g: &ConfigGroup| g.strategy == "lr-adjust";
    if !report.groups.iter().any(keep) {
        return None;
    }
    let metrics = [(Metric::LrD, "lr_D (log)", "lr_D"), (Metric::LrG, "lr_G (log)", "lr_G")];
    let panels = curve_panels(report, keep, &metrics, Style::Exact, true, None);
    Some(Figure { title: title(report, "learning rates of lr-adjust runs"), columns: 2, panels })
}

/// Figure 4: how often `skip` runs left out D's or G's update.
fn skips(report: &Report) -> Option<Figure> {
    let keep = |g: &ConfigGroup| g.strategy == "skip";
    if !report.groups.iter().any(keep) {
        return None;
    }
    let metrics = [
        (Metric::DSkip, "share of steps without D update", "D updates skipped"),
        (Metric::GSkip, "share of steps without G update", "G updates skipped"),
    ];
    let panels = curve_panels(report, keep, &metrics, Style::Rate, false, Some((-0.02, 1.02)));
    let what = "skipped updates of skip runs (moving share over 5 % of steps)";
    Some(Figure { title: title(report, what), columns: 2, panels })
}

/// Figure 5b: evaluation scores over training, per strategy.
fn evaluation(report: &Report) -> Figure {
    let mut panels = Vec::new();
    type Pick = fn(&EvalCurve) -> &[f64];
    let measures: [(&str, &str, Pick); 2] = [
        ("Fréchet distance (classifier features)", "Fréchet distance", |c| &c.frechet),
        ("coverage (share of real neighbourhoods hit)", "coverage", |c| &c.coverage),
    ];
    for (facet, groups) in facets(report, |_| true) {
        for (y_label, what, pick) in measures {
            let mut curves = empty_curves(y_label, false, None);
            let mut legend = Vec::new();
            for (group, colour) in groups.iter().zip(PALETTE) {
                for curve in group.runs.iter().filter_map(|i| report.eval_curves.get(i)) {
                    let points = curve.steps.iter().copied().zip(pick(curve).iter().copied());
                    curves.lines.push(Line {
                        points: points.collect(),
                        colour,
                        opacity: 0.85,
                        width: 2,
                    });
                }
                legend.push(LegendEntry::line(legend_label(report, group, true), colour));
            }
            let title = format!("{what}, {facet}");
            panels.push(Panel { title, plot: Plot::Curves(curves), legend });
        }
    }
    let what = "sample quality at each evaluation (one line per run)";
    Figure { title: title(report, what), columns: 2, panels }
}

/// Figure 5: the final value of the chosen metric against the swept values.
fn summary(report: &Report) -> Figure {
    let metric = &report.metric;
    let stat = format!("{metric}_final");
    let value = |g: &ConfigGroup, what: &str| {
        let stats = report.numbers.per_config.get(&g.index);
        stats.and_then(|s| s.get(&format!("{stat}_{what}"))).copied().unwrap_or(f64::NAN)
    };
    let dims = axes(&report.groups);
    let what = format!("{} by config ({}, over seeds)", metric_label(metric), metric_basis(metric));
    if dims.len() >= 2 {
        let panels = heatmaps(report, &dims, |g| value(g, "mean"));
        let columns = panels.len().min(2);
        return Figure { title: title(report, &what), columns, panels };
    }
    let bars = report.groups.iter().enumerate().map(|(i, g)| Bar {
        label: g.full_label.clone(),
        value: value(g, "mean"),
        spread: Some((value(g, "min"), value(g, "max"))).filter(|_| runs_of(report, g).len() > 1),
        colour: PALETTE[i % PALETTE.len()],
    });
    let bars: Vec<Bar> = bars.collect();
    let whiskers = bars.iter().any(|b| b.spread.is_some());
    let plot = Plot::Bars { y_label: metric_label(metric), bars };
    let legend = match whiskers {
        true => vec![LegendEntry::line("whisker: min-max over seeds", GREY)],
        false => Vec::new(),
    };
    let panel = Panel { title: "mean over seeds".into(), plot, legend };
    Figure { title: title(report, &what), columns: 1, panels: vec![panel] }
}

/// What a summary metric is called in titles.
pub fn metric_label(metric: &str) -> String {
    match metric {
        "frechet" => "Fréchet distance".to_string(),
        "kid" => "KID".to_string(),
        "classes_covered" => "classes covered".to_string(),
        "class_kl" => "class KL divergence".to_string(),
        other => format!("final {other}"),
    }
}

/// Where a summary metric's value comes from.
pub fn metric_basis(metric: &str) -> &'static str {
    if super::evals::EVAL_METRICS.contains(&metric) {
        "at the last evaluation"
    } else {
        "mean of the last 10 % of steps"
    }
}

/// Heatmaps over the two swept axes with the most values, one per combination of the other
/// axes' values, on one colour scale.
fn heatmaps(report: &Report, dims: &[Axis], value: impl Fn(&ConfigGroup) -> f64) -> Vec<Panel> {
    let mut by_size: Vec<usize> = (0..dims.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(dims[i].values.len()));
    let (x, y) = (by_size[0].min(by_size[1]), by_size[0].max(by_size[1]));
    let facet_of = |i: usize| {
        let parts = (0..dims.len()).filter(|d| *d != x && *d != y);
        let parts: Vec<String> =
            parts.map(|d| format!("{} = {}", dims[d].name, dims[d].of_config[i])).collect();
        parts.join("; ")
    };
    let groups = &report.groups;
    let values: Vec<f64> = groups.iter().map(&value).collect();
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let range =
        finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let facets = distinct(&(0..groups.len()).map(facet_of).collect::<Vec<_>>());
    let mut panels = Vec::with_capacity(facets.len());
    for facet in facets {
        let (columns, rows) = (dims[x].values.clone(), dims[y].values.clone());
        let mut cells = vec![vec![f64::NAN; columns.len()]; rows.len()];
        for i in (0..groups.len()).filter(|i| facet_of(*i) == facet) {
            let col = columns.iter().position(|c| *c == dims[x].of_config[i]);
            let row = rows.iter().position(|r| *r == dims[y].of_config[i]);
            if let (Some(col), Some(row)) = (col, row) {
                cells[row][col] = values[i];
            }
        }
        let map = Heatmap {
            x_label: dims[x].name.clone(),
            y_label: dims[y].name.clone(),
            columns,
            rows,
            cells,
            range,
        };
        let title = if facet.is_empty() { "one cell per config".to_string() } else { facet };
        let legend = if range.0 < range.1 {
            vec![
                LegendEntry::line(format!("lowest: {}", value_text(range.0)), colour_map(0.0)),
                LegendEntry::line(format!("highest: {}", value_text(range.1)), colour_map(1.0)),
            ]
        } else {
            vec![LegendEntry::line(format!("all: {}", value_text(range.0)), colour_map(0.5))]
        };
        panels.push(Panel { title, plot: Plot::Heatmap(map), legend });
    }
    panels
}

/// The swept dimensions of the configs: `(name, values in order of appearance, value of each
/// config)`. Keys that always change together (a zip) form one dimension.
pub fn axes(groups: &[ConfigGroup]) -> Vec<Axis> {
    let mut keys: Vec<&str> = Vec::new();
    for (k, _) in groups.iter().flat_map(|g| &g.key) {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    let value = |g: &ConfigGroup, key: &str| {
        g.key.iter().find(|(k, _)| k == key).map_or_else(|| "-".to_string(), |p| p.1.clone())
    };
    let mut axes: Vec<Axis> = Vec::new();
    for key in keys {
        let of_config: Vec<String> = groups.iter().map(|g| value(g, key)).collect();
        let name = key.rsplit('.').next().unwrap_or(key).to_string();
        let next = Axis { name, values: distinct(&of_config), of_config };
        match axes.last_mut() {
            Some(last) if moves_with(last, &next) => last.absorb(next),
            _ => axes.push(next),
        }
    }
    axes.retain(|a| a.values.len() > 1);
    axes
}

/// One swept dimension of a report's configs.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub name: String,
    /// Distinct values in order of appearance.
    pub values: Vec<String>,
    /// The value of each config, in config order.
    pub of_config: Vec<String>,
}

impl Axis {
    fn absorb(&mut self, other: Axis) {
        self.name = format!("{}, {}", self.name, other.name);
        for (mine, theirs) in self.of_config.iter_mut().zip(other.of_config) {
            *mine = format!("{mine}, {theirs}");
        }
        self.values = distinct(&self.of_config);
    }
}

/// Whether two axes change together (each value of one always meets the same of the other).
fn moves_with(a: &Axis, b: &Axis) -> bool {
    let pairs: Vec<String> =
        a.of_config.iter().zip(&b.of_config).map(|(x, y)| format!("{x}\u{0}{y}")).collect();
    let n = distinct(&pairs).len();
    n == a.values.len() && n == b.values.len()
}

fn distinct(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(index: u32, pairs: &[(&str, &str)]) -> ConfigGroup {
        let key: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ConfigGroup {
            index,
            key,
            runs: vec![index as usize],
            strategy: "none".into(),
            label: String::new(),
            full_label: String::new(),
        }
    }

    #[test]
    fn zipped_keys_make_one_axis_and_fixed_keys_none() {
        let mut groups = Vec::new();
        for strategy in ["none", "skip", "lr-adjust"] {
            for (low, high) in [("0.5", "0.8"), ("0.6", "0.9")] {
                let pairs = [
                    ("balance.strategy", strategy),
                    ("balance.low", low),
                    ("balance.high", high),
                    ("train.lr_d", "0.00005"),
                ];
                groups.push(group(groups.len() as u32, &pairs));
            }
        }
        let axes = axes(&groups);
        let names: Vec<&str> = axes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["strategy", "low, high"]);
        assert_eq!(axes[1].values, ["0.5, 0.8", "0.6, 0.9"]);
        assert_eq!(axes[0].of_config[3], "skip");
    }

    #[test]
    fn keys_that_cross_are_separate_axes() {
        let groups = vec![
            group(0, &[("train.lr_d", "1"), ("train.lr_g", "1")]),
            group(1, &[("train.lr_d", "1"), ("train.lr_g", "2")]),
            group(2, &[("train.lr_d", "2"), ("train.lr_g", "1")]),
        ];
        let names: Vec<String> = axes(&groups).into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["lr_d", "lr_g"]);
    }
}
