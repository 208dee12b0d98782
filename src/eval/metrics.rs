//! Sample-quality metrics on feature vectors: Fréchet distance, KID, precision and recall,
//! density and coverage.
//!
//! Everything here takes two sets of features (rows of equal length) and knows nothing of
//! images or networks, so each metric is tested on hand-made numbers. Distances between the
//! sets are computed in blocks of rows with one matrix product each (`|x|² + |y|² - 2 x·y`),
//! so 10,000 x 10,000 pairs never sit in memory at once.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

/// Feature vectors, one per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub rows: DMatrix<f32>,
}

impl Features {
    /// `values` holds `n` rows of `dim` numbers, row after row.
    pub fn from_rows(values: &[f32], dim: usize) -> Self {
        let n = values.len() / dim.max(1);
        Self { rows: DMatrix::from_row_slice(n, dim, &values[..n * dim]) }
    }

    pub fn len(&self) -> usize {
        self.rows.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.nrows() == 0
    }

    pub fn dim(&self) -> usize {
        self.rows.ncols()
    }
}

/// A Gaussian fitted to features: mean and (unbiased) covariance, in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
}

impl Gaussian {
    pub fn fit(features: &Features) -> Self {
        let x: DMatrix<f64> = features.rows.map(f64::from);
        let n = x.nrows().max(2) as f64;
        let mean = x.row_mean().transpose();
        let centred = DMatrix::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] - mean[j]);
        let cov = centred.transpose() * &centred / (n - 1.0);
        Self { mean, cov }
    }
}

/// The Fréchet distance between two Gaussians:
/// `|m1 - m2|² + tr(C1) + tr(C2) - 2 tr((C1^½ C2 C1^½)^½)`.
/// The inner product is symmetric, so both square roots come from symmetric eigen
/// decompositions (eigenvalues below zero from rounding are clamped to zero).
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    let diff = &a.mean - &b.mean;
    let root_a = sqrt_psd(&a.cov);
    let inner = &root_a * &b.cov * &root_a;
    let inner = (&inner + inner.transpose()) * 0.5;
    let cross: f64 = SymmetricEigen::new(inner).eigenvalues.iter().map(|v| v.max(0.0).sqrt()).sum();
    let value = diff.norm_squared() + a.cov.trace() + b.cov.trace() - 2.0 * cross;
    value.max(0.0)
}

/// The symmetric square root of a symmetric positive semi-definite matrix.
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let symmetric = (m + m.transpose()) * 0.5;
    let eig = SymmetricEigen::new(symmetric);
    let roots = eig.eigenvalues.map(|v| v.max(0.0).sqrt());
    &eig.eigenvectors * DMatrix::from_diagonal(&roots) * eig.eigenvectors.transpose()
}

/// KID: the unbiased MMD² between the sets under the cubic polynomial kernel
/// `k(x, y) = (x·y / dim + 1)³`, averaged over `subsets` random subsets of `size` rows of each
/// set (at most half of the smaller set, so subsets differ); returns (mean, standard
/// deviation over subsets).
pub fn kid(real: &Features, fake: &Features, subsets: usize, size: usize, seed: u64) -> (f64, f64) {
    let m = size.min(real.len() / 2).min(fake.len() / 2);
    if m < 2 || subsets == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dim = real.dim() as f32;
    let kernel = |a: &DMatrix<f32>, b: &DMatrix<f32>| {
        (a * b.transpose()).map(|v| f64::from(v / dim + 1.0).powi(3))
    };
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets {
        let x = real.rows.select_rows(sample(&mut rng, real.len(), m).into_vec().iter());
        let y = fake.rows.select_rows(sample(&mut rng, fake.len(), m).into_vec().iter());
        let (kxx, kyy, kxy) = (kernel(&x, &x), kernel(&y, &y), kernel(&x, &y));
        let off_diagonal = |k: &DMatrix<f64>| k.sum() - k.trace();
        let pairs = (m * (m - 1)) as f64;
        let mmd =
            (off_diagonal(&kxx) + off_diagonal(&kyy)) / pairs - 2.0 * kxy.sum() / (m * m) as f64;
        values.push(mmd);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    (mean, var.sqrt())
}

/// Precision and recall (k-NN manifolds, Kynkäänniemi et al. 2019) and density and coverage
/// (Naeem et al. 2020).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Manifold {
    /// Share of generated samples inside the real manifold (k = 3).
    pub precision: f64,
    /// Share of real samples inside the generated manifold (k = 3).
    pub recall: f64,
    /// Mean count of real k-NN balls (k = 5) around each generated sample, divided by k.
    pub density: f64,
    /// Share of real samples whose k-NN ball (k = 5) holds a generated sample.
    pub coverage: f64,
}

