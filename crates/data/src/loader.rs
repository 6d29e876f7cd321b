//! The loader: worker threads that load and augment batches ahead of need
//! and hand them over in request order.
//!
//! A [`Pipeline`] says how one sample becomes a tensor and a target; the
//! [`Loader`] runs a pipeline over a stream of [`BatchRequest`]s (the
//! sampler produces them) on `workers` threads with at most `depth`
//! batches in flight, and yields [`Batch`]es in the order requested. An
//! error while loading a sample reaches the caller, at that batch's place in
//! the order, as [`DataError::Sample`] naming the sample.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::augment::{
    ClsAugment, ClsTarget, DetAugment, DetTarget, augment_classification, augment_detection,
    mix_batch,
};
use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::types::{ClassificationSample, DetectionSample};

/// Turns dataset indices into model inputs and targets.
pub trait Pipeline: Send + Sync {
    /// The per-image target (boxes, or soft labels).
    type Target: Send;

    /// Shape of one image: `[channels, height, width]`.
    fn sample_shape(&self) -> [usize; 3];

    /// Loads and augments sample `index` for `epoch` into `out` (of
    /// `channels * height * width` values) and returns its target.
    fn load(&self, index: usize, epoch: u64, out: &mut [f32]) -> Result<Self::Target>;

    /// Batch-level work after every image is loaded (mixing). The default
    /// does nothing.
    fn finish_batch(
        &self,
        _epoch: u64,
        _ids: &[usize],
        _images: &mut [f32],
        _targets: &mut Vec<Self::Target>,
    ) -> Result<()> {
        Ok(())
    }
}

/// One batch to load: dataset indices and the epoch they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// Epoch (augmentation randomness depends on it).
    pub epoch: u64,
    /// Dataset indices, in batch order (repeats allowed).
    pub ids: Vec<usize>,
}

/// A collated batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    /// Position of this batch in the request stream (0, 1, 2, …).
    pub index: u64,
    /// Epoch of the request.
    pub epoch: u64,
    /// Dataset indices, in batch order.
    pub ids: Vec<usize>,
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
    /// NCHW values.
    pub images: Vec<f32>,
    /// One target per image.
    pub targets: Vec<T>,
}

/// Loads and collates one batch on the calling thread.
pub fn collate<P: Pipeline + ?Sized>(
    pipeline: &P,
    index: u64,
    request: &BatchRequest,
) -> Result<Batch<P::Target>> {
    let [c, h, w] = pipeline.sample_shape();
    let per = c * h * w;
    let n = request.ids.len();
    let mut images = vec![0f32; n * per];
    let mut targets = Vec::with_capacity(n);
    for (slot, &id) in images.chunks_exact_mut(per.max(1)).zip(&request.ids) {
        let target = pipeline
            .load(id, request.epoch, slot)
            .map_err(|e| DataError::Sample {
                sample: id,
                source: Box::new(e),
            })?;
        targets.push(target);
    }
    pipeline.finish_batch(request.epoch, &request.ids, &mut images, &mut targets)?;
    Ok(Batch {
        index,
        epoch: request.epoch,
        ids: request.ids.clone(),
        shape: [n, c, h, w],
        images,
        targets,
    })
}

/// Detection: a dataset of [`DetectionSample`]s through [`DetAugment`].
#[derive(Debug, Clone)]
pub struct DetectionPipeline<D> {
    dataset: D,
    augment: DetAugment,
    seed: u64,
}

impl<D: Dataset<Sample = DetectionSample>> DetectionPipeline<D> {
    /// A pipeline over `dataset`; `seed` is the run seed.
    pub fn new(dataset: D, augment: DetAugment, seed: u64) -> Result<Self> {
        augment.validate()?;
        Ok(DetectionPipeline {
            dataset,
            augment,
            seed,
        })
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }
}

impl<D: Dataset<Sample = DetectionSample>> Pipeline for DetectionPipeline<D> {
    type Target = DetTarget;

    fn sample_shape(&self) -> [usize; 3] {
        [3, self.augment.size, self.augment.size]
    }

    fn load(&self, index: usize, epoch: u64, out: &mut [f32]) -> Result<DetTarget> {
        augment_detection(
            &self.augment,
            self.seed,
            epoch,
            index,
            self.dataset.len(),
            &|i| self.dataset.get(i),
            out,
        )
    }
}

/// Classification: a dataset of [`ClassificationSample`]s through
/// [`ClsAugment`], mixed per batch.
#[derive(Debug, Clone)]
pub struct ClassificationPipeline<D> {
    dataset: D,
    augment: ClsAugment,
    seed: u64,
}

