//! `synth`: procedurally generated shape scenes, the embedded default dataset.
//!
//! Scene `i` is a pure function of `(seed, i)`: no file, no download, and the
//! same bytes on every machine. Each scene has a textured, noisy background
//! and 1–8 shapes of 5 classes in 8 colours (colour says nothing about the
//! class), 6–48 px across, placed so that they may partly occlude one another
//! (the IoU of two boxes is kept at or below [`SynthConfig::max_iou`]). About
//! one scene in ten is near-empty (one small object) and one in ten is
//! cluttered (the maximum object count, small objects, and unlabelled
//! speckle distractors). Boxes are tight around the pixels each shape drew.

use rand::Rng as _;

use crate::dataset::{Dataset, check_index};
use crate::error::{DataError, Result};
use crate::seed::{mix64, rng_for, stream};
use crate::types::{Annotation, BBox, ClassNames, DetectionSample, ImageBuffer};

/// The shape classes, in class-index order.
pub const SYNTH_CLASSES: [&str; 5] = ["square", "circle", "triangle", "cross", "ring"];

/// Saturated object colours; a shape's colour is drawn independently of its
/// class.
const PALETTE: [[u8; 3]; 8] = [
    [230, 40, 40],
    [40, 200, 60],
    [50, 90, 235],
    [240, 220, 40],
    [230, 60, 220],
    [40, 220, 230],
    [250, 140, 30],
    [245, 245, 245],
];

/// Parameters of the synth generator.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed of the whole dataset.
    pub seed: u64,
    /// Number of scenes.
    pub len: usize,
    /// Side of the square canvas in pixels.
    pub size: usize,
    /// Fewest objects in an ordinary scene.
    pub min_objects: usize,
    /// Most objects in a scene (cluttered scenes have exactly this many).
    pub max_objects: usize,
    /// Smallest object extent in pixels.
    pub min_object_size: f32,
    /// Largest object extent in pixels.
    pub max_object_size: f32,
    /// Largest IoU allowed between two objects' boxes (partial occlusion).
    pub max_iou: f32,
    /// Share of near-empty scenes (one small object).
    pub near_empty_share: f32,
    /// Share of cluttered scenes.
    pub cluttered_share: f32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            len: 2048,
            size: 96,
            min_objects: 1,
            max_objects: 8,
            min_object_size: 6.0,
            max_object_size: 48.0,
            max_iou: 0.35,
            near_empty_share: 0.1,
            cluttered_share: 0.1,
        }
    }
}

impl SynthConfig {
    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(DataError::Config(format!("synth: {m}")));
        if self.size < 16 {
            return bad("size must be at least 16 pixels");
        }
        if self.min_objects == 0 || self.min_objects > self.max_objects {
            return bad("need 1 <= min_objects <= max_objects");
        }
        if !(self.min_object_size >= 2.0 && self.min_object_size <= self.max_object_size) {
            return bad("need 2 <= min_object_size <= max_object_size");
        }
        if self.max_object_size > self.size as f32 {
            return bad("max_object_size must fit in the canvas");
        }
        if !(0.0..=1.0).contains(&self.max_iou) {
            return bad("max_iou must lie in [0, 1]");
        }
        if !(self.near_empty_share >= 0.0
            && self.cluttered_share >= 0.0
            && self.near_empty_share + self.cluttered_share <= 1.0)
        {
            return bad("scene shares must be non-negative and sum to at most 1");
        }
        Ok(())
    }
}

/// The synth dataset: scenes generated on demand.
#[derive(Debug, Clone)]
pub struct SynthDataset {
    config: SynthConfig,
    classes: ClassNames,
}

impl SynthDataset {
    /// A dataset of `config.len` scenes; fails on an invalid configuration.
    pub fn new(config: SynthConfig) -> Result<Self> {
        config.validate()?;
        let classes = ClassNames::new(SYNTH_CLASSES.iter().map(|s| s.to_string()).collect());
        Ok(SynthDataset { config, classes })
    }

    /// The configuration this dataset was made with.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }
}

impl Dataset for SynthDataset {
    type Sample = DetectionSample;

    fn len(&self) -> usize {
        self.config.len
    }

    fn get(&self, index: usize) -> Result<DetectionSample> {
        check_index(index, self.config.len)?;
        Ok(generate_scene(&self.config, index as u64))
    }

