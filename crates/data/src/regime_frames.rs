//! The frames of one regime split of a mnist-det set (train or holdout):
//! the set-wide choices (which clips are empty, which class each digit
//! slot gets, which boxes are mislabelled or missing) made once from
//! seeded permutations, then each frame a pure function of its index, so
//! that frames can be made on any number of threads with the same bytes.

use rand::Rng as _;
use rand::seq::SliceRandom as _;

use crate::clip::clip_frame;
use crate::dataset::check_index;
use crate::error::{DataError, Result};
use crate::idx::LabelledImages;
use crate::mnist::{MnistDetConfig, SPLIT_VAL, mnist_classes};
use crate::mnist_scene::{Placed, draw_count, place_digits, render, scene_rng};
use crate::regime::{apportion, long_tail_shares, share_count};
use crate::seed::{Rng, rng_for, stream};
use crate::tags::{ImageTags, RegimeTags};
use crate::types::{Annotation, DetectionSample};

/// Tags of the set-wide draws within the regime stream.
const EMPTY_CLIPS: u64 = 1;
const SLOT_CLASSES: u64 = 2;
const BOX_MARKS: u64 = 3;
const NOISY_CLASS: u64 = 4;

/// What the regime does to one drawn box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Keep,
    /// Drawn, left out of the annotations.
    Missing,
    /// Annotated as class `(true class + shift) mod classes`, shift ≥ 1.
    Relabel(u32),
}

/// The frames of a train or holdout split under `config.regime`. With
/// every knob off, frame `i` is exactly [`mnist_det_scene`](crate::mnist_det_scene)
/// `(config, source, split, i)`.
#[derive(Debug)]
pub struct RegimeFrames<'a> {
    config: &'a MnistDetConfig,
    source: &'a LabelledImages,
    split: u64,
    len: usize,
    classes: usize,
    /// Per clip: whether it holds no object.
    empty: Vec<bool>,
    /// Per clip, its first digit slot (one more entry than clips).
    slot_start: Vec<usize>,
    /// The class of every digit slot (long tail only, else empty).
    slot_class: Vec<u32>,
    /// Source digits of each class (long tail only).
    by_class: Vec<Vec<usize>>,
    /// Per clip: digits drawn in each of its frames.
    drawn: Vec<usize>,
    /// Per frame, its first box in set order (one more entry than frames).
    box_start: Vec<usize>,
    /// Per box in set order (empty when no box is marked).
    marks: Vec<Mark>,
}

impl<'a> RegimeFrames<'a> {
    /// Makes the set-wide choices for `len` frames of split `split` (train
    /// or holdout, never validation) from the digits `source`; the frame-0
    /// scenes are laid out on up to `threads` threads to count their boxes.
    pub fn new(
        config: &'a MnistDetConfig,
        source: &'a LabelledImages,
        split: u64,
        len: usize,
        threads: usize,
    ) -> Result<Self> {
        config.validate()?;
        let classes = mnist_classes().len();
        config.regime.validate_for(source, classes)?;
        if split == SPLIT_VAL {
            return Err(DataError::Config(
                "mnist-det: validation scenes take no regime; make them with mnist_det_scene"
                    .into(),
            ));
        }
        if source.is_empty() && len > 0 {
            return Err(DataError::Config(format!(
                "mnist-det: no digits to make the {len} frames of split {split} from"
            )));
        }
        let mut frames = RegimeFrames {
            config,
            source,
            split,
            len,
            classes,
            empty: Vec::new(),
            slot_start: Vec::new(),
            slot_class: Vec::new(),
            by_class: Vec::new(),
            drawn: Vec::new(),
            box_start: Vec::new(),
            marks: Vec::new(),
        };
        frames.choose_empty_clips();
        frames.allocate_classes();
        frames.count_boxes(threads)?;
        frames.mark_boxes();
        Ok(frames)
    }

    /// Frames in the split.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the split has no frames.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the regime changes nothing: the frames are plain scenes.
    pub fn regime_is_off(&self) -> bool {
        self.config.regime.is_off()
    }

    /// Frames per clip (1 without clips; the last clip may be shorter).
    pub fn clip_len(&self) -> usize {
        self.config.regime.clip_len()
    }

    fn regime_rng(&self, parts: &[u64]) -> Rng {
        let mut key = vec![self.config.seed, stream::MNIST_REGIME, self.split];
        key.extend_from_slice(parts);
        rng_for(&key)
    }

    fn clips(&self) -> usize {
        self.len.div_ceil(self.clip_len())
    }

    /// The empty clips: the first `round(empty_share × clips)` of a seeded
    /// permutation of the clips.
    fn choose_empty_clips(&mut self) {
        let clips = self.clips();
        self.empty = vec![false; clips];
        let n = share_count(self.config.regime.empty_share, clips);
        if n == 0 {
            return;
        }
        let mut order: Vec<usize> = (0..clips).collect();
        order.shuffle(&mut self.regime_rng(&[EMPTY_CLIPS]));
        order[..n].iter().for_each(|&c| self.empty[c] = true);
    }

    /// Counts each clip's digit slots (its scene's first draw) and, for a
    /// long tail, deals the classes out to the slots: exact counts by
    /// [`apportion`], in a seeded random order.
    fn allocate_classes(&mut self) {
        let mut start = vec![0];
        for clip in 0..self.clips() {
            let slots = if self.empty[clip] {
                0
            } else {
                draw_count(
                    self.config,
                    &mut scene_rng(self.config, self.split, clip as u64),
                )
            };
            start.push(start[clip] + slots);
        }
        self.slot_start = start;
        let ratio = self.config.regime.long_tail;
        if ratio <= 1.0 {
            return;
        }
        let total = self.slot_start[self.clips()];
        let counts = apportion(total, &long_tail_shares(self.classes, ratio));
        let mut classes: Vec<u32> = (0..self.classes as u32)
            .flat_map(|c| std::iter::repeat_n(c, counts[c as usize]))
            .collect();
        classes.shuffle(&mut self.regime_rng(&[SLOT_CLASSES]));
        self.slot_class = classes;
        self.by_class = vec![Vec::new(); self.classes];
        for (i, &l) in self.source.labels.iter().enumerate() {
            if let Some(list) = self.by_class.get_mut(l as usize) {
                list.push(i);
            }
        }
    }

