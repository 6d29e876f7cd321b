//! Augmentation. Every random choice is a pure function of
//! `(run seed, epoch, sample id)`, so a run repeats exactly and a resumed run
//! sees the same images it would have seen uninterrupted.
//!
//! Images leave this module as `f32` in `[0, 1]`, channel-major (CHW).
//!
//! Detection: letterbox resize to the model size, horizontal flip, scale
//! jitter, colour jitter and mosaic ([`DetAugment`]).
//! Classification: optional RandAugment ([`RandAugment`]), then random crop
//! with padding, flip and cutout per image ([`ClsAugment`]), then mixup,
//! cutmix or RICAP across the batch ([`mix_batch`]), with the label mixing
//! weights returned.

use rand::Rng as _;
use rand_distr::{Beta, Distribution};

use crate::error::{DataError, Result};
pub use crate::rand_augment::{RandAugment, RandOp};
use crate::seed::{Rng, rng_for, stream};
use crate::types::{Annotation, BBox, ImageBuffer};

/// The grey that padding gets (114/255, as in the YOLO family).
pub const PAD_VALUE: f32 = 114.0 / 255.0;

/// Detection augmentation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DetAugment {
    /// Side of the square model input.
    pub size: usize,
    /// Probability of a horizontal flip.
    pub hflip: f32,
    /// Range of the scale multiplier applied on top of the letterbox scale
    /// (`[1, 1]` = none).
    pub scale_jitter: [f32; 2],
    /// Strength of brightness, contrast and saturation jitter (0 = none;
    /// each factor is drawn from `[1 - j, 1 + j]`).
    pub colour_jitter: f32,
    /// Probability of a mosaic (four images into one).
    pub mosaic: f32,
    /// Boxes narrower or shorter than this (pixels, after augmentation) are
    /// dropped.
    pub min_box_size: f32,
    /// Boxes that keep less than this share of their area after cropping
    /// are dropped.
    pub min_visible: f32,
}

impl DetAugment {
    /// Evaluation: centred letterbox only, no randomness.
    pub fn eval(size: usize) -> Self {
        DetAugment {
            size,
            hflip: 0.0,
            scale_jitter: [1.0, 1.0],
            colour_jitter: 0.0,
            mosaic: 0.0,
            min_box_size: 1.0,
            min_visible: 0.0,
        }
    }

    /// The default training recipe: flip, scale jitter 0.75–1.25, colour
    /// jitter 0.2 and mosaic with probability 0.5.
    pub fn train(size: usize) -> Self {
        DetAugment {
            size,
            hflip: 0.5,
            scale_jitter: [0.75, 1.25],
            colour_jitter: 0.2,
            mosaic: 0.5,
            min_box_size: 2.0,
            min_visible: 0.25,
        }
    }

    /// True when this configuration draws nothing at random.
    pub fn is_deterministic(&self) -> bool {
        self.hflip <= 0.0
            && self.scale_jitter[0] == 1.0
            && self.scale_jitter[1] == 1.0
            && self.colour_jitter <= 0.0
            && self.mosaic <= 0.0
    }

    /// Fails on values outside their ranges.
    pub fn validate(&self) -> Result<()> {
        let ok = self.size >= 8
            && (0.0..=1.0).contains(&self.hflip)
            && (0.0..=1.0).contains(&self.mosaic)
            && self.scale_jitter[0] > 0.0
            && self.scale_jitter[0] <= self.scale_jitter[1]
            && (0.0..1.0).contains(&self.colour_jitter)
            && (0.0..=1.0).contains(&self.min_visible)
            && self.min_box_size >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(DataError::Config(format!(
                "invalid detection augmentation {self:?}"
            )))
        }
    }
}

/// The map from original image pixels to model-input pixels:
/// `x' = x * scale + pad_x`, `y' = y * scale + pad_y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Scale factor.
    pub scale: f32,
    /// Horizontal offset.
    pub pad_x: f32,
    /// Vertical offset.
    pub pad_y: f32,
}

