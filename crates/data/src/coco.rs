//! COCO detection datasets on disk: a reader ([`CocoDataset`]) and a writer
//! ([`CocoWriter`]).
//!
//! The JSON schema is hotcoco's (`hotcoco::Dataset`), so anything
//! pycocotools reads, isdet reads. Category ids map to contiguous class
//! indices in ascending id order.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::dataset::{Dataset, check_index};
use crate::error::{DataError, Result};
use crate::io::{encode_png, read_image, read_json, write_atomic};
use crate::types::{Annotation, BBox, ClassNames, DetectionSample};

/// How strictly a COCO file is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CocoOptions {
    /// When true, a box partly outside its image or a degenerate box (zero
    /// or negative size, non-finite, missing) is an error instead of being
    /// clipped or dropped and counted.
    pub strict: bool,
}

/// What reading a COCO file found and fixed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LoadStats {
    /// Images in the file.
    pub images: usize,
    /// Annotations kept.
    pub annotations: usize,
    /// Boxes partly outside their image, clipped to it.
    pub clipped: usize,
    /// Degenerate boxes dropped (after clipping: zero or negative width or
    /// height, non-finite coordinates, or no box at all).
    pub dropped: usize,
}

#[derive(Debug, Clone)]
struct ImageRecord {
    id: u64,
    file_name: String,
    width: u32,
    height: u32,
}

/// A COCO-format detection dataset: annotations JSON plus an image folder.
///
/// Images are decoded on each [`get`](Dataset::get), so memory stays small
/// and loader workers decode in parallel.
#[derive(Debug, Clone)]
pub struct CocoDataset {
    json_path: PathBuf,
    image_dir: PathBuf,
    classes: ClassNames,
    images: Vec<ImageRecord>,
    annotations: Vec<Vec<Annotation>>,
    stats: LoadStats,
}

/// Outcome of checking one box against its image.
pub(crate) enum BoxVerdict {
    Valid(BBox),
    Clipped(BBox),
    Degenerate(&'static str),
}

/// Clips a COCO `[x, y, w, h]` box to a `width × height` image (sizes of 0
/// mean unknown: no clipping) and says whether what is left is usable.
pub(crate) fn judge_box(bbox: Option<[f64; 4]>, width: u32, height: u32) -> BoxVerdict {
    let Some(raw) = bbox else {
        return BoxVerdict::Degenerate("has no bbox");
    };
    let b = BBox::from_xywh(raw);
    if !b.is_finite() || raw.iter().any(|v| !v.is_finite()) {
        return BoxVerdict::Degenerate("has a non-finite coordinate");
    }
    if raw[2] <= 0.0 || raw[3] <= 0.0 {
        return BoxVerdict::Degenerate("has zero or negative size");
    }
    if width == 0 || height == 0 {
        return BoxVerdict::Valid(b);
    }
    let clipped = b.clip(width as f32, height as f32);
    if clipped.width() <= 0.0 || clipped.height() <= 0.0 {
        return BoxVerdict::Degenerate("lies entirely outside the image");
    }
    if clipped == b {
        BoxVerdict::Valid(b)
    } else {
        BoxVerdict::Clipped(clipped)
    }
}

impl CocoDataset {
    /// Reads `json` (the annotations) and indexes images under `image_dir`.
    ///
    /// Fails with the file, line and column on malformed JSON; with the
    /// offending id on duplicate image or category ids, on annotations that
    /// name an unknown image or category, and (in strict mode) on boxes that
    /// would otherwise be clipped or dropped.
    pub fn open(json: &Path, image_dir: &Path, options: CocoOptions) -> Result<Self> {
        let file: hotcoco::Dataset = read_json(json)?;
        let coco_err = |message: String| DataError::Coco {
            path: json.to_path_buf(),
            message,
        };

        let mut seen_cats = HashSet::new();
        for c in &file.categories {
            if !seen_cats.insert(c.id) {
                return Err(coco_err(format!("duplicate category id {}", c.id)));
            }
        }
        let classes = ClassNames::from_categories(
            file.categories
                .iter()
                .map(|c| (c.id, c.name.clone()))
                .collect(),
        );

        let mut index_of = HashMap::with_capacity(file.images.len());
        let mut images = Vec::with_capacity(file.images.len());
        for (i, im) in file.images.iter().enumerate() {
            if index_of.insert(im.id, i).is_some() {
                return Err(coco_err(format!("duplicate image id {}", im.id)));
            }
            if im.file_name.is_empty() {
                return Err(coco_err(format!("image {} has no file_name", im.id)));
            }
            images.push(ImageRecord {
                id: im.id,
                file_name: im.file_name.clone(),
                width: im.width,
                height: im.height,
            });
        }

        let mut stats = LoadStats {
            images: images.len(),
            ..LoadStats::default()
        };
        let mut annotations = vec![Vec::new(); images.len()];
        for a in &file.annotations {
            let ann_err = |message: String| DataError::Annotation {
                path: json.to_path_buf(),
                annotation_id: a.id,
                image_id: a.image_id,
                message,
            };
            let Some(&slot) = index_of.get(&a.image_id) else {
                return Err(ann_err("refers to an image id that does not exist".into()));
            };
            let Some(class) = classes.class_of(a.category_id) else {
                return Err(ann_err(format!("unknown category id {}", a.category_id)));
            };
            let rec = &images[slot];
            let bbox = match judge_box(a.bbox, rec.width, rec.height) {
                BoxVerdict::Valid(b) => b,
                BoxVerdict::Clipped(b) if !options.strict => {
                    stats.clipped += 1;
                    b
                }
                BoxVerdict::Clipped(_) => {
                    return Err(ann_err("box extends outside the image".into()));
                }
                BoxVerdict::Degenerate(why) if options.strict => {
                    return Err(ann_err(format!("box {why}")));
                }
                BoxVerdict::Degenerate(_) => {
                    stats.dropped += 1;
                    continue;
                }
            };
            stats.annotations += 1;
            annotations[slot].push(Annotation {
                bbox,
                class,
                crowd: a.iscrowd,
            });
        }

        Ok(CocoDataset {
            json_path: json.to_path_buf(),
            image_dir: image_dir.to_path_buf(),
            classes,
            images,
            annotations,
            stats,
        })
    }

