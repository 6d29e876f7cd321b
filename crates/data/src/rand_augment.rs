//! RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data
//! augmentation with a reduced search space") for classification images.
//!
//! Conventions are those of torchvision's `transforms.RandAugment` with its
//! default `num_magnitude_bins = 31`: the op list, the magnitude ranges, the
//! random sign of signed magnitudes, nearest-neighbour geometry with fill 0.
//! The ops work on the `u8` source image, as torchvision's do on PIL images
//! and `uint8` tensors, before any crop, flip or cutout: first, where the
//! common PyTorch implementation with the 0–30 magnitude scale inserts it
//! (torchvision's reference scripts put it after crop and flip, which for a
//! 4-pixel crop and a flip changes little).
//!
//! Where this differs from torchvision, and why:
//! - `Color` (saturation) is only drawn for 3-channel images: on grayscale
//!   it is the identity, and drawing it would only waste one of the `N` ops.
//! - Blends are rounded to the nearest `u8` where torchvision truncates, so
//!   that f32 round-off (`1.12 · 25 = 27.999…`) never costs a grey level.
//! - Sharpness blends only interior pixels: on the border the blurred image
//!   equals the original, so the blend there is the identity anyway.

use rand::Rng as _;

use crate::error::{DataError, Result};
use crate::seed::{rng_for, stream};
use crate::types::ImageBuffer;

/// RandAugment settings: `n` operations per image, each at magnitude bin `m`.
///
/// `m` indexes torchvision's 31 magnitude bins, `0..=30`: an op whose
/// strongest setting is `max` gets `max · m / 30` (see [`RandOp::magnitude`]).
/// This 0–30 scale is also the scale of the original RandAugment
/// implementation. Arazo et al. (BMVC 2021, "How Important is Importance
/// Sampling for Deep Budgeted Training?") report `N = 2, M = 4`; we read
/// their `M` on that 0–30 scale, so [`RandAugment::ARAZO`] means, on a
/// 28×28 image, rotations of ±4°, shears of ±0.04, translations of ±1 px,
/// brightness/contrast/sharpness factors of 1 ± 0.12, 7-bit posterize and a
/// solarize threshold of 221/255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandAugment {
    /// Operations per image (`N`), each drawn uniformly, with replacement,
    /// from [`RandOp::candidates`]; `1..=MAX_OPS`.
    pub n: usize,
    /// Magnitude bin (`M`), `0..=30`.
    pub m: u32,
}

impl RandAugment {
    /// The largest magnitude bin (torchvision's `num_magnitude_bins - 1`).
    pub const MAX_MAGNITUDE: u32 = 30;

    /// The most ops per image [`RandAugment::validate`] accepts. The paper
    /// searches `N ∈ 1..=3`; the cap only stops a typo from making every
    /// image cost thousands of passes.
    pub const MAX_OPS: usize = 16;

    /// The setting of Arazo et al.: `N = 2, M = 4`.
    pub const ARAZO: RandAugment = RandAugment { n: 2, m: 4 };

    /// Fails unless `1 <= n <= MAX_OPS` and `m <= MAX_MAGNITUDE` (use `None`
    /// in [`crate::ClsAugment::rand_augment`] to turn RandAugment off).
    pub fn validate(&self) -> Result<()> {
        if (1..=Self::MAX_OPS).contains(&self.n) && self.m <= Self::MAX_MAGNITUDE {
            Ok(())
        } else {
            Err(DataError::Config(format!(
                "invalid RandAugment {self:?}: need 1 <= n <= {} and m <= {}",
                Self::MAX_OPS,
                Self::MAX_MAGNITUDE
            )))
        }
    }

    /// The ops and signed magnitudes drawn for sample `id` of an image of
    /// `width × height × channels`, in the order they are applied: a pure
    /// function of `(seed, epoch, id)` and the image's shape.
    ///
    /// As torchvision: per op, an index into [`RandOp::candidates`], then,
    /// for a signed op, a fair coin that negates the magnitude.
    pub fn draw(
        &self,
        seed: u64,
        epoch: u64,
        id: usize,
        width: usize,
        height: usize,
        channels: usize,
    ) -> Vec<(RandOp, f32)> {
        let mut rng = rng_for(&[seed, stream::RAND_AUG, epoch, id as u64]);
        let ops = RandOp::candidates(channels);
        (0..self.n)
            .map(|_| {
                let op = ops[rng.random_range(0..ops.len())];
                let mut mag = op.magnitude(self.m, width, height);
                if op.is_signed() && rng.random::<bool>() {
                    mag = -mag;
                }
                (op, mag)
            })
            .collect()
    }