impl Letterbox {
    /// Maps a box from model-input pixels back to original image pixels
    /// (undoes the letterbox; the detector's decode uses this).
    pub fn to_original(&self, b: BBox) -> BBox {
        let inv = 1.0 / self.scale;
        b.affine(inv, inv, -self.pad_x * inv, -self.pad_y * inv)
    }
}

/// What the detector trains against for one augmented image.
#[derive(Debug, Clone, PartialEq)]
pub struct DetTarget {
    /// The COCO image id of the (main) source image.
    pub image_id: u64,
    /// Objects in model-input pixels.
    pub annotations: Vec<Annotation>,
    /// Original-to-input map of the main image (meaningful when `mosaic` is
    /// false; evaluation never uses mosaic).
    pub letterbox: Letterbox,
    /// Width and height of the main source image.
    pub original_size: (usize, usize),
    /// Dataset indices of every image that contributed pixels, the sample
    /// itself first (four for a mosaic).
    pub sources: Vec<usize>,
    /// True when this image is a mosaic.
    pub mosaic: bool,
    /// True when the image was mirrored after the letterbox (then
    /// `letterbox` maps to the unmirrored image; evaluation never flips).
    pub flipped: bool,
}

/// Bilinearly samples `src` into the `size × size` CHW buffer `dst` (3
/// channels) over the destination rectangle `rect = [x0, y0, x1, y1)`,
/// through `dst = src * scale + (dx, dy)`. Destination pixels that fall
/// outside the source get [`PAD_VALUE`].
pub(crate) fn paste_scaled(
    src: &ImageBuffer,
    dst: &mut [f32],
    size: usize,
    rect: [usize; 4],
    scale: f32,
    dx: f32,
    dy: f32,
) {
    let [rx0, ry0, rx1, ry1] = rect;
    if rx0 >= rx1 || ry0 >= ry1 {
        return;
    }
    let plane = size * size;
    let (sw, sh) = (src.width as f32, src.height as f32);
    // Per-column source taps, computed once for every row.
    let cols: Vec<Option<(usize, usize, f32)>> = (rx0..rx1)
        .map(|x| {
            let fx = (x as f32 + 0.5 - dx) / scale - 0.5;
            if fx < -0.5 || fx > sw - 0.5 {
                return None;
            }
            let fx = fx.clamp(0.0, sw - 1.0);
            let x0 = fx as usize;
            Some((x0, (x0 + 1).min(src.width - 1), fx - x0 as f32))
        })
        .collect();
    let ch = src.channels;
    for y in ry0..ry1 {
        let fy = (y as f32 + 0.5 - dy) / scale - 0.5;
        let row = y * size;
        if fy < -0.5 || fy > sh - 0.5 {
            for c in 0..3 {
                dst[c * plane + row + rx0..c * plane + row + rx1].fill(PAD_VALUE);
            }
            continue;
        }
        let fy = fy.clamp(0.0, sh - 1.0);
        let y0 = fy as usize;
        let y1 = (y0 + 1).min(src.height - 1);
        let wy = fy - y0 as f32;
        let (r0, r1) = (y0 * src.width, y1 * src.width);
        for (i, tap) in cols.iter().enumerate() {
            let x = rx0 + i;
            let Some((x0, x1, wx)) = *tap else {
                for c in 0..3 {
                    dst[c * plane + row + x] = PAD_VALUE;
                }
                continue;
            };
            let w00 = (1.0 - wx) * (1.0 - wy);
            let w01 = wx * (1.0 - wy);
            let w10 = (1.0 - wx) * wy;
            let w11 = wx * wy;
            for c in 0..3 {
                let sc = if ch == 1 { 0 } else { c };
                let p = |r: usize, xx: usize| src.data[(r + xx) * ch + sc] as f32;
                let v = p(r0, x0) * w00 + p(r0, x1) * w01 + p(r1, x0) * w10 + p(r1, x1) * w11;
                dst[c * plane + row + x] = v * (1.0 / 255.0);
            }
        }
    }
}

