//! One mnist-det scene: digits drawn from a source, placed on a black
//! canvas without much overlap, each with the tight box of its pixels.

use rand::Rng as _;

use crate::idx::LabelledImages;
use crate::mnist::MnistDetConfig;
use crate::seed::{Rng, rng_for, stream};
use crate::types::{Annotation, BBox, DetectionSample, ImageBuffer};

/// One digit drawn on a canvas: its source image, the square it was
/// resized to, where that square sits, and the tight box of its pixels.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    /// Index of the digit in the source.
    pub digit: usize,
    /// Side of the resized square.
    pub side: usize,
    /// Left column of the square on the canvas.
    pub x: usize,
    /// Top row of the square on the canvas.
    pub y: usize,
    /// The resized (and brightness-scaled) glyph, `side × side`.
    pub glyph: Vec<u8>,
    /// Tight box of the glyph's non-zero pixels, in canvas coordinates.
    pub bbox: BBox,
}

/// The generator of scene `index` of split `split`: the same for a plain
/// scene and for frame 0 of a clip.
pub(crate) fn scene_rng(config: &MnistDetConfig, split: u64, index: u64) -> Rng {
    rng_for(&[config.seed, stream::MNIST_SCENE, split, index])
}

/// Draws how many digits the scene gets: the first draw of its generator.
pub(crate) fn draw_count(config: &MnistDetConfig, rng: &mut Rng) -> usize {
    rng.random_range(config.min_digits..=config.max_digits)
}

/// Places `count` digit slots; `pick(slot, rng)` chooses the source digit
/// of each try. A placement whose box overlaps an earlier one above
/// `max_iou` is drawn again (up to 50 tries); a slot whose glyph is blank
/// or that finds no place stays empty. The draw order (digit, side, x, y
/// per try) is that of every mnist-det set made so far, so plain scenes
/// stay byte-identical.
pub(crate) fn place_digits(
    config: &MnistDetConfig,
    source: &LabelledImages,
    rng: &mut Rng,
    count: usize,
    pick: impl Fn(usize, &mut Rng) -> usize,
) -> Vec<Placed> {
    let c = config.canvas;
    let mut placed: Vec<Placed> = Vec::new();
    for slot in 0..count {
        for _attempt in 0..50 {
            let digit = pick(slot, rng);
            let side = rng.random_range(config.min_size..=config.max_size);
            let x = rng.random_range(0..=c - side);
            let y = rng.random_range(0..=c - side);
            let glyph = resize_gray(source.image(digit), source.cols, source.rows, side, side);
            let Some(tight) = tight_box(&glyph, side) else {
                break;
            };
            let bbox = tight.affine(1.0, 1.0, x as f32, y as f32);
            if placed.iter().any(|p| p.bbox.iou(&bbox) > config.max_iou) {
                continue;
            }
            placed.push(Placed {
                digit,
                side,
                x,
                y,
                glyph,
                bbox,
            });
            break;
        }
    }
    placed
}

/// Draws the digits on a black `canvas × canvas` grayscale image. Strokes
/// over black: the brighter pixel wins where digits meet, so the drawing
/// order does not matter.
pub(crate) fn render(canvas: usize, digits: &[Placed]) -> ImageBuffer {
    let mut image = ImageBuffer::new(canvas, canvas, 1);
    for d in digits {
        for gy in 0..d.side {
            let row = &mut image.data[(d.y + gy) * canvas + d.x..][..d.side];
            for (p, &g) in row.iter_mut().zip(&d.glyph[gy * d.side..][..d.side]) {
                *p = (*p).max(g);
            }
        }
    }
    image
}

/// Makes scene `index` of a split from the digits `source` (the split's own
/// digits only: train and val scenes draw from disjoint digit sets). `split`
/// (0 train, 1 val, 2 holdout) keeps the splits' random streams apart. The
/// image id is `index + 1`; the canvas is grayscale.
pub fn mnist_det_scene(
    config: &MnistDetConfig,
    source: &LabelledImages,
    split: u64,
    index: u64,
) -> DetectionSample {
    let mut rng = scene_rng(config, split, index);
    let count = draw_count(config, &mut rng);
    let uniform = |_: usize, rng: &mut Rng| rng.random_range(0..source.len());
    let placed = place_digits(config, source, &mut rng, count, uniform);
    DetectionSample {
        image_id: index + 1,
        image: render(config.canvas, &placed),
        annotations: placed
            .iter()
            .map(|p| Annotation {
                bbox: p.bbox,
                class: source.labels[p.digit] as u32,
                crowd: false,
            })
            .collect(),
    }
}

/// The box around a square glyph's non-zero pixels, in glyph coordinates.
pub(crate) fn tight_box(glyph: &[u8], side: usize) -> Option<BBox> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..side {
        for x in 0..side {
            if glyph[y * side + x] > 0 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    (x0 < x1).then(|| BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32))
}

/// Bilinear resize of a grayscale image (pixel-centre aligned). When
/// shrinking, the source is sampled at the centre of each destination pixel,
/// which keeps thin strokes visible at the sizes mnist-det uses.
pub fn resize_gray(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh];
    let sx = sw as f32 / dw as f32;
    let sy = sh as f32 / dh as f32;
    for y in 0..dh {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f32);
        let y0 = fy as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let wy = fy - y0 as f32;
        for x in 0..dw {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f32);
            let x0 = fx as usize;
            let x1 = (x0 + 1).min(sw - 1);
            let wx = fx - x0 as f32;
            let top = src[y0 * sw + x0] as f32 * (1.0 - wx) + src[y0 * sw + x1] as f32 * wx;
            let bot = src[y1 * sw + x0] as f32 * (1.0 - wx) + src[y1 * sw + x1] as f32 * wx;
            out[y * dw + x] = (top * (1.0 - wy) + bot * wy).round() as u8;
        }
    }
    out
}
