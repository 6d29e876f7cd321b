//! FCOS target assignment (Tian et al. 2019), on the CPU, no candle.
//!
//! Locations at stride `s` sit at `(j·s + s/2, i·s + s/2)`. A location is a
//! positive for a box when it lies inside the box's centre region (radius
//! `center_radius · s` around the box centre, clipped to the box) and the
//! largest of its distances `(l, t, r, b)` to the box sides falls in its
//! level's range; when several boxes qualify, the smallest-area box wins.
//! Locations inside a crowd box that are not positives are ignored
//! (neither positive nor negative).
//!
//! **Level ranges, scaled to the image size.** FCOS's ranges (0–64, 64–128,
//! 128–256 px for P3–P5 at 800 px) assume objects much smaller than the
//! image. isdet's images are small and its objects a large share of them, so
//! the ranges are fractions of the input side `S`: with `n` levels, level
//! `k` (0 = finest) takes max-distances in `(S / 2^(n−k+1), S / 2^(n−k)]`,
//! the first level starting at 0 and the last open-ended. For 3 levels at
//! `S = 96`: P3 ≤ 12 px, P4 12–24 px, P5 > 24 px.
//!
//! **At least one positive per box.** A box too small to contain any
//! location of its level (a 6 px object between stride-8 grid points) would
//! never be learnt. Such a box gets the free location nearest its centre on
//! the finest level; its regression target is the usual `(l, t, r, b)` and
//! its centre-ness target uses distances floored at a small positive value.

use isdet_data::Annotation;

use crate::error::{DetectorError, Result};

/// Label of a location that is neither positive nor negative.
pub const IGNORE: i64 = -2;
/// Label of a negative (background) location.
pub const BACKGROUND: i64 = -1;

/// One pyramid level's grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Stride in input pixels.
    pub stride: usize,
    /// Grid height.
    pub height: usize,
    /// Grid width.
    pub width: usize,
    /// Range `(lo, hi]` of the largest box-side distance this level takes.
    pub range: (f32, f32),
}

/// Every location of every level, finest level first, row-major within a
/// level (the order the head's outputs are concatenated in).
#[derive(Debug, Clone, PartialEq)]
pub struct Locations {
    levels: Vec<Level>,
    points: Vec<[f32; 2]>,
    level_of: Vec<usize>,
}

impl Locations {
    /// The locations of a square input of side `size` at the given strides
    /// (each must divide `size`), with the size-scaled ranges above.
    pub fn new(size: usize, strides: &[usize]) -> Result<Self> {
        let n = strides.len();
        let mut levels = Vec::with_capacity(n);
        for (k, &s) in strides.iter().enumerate() {
            if s == 0 || !size.is_multiple_of(s) {
                return Err(DetectorError::Config(format!(
                    "input size {size} is not a multiple of stride {s}"
                )));
            }
            let hi = if k + 1 == n {
                f32::INFINITY
            } else {
                size as f32 / (1u32 << (n - k)) as f32
            };
            let lo = if k == 0 {
                0.0
            } else {
                size as f32 / (1u32 << (n - k + 1)) as f32
            };
            levels.push(Level {
                stride: s,
                height: size / s,
                width: size / s,
                range: (lo, hi),
            });
        }
        let mut points = Vec::new();
        let mut level_of = Vec::new();
        for (k, l) in levels.iter().enumerate() {
            let s = l.stride as f32;
            for i in 0..l.height {
                for j in 0..l.width {
                    points.push([j as f32 * s + s / 2.0, i as f32 * s + s / 2.0]);
                    level_of.push(k);
                }
            }
        }
        Ok(Locations {
            levels,
            points,
            level_of,
        })
    }

    /// Total number of locations.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when there are no locations.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The levels.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// Centre of location `i` in input pixels.
    pub fn point(&self, i: usize) -> [f32; 2] {
        self.points[i]
    }

    /// Stride of location `i`.
    pub fn stride(&self, i: usize) -> f32 {
        self.levels[self.level_of[i]].stride as f32
    }

    /// Level index of location `i`.
    pub fn level(&self, i: usize) -> usize {
        self.level_of[i]
    }
}

/// Training targets of a batch, flattened `[B, L]` (and `[B, L, 4]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// Batch size.
    pub batch: usize,
    /// Locations per image.
    pub locations: usize,
    /// Class index of positives, [`BACKGROUND`] or [`IGNORE`].
    pub labels: Vec<i64>,
    /// `(l, t, r, b) / stride` of positives (zeros elsewhere).
    pub ltrb: Vec<f32>,
    /// Centre-ness target of positives (zeros elsewhere).
    pub centerness: Vec<f32>,
}

impl Targets {
    /// Positives of image `b`.
    pub fn num_positives(&self, b: usize) -> usize {
        self.labels[b * self.locations..(b + 1) * self.locations]
            .iter()
            .filter(|&&l| l >= 0)
            .count()
    }
}

