//! # isdet-data
//!
//! Everything that turns files on disk, or a seed, into augmented, batched
//! training data for isdet — with no dependency on candle, so it can feed any
//! training loop.
//!
//! - Sources behind one [`Dataset`] trait: [`SynthDataset`] (procedural
//!   shape scenes, the embedded default), [`CocoDataset`] (any COCO
//!   detection set on disk, PNG or JPEG), [`ClassificationSet`] (MNIST,
//!   Fashion-MNIST, any IDX pair), and the `mnist-det` scene generator
//!   ([`mnist_det_scene`]) that pastes real digits onto canvases, with data
//!   regimes ([`Regime`]: video-like clips, empty frames, label noise,
//!   missing boxes, a long tail of classes) and a whole set on disk
//!   ([`write_mnist_det`]), and [`ImageFiles`] (loose PNG and JPEG files to
//!   run a detector on).
//! - [`CocoWriter`] writes COCO datasets; [`check_coco`] reports every
//!   defect of one.
//! - Augmentation ([`augment`]) that is a pure function of (run seed, epoch,
//!   sample id): letterbox, flip, scale and colour jitter, mosaic;
//!   RandAugment, crop, flip, cutout, mixup, cutmix and RICAP with label
//!   mixing weights.
//! - A [`Loader`] that decodes and augments on worker threads ahead of need
//!   and yields batches in request order.
//!
//! ```
//! use std::sync::Arc;
//! use isdet_data::{
//!     BatchRequest, DetAugment, DetectionPipeline, Loader, LoaderConfig, SynthConfig,
//!     SynthDataset,
//! };
//!
//! let data = SynthDataset::new(SynthConfig { len: 64, ..SynthConfig::default() })?;
//! let pipeline = Arc::new(DetectionPipeline::new(data, DetAugment::train(96), 7)?);
//! let requests = (0..4).map(|b| BatchRequest { epoch: 0, ids: (b * 8..b * 8 + 8).collect() });
//! let loader = Loader::new(pipeline, requests, LoaderConfig { workers: 2, depth: 4 });
//! for batch in loader {
//!     let batch = batch?;
//!     assert_eq!(batch.shape, [8, 3, 96, 96]);
//!     assert_eq!(batch.targets.len(), 8);
//! }
//! # Ok::<(), isdet_data::DataError>(())
//! ```
#![deny(missing_docs)]

pub mod augment;
mod check;
mod clip;
mod coco;
mod dataset;
mod error;
mod files;
mod idx;
pub mod io;
mod loader;
mod mnist;
mod mnist_scene;
mod mnist_write;
pub mod npm;
mod par;
mod rand_augment;
mod regime;
mod regime_frames;
pub mod seed;
mod synth;
mod tags;
mod types;

pub use augment::{
    ClsAugment, ClsTarget, DetAugment, DetTarget, Letterbox, MixPart, Mixing, RandAugment, RandOp,
    augment_classification, augment_detection, mix_batch,
};
pub use check::{CheckReport, Defect, DefectKind, check_coco};
pub use clip::{CLIP_BRIGHTNESS, CLIP_DRIFT_STEP, CLIP_MAX_DRIFT, CLIP_SCALE};
pub use coco::{CocoDataset, CocoOptions, CocoWriter, LoadStats};
pub use dataset::Dataset;
pub use error::{DataError, Result};
pub use files::{IMAGE_EXTENSIONS, ImageFiles};
pub use idx::{
    ClassificationSet, LabelledImages, idx_file_names, read_idx_pair, read_idx_split,
    write_idx_pair,
};
pub use loader::{
    Batch, BatchRequest, ClassificationPipeline, DetectionPipeline, Loader, LoaderConfig, Pipeline,
    collate,
};
pub use mnist::{
    MnistDetConfig, NPM_FASHION_COUNT, NPM_MNIST_COUNT, SPLIT_HOLDOUT, SPLIT_TRAIN, SPLIT_VAL,
    fashion_classes, mnist_classes, mnist_det_sources, read_npm_fashion, read_npm_mnist,
    split_six_sevenths,
};
pub use mnist_scene::{mnist_det_scene, resize_gray};
pub use mnist_write::{MnistDetWritten, write_mnist_det};
pub use regime::{Regime, apportion, long_tail_shares, share_count};
pub use regime_frames::RegimeFrames;
pub use synth::{SYNTH_CLASSES, SynthConfig, SynthDataset, generate_scene};
pub use tags::{ImageTags, RegimeTags, tags_path};
pub use types::{
    Annotation, BBox, ClassNames, ClassificationSample, CocoResult, DetectionSample, ImageBuffer,
};
