//! The draws split by what the training images hold: generated training
//! sets with a regime (empty frames, noisy or missing boxes, clips of
//! near-duplicate frames) carry a tags file (`isdet_data::RegimeTags`,
//! one entry per image in training order), and a run's `sampling.json`
//! says how often each image was trained. Together they say whether a
//! sampler spent its budget on empty frames, chased mislabelled ones, or
//! trained one frame of a clip over and over.

use std::collections::BTreeMap;
use std::path::Path;

use isdet_data::{ImageTags, RegimeTags};
use isdet_trainer::{RunConfig, SamplingRecord, files};

use crate::aggregate::TagShares;
use crate::curves::mean;

/// The tags of the training set of the run in `run_dir`, through its
/// `config.json`; `None` when the run has no configuration or its data
/// no tags file (data without a regime). A tags file that cannot be read
/// is an error naming it.
pub(crate) fn run_tags(run_dir: &Path) -> Result<Option<RegimeTags>, String> {
    let config_path = run_dir.join(files::CONFIG);
    if !config_path.is_file() {
        return Ok(None);
    }
    let config = RunConfig::load(&config_path, &[]).map_err(|e| e.to_string())?;
    let Some(path) = config.data.train_tags_path() else {
        return Ok(None);
    };
    if !path.is_file() {
        return Ok(None);
    }
    RegimeTags::read(&path).map(Some).map_err(|e| e.to_string())
}

/// The shares of `tags` over the draws of `records` (means over them).
/// A record of another length than the tags is an error: it is not a run
/// on this data.
pub(crate) fn tag_shares(
    records: &[&SamplingRecord],
    tags: &RegimeTags,
) -> Result<TagShares, String> {
    let images = &tags.images;
    if let Some(r) = records.iter().find(|r| r.trained.len() != images.len()) {
        return Err(format!(
            "the tags file has {} images but sampling.json has {}",
            images.len(),
            r.trained.len()
        ));
    }
    if records.is_empty() || images.is_empty() {
        return Err("no sampling records or no tagged images".into());
    }
    let frames = |is: fn(&ImageTags) -> bool| {
        images.iter().filter(|t| is(t)).count() as f64 / images.len() as f64
    };
    let draws = |is: fn(&ImageTags) -> bool| {
        mean(records.iter().map(|r| draw_share(&r.trained, images, is))).unwrap_or(0.0)
    };
    let clips = clips(images);
    let spreads: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| clip_spread(&r.trained, &clips))
        .collect();
    Ok(TagShares {
        empty_frames: frames(|t| t.empty),
        empty_draws: draws(|t| t.empty),
        noisy_frames: frames(|t| t.noisy > 0),
        noisy_draws: draws(|t| t.noisy > 0),
        missing_frames: frames(|t| t.missing > 0),
        missing_draws: draws(|t| t.missing > 0),
        clips: clips.len(),
        frames_per_clip: images.len() as f64 / clips.len().max(1) as f64,
        clip_top_share: mean(spreads.iter().map(|s| s.0)),
        clip_even_share: mean(spreads.iter().map(|s| s.1)),
    })
}

/// The share of the draws (train counts) spent on the images `is` picks;
/// 0 when nothing was drawn.
fn draw_share(trained: &[u32], images: &[ImageTags], is: fn(&ImageTags) -> bool) -> f64 {
    let total: f64 = trained.iter().map(|&c| f64::from(c)).sum();
    if total == 0.0 {
        return 0.0;
    }
    let picked: f64 = trained
        .iter()
        .zip(images)
        .filter(|(_, t)| is(t))
        .map(|(&c, _)| f64::from(c))
        .sum();
    picked / total
}

/// The training indices of each clip's frames.
fn clips(images: &[ImageTags]) -> Vec<Vec<usize>> {
    let mut by_clip: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, t) in images.iter().enumerate() {
        by_clip.entry(t.clip).or_default().push(i);
    }
    by_clip.into_values().collect()
}