    /// Lays out every clip's frame 0 (on `threads` threads) to learn how
    /// many digits each frame draws.
    fn count_boxes(&mut self, threads: usize) -> Result<()> {
        let clips: Vec<usize> = (0..self.clips()).collect();
        self.drawn = crate::par::map_in_order(&clips, threads, |&c| self.base(c).len())
            .ok_or_else(|| DataError::Config("a scene generator thread panicked".into()))?;
        let mut start = Vec::with_capacity(self.len + 1);
        start.push(0);
        for i in 0..self.len {
            start.push(start[i] + self.drawn[i / self.clip_len()]);
        }
        self.box_start = start;
        Ok(())
    }

    /// Missing boxes: the first `round(missing_share × boxes)` of a seeded
    /// permutation of every drawn box of the split; noisy boxes: the next
    /// `round(label_noise × annotated boxes)`, each shifted to another
    /// class drawn uniformly. Frames are marked one by one, also within a
    /// clip.
    fn mark_boxes(&mut self) {
        let regime = &self.config.regime;
        if regime.missing_share == 0.0 && regime.label_noise == 0.0 {
            return;
        }
        let total = self.box_start[self.len];
        let missing = share_count(regime.missing_share, total);
        let noisy = share_count(regime.label_noise, total - missing);
        let mut order: Vec<usize> = (0..total).collect();
        order.shuffle(&mut self.regime_rng(&[BOX_MARKS]));
        self.marks = vec![Mark::Keep; total];
        for &b in &order[..missing] {
            self.marks[b] = Mark::Missing;
        }
        for &b in &order[missing..missing + noisy] {
            let mut rng = self.regime_rng(&[NOISY_CLASS, b as u64]);
            self.marks[b] = Mark::Relabel(rng.random_range(1..self.classes as u32));
        }
    }

    fn mark(&self, global_box: usize) -> Mark {
        self.marks.get(global_box).copied().unwrap_or(Mark::Keep)
    }

    /// Frame 0 of clip `clip`: a plain scene, its digits drawn from the
    /// clip's classes when the classes follow a long tail.
    fn base(&self, clip: usize) -> Vec<Placed> {
        if self.empty[clip] {
            return Vec::new();
        }
        let mut rng = scene_rng(self.config, self.split, clip as u64);
        let count = draw_count(self.config, &mut rng);
        if self.slot_class.is_empty() {
            let n = self.source.len();
            return place_digits(self.config, self.source, &mut rng, count, |_, r| {
                r.random_range(0..n)
            });
        }
        let first = self.slot_start[clip];
        let pick = |slot: usize, r: &mut Rng| {
            let list = &self.by_class[self.slot_class[first + slot] as usize];
            list[r.random_range(0..list.len())]
        };
        place_digits(self.config, self.source, &mut rng, count, pick)
    }

    /// Frame `index` (image id `index + 1`).
    pub fn frame(&self, index: usize) -> Result<DetectionSample> {
        check_index(index, self.len)?;
        let (clip, at) = (index / self.clip_len(), index % self.clip_len());
        let base = self.base(clip);
        let digits = clip_frame(self.config, self.source, self.split, clip as u64, &base, at);
        let mut annotations = Vec::with_capacity(digits.len());
        for (b, d) in digits.iter().enumerate() {
            let class = self.source.labels[d.digit] as u32;
            let class = match self.mark(self.box_start[index] + b) {
                Mark::Keep => class,
                Mark::Missing => continue,
                Mark::Relabel(shift) => (class + shift) % self.classes as u32,
            };
            annotations.push(Annotation {
                bbox: d.bbox,
                class,
                crowd: false,
            });
        }
        Ok(DetectionSample {
            image_id: index as u64 + 1,
            // An empty frame is the same black canvas, without digits.
            image: render(self.config.canvas, &digits),
            annotations,
        })
    }

    /// What the regime did to each frame, from the set-wide choices alone
    /// (no frame is drawn), with the knobs.
    pub fn tags(&self) -> Result<RegimeTags> {
        // Through text, so that an f32 knob reads as it was written (0.1,
        // not the 0.10000000149011612 a direct f32 → f64 conversion gives).
        let regime = serde_json::to_string(&self.config.regime)
            .and_then(|text| serde_json::from_str(&text))
            .map_err(|e| DataError::Config(format!("cannot serialise the regime: {e}")))?;
        let images = (0..self.len).map(|i| self.image_tags(i)).collect();
        Ok(RegimeTags { regime, images })
    }

    fn image_tags(&self, index: usize) -> ImageTags {
        let clip = index / self.clip_len();
        let marks: Vec<Mark> = (self.box_start[index]..self.box_start[index + 1])
            .map(|b| self.mark(b))
            .collect();
        let count = |f: fn(&Mark) -> bool| marks.iter().filter(|m| f(m)).count() as u32;
        let missing = count(|m| *m == Mark::Missing);
        ImageTags {
            id: index as u64 + 1,
            clip: clip as u64,
            frame: (index % self.clip_len()) as u32,
            empty: marks.is_empty(),
            boxes: marks.len() as u32 - missing,
            noisy: count(|m| matches!(m, Mark::Relabel(_))),
            missing,
        }
    }
}
