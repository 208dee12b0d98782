//! Curves for the charts: per-run columns, moving averages, seed bands and thinning.
//!
//! A chart is at most ~1,000 pixels wide, so a 10,000-step run is thinned to a few hundred
//! buckets before drawing. Raw values keep each bucket's minimum and maximum (the faint
//! line still shows every spike); smooth curves keep the bucket mean.

use polars::prelude::DataFrame;

use super::ReportError;
use super::stats::{floats, ids};

/// Buckets a curve is thinned to.
pub const BUCKETS: usize = 400;

/// A per-step quantity a chart can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    DLoss,
    GLoss,
    AccReal,
    AccFake,
    LrD,
    LrG,
    DSkip,
    GSkip,
}

impl Metric {
    /// The column in the step table.
    pub fn column(self) -> &'static str {
        match self {
            Metric::DLoss => "d_loss",
            Metric::GLoss => "g_loss",
            Metric::AccReal => "d_acc_real",
            Metric::AccFake => "d_acc_fake",
            Metric::LrD => "lr_d",
            Metric::LrG => "lr_g",
            Metric::DSkip => "d_skip",
            Metric::GSkip => "g_skip",
        }
    }

    const ALL: [Metric; 8] = [
        Metric::DLoss,
        Metric::GLoss,
        Metric::AccReal,
        Metric::AccFake,
        Metric::LrD,
        Metric::LrG,
        Metric::DSkip,
        Metric::GSkip,
    ];
}

/// One run's curves, step by step.
#[derive(Debug, Clone, Default)]
pub struct RunSeries {
    pub steps: Vec<f64>,
    values: Vec<Vec<f64>>,
}

impl RunSeries {
    pub fn get(&self, metric: Metric) -> &[f64] {
        &self.values[metric as usize]
    }
}

/// Splits the step table into one series per run, keyed by the run index.
pub fn split_runs(
    steps: &DataFrame,
    per_run: &DataFrame,
) -> Result<Vec<(u32, RunSeries)>, ReportError> {
    let step = floats(steps, "step")?;
    let columns: Vec<Vec<f64>> =
        Metric::ALL.iter().map(|m| floats(steps, m.column())).collect::<Result<_, _>>()?;
    let runs = ids(per_run, "run")?;
    let rows = ids(per_run, "rows")?;
    let mut offset = 0;
    let mut out = Vec::with_capacity(runs.len());
    for (run, n) in runs.into_iter().zip(rows) {
        let range = offset..offset + n as usize;
        let values = columns.iter().map(|c| c[range.clone()].to_vec()).collect();
        out.push((run, RunSeries { steps: step[range.clone()].to_vec(), values }));
        offset = range.end;
    }
    Ok(out)
}

/// Steps a moving average spans: 4 % of the run, at least 1.
pub fn window_for(n: usize) -> usize {
    (n / 25).max(1)
}

/// Trailing moving average over `window` values, skipping NaN (steps with no value).
pub fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let (mut sum, mut count) = (0.0, 0usize);
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        if v.is_finite() {
            sum += v;
            count += 1;
        }
        if i >= window {
            let old = values[i - window];
            if old.is_finite() {
                sum -= old;
                count -= 1;
            }
        }
        out.push(if count == 0 { f64::NAN } else { sum / count as f64 });
    }
    out
}

/// Index ranges of at most `buckets` consecutive chunks covering `0..n`.
fn chunks(n: usize, buckets: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let size = n.div_ceil(buckets.max(1)).max(1);
    (0..n).step_by(size).map(move |start| start..(start + size).min(n))
}

/// Each bucket's minimum and maximum, in the order they occur: a raw curve, thinned.
pub fn envelope(xs: &[f64], ys: &[f64], buckets: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * buckets);
    for range in chunks(xs.len(), buckets) {
        let finite = range.filter(|&i| ys[i].is_finite());
        let lo = finite.clone().min_by(|&a, &b| ys[a].total_cmp(&ys[b]));
        let hi = finite.max_by(|&a, &b| ys[a].total_cmp(&ys[b]));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            out.push((xs[first], ys[first]));
            if second != first {
                out.push((xs[second], ys[second]));
            }
        }
    }
    out
}

/// Each bucket's mean position and mean value (NaN left out): a smooth curve, thinned, or a
/// 0/1 column turned into a rate per bucket.
pub fn bucket_means(xs: &[f64], ys: &[f64], buckets: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(buckets);
    for range in chunks(xs.len(), buckets) {
        let finite: Vec<usize> = range.filter(|&i| ys[i].is_finite()).collect();
        if finite.is_empty() {
            continue;
        }
        let n = finite.len() as f64;
        let x = finite.iter().map(|&i| xs[i]).sum::<f64>() / n;
        let y = finite.iter().map(|&i| ys[i]).sum::<f64>() / n;
        out.push((x, y));
    }
    out
}

/// The mean, minimum and maximum of several runs' curves, step by step, over the steps all of
/// them reached.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedBand {
    pub steps: Vec<f64>,
    pub mean: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

pub fn seed_band(steps: &[f64], curves: &[Vec<f64>]) -> SeedBand {
    let n = curves.iter().map(Vec::len).min().unwrap_or(0).min(steps.len());
    let mut band = SeedBand {
        steps: steps[..n].to_vec(),
        mean: Vec::with_capacity(n),
        min: Vec::with_capacity(n),
        max: Vec::with_capacity(n),
    };
    for i in 0..n {
        let at: Vec<f64> = curves.iter().map(|c| c[i]).filter(|v| v.is_finite()).collect();
        let (lo, hi) = at
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let empty = at.is_empty();
        band.mean.push(if empty { f64::NAN } else { at.iter().sum::<f64>() / at.len() as f64 });
        band.min.push(if empty { f64::NAN } else { lo });
        band.max.push(if empty { f64::NAN } else { hi });
    }
    band
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_skips_missing_values() {
        let v = [1.0, f64::NAN, 3.0, 5.0];
        let m = moving_average(&v, 2);
        assert_eq!(m[0], 1.0);
        assert_eq!(m[1], 1.0); // the window holds 1 and a missing value
        assert_eq!(m[2], 3.0);
        assert_eq!(m[3], 4.0);
    }

    #[test]
    fn envelope_keeps_every_spike() {
        let xs: Vec<f64> = (0..1000).map(f64::from).collect();
        let mut ys = vec![0.0; 1000];
        ys[517] = 9.0;
        let thin = envelope(&xs, &ys, 10);
        assert!(thin.len() <= 20);
        assert!(thin.contains(&(517.0, 9.0)));
    }

    #[test]
    fn seed_band_covers_the_steps_every_run_reached() {
        let steps = [1.0, 2.0, 3.0];
        let band = seed_band(&steps, &[vec![1.0, 2.0, 3.0], vec![3.0, 4.0]]);
        assert_eq!(band.steps, vec![1.0, 2.0]);
        assert_eq!(band.mean, vec![2.0, 3.0]);
        assert_eq!((band.min[1], band.max[1]), (2.0, 4.0));
    }
}