/// Distances `(l, t, r, b)` from a point to the sides of a box.
fn distances(p: [f32; 2], a: &Annotation) -> [f32; 4] {
    [
        p[0] - a.bbox.x0,
        p[1] - a.bbox.y0,
        a.bbox.x1 - p[0],
        a.bbox.y1 - p[1],
    ]
}

fn centerness(d: [f32; 4]) -> f32 {
    let d = d.map(|v| v.max(1e-2));
    ((d[0].min(d[2]) / d[0].max(d[2])) * (d[1].min(d[3]) / d[1].max(d[3]))).sqrt()
}

/// Assigns targets for a batch: `boxes[b]` are image `b`'s objects in input
/// pixels. Fails when a class index is not below `num_classes`.
pub fn assign(
    locs: &Locations,
    boxes: &[&[Annotation]],
    num_classes: usize,
    center_radius: f32,
) -> Result<Targets> {
    let l = locs.len();
    let mut t = Targets {
        batch: boxes.len(),
        locations: l,
        labels: vec![BACKGROUND; boxes.len() * l],
        ltrb: vec![0.0; boxes.len() * l * 4],
        centerness: vec![0.0; boxes.len() * l],
    };
    for (b, anns) in boxes.iter().enumerate() {
        if let Some(a) = anns.iter().find(|a| a.class as usize >= num_classes) {
            return Err(DetectorError::Input(format!(
                "image {b} of the batch has class {} but the model has {num_classes} classes",
                a.class
            )));
        }
        assign_image(locs, anns, center_radius, &mut t, b);
    }
    Ok(t)
}

fn assign_image(locs: &Locations, anns: &[Annotation], radius: f32, t: &mut Targets, b: usize) {
    let base = b * locs.len();
    let mut owner: Vec<Option<usize>> = vec![None; locs.len()];
    for (i, slot) in owner.iter_mut().enumerate() {
        let p = locs.point(i);
        let s = locs.stride(i);
        let (lo, hi) = locs.levels[locs.level(i)].range;
        let mut best: Option<(f32, usize)> = None;
        let mut in_crowd = false;
        for (k, a) in anns.iter().enumerate() {
            let d = distances(p, a);
            if d.iter().any(|&v| v <= 0.0) {
                continue;
            }
            if a.crowd {
                in_crowd = true;
                continue;
            }
            let (cx, cy) = ((a.bbox.x0 + a.bbox.x1) / 2.0, (a.bbox.y0 + a.bbox.y1) / 2.0);
            let r = radius * s;
            let in_centre = p[0] > (cx - r).max(a.bbox.x0)
                && p[0] < (cx + r).min(a.bbox.x1)
                && p[1] > (cy - r).max(a.bbox.y0)
                && p[1] < (cy + r).min(a.bbox.y1);
            let m = d.iter().cloned().fold(0.0f32, f32::max);
            if in_centre && m > lo && m <= hi {
                let area = a.bbox.area();
                if best.is_none_or(|(ba, _)| area < ba) {
                    best = Some((area, k));
                }
            }
        }
        match best {
            Some((_, k)) => *slot = Some(k),
            None if in_crowd => t.labels[base + i] = IGNORE,
            None => {}
        }
    }
    ensure_one_positive(locs, anns, &mut owner, t, base);
    for (i, o) in owner.iter().enumerate() {
        if let Some(k) = *o {
            let a = &anns[k];
            let d = distances(locs.point(i), a);
            let s = locs.stride(i);
            t.labels[base + i] = a.class as i64;
            for (c, v) in d.iter().enumerate() {
                t.ltrb[(base + i) * 4 + c] = v / s;
            }
            t.centerness[base + i] = centerness(d);
        }
    }
}

/// Gives every non-crowd box without a positive the free finest-level
/// location nearest its centre.
fn ensure_one_positive(
    locs: &Locations,
    anns: &[Annotation],
    owner: &mut [Option<usize>],
    t: &Targets,
    base: usize,
) {
    let finest = locs.levels[0];
    let n0 = finest.height * finest.width;
    for (k, a) in anns.iter().enumerate() {
        if a.crowd || owner.contains(&Some(k)) {
            continue;
        }
        let (cx, cy) = ((a.bbox.x0 + a.bbox.x1) / 2.0, (a.bbox.y0 + a.bbox.y1) / 2.0);
        let nearest = (0..n0)
            .filter(|&i| owner[i].is_none() && t.labels[base + i] != IGNORE)
            .min_by(|&i, &j| {
                let dist = |q: usize| {
                    let p = locs.point(q);
                    (p[0] - cx).powi(2) + (p[1] - cy).powi(2)
                };
                dist(i).total_cmp(&dist(j))
            });
        if let Some(i) = nearest {
            owner[i] = Some(k);
        }
    }
}