    /// What loading found and fixed.
    pub fn stats(&self) -> LoadStats {
        self.stats
    }

    /// The annotations file this dataset was read from.
    pub fn json_path(&self) -> &Path {
        &self.json_path
    }

    /// The COCO image id of sample `index`.
    pub fn image_id(&self, index: usize) -> Option<u64> {
        self.images.get(index).map(|r| r.id)
    }

    /// The image file of sample `index`.
    pub fn image_path(&self, index: usize) -> Option<PathBuf> {
        self.images
            .get(index)
            .map(|r| self.image_dir.join(&r.file_name))
    }

    /// The annotations of sample `index`, without decoding its image.
    pub fn annotations(&self, index: usize) -> Option<&[Annotation]> {
        self.annotations.get(index).map(Vec::as_slice)
    }
}

impl Dataset for CocoDataset {
    type Sample = DetectionSample;

    fn len(&self) -> usize {
        self.images.len()
    }

    fn get(&self, index: usize) -> Result<DetectionSample> {
        check_index(index, self.images.len())?;
        let rec = &self.images[index];
        let path = self.image_dir.join(&rec.file_name);
        let image = read_image(&path)?;
        let known = rec.width != 0 && rec.height != 0;
        if known && (image.width != rec.width as usize || image.height != rec.height as usize) {
            return Err(DataError::Image {
                path,
                message: format!(
                    "decoded size {}x{} differs from {}x{} in {}",
                    image.width,
                    image.height,
                    rec.width,
                    rec.height,
                    self.json_path.display()
                ),
            });
        }
        let mut annotations = self.annotations[index].clone();
        if !known {
            // Sizes absent from the JSON: clip now that the image says them.
            let (w, h) = (image.width as f32, image.height as f32);
            annotations
                .iter_mut()
                .for_each(|a| a.bbox = a.bbox.clip(w, h));
            annotations.retain(|a| a.bbox.width() > 0.0 && a.bbox.height() > 0.0);
        }
        Ok(DetectionSample {
            image_id: rec.id,
            image,
            annotations,
        })
    }

    fn class_names(&self) -> &ClassNames {
        &self.classes
    }
}

#[derive(Serialize)]
struct OutFile<'a> {
    info: OutInfo<'a>,
    images: Vec<OutImage>,
    annotations: Vec<OutAnnotation>,
    categories: Vec<OutCategory<'a>>,
}

#[derive(Serialize)]
struct OutInfo<'a> {
    description: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct OutImage {
    id: u64,
    file_name: String,
    width: usize,
    height: usize,
}

#[derive(Serialize)]
struct OutAnnotation {
    id: u64,
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    area: f64,
    iscrowd: u8,
}

#[derive(Serialize)]
struct OutCategory<'a> {
    id: u64,
    name: &'a str,
    supercategory: &'a str,
}

/// Writes a COCO detection dataset: one PNG per image under
/// `root/<split>/` and `root/instances_<split>.json`.
///
/// Samples are written in the order they are added; the same samples give
/// byte-identical files. The JSON is written atomically by
/// [`finish`](CocoWriter::finish).
#[derive(Debug)]
pub struct CocoWriter {
    root: PathBuf,
    split: String,
    classes: ClassNames,
    description: String,
    images: Vec<OutImageRecord>,
    next_annotation_id: u64,
}