    /// `image` after the ops [`RandAugment::draw`] gives for
    /// `(seed, epoch, id)`.
    pub fn apply(&self, seed: u64, epoch: u64, id: usize, image: &ImageBuffer) -> ImageBuffer {
        let mut out = image.clone();
        for (op, mag) in self.draw(seed, epoch, id, image.width, image.height, image.channels) {
            op.apply(mag, &mut out);
        }
        out
    }
}

/// One RandAugment operation (torchvision's list, in its order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RandOp {
    /// No change.
    Identity,
    /// Horizontal shear about the top-left corner: output `(x, y)` samples
    /// input `(x + s·y, y)`; `s` in `[0, 0.3]`, signed.
    ShearX,
    /// Vertical shear about the top-left corner: output `(x, y)` samples
    /// input `(x, y + s·x)`; `s` in `[0, 0.3]`, signed.
    ShearY,
    /// Shift right by `t` pixels (`t` truncated to an integer, as
    /// torchvision's `int(magnitude)`); `t` in `[0, 150/331 · width]`,
    /// signed.
    TranslateX,
    /// Shift down by `t` pixels; `t` in `[0, 150/331 · height]`, signed.
    TranslateY,
    /// Counter-clockwise rotation by `a` degrees about the image centre;
    /// `a` in `[0, 30]`, signed.
    Rotate,
    /// `v · f` with `f = 1 + b`, `b` in `[0, 0.9]`, signed.
    Brightness,
    /// Saturation: a blend with the pixel's luma, factor `1 + b`, `b` in
    /// `[0, 0.9]`, signed. Only drawn for 3-channel images; the identity
    /// otherwise.
    Color,
    /// A blend with the image's mean grey level, factor `1 + b`, `b` in
    /// `[0, 0.9]`, signed.
    Contrast,
    /// A blend with the image smoothed by the 3×3 kernel
    /// `[[1,1,1],[1,5,1],[1,1,1]]/13` (PIL's SMOOTH), factor `1 + b`, `b` in
    /// `[0, 0.9]`, signed; border pixels are kept.
    Sharpness,
    /// Keep the top `bits` bits of every value; `bits = 8 - round(m / 7.5)`,
    /// 8 (none lost) at `m = 0` to 4 at `m = 30`.
    Posterize,
    /// Invert (`255 - v`) every value `v >= t`; `t = 255 · (1 - m/30)`, 255
    /// at `m = 0` to 0 at `m = 30`.
    Solarize,
    /// Stretch each channel linearly so its minimum becomes 0 and its
    /// maximum 255 (a constant channel is left alone). No magnitude.
    AutoContrast,
    /// Histogram equalisation of each channel, PIL's `ImageOps.equalize`
    /// (which torchvision copies). No magnitude.
    Equalize,
}

/// The ops drawn for a 1-channel image: every one but `Color`.
const GRAY_OPS: [RandOp; 13] = [
    RandOp::Identity,
    RandOp::ShearX,
    RandOp::ShearY,
    RandOp::TranslateX,
    RandOp::TranslateY,
    RandOp::Rotate,
    RandOp::Brightness,
    RandOp::Contrast,
    RandOp::Sharpness,
    RandOp::Posterize,
    RandOp::Solarize,
    RandOp::AutoContrast,
    RandOp::Equalize,
];

impl RandOp {
    /// Every op, in torchvision's order.
    pub const ALL: [RandOp; 14] = [
        RandOp::Identity,
        RandOp::ShearX,
        RandOp::ShearY,
        RandOp::TranslateX,
        RandOp::TranslateY,
        RandOp::Rotate,
        RandOp::Brightness,
        RandOp::Color,
        RandOp::Contrast,
        RandOp::Sharpness,
        RandOp::Posterize,
        RandOp::Solarize,
        RandOp::AutoContrast,
        RandOp::Equalize,
    ];

