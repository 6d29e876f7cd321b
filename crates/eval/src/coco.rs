//! COCO box evaluation through hotcoco (bit-identical to pycocotools).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use isdet_data::CocoResult;

use crate::error::{EvalError, Result};

/// The names of the 12 COCO summary statistics, in pycocotools' order.
pub const STAT_NAMES: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

/// One image of a ground-truth set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GtImage {
    /// The image id results refer to.
    pub id: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The file name (informative).
    #[serde(default)]
    pub file_name: String,
}

/// One ground-truth box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GtAnnotation {
    /// Annotation id (unique, from 1).
    pub id: u64,
    /// The image it belongs to.
    pub image_id: u64,
    /// The category id.
    pub category_id: u64,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
    /// The area COCO uses for its size ranges (the box area here).
    pub area: f64,
    /// 1 for a crowd region (neither matched nor missed), else 0.
    pub iscrowd: u8,
}

/// One category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GtCategory {
    /// The category id.
    pub id: u64,
    /// Its name.
    pub name: String,
}

/// A COCO ground-truth set for box evaluation, in the plain form
/// pycocotools reads: built in memory (for data such as synth that has no
/// file) or read from a file, and written out so that anyone can rescore a
/// run with pycocotools.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The images.
    pub images: Vec<GtImage>,
    /// The boxes.
    pub annotations: Vec<GtAnnotation>,
    /// The categories.
    pub categories: Vec<GtCategory>,
}

impl GroundTruth {
    /// An empty set with these `(id, name)` categories.
    pub fn new(categories: impl IntoIterator<Item = (u64, String)>) -> Self {
        Self {
            categories: categories
                .into_iter()
                .map(|(id, name)| GtCategory { id, name })
                .collect(),
            ..Self::default()
        }
    }

    /// Adds an image and its boxes, each `(category id, [x, y, w, h],
    /// crowd)`. Annotation ids continue from the last one.
    pub fn add_image(
        &mut self,
        image: GtImage,
        boxes: impl IntoIterator<Item = (u64, [f64; 4], bool)>,
    ) -> Result<()> {
        for (category_id, bbox, crowd) in boxes {
            if !bbox.iter().all(|v| v.is_finite()) || bbox[2] <= 0.0 || bbox[3] <= 0.0 {
                return Err(EvalError::Invalid {
                    what: format!("ground truth of image {}", image.id),
                    message: format!("box {bbox:?} is not a finite box of positive size"),
                });
            }
            let id = self.annotations.len() as u64 + 1;
            self.annotations.push(GtAnnotation {
                id,
                image_id: image.id,
                category_id,
                bbox,
                area: bbox[2] * bbox[3],
                iscrowd: u8::from(crowd),
            });
        }
        self.images.push(image);
        Ok(())
    }

    /// Reads a COCO annotation file (only the fields box evaluation needs;
    /// the rest is ignored).
    pub fn read(path: &Path) -> Result<Self> {
        read_json(path)
    }

    /// Writes the set as COCO JSON, atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
    }

    fn to_hotcoco(&self) -> hotcoco::COCO {
        let images = self
            .images
            .iter()
            .map(|i| hotcoco::Image {
                id: i.id,
                width: i.width,
                height: i.height,
                file_name: i.file_name.clone(),
                ..Default::default()
            })
            .collect();
        let annotations = self
            .annotations
            .iter()
            .map(|a| hotcoco::Annotation {
                id: a.id,
                image_id: a.image_id,
                category_id: a.category_id,
                bbox: Some(a.bbox),
                area: Some(a.area),
                iscrowd: a.iscrowd != 0,
                ..Default::default()
            })
            .collect();
        let categories = self
            .categories
            .iter()
            .map(|c| hotcoco::Category {
                id: c.id,
                name: c.name.clone(),
                ..Default::default()
            })
            .collect();
        hotcoco::COCO::from_dataset(hotcoco::Dataset {
            images,
            annotations,
            categories,
            ..Default::default()
        })
    }
}

/// Reads a COCO results file (a JSON array of detections).
pub fn read_results(path: &Path) -> Result<Vec<CocoResult>> {
    read_json(path)
}

/// Writes detections as a COCO results file, atomically.
pub fn write_results(path: &Path, results: &[CocoResult]) -> Result<()> {
    write_json_atomic(path, &results)
}

/// The COCO box metrics of one evaluation: the 12 summary statistics and
/// the AP of each category that has ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoxMetrics {
    /// The 12 statistics in [`STAT_NAMES`] order (−1 where COCO has no
    /// ground truth to compute one, as pycocotools prints).
    pub stats: [f64; 12],
    /// AP (IoU 0.5:0.95) per category name.
    pub per_class: BTreeMap<String, f64>,
    /// pycocotools' summary lines, as `cargo xtask eval` prints them.
    pub summary: Vec<String>,
}

