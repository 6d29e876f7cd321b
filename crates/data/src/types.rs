//! The plain data types every other module speaks.

use serde::{Deserialize, Serialize};

/// An 8-bit image stored row-major, channels interleaved (HWC).
///
/// `channels` is 1 (grayscale) or 3 (RGB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuffer {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// `width * height * channels` bytes.
    pub data: Vec<u8>,
}

impl ImageBuffer {
    /// A black image.
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        ImageBuffer {
            width,
            height,
            channels,
            data: vec![0; width * height * channels],
        }
    }

    /// The pixel at (x, y), channel c.
    #[inline]
    pub fn get(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// The same image with three channels (grayscale is replicated).
    pub fn to_rgb(&self) -> ImageBuffer {
        if self.channels == 3 {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.width * self.height * 3);
        for &v in &self.data {
            data.extend_from_slice(&[v, v, v]);
        }
        ImageBuffer {
            width: self.width,
            height: self.height,
            channels: 3,
            data,
        }
    }

    /// The same image with one channel (ITU-R 601 luma for RGB).
    pub fn to_gray(&self) -> ImageBuffer {
        if self.channels == 1 {
            return self.clone();
        }
        let data = self
            .data
            .chunks_exact(3)
            .map(|p| {
                ((299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32 + 500) / 1000) as u8
            })
            .collect();
        ImageBuffer {
            width: self.width,
            height: self.height,
            channels: 1,
            data,
        }
    }
}

/// An axis-aligned box in pixels, corners `(x0, y0)` (inclusive) and
/// `(x1, y1)` (exclusive), so `x1 - x0` is the width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

impl BBox {
    /// A box from its corners.
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        BBox { x0, y0, x1, y1 }
    }

    /// A box from COCO's `[x, y, width, height]`.
    pub fn from_xywh(b: [f64; 4]) -> Self {
        BBox::new(
            b[0] as f32,
            b[1] as f32,
            (b[0] + b[2]) as f32,
            (b[1] + b[3]) as f32,
        )
    }

    /// COCO's `[x, y, width, height]`.
    pub fn to_xywh(&self) -> [f64; 4] {
        [
            self.x0 as f64,
            self.y0 as f64,
            (self.x1 - self.x0) as f64,
            (self.y1 - self.y0) as f64,
        ]
    }

    /// Width (may be negative for an invalid box).
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    /// Height (may be negative for an invalid box).
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    /// Area, zero for an empty or inverted box.
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// True when every coordinate is finite.
    pub fn is_finite(&self) -> bool {
        self.x0.is_finite() && self.y0.is_finite() && self.x1.is_finite() && self.y1.is_finite()
    }

    /// The box clipped to `[0, width] × [0, height]`.
    pub fn clip(&self, width: f32, height: f32) -> BBox {
        BBox::new(
            self.x0.clamp(0.0, width),
            self.y0.clamp(0.0, height),
            self.x1.clamp(0.0, width),
            self.y1.clamp(0.0, height),
        )
    }

    /// Intersection over union with another box (0 when either is empty).
    pub fn iou(&self, other: &BBox) -> f32 {
        let iw = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let ih = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The box after `x' = x * scale + dx`, `y' = y * scale + dy`.
    pub fn affine(&self, scale_x: f32, scale_y: f32, dx: f32, dy: f32) -> BBox {
        BBox::new(
            self.x0 * scale_x + dx,
            self.y0 * scale_y + dy,
            self.x1 * scale_x + dx,
            self.y1 * scale_y + dy,
        )
    }
}

/// One object: a box, a contiguous class index and COCO's crowd flag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// The object's box in image pixels.
    pub bbox: BBox,
    /// Contiguous class index in `0..num_classes`.
    pub class: u32,
    /// COCO `iscrowd`: such boxes are neither positives nor negatives.
    pub crowd: bool,
}

/// One detection image with its objects.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionSample {
    /// The COCO image id (for generated data: the sample index + 1).
    pub image_id: u64,
    /// The decoded image.
    pub image: ImageBuffer,
    /// Its objects, in file order.
    pub annotations: Vec<Annotation>,
}

/// One classification image with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationSample {
    /// The decoded image.
    pub image: ImageBuffer,
    /// Class index in `0..num_classes`.
    pub label: u32,
}

/// Class names and, for COCO data, the mapping between the file's category
/// ids and isdet's contiguous class indices (`0..len`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassNames {
    names: Vec<String>,
    category_ids: Vec<u64>,
}

impl ClassNames {
    /// Classes whose category ids are `1..=names.len()` (COCO files written
    /// by isdet use these).
    pub fn new(names: Vec<String>) -> Self {
        let category_ids = (1..=names.len() as u64).collect();
        ClassNames {
            names,
            category_ids,
        }
    }

    /// Classes with explicit category ids; classes are ordered by ascending
    /// category id, as pycocotools and detectron do.
    pub fn from_categories(mut pairs: Vec<(u64, String)>) -> Self {
        pairs.sort_by_key(|(id, _)| *id);
        let (category_ids, names) = pairs.into_iter().unzip();
        ClassNames {
            names,
            category_ids,
        }
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, by class index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The category ids, by class index.
    pub fn category_ids(&self) -> &[u64] {
        &self.category_ids
    }

    /// The class index of a COCO category id, if it is known.
    pub fn class_of(&self, category_id: u64) -> Option<u32> {
        self.category_ids
            .binary_search(&category_id)
            .ok()
            .map(|i| i as u32)
    }

    /// The COCO category id of a class index, if it is in range.
    pub fn category_of(&self, class: u32) -> Option<u64> {
        self.category_ids.get(class as usize).copied()
    }
}

/// One detection in the COCO results format (what a results file holds,
/// what COCO evaluation reads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoResult {
    /// The image it was found in.
    pub image_id: u64,
    /// The category id (of the dataset, not a class index).
    pub category_id: u64,
    /// `[x, y, width, height]` in original image pixels.
    pub bbox: [f64; 4],
    /// Confidence.
    pub score: f64,
}