    /// The ops RandAugment draws from for an image with `channels` channels:
    /// all 14 for 3 channels, all but `Color` otherwise.
    pub fn candidates(channels: usize) -> &'static [RandOp] {
        if channels == 3 { &Self::ALL } else { &GRAY_OPS }
    }

    /// True when the magnitude is negated with probability 0.5.
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            RandOp::ShearX
                | RandOp::ShearY
                | RandOp::TranslateX
                | RandOp::TranslateY
                | RandOp::Rotate
                | RandOp::Brightness
                | RandOp::Color
                | RandOp::Contrast
                | RandOp::Sharpness
        )
    }

    /// The (unsigned) magnitude of magnitude bin `m` for an image of
    /// `width × height`, in the unit [`RandOp::apply`] takes: torchvision's
    /// `linspace(lo, hi, 31)[m]`. `m` above 30 counts as 30; ops without a
    /// magnitude give 0.
    pub fn magnitude(self, m: u32, width: usize, height: usize) -> f32 {
        let top = RandAugment::MAX_MAGNITUDE;
        let m = m.min(top);
        // `hi · m / 30`, multiplied first so that whole-number results (the
        // solarize thresholds) come out exact.
        let lin = |hi: f32, k: u32| hi * k as f32 / top as f32;
        match self {
            RandOp::Identity | RandOp::AutoContrast | RandOp::Equalize => 0.0,
            RandOp::ShearX | RandOp::ShearY => lin(0.3, m),
            RandOp::TranslateX => lin(150.0 / 331.0 * width as f32, m),
            RandOp::TranslateY => lin(150.0 / 331.0 * height as f32, m),
            RandOp::Rotate => lin(30.0, m),
            RandOp::Brightness | RandOp::Color | RandOp::Contrast | RandOp::Sharpness => {
                lin(0.9, m)
            }
            // m / 7.5 never lands on .5 for integer m, so the rounding
            // convention does not matter.
            RandOp::Posterize => 8.0 - (m as f32 / 7.5).round(),
            RandOp::Solarize => lin(255.0, top - m),
        }
    }

    /// Applies the op with `magnitude` (signed, in the unit of
    /// [`RandOp::magnitude`]) to `image` in place. Geometric ops sample the
    /// nearest source pixel and fill with 0 what comes from outside.
    /// Images whose buffer does not match their shape, and non-finite
    /// magnitudes, are left unchanged rather than panicking.
    pub fn apply(self, magnitude: f32, image: &mut ImageBuffer) {
        let (w, h, c) = (image.width, image.height, image.channels);
        if image.data.len() != w * h * c || c == 0 || !magnitude.is_finite() {
            return;
        }
        let mag = f64::from(magnitude);
        match self {
            RandOp::Identity => {}
            RandOp::ShearX => warp(image, |u, v| (u + mag * v, v)),
            RandOp::ShearY => warp(image, |u, v| (u, v + mag * u)),
            RandOp::TranslateX => {
                let t = mag.trunc();
                warp(image, |u, v| (u - t, v));
            }
            RandOp::TranslateY => {
                let t = mag.trunc();
                warp(image, |u, v| (u, v - t));
            }
            RandOp::Rotate => {
                // Output pixel p samples the input at R(-a)·p about the
                // centre; with y pointing down that is the matrix below.
                let (sin, cos) = mag.to_radians().sin_cos();
                let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
                warp(image, |u, v| {
                    let (x, y) = (u - cx, v - cy);
                    (cx + x * cos - y * sin, cy + x * sin + y * cos)
                });
            }
            RandOp::Brightness => {
                let f = 1.0 + magnitude;
                for v in &mut image.data {
                    *v = to_u8(f * *v as f32);
                }
            }
            RandOp::Color => {
                if c == 3 {
                    let f = 1.0 + magnitude;
                    for px in image.data.chunks_exact_mut(3) {
                        let g = luma(px);
                        for v in px {
                            *v = blend(*v as f32, g, f);
                        }
                    }
                }
            }
            RandOp::Contrast => {
                let f = 1.0 + magnitude;
                let n = w * h;
                if n > 0 {
                    let sum: f64 = image.data.chunks_exact(c).map(|p| grey(p) as f64).sum();
                    let mean = (sum / n as f64) as f32;
                    for v in &mut image.data {
                        *v = blend(*v as f32, mean, f);
                    }
                }
            }
            RandOp::Sharpness => sharpness(image, 1.0 + magnitude),
            RandOp::Posterize => {
                let bits = magnitude.round().clamp(0.0, 8.0) as u32;
                // 0xFF << 8 keeps no bit; in u16 the shift cannot overflow.
                let mask = (0xFFu16 << (8 - bits)) as u8;
                for v in &mut image.data {
                    *v &= mask;
                }
            }
            RandOp::Solarize => {
                for v in &mut image.data {
                    if *v as f32 >= magnitude {
                        *v = 255 - *v;
                    }
                }
            }
            RandOp::AutoContrast => {
                for ch in 0..c {
                    autocontrast_channel(&mut image.data, ch, c);
                }
            }
            RandOp::Equalize => {
                for ch in 0..c {
                    equalize_channel(&mut image.data, ch, c);
                }
            }
        }
    }
}