/// Rows compared at once: a 1,024 x 10,000 block of f32 distances is 40 MB.
const BLOCK: usize = 1024;

pub fn manifold(real: &Features, fake: &Features) -> Manifold {
    let real_r3 = knn_radii(real, 3);
    let real_r5 = knn_radii(real, 5);
    let fake_r3 = knn_radii(fake, 3);
    let (mut precise, mut density_hits) = (0usize, 0usize);
    let mut covered = vec![false; real.len()];
    let mut recalled = vec![false; real.len()];
    for start in (0..fake.len()).step_by(BLOCK) {
        let rows = BLOCK.min(fake.len() - start);
        // [n_real, rows]: squared distances from every real sample to these generated ones;
        // column-major, so one generated sample's distances are contiguous.
        let d = squared_distances(&real.rows, &fake.rows.rows(start, rows).into_owned());
        for (j, column) in d.column_iter().enumerate() {
            let mut inside_any = false;
            for (i, &dist) in column.iter().enumerate() {
                inside_any |= dist <= real_r3[i];
                if dist <= real_r5[i] {
                    density_hits += 1;
                    covered[i] = true;
                }
                recalled[i] |= dist <= fake_r3[start + j];
            }
            precise += usize::from(inside_any);
        }
    }
    let (n, m) = (real.len().max(1) as f64, fake.len().max(1) as f64);
    Manifold {
        precision: precise as f64 / m,
        recall: recalled.iter().filter(|r| **r).count() as f64 / n,
        density: density_hits as f64 / (5.0 * m),
        coverage: covered.iter().filter(|c| **c).count() as f64 / n,
    }
}

/// Squared distance from each row to its k-th nearest other row.
fn knn_radii(set: &Features, k: usize) -> Vec<f32> {
    let mut radii = Vec::with_capacity(set.len());
    for start in (0..set.len()).step_by(BLOCK) {
        let rows = BLOCK.min(set.len() - start);
        let d = squared_distances(&set.rows, &set.rows.rows(start, rows).into_owned());
        for column in d.column_iter() {
            let mut distances: Vec<f32> = column.iter().copied().collect();
            // The point itself is there at distance 0: its k-th neighbour sits at index k.
            let k = k.min(distances.len().saturating_sub(1));
            let (_, kth, _) = distances.select_nth_unstable_by(k, f32::total_cmp);
            radii.push(*kth);
        }
    }
    radii
}

/// `[a rows, b rows]` squared Euclidean distances, clamped at zero against rounding.
fn squared_distances(a: &DMatrix<f32>, b: &DMatrix<f32>) -> DMatrix<f32> {
    let an: Vec<f32> = a.row_iter().map(|r| r.norm_squared()).collect();
    let bn: Vec<f32> = b.row_iter().map(|r| r.norm_squared()).collect();
    let mut d = a * b.transpose();
    for (j, mut column) in d.column_iter_mut().enumerate() {
        for (i, v) in column.iter_mut().enumerate() {
            *v = (an[i] + bn[j] - 2.0 * *v).max(0.0);
        }
    }
    d
}

/// Share of each class among `labels` (0..classes), with every class counted once more than
/// seen (add-one smoothing) when `smooth`, so no share is zero.
pub fn class_shares(labels: &[usize], classes: usize, smooth: bool) -> Vec<f64> {
    let mut counts = vec![if smooth { 1.0 } else { 0.0 }; classes];
    for &l in labels.iter().filter(|l| **l < classes) {
        counts[l] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| c / total.max(1.0)).collect()
}