#[derive(Debug)]
struct OutImageRecord {
    id: u64,
    file_name: String,
    width: usize,
    height: usize,
    annotations: Vec<(u64, u64, [f64; 4], bool)>,
}

impl CocoWriter {
    /// A writer for split `split` (e.g. `train`) under `root`.
    pub fn new(root: &Path, split: &str, classes: &ClassNames, description: &str) -> Result<Self> {
        let dir = root.join(split);
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        Ok(CocoWriter {
            root: root.to_path_buf(),
            split: split.to_string(),
            classes: classes.clone(),
            description: description.to_string(),
            images: Vec::new(),
            next_annotation_id: 1,
        })
    }

    /// The image folder of this split.
    pub fn image_dir(&self) -> PathBuf {
        self.root.join(&self.split)
    }

    /// The annotations file [`finish`](CocoWriter::finish) writes.
    pub fn json_path(&self) -> PathBuf {
        self.root.join(format!("instances_{}.json", self.split))
    }

    /// Writes the sample's image as `<image_id:06>.png` and records its
    /// annotations. Image ids must be unique within a split.
    pub fn add(&mut self, sample: &DetectionSample) -> Result<()> {
        let png = encode_png(&sample.image)?;
        self.add_encoded(sample, &png)
    }

    /// Like [`add`](CocoWriter::add) with the PNG already encoded (so callers
    /// can encode on several threads and add in order).
    pub fn add_encoded(&mut self, sample: &DetectionSample, png: &[u8]) -> Result<()> {
        let file_name = format!("{:06}.png", sample.image_id);
        write_atomic(&self.image_dir().join(&file_name), png)?;
        let mut annotations = Vec::with_capacity(sample.annotations.len());
        for a in &sample.annotations {
            let category = self.classes.category_of(a.class).ok_or_else(|| {
                DataError::Config(format!(
                    "image {}: class index {} has no category ({} classes)",
                    sample.image_id,
                    a.class,
                    self.classes.len()
                ))
            })?;
            annotations.push((self.next_annotation_id, category, a.bbox.to_xywh(), a.crowd));
            self.next_annotation_id += 1;
        }
        self.images.push(OutImageRecord {
            id: sample.image_id,
            file_name,
            width: sample.image.width,
            height: sample.image.height,
            annotations,
        });
        Ok(())
    }

    /// Adds scenes `0..len` made by `make`, generated and PNG-encoded on
    /// up to `threads` threads and written in order; `progress(k)` after
    /// each `k` scenes written.
    pub fn add_generated(
        &mut self,
        len: usize,
        threads: usize,
        make: impl Fn(usize) -> Result<DetectionSample> + Sync,
        mut progress: impl FnMut(usize),
    ) -> Result<()> {
        // Chunks bound the memory held at once; each is fanned out.
        const CHUNK: usize = 256;
        for start in (0..len).step_by(CHUNK) {
            let ids: Vec<usize> = (start..(start + CHUNK).min(len)).collect();
            let encode = |&i: &usize| -> Result<(DetectionSample, Vec<u8>)> {
                let sample = make(i)?;
                let png = encode_png(&sample.image)?;
                Ok((sample, png))
            };
            let encoded = crate::par::map_in_order(&ids, threads, encode)
                .ok_or_else(|| DataError::Config("a scene generator thread panicked".into()))?;
            for item in encoded {
                let (sample, png) = item?;
                self.add_encoded(&sample, &png)?;
            }
            progress(ids.len());
        }
        Ok(())
    }

    /// Writes the annotations JSON and returns its path.
    pub fn finish(self) -> Result<PathBuf> {
        let path = self.json_path();
        let mut out = OutFile {
            info: OutInfo {
                description: &self.description,
                version: "1.0",
            },
            images: Vec::with_capacity(self.images.len()),
            annotations: Vec::new(),
            categories: self
                .classes
                .names()
                .iter()
                .zip(self.classes.category_ids())
                .map(|(name, &id)| OutCategory {
                    id,
                    name,
                    supercategory: "object",
                })
                .collect(),
        };
        for im in self.images {
            for (id, category_id, bbox, crowd) in im.annotations {
                out.annotations.push(OutAnnotation {
                    id,
                    image_id: im.id,
                    category_id,
                    bbox,
                    area: bbox[2] * bbox[3],
                    iscrowd: crowd as u8,
                });
            }
            out.images.push(OutImage {
                id: im.id,
                file_name: im.file_name,
                width: im.width,
                height: im.height,
            });
        }
        let json = serde_json::to_vec(&out)
            .map_err(|e| DataError::Config(format!("cannot serialise COCO file: {e}")))?;
        write_atomic(&path, &json)?;
        Ok(path)
    }
}
