//! The later frames of a mnist-det clip: the digits of frame 0, each
//! drifting a little from frame to frame, rescaled and rebrightened a
//! little, as consecutive video frames of the same objects are.

use rand::Rng as _;

use crate::idx::LabelledImages;
use crate::mnist::MnistDetConfig;
use crate::mnist_scene::{Placed, resize_gray, tight_box};
use crate::seed::{rng_for, stream};

/// Farthest a digit drifts from its frame-0 place, per axis, as a share of
/// its frame-0 box's width (x) or height (y). Drift in proportion to the
/// box keeps a thin digit 1 on its own box as a wide 0 is kept on its:
/// every frame's box overlaps frame 0's (IoU ≥ 0.5 for boxes at least
/// 3 px on each side, ≥ 0.35 for thinner strokes, which gain or lose a
/// pixel of width; tested).
pub const CLIP_MAX_DRIFT: f32 = 0.1;
/// Largest change of the drift from one frame to the next (same unit).
pub const CLIP_DRIFT_STEP: f32 = 0.05;
/// A frame's digit side is frame 0's times a factor in `1 ± CLIP_SCALE`.
pub const CLIP_SCALE: f32 = 0.05;
/// A frame's digit pixels are frame 0's times a factor in
/// `1 ± CLIP_BRIGHTNESS` (clamped to 255).
pub const CLIP_BRIGHTNESS: f32 = 0.1;

/// Frame `frame` of clip `clip` whose frame 0 holds `base`: a pure function
/// of (seed, split, clip, frame). The drift is a random walk, clamped to
/// [`CLIP_MAX_DRIFT`]; scale and brightness are drawn afresh for each
/// frame, relative to frame 0. Every digit of frame 0 is in every frame,
/// in the same order.
pub(crate) fn clip_frame(
    config: &MnistDetConfig,
    source: &LabelledImages,
    split: u64,
    clip: u64,
    base: &[Placed],
    frame: usize,
) -> Vec<Placed> {
    if frame == 0 {
        return base.to_vec();
    }
    let mut drift = vec![(0f32, 0f32); base.len()];
    let mut looks = vec![(1f32, 1f32); base.len()];
    // Each frame's steps have their own generator, so frame t's walk is
    // the same whichever later frame asks for it.
    for t in 1..=frame as u64 {
        let mut rng = rng_for(&[config.seed, stream::MNIST_CLIP, split, clip, t]);
        for (d, l) in drift.iter_mut().zip(looks.iter_mut()) {
            let step = CLIP_DRIFT_STEP;
            let (sx, sy) = (
                rng.random_range(-step..=step),
                rng.random_range(-step..=step),
            );
            d.0 = (d.0 + sx).clamp(-CLIP_MAX_DRIFT, CLIP_MAX_DRIFT);
            d.1 = (d.1 + sy).clamp(-CLIP_MAX_DRIFT, CLIP_MAX_DRIFT);
            *l = (
                rng.random_range(1.0 - CLIP_SCALE..=1.0 + CLIP_SCALE),
                rng.random_range(1.0 - CLIP_BRIGHTNESS..=1.0 + CLIP_BRIGHTNESS),
            );
        }
    }
    base.iter()
        .zip(drift.iter().zip(&looks))
        .map(|(p, (&d, &(scale, bright)))| moved(config.canvas, source, p, d, scale, bright))
        .collect()
}

