//! The gallery: a fixed choice of validation images, each with its ground
//! truth on the left and the best run's predictions on the right, so a
//! reader sees what the numbers mean before trusting them.

use std::path::Path;

use isdet_data::{Dataset, ImageBuffer};
use isdet_trainer::files;

use crate::draw::{Canvas, Mark};
use crate::images::RunImages;

/// The file name of the gallery, relative to `plots/`.
pub const GALLERY_PLOT: &str = "gallery.png";

/// Validation images shown.
const IMAGES: usize = 12;
/// Pairs per row.
const COLUMNS: usize = 3;
/// The longer side of each shown image, in pixels.
const SIDE: f64 = 256.0;
/// Space between images, and the height of a caption line.
const GAP: u32 = 12;
const CAPTION: u32 = 22;
/// Predictions scoring below this are not drawn.
pub const SCORE_THRESHOLD: f64 = 0.3;

/// The validation images shown: evenly spaced through the set, the same
/// for every report of the same data.
fn chosen(len: usize) -> Vec<usize> {
    let n = IMAGES.min(len);
    (0..n).map(|k| k * len / n).collect()
}

/// Draws the gallery of the run in `run_dir` (its `predictions.json`)
/// into `path`; `label` names the run in the caption.
pub(crate) fn write_gallery(
    path: &Path,
    run_dir: &Path,
    label: &str,
    images: &RunImages,
) -> Result<(), String> {
    let val = images.val().ok_or("not a detection run")?;
    let predictions_path = run_dir.join(files::PREDICTIONS);
    let predictions = isdet_eval::read_results(&predictions_path).map_err(|e| e.to_string())?;
    let samples = chosen(val.len())
        .into_iter()
        .map(|i| val.get(i).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, String>>()?;
    let rows = samples.len().div_ceil(COLUMNS) as u32;
    let cell_w = 2 * SIDE as u32 + GAP;
    let cell_h = SIDE as u32 + CAPTION;
    let width = COLUMNS as u32 * (cell_w + 2 * GAP);
    let height = CAPTION * 2 + rows * (cell_h + GAP);
    let mut canvas = Canvas::new(width, height);
    let mut marks = vec![Mark::Text {
        at: (GAP as i32, 6),
        text: format!(
            "left: ground truth; right: {label}, detections scoring at least {SCORE_THRESHOLD}"
        ),
        size: 18,
    }];
    for (k, sample) in samples.iter().enumerate() {
        let x = GAP + (k % COLUMNS) as u32 * (cell_w + 2 * GAP);
        let y = CAPTION * 2 + (k / COLUMNS) as u32 * (cell_h + GAP);
        let scale = SIDE / sample.image.width.max(sample.image.height) as f64;
        let classes = images.classes();
        let truth = sample.annotations.iter().map(|a| {
            let b = a.bbox;
            let rect = [b.x0, b.y0, b.x1, b.y1].map(f64::from);
            Mark::object(rect, a.class as usize, classes, None)
        });
        marks.extend(place(&mut canvas, &sample.image, (x, y), scale, truth));
        let found = predictions
            .iter()
            .filter(|r| r.image_id == sample.image_id && r.score >= SCORE_THRESHOLD)
            .map(|r| Mark::detection(r, classes));
        let right = x + SIDE as u32 + GAP;
        marks.extend(place(&mut canvas, &sample.image, (right, y), scale, found));
        marks.push(Mark::Text {
            at: (x as i32, (y + SIDE as u32 + 3) as i32),
            text: format!("image {}", sample.image_id),
            size: 14,
        });
    }
    canvas
        .draw(&marks)
        .and_then(|()| canvas.save(path))
        .map_err(|e| e.to_string())
}

/// Pastes `image` at `at`, scaled, and returns its marks moved onto the
/// canvas.
fn place(
    canvas: &mut Canvas,
    image: &ImageBuffer,
    at: (u32, u32),
    scale: f64,
    marks: impl Iterator<Item = Mark>,
) -> Vec<Mark> {
    canvas.paste(image, at.0, at.1, scale);
    marks.map(|m| m.placed(at, scale)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_is_evenly_spaced_and_never_repeats() {
        assert_eq!(chosen(24), vec![0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]);
        assert_eq!(chosen(5), vec![0, 1, 2, 3, 4]);
        assert!(chosen(0).is_empty());
    }
}