/// Transforms, clips to `clip` and filters boxes.
fn place_boxes(
    anns: &[Annotation],
    scale: f32,
    dx: f32,
    dy: f32,
    clip: [f32; 4],
    aug: &DetAugment,
    out: &mut Vec<Annotation>,
) {
    for a in anns {
        let moved = a.bbox.affine(scale, scale, dx, dy);
        let clipped = BBox::new(
            moved.x0.clamp(clip[0], clip[2]),
            moved.y0.clamp(clip[1], clip[3]),
            moved.x1.clamp(clip[0], clip[2]),
            moved.y1.clamp(clip[1], clip[3]),
        );
        let keep = clipped.width() >= aug.min_box_size
            && clipped.height() >= aug.min_box_size
            && clipped.area() >= aug.min_visible * moved.area();
        if keep {
            out.push(Annotation {
                bbox: clipped,
                ..*a
            });
        }
    }
}

/// Augments detection sample `id` into `out` (a `3 × size × size` buffer).
///
/// `fetch` loads any dataset index (mosaic draws three partners from
/// `0..len`). With `train == false`, or a deterministic `aug`, the result is
/// the centred letterbox of the sample.
pub fn augment_detection(
    aug: &DetAugment,
    seed: u64,
    epoch: u64,
    id: usize,
    len: usize,
    fetch: &dyn Fn(usize) -> Result<crate::DetectionSample>,
    out: &mut [f32],
) -> Result<DetTarget> {
    let size = aug.size;
    debug_assert_eq!(out.len(), 3 * size * size);
    let mut rng = rng_for(&[seed, stream::DET_AUG, epoch, id as u64]);
    let main = fetch(id)?;
    let random = !aug.is_deterministic();
    let use_mosaic = random && len > 0 && aug.mosaic > 0.0 && rng.random::<f32>() < aug.mosaic;
    let (w, h) = (main.image.width, main.image.height);
    let base = size as f32 / w.max(h) as f32;
    let mut target = DetTarget {
        image_id: main.image_id,
        annotations: Vec::new(),
        letterbox: Letterbox {
            scale: base,
            pad_x: 0.0,
            pad_y: 0.0,
        },
        original_size: (w, h),
        sources: vec![id],
        mosaic: use_mosaic,
        flipped: false,
    };
    let full = [0.0, 0.0, size as f32, size as f32];
    if use_mosaic {
        mosaic(aug, &mut rng, main, len, fetch, out, &mut target)?;
    } else {
        let jitter = jitter(aug, &mut rng);
        let scale = base * jitter;
        let (nw, nh) = (w as f32 * scale, h as f32 * scale);
        let (dx, dy) = if random {
            (
                offset(&mut rng, size as f32 - nw),
                offset(&mut rng, size as f32 - nh),
            )
        } else {
            ((size as f32 - nw) * 0.5, (size as f32 - nh) * 0.5)
        };
        paste_scaled(&main.image, out, size, [0, 0, size, size], scale, dx, dy);
        place_boxes(
            &main.annotations,
            scale,
            dx,
            dy,
            full,
            aug,
            &mut target.annotations,
        );
        target.letterbox = Letterbox {
            scale,
            pad_x: dx,
            pad_y: dy,
        };
    }
    if random && aug.colour_jitter > 0.0 {
        colour_jitter(out, size * size, aug.colour_jitter, &mut rng);
    }
    if random && rng.random::<f32>() < aug.hflip {
        flip_chw(out, 3, size, size);
        for a in &mut target.annotations {
            a.bbox = BBox::new(
                size as f32 - a.bbox.x1,
                a.bbox.y0,
                size as f32 - a.bbox.x0,
                a.bbox.y1,
            );
        }
        target.flipped = true;
    }
    Ok(target)
}