    fn class_names(&self) -> &ClassNames {
        &self.classes
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SceneKind {
    Ordinary,
    NearEmpty,
    Cluttered,
}

/// Generates scene `index` of the dataset described by `config`. The image id
/// of the result is `index + 1` (COCO tools treat id 0 as missing).
pub fn generate_scene(config: &SynthConfig, index: u64) -> DetectionSample {
    let mut rng = rng_for(&[config.seed, stream::SYNTH, index]);
    let size = config.size;
    let mut image = ImageBuffer::new(size, size, 3);
    paint_background(&mut image, &mut rng, mix64(config.seed ^ index));

    let u: f32 = rng.random();
    let kind = if u < config.near_empty_share {
        SceneKind::NearEmpty
    } else if u < config.near_empty_share + config.cluttered_share {
        SceneKind::Cluttered
    } else {
        SceneKind::Ordinary
    };
    let (count, min_s, max_s) = match kind {
        SceneKind::NearEmpty => (
            1,
            config.min_object_size,
            (config.min_object_size * 2.0).min(config.max_object_size),
        ),
        SceneKind::Cluttered => (
            config.max_objects,
            config.min_object_size,
            (config.max_object_size * 0.5).max(config.min_object_size),
        ),
        SceneKind::Ordinary => (
            rng.random_range(
                config.min_objects..=config.max_objects.min(6).max(config.min_objects),
            ),
            config.min_object_size,
            config.max_object_size,
        ),
    };

    let mut annotations: Vec<Annotation> = Vec::with_capacity(count);
    let mut placed: Vec<BBox> = Vec::with_capacity(count);
    for _ in 0..count {
        // Placement is rejected (and retried) when it overlaps an earlier
        // object beyond the IoU limit, so occlusion stays partial.
        for _attempt in 0..30 {
            let shape = Shape::random(&mut rng, size, min_s, max_s);
            let outline = shape.outline();
            if placed.iter().any(|b| b.iou(&outline) > config.max_iou) {
                continue;
            }
            let colour = PALETTE[rng.random_range(0..PALETTE.len())];
            if let Some(bbox) = shape.draw(&mut image, colour, &mut rng) {
                placed.push(outline);
                annotations.push(Annotation {
                    bbox,
                    class: shape.class,
                    crowd: false,
                });
            }
            break;
        }
    }
    // Boxes must describe what is visible: an object that a later one covered
    // keeps its full box (amodal), which is the COCO convention for partial
    // occlusion, but one covered beyond recognition is removed.
    drop_hidden(&mut annotations);
    if kind == SceneKind::Cluttered {
        paint_speckles(&mut image, &mut rng);
    }
    DetectionSample {
        image_id: index + 1,
        image,
        annotations,
    }
}

/// Removes objects that later objects covered almost entirely. The IoU limit
/// already bounds pairwise overlap, so only a stack of several later objects
/// can hide one; the share of its box that later boxes cover is the test.
fn drop_hidden(annotations: &mut Vec<Annotation>) {
    let n = annotations.len();
    let mut keep = vec![true; n];
    for i in 0..n {
        let a = annotations[i].bbox;
        let area = a.area();
        let covered: f32 = annotations[i + 1..]
            .iter()
            .map(|b| {
                let iw = (a.x1.min(b.bbox.x1) - a.x0.max(b.bbox.x0)).max(0.0);
                let ih = (a.y1.min(b.bbox.y1) - a.y0.max(b.bbox.y0)).max(0.0);
                iw * ih
            })
            .sum();
        if area <= 0.0 || covered / area > 0.8 {
            keep[i] = false;
        }
    }
    let mut k = keep.iter();
    annotations.retain(|_| *k.next().unwrap_or(&true));
}

/// A textured, noisy background: a base colour with a gradient, stripes or
/// blotches, plus per-pixel noise. Kept darker and less saturated than the
/// palette so that objects stand out, but not trivially.
fn paint_background(image: &mut ImageBuffer, rng: &mut crate::seed::Rng, noise_key: u64) {
    let base: [f32; 3] = [
        rng.random_range(20.0..120.0),
        rng.random_range(20.0..120.0),
        rng.random_range(20.0..120.0),
    ];
    let texture = rng.random_range(0..3u32);
    let amp: f32 = rng.random_range(10.0..40.0);
    let freq: f32 = rng.random_range(0.05..0.35);
    let angle: f32 = rng.random_range(0.0..std::f32::consts::PI);
    let (ca, sa) = (angle.cos(), angle.sin());
    let noise_amp: f32 = rng.random_range(4.0..24.0);
    let w = image.width;
    for y in 0..image.height {
        for x in 0..w {
            let (fx, fy) = (x as f32, y as f32);
            let t = match texture {
                0 => ((fx * ca + fy * sa) / w as f32 - 0.5) * 2.0,
                1 => (freq * (fx * ca + fy * sa)).sin(),
                _ => ((freq * fx).sin() * (freq * 0.7 * fy).cos()).signum() * 0.5,
            };
            let h = mix64(noise_key ^ ((y * w + x) as u64).wrapping_mul(0x9E37_79B9));
            let p = (y * w + x) * 3;
            for (c, (out, b)) in image.data[p..p + 3].iter_mut().zip(base).enumerate() {
                let n = (((h >> (c * 16)) & 0xFFFF) as f32 / 65535.0 - 0.5) * 2.0 * noise_amp;
                *out = (b + amp * t + n).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Small unlabelled blobs that make cluttered scenes harder.
fn paint_speckles(image: &mut ImageBuffer, rng: &mut crate::seed::Rng) {
    let count = rng.random_range(6..16);
    for _ in 0..count {
        let cx = rng.random_range(0..image.width);
        let cy = rng.random_range(0..image.height);
        let r = rng.random_range(1..3usize);
        let colour = PALETTE[rng.random_range(0..PALETTE.len())];
        for y in cy.saturating_sub(r)..(cy + r).min(image.height) {
            for x in cx.saturating_sub(r)..(cx + r).min(image.width) {
                let p = (y * image.width + x) * 3;
                image.data[p..p + 3].copy_from_slice(&colour);
            }
        }
    }
}

/// One shape to draw: class, centre and half-extents in pixels.
struct Shape {
    class: u32,
    cx: f32,
    cy: f32,
    hw: f32,
    hh: f32,
}

impl Shape {
    fn random(rng: &mut crate::seed::Rng, canvas: usize, min_s: f32, max_s: f32) -> Shape {
        // Sizes are log-uniform so that small objects are as common as large.
        let s = (rng.random_range(min_s.ln()..=max_s.ln())).exp();
        let aspect: f32 = rng.random_range(0.75..1.33);
        let (w, h) = if aspect >= 1.0 {
            (s / aspect, s)
        } else {
            (s, s * aspect)
        };
        let (hw, hh) = (w * 0.5, h * 0.5);
        let c = canvas as f32;
        // Centres keep at least two thirds of the shape inside the canvas.
        let cx = rng.random_range((hw * 0.35)..=(c - hw * 0.35));
        let cy = rng.random_range((hh * 0.35)..=(c - hh * 0.35));
        Shape {
            class: rng.random_range(0..SYNTH_CLASSES.len() as u32),
            cx,
            cy,
            hw,
            hh,
        }
    }

    /// The shape's full extent (before clipping to the canvas).
    fn outline(&self) -> BBox {
        BBox::new(
            self.cx - self.hw,
            self.cy - self.hh,
            self.cx + self.hw,
            self.cy + self.hh,
        )
    }

    /// True when the point (dx, dy), relative to the centre and divided by
    /// the half-extents, lies inside the shape.
    fn contains(&self, u: f32, v: f32) -> bool {
        match self.class {
            0 => u.abs() <= 1.0 && v.abs() <= 1.0,
            1 => u * u + v * v <= 1.0,
            2 => {
                let t = (v + 1.0) * 0.5;
                (0.0..=1.0).contains(&t) && u.abs() <= t
            }
            3 => (u.abs() <= 0.34 && v.abs() <= 1.0) || (v.abs() <= 0.34 && u.abs() <= 1.0),
            _ => {
                let r = u * u + v * v;
                (0.3..=1.0).contains(&r)
            }
        }
    }

    /// Draws the shape with slight shading noise and returns the tight box of
    /// the pixels it drew, or `None` if it drew none.
    fn draw(
        &self,
        image: &mut ImageBuffer,
        colour: [u8; 3],
        rng: &mut crate::seed::Rng,
    ) -> Option<BBox> {
        let (w, h) = (image.width as i64, image.height as i64);
        let x0 = ((self.cx - self.hw).floor() as i64).max(0);
        let x1 = ((self.cx + self.hw).ceil() as i64).min(w);
        let y0 = ((self.cy - self.hh).floor() as i64).max(0);
        let y1 = ((self.cy + self.hh).ceil() as i64).min(h);
        let shade: f32 = rng.random_range(0.8..1.0);
        let (mut bx0, mut by0, mut bx1, mut by1) = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
        for y in y0..y1 {
            let v = (y as f32 + 0.5 - self.cy) / self.hh;
            for x in x0..x1 {
                let u = (x as f32 + 0.5 - self.cx) / self.hw;
                if !self.contains(u, v) {
                    continue;
                }
                // A gentle gradient across the shape gives it texture.
                let g = shade * (1.0 - 0.15 * (u + v) * 0.5);
                let p = (y as usize * image.width + x as usize) * 3;
                for (out, &k) in image.data[p..p + 3].iter_mut().zip(&colour) {
                    *out = (k as f32 * g).clamp(0.0, 255.0) as u8;
                }
                bx0 = bx0.min(x);
                by0 = by0.min(y);
                bx1 = bx1.max(x + 1);
                by1 = by1.max(y + 1);
            }
        }
        (bx0 < bx1 && by0 < by1).then(|| BBox::new(bx0 as f32, by0 as f32, bx1 as f32, by1 as f32))
    }
}