impl<D: Dataset<Sample = ClassificationSample>> ClassificationPipeline<D> {
    /// A pipeline over `dataset`; `seed` is the run seed.
    pub fn new(dataset: D, augment: ClsAugment, seed: u64) -> Result<Self> {
        augment.validate()?;
        Ok(ClassificationPipeline {
            dataset,
            augment,
            seed,
        })
    }
}

impl<D: Dataset<Sample = ClassificationSample>> Pipeline for ClassificationPipeline<D> {
    type Target = ClsTarget;

    fn sample_shape(&self) -> [usize; 3] {
        [self.augment.channels, self.augment.size, self.augment.size]
    }

    fn load(&self, index: usize, epoch: u64, out: &mut [f32]) -> Result<ClsTarget> {
        let sample = self.dataset.get(index)?;
        augment_classification(&self.augment, self.seed, epoch, index, &sample.image, out);
        Ok(ClsTarget {
            parts: vec![crate::augment::MixPart {
                sample: index,
                label: sample.label,
                weight: 1.0,
            }],
        })
    }

    fn finish_batch(
        &self,
        epoch: u64,
        ids: &[usize],
        images: &mut [f32],
        targets: &mut Vec<ClsTarget>,
    ) -> Result<()> {
        let labels: Vec<u32> = targets.iter().map(|t| t.parts[0].label).collect();
        *targets = mix_batch(&self.augment, self.seed, epoch, ids, &labels, images)?;
        Ok(())
    }
}

/// Loader settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Most batches loaded or loading but not yet taken (at least 1).
    pub depth: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        LoaderConfig {
            workers,
            depth: 2 * workers,
        }
    }
}

type Work = (u64, BatchRequest);
type Done<T> = (u64, Result<Batch<T>>);

/// Runs a [`Pipeline`] over a stream of requests on worker threads and
/// yields the batches in request order.
///
/// Dropping the loader stops its threads.
pub struct Loader<T: Send + 'static> {
    results: Option<Receiver<Done<T>>>,
    tokens: Option<Sender<()>>,
    pending: BTreeMap<u64, Result<Batch<T>>>,
    next: u64,
    threads: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> Loader<T> {
    /// Starts the workers. `requests` is pulled lazily, at most
    /// `config.depth` batches ahead of the consumer.
    pub fn new<P, I>(pipeline: Arc<P>, requests: I, config: LoaderConfig) -> Self
    where
        P: Pipeline<Target = T> + 'static,
        I: IntoIterator<Item = BatchRequest>,
        I::IntoIter: Send + 'static,
    {
        let workers = config.workers.max(1);
        let depth = config.depth.max(1);
        let (work_tx, work_rx) = bounded::<Work>(depth);
        let (done_tx, done_rx) = bounded::<Done<T>>(depth);
        // A token is needed to dispatch a batch and comes back when the
        // consumer takes one, so at most `depth` batches are in flight and
        // the reorder buffer stays bounded.
        let (token_tx, token_rx) = bounded::<()>(depth);
        for _ in 0..depth {
            let _ = token_tx.send(());
        }
        let mut threads = Vec::with_capacity(workers + 1);
        let mut requests = requests.into_iter();
        threads.push(std::thread::spawn(move || {
            let mut seq = 0u64;
            while token_rx.recv().is_ok() {
                let Some(req) = requests.next() else { break };
                if work_tx.send((seq, req)).is_err() {
                    break;
                }
                seq += 1;
            }
        }));
        for _ in 0..workers {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let pipeline = Arc::clone(&pipeline);
            threads.push(std::thread::spawn(move || {
                for (seq, req) in work_rx.iter() {
                    let result = catch_unwind(AssertUnwindSafe(|| collate(&*pipeline, seq, &req)))
                        .unwrap_or_else(|panic| {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "unknown panic".into());
                            Err(DataError::Worker(format!(
                                "batch {seq} (samples {:?}): {what}",
                                req.ids
                            )))
                        });
                    if done_tx.send((seq, result)).is_err() {
                        break;
                    }
                }
            }));
        }
        Loader {
            results: Some(done_rx),
            tokens: Some(token_tx),
            pending: BTreeMap::new(),
            next: 0,
            threads,
        }
    }
}

impl<T: Send + 'static> Iterator for Loader<T> {
    type Item = Result<Batch<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        let results = self.results.as_ref()?;
        let item = loop {
            if let Some(item) = self.pending.remove(&self.next) {
                break item;
            }
            match results.recv() {
                Ok((seq, item)) => {
                    self.pending.insert(seq, item);
                }
                // Every worker has finished: the stream is exhausted.
                Err(_) => return None,
            }
        };
        self.next += 1;
        if let Some(tokens) = &self.tokens {
            let _ = tokens.send(());
        }
        Some(item)
    }
}

impl<T: Send + 'static> Drop for Loader<T> {
    fn drop(&mut self) {
        // Closing our ends makes the feeder and the workers return.
        self.tokens.take();
        self.results.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