fn jitter(aug: &DetAugment, rng: &mut Rng) -> f32 {
    let [lo, hi] = aug.scale_jitter;
    if lo < hi {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}

/// A random placement offset: anywhere that keeps the image covering as
/// much of the canvas as it can (`slack` = canvas minus scaled image).
fn offset(rng: &mut Rng, slack: f32) -> f32 {
    if slack.abs() < 1e-6 {
        0.0
    } else if slack > 0.0 {
        rng.random_range(0.0..=slack)
    } else {
        rng.random_range(slack..=0.0)
    }
}

/// Four images around a random centre, each anchored at the centre by its
/// inner corner and cropped to its quadrant.
fn mosaic(
    aug: &DetAugment,
    rng: &mut Rng,
    main: crate::DetectionSample,
    len: usize,
    fetch: &dyn Fn(usize) -> Result<crate::DetectionSample>,
    out: &mut [f32],
    target: &mut DetTarget,
) -> Result<()> {
    let size = aug.size;
    let s = size as f32;
    let cx = rng.random_range(0.3 * s..=0.7 * s).round();
    let cy = rng.random_range(0.3 * s..=0.7 * s).round();
    let (cxu, cyu) = (cx as usize, cy as usize);
    let partners: [usize; 3] = [
        rng.random_range(0..len),
        rng.random_range(0..len),
        rng.random_range(0..len),
    ];
    target.sources.extend_from_slice(&partners);
    let quadrants = [
        [0, 0, cxu, cyu],
        [cxu, 0, size, cyu],
        [0, cyu, cxu, size],
        [cxu, cyu, size, size],
    ];
    let mut main = Some(main);
    for (k, quad) in quadrants.iter().enumerate() {
        let sample = match k {
            0 => main
                .take()
                .ok_or_else(|| DataError::Worker("mosaic lost its main image".into()))?,
            _ => fetch(partners[k - 1])?,
        };
        let (w, h) = (sample.image.width as f32, sample.image.height as f32);
        let scale = s / w.max(h) * jitter(aug, rng);
        let (nw, nh) = (w * scale, h * scale);
        let (dx, dy) = match k {
            0 => (cx - nw, cy - nh),
            1 => (cx, cy - nh),
            2 => (cx - nw, cy),
            _ => (cx, cy),
        };
        paste_scaled(&sample.image, out, size, *quad, scale, dx, dy);
        let clip = quad.map(|v| v as f32);
        place_boxes(
            &sample.annotations,
            scale,
            dx,
            dy,
            clip,
            aug,
            &mut target.annotations,
        );
    }
    Ok(())
}

/// Brightness, contrast and saturation, each by a factor in `[1-j, 1+j]`,
/// in random order-free form (saturation, then contrast, then brightness).
fn colour_jitter(out: &mut [f32], plane: usize, j: f32, rng: &mut Rng) {
    let b = rng.random_range(1.0 - j..=1.0 + j);
    let c = rng.random_range(1.0 - j..=1.0 + j);
    let s = rng.random_range(1.0 - j..=1.0 + j);
    let (r, rest) = out.split_at_mut(plane);
    let (g, bl) = rest.split_at_mut(plane);
    let bl = &mut bl[..plane];
    let mean = (0..plane)
        .map(|i| 0.299 * r[i] + 0.587 * g[i] + 0.114 * bl[i])
        .sum::<f32>()
        / plane as f32;
    for i in 0..plane {
        let grey = 0.299 * r[i] + 0.587 * g[i] + 0.114 * bl[i];
        for v in [&mut r[i], &mut g[i], &mut bl[i]] {
            let sat = grey + s * (*v - grey);
            *v = (((sat - mean) * c + mean) * b).clamp(0.0, 1.0);
        }
    }
}

/// Mirrors a CHW buffer left to right in place.
pub(crate) fn flip_chw(buf: &mut [f32], channels: usize, h: usize, w: usize) {
    for c in 0..channels {
        for y in 0..h {
            buf[(c * h + y) * w..(c * h + y + 1) * w].reverse();
        }
    }
}

/// How classification batches are mixed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mixing {
    /// No mixing.
    None,
    /// mixup (Zhang et al. 2018): `λ·x_i + (1−λ)·x_j`, `λ ~ Beta(α, α)`.
    Mixup {
        /// Beta parameter (0.3 in Arazo et al.).
        alpha: f32,
    },
    /// CutMix (Yun et al. 2019): a box of area `1−λ` pasted from `x_j`.
    Cutmix {
        /// Beta parameter.
        alpha: f32,
    },
    /// RICAP (Takahashi et al. 2018): four crops tiled around a random
    /// point whose coordinates are drawn from `Beta(β, β)`.
    Ricap {
        /// Beta parameter (0.3 in Arazo et al.).
        beta: f32,
    },
}

