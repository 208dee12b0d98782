//! Batches prepared ahead: a thread assembles the next steps' real images (indexing the
//! decoded bytes, scaling them to floats) while the current step trains, so reading data
//! never holds a step up. The order is the run's seeded [`BatchOrder`], so prefetching
//! changes nothing about what is trained.

use std::ops::RangeInclusive;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use burn::tensor::TensorData;

use super::Dataset;
use super::batches::{BatchOrder, batch_data};

/// Batches made ahead of the step that trains on them. Two keep a step's worth of work
/// queued without holding much memory (a 64-image batch at 128 px RGB is 12 MB as floats).
const AHEAD: usize = 2;

/// The receiving end: batches for consecutive steps, in order.
pub struct Prefetch {
    next: Receiver<(u64, TensorData)>,
}

impl Prefetch {
    /// Starts a thread in `scope` that prepares the batches of `steps` (counted from 1).
    /// The thread ends when all are made or when this end is dropped.
    pub fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        data: &'scope Dataset,
        order: BatchOrder,
        steps: RangeInclusive<u64>,
    ) -> Self {
        let (send, next) = sync_channel(AHEAD);
        std::thread::Builder::new()
            .name("prefetch".into())
            .spawn_scoped(scope, move || produce(data, order, steps, send))
            .expect("a thread can be started");
        Self { next }
    }

    /// The batch of `step`, waiting for it if it is not ready yet.
    pub fn batch(&self, step: u64) -> TensorData {
        let (made_for, data) = self.next.recv().expect("the prefetch thread runs until dropped");
        assert_eq!(made_for, step, "steps are taken in order");
        data
    }
}

fn produce(
    data: &Dataset,
    mut order: BatchOrder,
    steps: RangeInclusive<u64>,
    send: SyncSender<(u64, TensorData)>,
) {
    for step in steps {
        let batch = batch_data(data, order.batch(step - 1));
        if send.send((step, batch)).is_err() {
            return; // training stopped early
        }
    }
}
