//! Thumbnail sheets: a run's most- and least-trained training images,
//! each captioned with how often it was trained and its last score, so a
//! reader sees what a heuristic favoured and what it starved.

use std::path::Path;

use isdet_trainer::SamplingRecord;

use crate::draw::{Canvas, Mark};
use crate::images::RunImages;

/// Images in each half of a sheet.
pub const PER_SIDE: usize = 16;
const COLUMNS: usize = 8;
/// The longer side of a thumbnail, in pixels.
const THUMB: f64 = 96.0;
const GAP: u32 = 10;
const HEADING: u32 = 30;
/// Two caption lines under each thumbnail.
const CAPTION: u32 = 30;

/// The `n` most-trained and the `n` least-trained images. Ties are broken
/// in a fixed pseudo-random order of the indices: datasets are often
/// stored sorted by class, and when many images tie (every image never
/// trained, say), taking the lowest indices would show one class only.
pub(crate) fn extremes(trained: &[u32], n: usize) -> (Vec<usize>, Vec<usize>) {
    let tie = |i: usize| isdet_base::seed::key(&[TIE_ORDER, i as u64]);
    let mut order: Vec<usize> = (0..trained.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(trained[i]), tie(i)));
    let most = order.iter().copied().take(n).collect();
    order.sort_by_key(|&i| (trained[i], tie(i)));
    let least = order.iter().copied().take(n).collect();
    (most, least)
}

/// The stream key of the tie order.
const TIE_ORDER: u64 = 0x7469_6573;

/// A file name for the sheet of group `method @ budget`, safe on any
/// file system.
pub(crate) fn file_name(method: &str, budget: f64) -> String {
    let safe: String = method
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("trained_{safe}_{:.0}.png", budget * 100.0)
}

/// Draws the sheet of `record` (a run of `title`) into `path`.
pub(crate) fn write_sheet(
    path: &Path,
    title: &str,
    record: &SamplingRecord,
    images: &RunImages,
) -> Result<(), String> {
    let (most, least) = extremes(&record.trained, PER_SIDE);
    let rows = PER_SIDE.div_ceil(COLUMNS) as u32;
    let cell = (THUMB as u32 + GAP, THUMB as u32 + CAPTION);
    let block = HEADING + rows * cell.1;
    let mut canvas = Canvas::new(GAP + COLUMNS as u32 * cell.0, HEADING + 2 * block);
    let mut marks = vec![Mark::Text {
        at: (GAP as i32, 6),
        text: title.to_string(),
        size: 18,
    }];
    for (b, (heading, ids)) in [("most trained", &most), ("least trained", &least)]
        .into_iter()
        .enumerate()
    {
        let top = HEADING + b as u32 * block;
        marks.push(Mark::Text {
            at: (GAP as i32, top as i32 + 8),
            text: heading.to_string(),
            size: 16,
        });
        for (k, &id) in ids.iter().enumerate() {
            let x = GAP + (k % COLUMNS) as u32 * cell.0;
            let y = top + HEADING + (k / COLUMNS) as u32 * cell.1;
            let image = images.train_image(id)?;
            let scale = THUMB / image.width.max(image.height) as f64;
            canvas.paste(&image, x, y, scale);
            let score = record.last_score.get(id).copied().flatten();
            let lines = [
                format!("#{id} ×{}", record.trained[id]),
                score.map_or_else(|| "not scored".to_string(), |s| format!("score {s:.3}")),
            ];
            for (l, text) in lines.into_iter().enumerate() {
                marks.push(Mark::Text {
                    at: (x as i32, (y + THUMB as u32 + 2 + 13 * l as u32) as i32),
                    text,
                    size: 12,
                });
            }
        }
    }
    canvas
        .draw(&marks)
        .and_then(|()| canvas.save(path))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_take_the_highest_and_lowest_counts() {
        let trained = [2, 5, 0, 5, 1, 0];
        let (most, least) = extremes(&trained, 3);
        let (mut top, mut bottom) = (most[..2].to_vec(), least[..2].to_vec());
        top.sort_unstable();
        bottom.sort_unstable();
        assert_eq!((top, most[2]), (vec![1, 3], 0));
        assert_eq!((bottom, least[2]), (vec![2, 5], 4));
    }

    #[test]
    fn ties_are_drawn_from_the_whole_set_not_its_start() {
        // 1,000 images never trained: the sheet's 16 must not all come
        // from the first hundred (a class-sorted set's first class).
        let trained = vec![0; 1000];
        let (_, least) = extremes(&trained, 16);
        assert!(
            least.iter().filter(|&&i| i >= 100).count() >= 8,
            "{least:?}"
        );
        assert_eq!(least, extremes(&trained, 16).1, "the order is fixed");
    }

    #[test]
    fn sheet_names_keep_only_safe_characters() {
        assert_eq!(
            file_name("unif-sgd+mixup", 0.3),
            "trained_unif-sgd_mixup_30.png"
        );
    }
}