/// KL(p ‖ q) in nats.
pub fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).filter(|(p, _)| **p > 0.0).map(|(p, q)| p * (p / q).ln()).sum()
}

/// Classes holding at least `min_share` of the samples.
pub fn classes_covered(shares: &[f64], min_share: f64) -> usize {
    shares.iter().filter(|s| **s >= min_share).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(mean: &[f64], cov: &[f64]) -> Gaussian {
        let d = mean.len();
        Gaussian { mean: DVector::from_column_slice(mean), cov: DMatrix::from_row_slice(d, d, cov) }
    }

    #[test]
    fn frechet_distance_of_hand_made_gaussians_matches_the_closed_form() {
        // Diagonal covariances commute: FD = |m1-m2|² + Σ (√a - √b)².
        let a = gaussian(&[0.0, 1.0], &[4.0, 0.0, 0.0, 9.0]);
        let b = gaussian(&[3.0, 5.0], &[1.0, 0.0, 0.0, 16.0]);
        let closed = 9.0 + 16.0 + (2.0f64 - 1.0).powi(2) + (3.0f64 - 4.0).powi(2);
        assert!((frechet_distance(&a, &b) - closed).abs() < 1e-9);
        // A rotated pair: the same Gaussian seen in another basis is at distance 0.
        let c = gaussian(&[1.0, 1.0], &[2.0, 1.0, 1.0, 2.0]);
        assert!(frechet_distance(&c, &c).abs() < 1e-9);
        // 1-d: (m1-m2)² + (σ1-σ2)².
        let (x, y) = (gaussian(&[1.0], &[4.0]), gaussian(&[-1.0], &[0.25]));
        assert!((frechet_distance(&x, &y) - (4.0 + 1.5f64.powi(2))).abs() < 1e-9);
    }

    #[test]
    fn fitting_recovers_mean_and_unbiased_covariance() {
        let f = Features::from_rows(&[0.0, 0.0, 2.0, 2.0, 4.0, 1.0], 2);
        let g = Gaussian::fit(&f);
        assert_eq!(g.mean, DVector::from_column_slice(&[2.0, 1.0]));
        assert!((g.cov[(0, 0)] - 4.0).abs() < 1e-12 && (g.cov[(1, 1)] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn kid_is_near_zero_for_one_set_and_positive_for_shifted_sets() {
        let values: Vec<f32> = (0..400).map(|i| ((i * 37 % 101) as f32) / 50.0).collect();
        let a = Features::from_rows(&values, 4);
        let shifted: Vec<f32> = values.iter().map(|v| v + 1.0).collect();
        let b = Features::from_rows(&shifted, 4);
        let (same, _) = kid(&a, &a, 5, 50, 1);
        let (apart, _) = kid(&a, &b, 5, 50, 1);
        assert!(same.abs() < 0.05 * apart, "{same} vs {apart}");
        assert_eq!(kid(&a, &b, 5, 50, 1), kid(&a, &b, 5, 50, 1), "seeded");
    }

    #[test]
    fn manifold_metrics_see_overlap_and_separation() {
        let grid: Vec<f32> = (0..200).flat_map(|i| [(i % 20) as f32, (i / 20) as f32]).collect();
        let real = Features::from_rows(&grid, 2);
        let same = manifold(&real, &real);
        assert_eq!((same.precision, same.recall, same.coverage), (1.0, 1.0, 1.0));
        let far: Vec<f32> = grid.iter().map(|v| v + 100.0).collect();
        let apart = manifold(&real, &Features::from_rows(&far, 2));
        assert_eq!((apart.precision, apart.recall, apart.coverage), (0.0, 0.0, 0.0));
        assert_eq!(apart.density, 0.0);
    }

    #[test]
    fn class_histograms_and_kl() {
        let shares = class_shares(&[0, 0, 1, 3], 4, false);
        assert_eq!(shares, vec![0.5, 0.25, 0.0, 0.25]);
        assert_eq!(classes_covered(&shares, 0.2), 3);
        assert_eq!(kl_divergence(&shares, &shares), 0.0);
        let uniform = [0.25; 4];
        assert!(kl_divergence(&class_shares(&[0, 0, 1, 3], 4, true), &uniform) > 0.0);
    }
}