/// Clamped to `[0, 255]` and rounded (NaN, impossible here, gives 0).
#[inline]
fn to_u8(v: f32) -> u8 {
    v.clamp(0.0, 255.0).round() as u8
}

/// `f·a + (1-f)·b`, torchvision's `_blend`, clamped and rounded.
#[inline]
fn blend(a: f32, b: f32, f: f32) -> u8 {
    to_u8(f * a + (1.0 - f) * b)
}

/// ITU-R 601 luma with torchvision's coefficients.
#[inline]
fn luma(px: &[u8]) -> f32 {
    0.2989 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32
}

/// The grey level of one pixel: luma for RGB, the mean of the channels
/// otherwise (the value itself for grayscale).
#[inline]
fn grey(px: &[u8]) -> f32 {
    if px.len() == 3 {
        luma(px)
    } else {
        px.iter().map(|&v| v as f32).sum::<f32>() / px.len() as f32
    }
}

/// Resamples `image` in place: output pixel `(x, y)`, whose centre is
/// `(x + 0.5, y + 0.5)`, takes the pixel containing `map(centre)`, or 0
/// when that lies outside the image.
fn warp(image: &mut ImageBuffer, map: impl Fn(f64, f64) -> (f64, f64)) {
    let (w, h, c) = (image.width, image.height, image.channels);
    let src = image.data.clone();
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = map(x as f64 + 0.5, y as f64 + 0.5);
            let (fx, fy) = (sx.floor(), sy.floor());
            let d = (y * w + x) * c;
            // Written so that NaN coordinates count as outside.
            if fx >= 0.0 && fy >= 0.0 && fx < w as f64 && fy < h as f64 {
                let s = (fy as usize * w + fx as usize) * c;
                image.data[d..d + c].copy_from_slice(&src[s..s + c]);
            } else {
                image.data[d..d + c].fill(0);
            }
        }
    }
}

/// torchvision's `adjust_sharpness`: blend with the SMOOTH-filtered image
/// (rounded, as torchvision does for `uint8`). Only interior pixels change:
/// the filter leaves the border as it is.
fn sharpness(image: &mut ImageBuffer, f: f32) {
    let (w, h, c) = (image.width, image.height, image.channels);
    if w < 3 || h < 3 {
        return;
    }
    let src = image.data.clone();
    let at = |x: usize, y: usize, ch: usize| src[(y * w + x) * c + ch] as u32;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for ch in 0..c {
                let mut sum = 4 * at(x, y, ch);
                for yy in y - 1..=y + 1 {
                    for xx in x - 1..=x + 1 {
                        sum += at(xx, yy, ch);
                    }
                }
                // sum / 13 is never exactly k + 0.5 for an integer sum.
                let smooth = (sum as f32 / 13.0).round();
                image.data[(y * w + x) * c + ch] = blend(at(x, y, ch) as f32, smooth, f);
            }
        }
    }
}

/// torchvision's `autocontrast` on one channel: `(v - lo) · 255 / (hi - lo)`.
fn autocontrast_channel(data: &mut [u8], ch: usize, c: usize) {
    let values = || data.iter().skip(ch).step_by(c);
    let (Some(&lo), Some(&hi)) = (values().min(), values().max()) else {
        return;
    };
    if hi == lo {
        return;
    }
    let scale = 255.0 / (hi - lo) as f32;
    for v in data.iter_mut().skip(ch).step_by(c) {
        *v = to_u8((*v - lo) as f32 * scale);
    }
}

/// PIL's `ImageOps.equalize` on one channel (torchvision's is the same):
/// `step = ⌊(pixels outside the last occupied level) / 255⌋`; level `i`
/// maps to `⌊(pixels below i + ⌊step/2⌋) / step⌋`, at most 255. With
/// `step = 0` (fewer than 255 pixels below the top level) nothing changes.
fn equalize_channel(data: &mut [u8], ch: usize, c: usize) {
    let mut hist = [0u64; 256];
    for &v in data.iter().skip(ch).step_by(c) {
        hist[v as usize] += 1;
    }
    let Some(last) = hist.iter().rposition(|&n| n > 0) else {
        return;
    };
    let total: u64 = hist.iter().sum();
    let step = (total - hist[last]) / 255;
    if step == 0 {
        return;
    }
    let mut lut = [0u8; 256];
    let mut below = 0u64;
    for (slot, &count) in lut.iter_mut().zip(&hist) {
        *slot = ((below + step / 2) / step).min(255) as u8;
        below += count;
    }
    for v in data.iter_mut().skip(ch).step_by(c) {
        *v = lut[*v as usize];
    }
}
