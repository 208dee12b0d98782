//! `dcgan sample HASH`: a grid of images from a run's generator, for any number of images and
//! any seed. The final checkpoint is used; a run that has not finished falls back to its
//! latest resume checkpoint.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::Module;
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::backend::Backend;
use crate::data::Shape;
use crate::model::Generator;
use crate::store::{self, samples};

/// Most images in one grid (a 64 x 64 grid of 64 px tiles is 4 226 px wide).
pub const MAX_IMAGES: usize = 4096;
/// Images generated per forward pass, to bound memory.
const CHUNK: usize = 256;

/// What to draw.
#[derive(Debug, Clone)]
pub struct Request {
    pub n: usize,
    pub seed: u64,
    /// Backend to generate on (default: the run's).
    pub backend: Option<String>,
}

/// The checkpoint a grid came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub path: PathBuf,
    /// `None` for the final checkpoint; the step of a resume checkpoint.
    pub resume_step: Option<u64>,
}

/// What was drawn.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub source: Source,
    pub backend: Backend,
    pub n: usize,
    pub side: usize,
}

/// The generator checkpoint to sample from: the final one, else the latest resume one.
pub fn checkpoint(dir: &Path) -> anyhow::Result<Source> {
    let checkpoints = dir.join(store::CHECKPOINTS_DIR);
    let last = checkpoints.join(store::GENERATOR_FILE);
    if last.is_file() {
        return Ok(Source { path: last, resume_step: None });
    }
    let resume = checkpoints.join(store::RESUME_DIR);
    let latest = std::fs::read_dir(&resume)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step_")?.parse::<u64>().ok()?;
            let path = e.path().join(store::GENERATOR_FILE);
            path.is_file().then_some((step, path))
        })
        .max_by_key(|(step, _)| *step);
    match latest {
        Some((step, path)) => Ok(Source { path, resume_step: Some(step) }),
        None => anyhow::bail!(
            "{} has no generator checkpoint: neither {} nor a resume checkpoint under {}",
            dir.display(),
            last.display(),
            resume.display()
        ),
    }
}

/// `z ~ N(0, 1)`, `n * z_dim` values from ChaCha8 seeded with `seed`.
pub fn noise(seed: u64, n: usize, z_dim: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * z_dim).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// Draws `n` images from the run in `dir` and writes them as one PNG grid at `out`.
pub fn draw(dir: &Path, request: &Request, out: &Path) -> anyhow::Result<Drawn> {
    let n = request.n;
    anyhow::ensure!(n > 0, "-n must be at least 1");
    anyhow::ensure!(n <= MAX_IMAGES, "-n is {n}; at most {MAX_IMAGES} images fit in one grid");
    let png = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    anyhow::ensure!(png, "{} must end in .png: grids are written as PNG", out.display());
    let cfg = store::read_config(dir).map_err(anyhow::Error::msg)?;
    let name = request.backend.as_deref().unwrap_or(&cfg.train.backend);
    let backend = Backend::available(name).with_context(|| {
        format!("cannot generate on {name}; pass --backend with one this binary has, e.g. flex")
    })?;
    let source = checkpoint(dir)?;
    let device = backend.device();
    let empty = Generator::new(&cfg.model, cfg.data.shape(), &device);
    let g = empty.try_load_file(&source.path).map_err(|e| {
        anyhow::anyhow!("{} is not a readable generator checkpoint: {e}", source.path.display())
    })?;
    let z_dim = cfg.model.z_dim;
    let z = noise(request.seed, n, z_dim);
    let mut values = Vec::new();
    let mut shape = Shape { side: 0, channels: 0 };
    for (i, chunk) in z.chunks(CHUNK * z_dim).enumerate() {
        let rows = chunk.len() / z_dim;
        let z = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [rows, z_dim]), &device);
        let images = g.forward(z);
        let [_, channels, height, width] = images.dims();
        anyhow::ensure!(
            matches!(channels, 1 | 3) && height == width,
            "the generator makes {channels}-channel {height}x{width} images; grids take \
             square grey or RGB images"
        );
        shape = Shape { side: height, channels };
        let data = images
            .reshape([-1])
            .try_into_data()
            .map_err(|e| anyhow::anyhow!("cannot read the images of chunk {i}: {e:?}"))?;
        let chunk = data.try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        values.extend(chunk);
    }
    samples::save_grid(out, &values, n, shape)?;
    Ok(Drawn { source, backend, n, side: shape.side })
}