/// Classification augmentation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClsAugment {
    /// Side of the square model input.
    pub size: usize,
    /// Output channels (1 or 3).
    pub channels: usize,
    /// Zero padding before the random crop (0 = no crop).
    pub crop_padding: usize,
    /// Random horizontal flip with probability 0.5.
    pub hflip: bool,
    /// Side of the cutout square (DeVries & Taylor 2017; 0 = off).
    pub cutout: usize,
    /// Batch mixing.
    pub mixing: Mixing,
    /// Probability that a sample is mixed at all.
    pub mix_prob: f32,
    /// RandAugment on the source image before crop, flip and cutout
    /// (`None` = off; Arazo et al. use [`RandAugment::ARAZO`]).
    pub rand_augment: Option<RandAugment>,
}

impl ClsAugment {
    /// No augmentation: the image centred on the canvas.
    pub fn eval(size: usize, channels: usize) -> Self {
        ClsAugment {
            size,
            channels,
            crop_padding: 0,
            hflip: false,
            cutout: 0,
            mixing: Mixing::None,
            mix_prob: 0.0,
            rand_augment: None,
        }
    }

    /// The "standard" recipe of Arazo et al.: crop with padding 4 and flip.
    pub fn standard(size: usize, channels: usize) -> Self {
        ClsAugment {
            crop_padding: 4,
            hflip: true,
            ..ClsAugment::eval(size, channels)
        }
    }

    /// Fails on values outside their ranges.
    pub fn validate(&self) -> Result<()> {
        if let Some(ra) = &self.rand_augment {
            ra.validate()?;
        }
        let param_ok = match self.mixing {
            Mixing::None => true,
            Mixing::Mixup { alpha: a }
            | Mixing::Cutmix { alpha: a }
            | Mixing::Ricap { beta: a } => a > 0.0 && a.is_finite(),
        };
        let ok = self.size >= 4
            && matches!(self.channels, 1 | 3)
            && (0.0..=1.0).contains(&self.mix_prob)
            && param_ok
            && self.cutout <= self.size;
        if ok {
            Ok(())
        } else {
            Err(DataError::Config(format!(
                "invalid classification augmentation {self:?}"
            )))
        }
    }
}

/// One source of a (possibly mixed) training image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixPart {
    /// Dataset index of the source sample.
    pub sample: usize,
    /// Its label.
    pub label: u32,
    /// Its share of the image and of the target (shares sum to 1).
    pub weight: f32,
}

/// The soft target of one classification image: its sources and their
/// weights. Unmixed images have one part of weight 1. Scores computed on a
/// mixed image are credited to each part in proportion to its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct ClsTarget {
    /// The parts, the sample itself first (unless its share is zero);
    /// weights sum to 1.
    pub parts: Vec<MixPart>,
}

impl ClsTarget {
    /// The soft label vector over `num_classes` classes.
    pub fn soft_label(&self, num_classes: usize) -> Vec<f32> {
        let mut v = vec![0.0; num_classes];
        for p in &self.parts {
            if let Some(slot) = v.get_mut(p.label as usize) {
                *slot += p.weight;
            }
        }
        v
    }
}