/// Digit `p` redrawn at `scale` times its side and `bright` times its
/// pixels, its square's centre moved by `drift` (shares of its box), kept
/// inside the canvas.
fn moved(
    canvas: usize,
    source: &LabelledImages,
    p: &Placed,
    drift: (f32, f32),
    scale: f32,
    bright: f32,
) -> Placed {
    let side = ((p.side as f32 * scale).round() as usize).clamp(1, canvas);
    let resized = resize_gray(source.image(p.digit), source.cols, source.rows, side, side);
    // A glyph that vanishes at the new side (possible only for tiny
    // blurred strokes) keeps frame 0's side, so no digit leaves the clip.
    let (side, glyph) = if resized.iter().any(|&v| v > 0) {
        (side, resized)
    } else {
        (p.side, p.glyph.clone())
    };
    let glyph: Vec<u8> = glyph
        .iter()
        .map(|&v| (v as f32 * bright).round().min(255.0) as u8)
        .collect();
    // Brightness keeps every lit pixel lit (factor ≥ 0.9 rounds 1 to 1),
    // so the tight box is the resized glyph's.
    let tight =
        tight_box(&glyph, side).unwrap_or(p.bbox.affine(1.0, 1.0, -(p.x as f32), -(p.y as f32)));
    // The new box is centred on frame 0's box centre moved by the drift,
    // rounded once, so that a thin stroke does not jump a pixel for
    // nothing when its square changes side.
    let place = |centre: f32, extent: f32, share: f32, lo: f32, hi: f32| {
        let target = centre + share * extent;
        (target - (lo + hi) / 2.0)
            .round()
            .clamp(0.0, (canvas - side) as f32) as usize
    };
    let b = &p.bbox;
    let x = place((b.x0 + b.x1) / 2.0, b.width(), drift.0, tight.x0, tight.x1);
    let y = place((b.y0 + b.y1) / 2.0, b.height(), drift.1, tight.y0, tight.y1);
    Placed {
        digit: p.digit,
        side,
        x,
        y,
        bbox: tight.affine(1.0, 1.0, x as f32, y as f32),
        glyph,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BBox;

    /// A 28 × 28 source digit: a lit 8 × 16 block, value 100.
    fn source() -> LabelledImages {
        let mut pixels = vec![0u8; 784];
        for y in 6..22 {
            for x in 10..18 {
                pixels[y * 28 + x] = 100;
            }
        }
        LabelledImages {
            rows: 28,
            cols: 28,
            pixels,
            labels: vec![3],
        }
    }

    fn base(src: &LabelledImages) -> Placed {
        let glyph = resize_gray(src.image(0), 28, 28, 28, 28);
        let tight = tight_box(&glyph, 28).unwrap();
        Placed {
            digit: 0,
            side: 28,
            x: 30,
            y: 20,
            bbox: tight.affine(1.0, 1.0, 30.0, 20.0),
            glyph,
        }
    }

    #[test]
    fn a_moved_digit_follows_drift_scale_and_brightness() {
        let src = source();
        let p = base(&src);
        assert_eq!(p.bbox, BBox::new(40.0, 26.0, 48.0, 42.0));
        // (drift, scale, brightness) → (box, a pixel inside the box)
        let cases = [
            ((0.0, 0.0), 1.0, 1.0, BBox::new(40.0, 26.0, 48.0, 42.0), 100),
            ((0.1, 0.0), 1.0, 1.0, BBox::new(41.0, 26.0, 49.0, 42.0), 100),
            (
                (-0.1, 0.1),
                1.0,
                1.0,
                BBox::new(39.0, 28.0, 47.0, 44.0),
                100,
            ),
            ((0.0, 0.0), 1.0, 1.1, BBox::new(40.0, 26.0, 48.0, 42.0), 110),
            ((0.0, 0.0), 1.0, 0.9, BBox::new(40.0, 26.0, 48.0, 42.0), 90),
        ];
        for (drift, scale, bright, want, value) in cases {
            let m = moved(96, &src, &p, drift, scale, bright);
            assert_eq!(m.bbox, want, "{drift:?} {scale} {bright}");
            let (cx, cy) = (want.x0 as usize + 4 - m.x, want.y0 as usize + 8 - m.y);
            assert_eq!(
                m.glyph[cy * m.side + cx],
                value,
                "{drift:?} {scale} {bright}"
            );
        }
        // A 5% larger digit: a 29 px square whose box stays centred.
        let m = moved(96, &src, &p, (0.0, 0.0), 1.05, 1.0);
        assert_eq!(m.side, 29);
        let centre = |b: BBox| ((b.x0 + b.x1) / 2.0, (b.y0 + b.y1) / 2.0);
        let (a, b) = (centre(p.bbox), centre(m.bbox));
        assert!(
            (a.0 - b.0).abs() <= 0.5 && (a.1 - b.1).abs() <= 0.5,
            "{a:?} {b:?}"
        );
        // Kept inside the canvas.
        let m = moved(
            40,
            &src,
            &Placed { x: 12, ..p.clone() },
            (0.1, 0.0),
            1.05,
            1.0,
        );
        assert!(m.x + m.side <= 40);
    }

    #[test]
    fn frame_zero_is_the_base_and_later_frames_stay_near_it() {
        let src = source();
        let config = MnistDetConfig::default();
        let p = base(&src);
        let f0 = clip_frame(&config, &src, 0, 5, std::slice::from_ref(&p), 0);
        assert_eq!(f0[0].bbox, p.bbox);
        for frame in 1..30 {
            let f = clip_frame(&config, &src, 0, 5, std::slice::from_ref(&p), frame);
            let (a, b) = (p.bbox, f[0].bbox);
            let (dx, dy) = (
                (a.x0 + a.x1 - b.x0 - b.x1) / 2.0,
                (a.y0 + a.y1 - b.y0 - b.y1) / 2.0,
            );
            // Drift ≤ 10% of the box (0.8 and 1.6 px) plus half a pixel of
            // rounding and the square's side change.
            assert!(
                dx.abs() <= 1.5 && dy.abs() <= 2.5,
                "frame {frame}: {dx} {dy}"
            );
            assert!(a.iou(&b) >= 0.5, "frame {frame}");
        }
    }
}