/// Over the clips of two or more frames that were drawn at all: the mean
/// share of a clip's draws taken by its most-drawn frame, and the mean of
/// 1/K (what an even spread over a clip's K frames gives); `None` without
/// such clips (frames not in clips, or nothing drawn).
fn clip_spread(trained: &[u32], clips: &[Vec<usize>]) -> Option<(f64, f64)> {
    let mut top = Vec::new();
    let mut even = Vec::new();
    for frames in clips.iter().filter(|f| f.len() > 1) {
        let counts = frames.iter().map(|&i| f64::from(trained[i]));
        let total: f64 = counts.clone().sum();
        if total > 0.0 {
            top.push(counts.fold(0.0, f64::max) / total);
            even.push(1.0 / frames.len() as f64);
        }
    }
    Some((mean(top)?, mean(even)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(clip: u64, empty: bool, noisy: u32, missing: u32) -> ImageTags {
        ImageTags {
            id: 0,
            clip,
            frame: 0,
            empty,
            boxes: u32::from(!empty),
            noisy,
            missing,
        }
    }

    fn record(trained: Vec<u32>) -> SamplingRecord {
        SamplingRecord {
            forwarded: trained.clone(),
            last_score: vec![None; trained.len()],
            trained,
            scores_over_run: Vec::new(),
        }
    }

    /// Six frames in two clips of three: clip 0 holds an empty frame and a
    /// frame with a noisy box, clip 1 a frame with a missing box.
    fn tags() -> RegimeTags {
        RegimeTags {
            regime: serde_json::json!({"clip_frames": 3}),
            images: vec![
                tag(0, true, 0, 0),
                tag(0, false, 1, 0),
                tag(0, false, 0, 0),
                tag(1, false, 0, 1),
                tag(1, false, 0, 0),
                tag(1, false, 0, 0),
            ],
        }
    }

    #[test]
    fn draws_are_split_by_tag_and_against_the_frames_share() {
        // 10 draws: 4 on the empty frame, 2 on the noisy one, none on the
        // missing one; clip 0 takes 4 of its 6 draws on one frame, clip 1
        // spreads its 4 draws 2, 2, 0.
        let r = record(vec![4, 2, 0, 0, 2, 2]);
        let s = tag_shares(&[&r], &tags()).unwrap();
        assert_eq!(s.empty_frames, 1.0 / 6.0);
        assert!((s.empty_draws - 0.4).abs() < 1e-12);
        assert!((s.noisy_draws - 0.2).abs() < 1e-12);
        assert_eq!((s.missing_frames, s.missing_draws), (1.0 / 6.0, 0.0));
        assert_eq!((s.clips, s.frames_per_clip), (2, 3.0));
        // (4/6 + 2/4) / 2; an even spread gives 1/3.
        assert!((s.clip_top_share.unwrap() - (4.0 / 6.0 + 0.5) / 2.0).abs() < 1e-12);
        assert!((s.clip_even_share.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn shares_are_means_over_runs_and_lengths_must_agree() {
        let (a, b) = (record(vec![1; 6]), record(vec![0, 0, 0, 6, 0, 0]));
        let s = tag_shares(&[&a, &b], &tags()).unwrap();
        // Run a: 1/6 of its draws on the empty frame, run b none.
        assert!((s.empty_draws - 1.0 / 12.0).abs() < 1e-12);
        // Run a spreads evenly (1/3); run b's clip 0 is never drawn and
        // clip 1 has all 6 draws on one frame (1).
        assert!((s.clip_top_share.unwrap() - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        let short = record(vec![1; 5]);
        let e = tag_shares(&[&short], &tags()).unwrap_err();
        assert!(e.contains("6 images") && e.contains("has 5"), "{e}");
    }

    #[test]
    fn frames_not_in_clips_have_no_clip_statistic() {
        let mut single = tags();
        for (k, t) in single.images.iter_mut().enumerate() {
            t.clip = k as u64;
        }
        let s = tag_shares(&[&record(vec![1; 6])], &single).unwrap();
        assert_eq!(
            (s.clips, s.clip_top_share, s.clip_even_share),
            (6, None, None)
        );
    }
}
