//! Seeded data order and batch assembly.
//!
//! Each epoch is a fresh permutation drawn from ChaCha8 seeded by the run's seed, with the
//! epoch as the stream number, so any step's batch can be recomputed from `(seed, step)`
//! alone: a resumed run sees the same images in the same order. The last partial batch of
//! an epoch is dropped, as most trainers do, so every step has a full batch.

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Dataset;

/// Which images each step trains on.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    n_images: usize,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    order: Vec<u32>,
}

impl BatchOrder {
    /// Steps through the first `n_images` images of a dataset, `batch_size` at a time.
    pub fn new(n_images: usize, batch_size: usize, seed: u64) -> Self {
        assert!(batch_size >= 1 && n_images >= batch_size, "validated by RunConfig");
        let mut order = Self { n_images, batch_size, seed, epoch: u64::MAX, order: Vec::new() };
        order.shuffle_for(0);
        order
    }

    pub fn batches_per_epoch(&self) -> u64 {
        (self.n_images / self.batch_size) as u64
    }

    /// The epoch (from 0) a step (from 0) falls in.
    pub fn epoch_of(&self, step: u64) -> u64 {
        step / self.batches_per_epoch()
    }

    /// The image indices of a step's batch.
    pub fn batch(&mut self, step: u64) -> &[u32] {
        let epoch = self.epoch_of(step);
        self.shuffle_for(epoch);
        let start = (step % self.batches_per_epoch()) as usize * self.batch_size;
        &self.order[start..start + self.batch_size]
    }

    fn shuffle_for(&mut self, epoch: u64) {
        if epoch == self.epoch {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // Stream 0 is the generator's z; epochs use the streams after it.
        rng.set_stream(epoch + 1);
        self.order = (0..self.n_images as u32).collect();
        self.order.shuffle(&mut rng);
        self.epoch = epoch;
    }
}

/// Pixels of the chosen images as a `[batch, channels, side, side]` tensor in `[-1, 1]`.
pub fn images_tensor(dataset: &Dataset, indices: &[u32], device: &Device) -> Tensor<4> {
    Tensor::from_data(batch_data(dataset, indices), device)
}

/// A stored byte (0 to 255) as the networks see it (-1 to 1).
pub fn unit_range(byte: u8) -> f32 {
    f32::from(byte) / 127.5 - 1.0
}

/// The values of [`images_tensor`], prepared off the device (so on any thread).
pub fn batch_data(dataset: &Dataset, indices: &[u32]) -> TensorData {
    let shape = dataset.shape();
    let mut values = Vec::with_capacity(indices.len() * shape.bytes());
    for &i in indices {
        values.extend(dataset.image(i as usize).iter().map(|&p| unit_range(p)));
    }
    TensorData::new(values, [indices.len(), shape.channels, shape.side, shape.side])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_visits_each_image_at_most_once() {
        let mut order = BatchOrder::new(10, 3, 7);
        let mut seen: Vec<u32> = (0..3).flat_map(|s| order.batch(s).to_vec()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9, "three batches of three, last image dropped");
    }

    #[test]
    fn order_depends_on_seed_and_epoch_only() {
        let mut a = BatchOrder::new(100, 10, 1);
        let mut b = BatchOrder::new(100, 10, 1);
        let late = b.batch(25).to_vec();
        assert_eq!(a.batch(25), late.as_slice(), "random access agrees with itself");
        assert_ne!(a.batch(5).to_vec(), a.batch(15).to_vec(), "epochs differ");
        let mut other = BatchOrder::new(100, 10, 2);
        assert_ne!(other.batch(0).to_vec(), a.batch(0).to_vec(), "seeds differ");
    }
}