/// RandAugment, crop with padding, flip and cutout of one classification
/// image into `out` (`channels × size × size`).
///
/// RandAugment runs first, on the `u8` source image, where the common
/// PyTorch implementation with the 0–30 magnitude scale inserts it (and so
/// its translations see the digit's own 28×28 frame, not the padded crop).
/// Its draws come from their own stream, so the crop, flip and cutout of a
/// sample are the same with it on or off.
pub fn augment_classification(
    aug: &ClsAugment,
    seed: u64,
    epoch: u64,
    id: usize,
    image: &ImageBuffer,
    out: &mut [f32],
) {
    let augmented;
    let image = match &aug.rand_augment {
        Some(ra) => {
            augmented = ra.apply(seed, epoch, id, image);
            &augmented
        }
        None => image,
    };
    let (size, ch) = (aug.size, aug.channels);
    let mut rng = rng_for(&[seed, stream::CLS_AUG, epoch, id as u64]);
    let pad = aug.crop_padding as isize;
    let (ox, oy) = if pad > 0 {
        (
            rng.random_range(-(pad as i64)..=pad as i64) as isize,
            rng.random_range(-(pad as i64)..=pad as i64) as isize,
        )
    } else {
        (0, 0)
    };
    // Source pixel of output (x, y): centred, then shifted by the crop.
    let cx = (image.width as isize - size as isize) / 2 + ox;
    let cy = (image.height as isize - size as isize) / 2 + oy;
    let plane = size * size;
    for y in 0..size {
        let sy = y as isize + cy;
        for x in 0..size {
            let sx = x as isize + cx;
            let inside =
                sx >= 0 && sy >= 0 && (sx as usize) < image.width && (sy as usize) < image.height;
            for c in 0..ch {
                out[c * plane + y * size + x] = if inside {
                    let sc = if image.channels == 1 {
                        0
                    } else {
                        c.min(image.channels - 1)
                    };
                    image.get(sx as usize, sy as usize, sc) as f32 / 255.0
                } else {
                    0.0
                };
            }
        }
    }
    if aug.hflip && rng.random::<bool>() {
        flip_chw(out, ch, size, size);
    }
    if aug.cutout > 0 {
        // The centre may fall anywhere; the square is clipped to the image.
        let half = aug.cutout as isize / 2;
        let mx = rng.random_range(0..size) as isize;
        let my = rng.random_range(0..size) as isize;
        let (x0, x1) = (
            (mx - half).max(0) as usize,
            ((mx - half + aug.cutout as isize).min(size as isize)) as usize,
        );
        let (y0, y1) = (
            (my - half).max(0) as usize,
            ((my - half + aug.cutout as isize).min(size as isize)) as usize,
        );
        for c in 0..ch {
            for y in y0..y1 {
                out[c * plane + y * size + x0..c * plane + y * size + x1].fill(0.0);
            }
        }
    }
}

