//! A health check for COCO datasets on disk (`cargo xtask data check`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::coco::{BoxVerdict, judge_box};
use crate::error::Result;
use crate::io::{decode_image, read_json};

/// The kinds of defect the check reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectKind {
    /// Two images share an id.
    DuplicateImageId,
    /// Two annotations share an id.
    DuplicateAnnotationId,
    /// Two categories share an id.
    DuplicateCategoryId,
    /// An annotation names an image id that does not exist.
    UnknownImageId,
    /// An annotation names a category id that does not exist.
    UnknownCategoryId,
    /// A box extends outside its image.
    BoxOutsideImage,
    /// A box has zero or negative size, a non-finite coordinate, or is missing.
    DegenerateBox,
    /// An image file does not exist.
    MissingImage,
    /// An image file cannot be decoded.
    UndecodableImage,
    /// An image's decoded size differs from the size in the JSON.
    SizeMismatch,
}

/// One defect, with a message naming the ids or file involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Defect {
    /// What kind of defect.
    pub kind: DefectKind,
    /// Where and what, for a person.
    pub message: String,
}

/// The result of [`check_coco`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Image records in the JSON.
    pub images: usize,
    /// Annotation records in the JSON.
    pub annotations: usize,
    /// Category records in the JSON.
    pub classes: usize,
    /// Every defect found, in file order (image files last).
    pub defects: Vec<Defect>,
}

impl CheckReport {
    /// True when no defect was found.
    pub fn is_ok(&self) -> bool {
        self.defects.is_empty()
    }

    /// Number of defects of each kind, in a stable order.
    pub fn counts(&self) -> Vec<(DefectKind, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for d in &self.defects {
            *counts.entry(d.kind).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }
}

/// Checks a COCO annotations file and its images.
///
/// Returns `Err` only when the JSON cannot be read or parsed (the error
/// names file, line and column); every other problem is a [`Defect`] in the
/// report. `threads` image decoders run at once (at least one).
pub fn check_coco(json: &Path, image_dir: &Path, threads: usize) -> Result<CheckReport> {
    let file: hotcoco::Dataset = read_json(json)?;
    let mut report = CheckReport {
        images: file.images.len(),
        annotations: file.annotations.len(),
        classes: file.categories.len(),
        defects: Vec::new(),
    };
    let mut defect = |kind, message: String| report.defects.push(Defect { kind, message });

    let mut categories = HashSet::new();
    for c in &file.categories {
        if !categories.insert(c.id) {
            defect(
                DefectKind::DuplicateCategoryId,
                format!("category id {} appears more than once", c.id),
            );
        }
    }
    let mut sizes = HashMap::new();
    for im in &file.images {
        if sizes.insert(im.id, (im.width, im.height)).is_some() {
            defect(
                DefectKind::DuplicateImageId,
                format!("image id {} appears more than once", im.id),
            );
        }
    }
    let mut annotation_ids = HashSet::new();
    for a in &file.annotations {
        let at = format!("annotation {} (image {})", a.id, a.image_id);
        if !annotation_ids.insert(a.id) {
            defect(
                DefectKind::DuplicateAnnotationId,
                format!("{at}: id appears more than once"),
            );
        }
        if !categories.contains(&a.category_id) {
            defect(
                DefectKind::UnknownCategoryId,
                format!("{at}: unknown category id {}", a.category_id),
            );
        }
        let Some(&(w, h)) = sizes.get(&a.image_id) else {
            defect(
                DefectKind::UnknownImageId,
                format!("{at}: image id does not exist"),
            );
            continue;
        };
        match judge_box(a.bbox, w, h) {
            BoxVerdict::Valid(_) => {}
            BoxVerdict::Clipped(_) => defect(
                DefectKind::BoxOutsideImage,
                format!("{at}: box {:?} extends outside the {w}x{h} image", a.bbox),
            ),
            BoxVerdict::Degenerate(why) => defect(
                DefectKind::DegenerateBox,
                format!("{at}: box {:?} {why}", a.bbox),
            ),
        }
    }

    for d in check_images(&file.images, image_dir, threads.max(1)) {
        report.defects.push(d);
    }
    Ok(report)
}

/// Decodes every image on `threads` threads and reports missing, corrupt or
/// mis-sized files, in file order.
fn check_images(images: &[hotcoco::Image], dir: &Path, threads: usize) -> Vec<Defect> {
    match crate::par::map_in_order(images, threads, |im| check_image(im, dir)) {
        Some(found) => found.into_iter().flatten().collect(),
        None => vec![Defect {
            kind: DefectKind::UndecodableImage,
            message: "an image decoder thread panicked".into(),
        }],
    }
}

fn check_image(im: &hotcoco::Image, dir: &Path) -> Option<Defect> {
    let path = dir.join(&im.file_name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            return Some(Defect {
                kind: DefectKind::MissingImage,
                message: format!("image {}: {}: {e}", im.id, path.display()),
            });
        }
    };
    match decode_image(&bytes) {
        Err(e) => Some(Defect {
            kind: DefectKind::UndecodableImage,
            message: format!("image {}: {}: {e}", im.id, path.display()),
        }),
        Ok(img)
            if im.width != 0
                && im.height != 0
                && (img.width != im.width as usize || img.height != im.height as usize) =>
        {
            Some(Defect {
                kind: DefectKind::SizeMismatch,
                message: format!(
                    "image {}: {} is {}x{} but the JSON says {}x{}",
                    im.id,
                    path.display(),
                    img.width,
                    img.height,
                    im.width,
                    im.height
                ),
            })
        }
        Ok(_) => None,
    }
}