impl BoxMetrics {
    /// A statistic by its name in [`STAT_NAMES`] (`"AP"`, `"AP50"`, …).
    pub fn get(&self, name: &str) -> Option<f64> {
        STAT_NAMES
            .iter()
            .position(|&n| n == name)
            .map(|i| self.stats[i])
    }

    /// The statistics as a name → value map (with `AP/<class>` entries).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        let mut map: BTreeMap<String, f64> = STAT_NAMES
            .iter()
            .zip(self.stats)
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        for (class, ap) in &self.per_class {
            map.insert(format!("AP/{class}"), *ap);
        }
        map
    }
}

/// Scores `results` against `gt` with the COCO box protocol (hotcoco,
/// bit-identical to pycocotools). Detections on images the ground truth
/// does not have, or of unknown categories, are an error naming the first.
pub fn evaluate_boxes(gt: &GroundTruth, results: &[CocoResult]) -> Result<BoxMetrics> {
    let image_ids: std::collections::HashSet<u64> = gt.images.iter().map(|i| i.id).collect();
    let category_ids: std::collections::HashSet<u64> = gt.categories.iter().map(|c| c.id).collect();
    for (k, r) in results.iter().enumerate() {
        let problem = if !image_ids.contains(&r.image_id) {
            Some(format!(
                "image id {} is not in the ground truth",
                r.image_id
            ))
        } else if !category_ids.contains(&r.category_id) {
            Some(format!(
                "category id {} is not in the ground truth",
                r.category_id
            ))
        } else if !(r.score.is_finite() && r.bbox.iter().all(|v| v.is_finite())) {
            Some(format!(
                "score {} or box {:?} is not finite",
                r.score, r.bbox
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(EvalError::Invalid {
                what: format!("detection {k}"),
                message,
            });
        }
    }
    let gt_coco = gt.to_hotcoco();
    let anns = results
        .iter()
        .map(|r| hotcoco::Annotation {
            image_id: r.image_id,
            category_id: r.category_id,
            bbox: Some(r.bbox),
            area: Some(r.bbox[2] * r.bbox[3]),
            score: Some(r.score),
            ..Default::default()
        })
        .collect();
    let dt = gt_coco
        .load_res_anns(anns)
        .map_err(|e| EvalError::Coco(e.to_string()))?;
    let mut ev = hotcoco::COCOeval::new(gt_coco, dt, hotcoco::params::IouType::Bbox);
    ev.evaluate().map_err(|e| EvalError::Coco(e.to_string()))?;
    ev.accumulate();
    ev.summarize_lines();
    let stats_slice = ev
        .stats()
        .ok_or_else(|| EvalError::Coco("no statistics after summarize".into()))?;
    if stats_slice.len() != 12 {
        return Err(EvalError::Coco(format!(
            "{} statistics instead of 12",
            stats_slice.len()
        )));
    }
    let mut stats = [0.0; 12];
    stats.copy_from_slice(stats_slice);
    let summary = summary_lines(&stats);
    let per_class = ev
        .get_results(None, true)
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("AP/").map(|c| (c.to_string(), v)))
        .collect();
    Ok(BoxMetrics {
        stats,
        per_class,
        summary,
    })
}

/// The 12 statistics as the lines pycocotools' `COCOeval.summarize()`
/// prints, character for character.
pub fn summary_lines(stats: &[f64; 12]) -> Vec<String> {
    // (AP?, IoU range, area, max detections) of each statistic, in order.
    const ROWS: [(bool, &str, &str, u32); 12] = [
        (true, "0.50:0.95", "all", 100),
        (true, "0.50", "all", 100),
        (true, "0.75", "all", 100),
        (true, "0.50:0.95", "small", 100),
        (true, "0.50:0.95", "medium", 100),
        (true, "0.50:0.95", "large", 100),
        (false, "0.50:0.95", "all", 1),
        (false, "0.50:0.95", "all", 10),
        (false, "0.50:0.95", "all", 100),
        (false, "0.50:0.95", "small", 100),
        (false, "0.50:0.95", "medium", 100),
        (false, "0.50:0.95", "large", 100),
    ];
    ROWS.iter()
        .zip(stats)
        .map(|(&(ap, iou, area, max_det), v)| {
            let (title, kind) = if ap {
                ("Average Precision", "(AP)")
            } else {
                ("Average Recall", "(AR)")
            };
            format!(" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6} | maxDets={max_det:>3} ] = {v:0.3}")
        })
        .collect()
}

/// Scores a results file against a ground-truth file.
pub fn evaluate_files(gt: &Path, results: &Path) -> Result<BoxMetrics> {
    evaluate_boxes(&GroundTruth::read(gt)?, &read_results(results)?)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EvalError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `value` as JSON to `path` through a temporary file in the same
/// folder and a rename, so a reader never sees half a file.
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let io = |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_vec(value).map_err(|e| EvalError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    isdet_base::write_atomic(path, &text).map_err(io)
}