/// Mixes a collated classification batch in place.
///
/// `images` holds `ids.len()` images of `channels × size × size`; partners
/// are drawn from the same batch, so every source of a mixed image is a
/// sample the sampler chose. Whether and how sample `ids[k]` is mixed is a
/// pure function of `(seed, epoch, ids[k])` and the batch.
pub fn mix_batch(
    aug: &ClsAugment,
    seed: u64,
    epoch: u64,
    ids: &[usize],
    labels: &[u32],
    images: &mut [f32],
) -> Result<Vec<ClsTarget>> {
    let n = ids.len();
    let (size, ch) = (aug.size, aug.channels);
    let per = ch * size * size;
    let plain = |k: usize| ClsTarget {
        parts: vec![MixPart {
            sample: ids[k],
            label: labels[k],
            weight: 1.0,
        }],
    };
    if matches!(aug.mixing, Mixing::None) || aug.mix_prob <= 0.0 || n == 0 {
        return Ok((0..n).map(plain).collect());
    }
    let original = images.to_vec();
    let mut targets = Vec::with_capacity(n);
    for k in 0..n {
        let mut rng = rng_for(&[seed, stream::MIX, epoch, ids[k] as u64]);
        if rng.random::<f32>() >= aug.mix_prob {
            targets.push(plain(k));
            continue;
        }
        let dst = &mut images[k * per..(k + 1) * per];
        let src = |j: usize| &original[j * per..(j + 1) * per];
        let mut parts: Vec<(usize, f32)> = Vec::with_capacity(4);
        match aug.mixing {
            Mixing::None => unreachable!("handled above"),
            Mixing::Mixup { alpha } => {
                let lam = beta(&mut rng, alpha)?;
                let j = rng.random_range(0..n);
                for (d, (a, b)) in dst.iter_mut().zip(src(k).iter().zip(src(j))) {
                    *d = lam * a + (1.0 - lam) * b;
                }
                parts.extend([(k, lam), (j, 1.0 - lam)]);
            }
            Mixing::Cutmix { alpha } => {
                let lam = beta(&mut rng, alpha)?;
                let j = rng.random_range(0..n);
                let cut = ((1.0 - lam).sqrt() * size as f32).round() as isize;
                let mx = rng.random_range(0..size) as isize;
                let my = rng.random_range(0..size) as isize;
                let clampi = |v: isize| v.clamp(0, size as isize) as usize;
                let rect = [
                    clampi(mx - cut / 2),
                    clampi(my - cut / 2),
                    clampi(mx - cut / 2 + cut),
                    clampi(my - cut / 2 + cut),
                ];
                copy_rect(dst, src(j), ch, size, rect, (rect[0], rect[1]));
                let area =
                    ((rect[2] - rect[0]) * (rect[3] - rect[1])) as f32 / (size * size) as f32;
                parts.extend([(k, 1.0 - area), (j, area)]);
            }
            Mixing::Ricap { beta: b } => {
                let w = (beta(&mut rng, b)? * size as f32).round() as usize;
                let h = (beta(&mut rng, b)? * size as f32).round() as usize;
                let regions = [
                    [0, 0, w, h],
                    [w, 0, size, h],
                    [0, h, w, size],
                    [w, h, size, size],
                ];
                for (r, rect) in regions.iter().enumerate() {
                    let j = if r == 0 { k } else { rng.random_range(0..n) };
                    let (rw, rh) = (rect[2] - rect[0], rect[3] - rect[1]);
                    // The crop comes from a random position of the source.
                    let sx = rng.random_range(0..=size - rw);
                    let sy = rng.random_range(0..=size - rh);
                    copy_rect(dst, src(j), ch, size, *rect, (sx, sy));
                    parts.push((j, (rw * rh) as f32 / (size * size) as f32));
                }
            }
        }
        targets.push(merge_parts(&parts, ids, labels));
    }
    Ok(targets)
}

fn beta(rng: &mut Rng, a: f32) -> Result<f32> {
    let d = Beta::new(a, a).map_err(|e| DataError::Config(format!("Beta({a}, {a}): {e}")))?;
    Ok(d.sample(rng))
}

/// Copies the `rect` of `dst` (`[x0, y0, x1, y1)`) from `src` starting at
/// `from` in the source.
fn copy_rect(
    dst: &mut [f32],
    src: &[f32],
    ch: usize,
    size: usize,
    rect: [usize; 4],
    from: (usize, usize),
) {
    let [x0, y0, x1, y1] = rect;
    let plane = size * size;
    for c in 0..ch {
        for (i, y) in (y0..y1).enumerate() {
            let d = c * plane + y * size;
            let s = c * plane + (from.1 + i) * size + from.0;
            dst[d + x0..d + x1].copy_from_slice(&src[s..s + (x1 - x0)]);
        }
    }
}

/// Parts of the same sample merged, zero weights dropped, in order of first
/// appearance (the sample itself first unless its share is zero).
fn merge_parts(parts: &[(usize, f32)], ids: &[usize], labels: &[u32]) -> ClsTarget {
    let mut merged: Vec<MixPart> = Vec::with_capacity(parts.len());
    for &(j, w) in parts {
        if w <= 0.0 {
            continue;
        }
        match merged.iter_mut().find(|p| p.sample == ids[j]) {
            Some(p) => p.weight += w,
            None => merged.push(MixPart {
                sample: ids[j],
                label: labels[j],
                weight: w,
            }),
        }
    }
    ClsTarget { parts: merged }
}
