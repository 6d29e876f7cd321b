//! One AFSS epoch: which images it trains on, from their tiers and how long
//! each has gone unused.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::config::{AfssConfig, Tier};

/// What one AFSS epoch holds: the tier sizes at its start and how many
/// images of each tier it trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfssEpoch {
    /// The AFSS epoch, from 0.
    pub epoch: u32,
    /// Easy images in the dataset.
    pub easy: usize,
    /// Medium images in the dataset.
    pub medium: usize,
    /// Hard images in the dataset (all of them are trained).
    pub hard: usize,
    /// Easy images trained: the due reviews plus the random ones.
    pub easy_trained: usize,
    /// Of those, the due reviews (unused for `review_after` epochs or more).
    pub easy_reviewed: usize,
    /// Medium images trained: the covered ones plus the random ones.
    pub medium_trained: usize,
    /// Of those, the ones covered because they were unused for
    /// `cover_after` epochs or more.
    pub medium_covered: usize,
}

impl AfssEpoch {
    /// Images the epoch trains on.
    pub fn len(&self) -> usize {
        self.hard + self.medium_trained + self.easy_trained
    }

    /// Whether the epoch trains on nothing (never, with valid shares).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Epochs an image has gone unused at the start of epoch `epoch`: the
/// paper's `t − 1 − ep_i`, where `used` stores `ep_i + 1` (0: never used,
/// which counts as unused for ever).
pub(super) fn unused_for(used: u32, epoch: u32) -> u32 {
    if used == 0 {
        u32::MAX
    } else {
        epoch.saturating_sub(used)
    }
}

/// `⌈share · len⌉`: a non-empty pool always gets at least one place (and
/// products within 10⁻⁹ of an integer count as that integer).
fn quota(share: f64, len: usize) -> usize {
    ((share * len as f64 - 1e-9).ceil().max(0.0) as usize).min(len)
}

/// `count` ids of `pool` at random (all of them when it holds fewer).
fn random_pick<R: Rng>(pool: &[u32], count: usize, rng: &mut R) -> Vec<u32> {
    let count = count.min(pool.len());
    rand::seq::index::sample(rng, pool.len(), count)
        .iter()
        .map(|k| pool[k])
        .collect()
}

/// Draws epoch `epoch`: every hard image; the medium images unused for
/// `cover_after` epochs or more, then random ones up to
/// `⌈medium_share · |medium|⌉`; of the easy images, up to
/// `⌊review_cap · quota⌋` due reviews, longest-unused first (ties in
/// random order), then random ones up to the quota
/// `⌈easy_share · |easy|⌉`. The ids come back shuffled; `tiers[id]` is
/// each image's tier and `used[id]` its last epoch of use plus one.
pub(super) fn draw<R: Rng>(
    config: &AfssConfig,
    tiers: &[Tier],
    used: &[u32],
    epoch: u32,
    rng: &mut R,
) -> (Vec<u32>, AfssEpoch) {
    let pool = |tier: Tier| -> Vec<u32> {
        (0..tiers.len() as u32)
            .filter(|&id| tiers[id as usize] == tier)
            .collect()
    };
    let (easy, medium, mut ids) = (pool(Tier::Easy), pool(Tier::Medium), pool(Tier::Hard));
    let mut stats = AfssEpoch {
        epoch,
        easy: easy.len(),
        medium: medium.len(),
        hard: ids.len(),
        ..AfssEpoch::default()
    };
    let due = |id: &u32, after: u32| unused_for(used[*id as usize], epoch) >= after;

    let (covered, rest): (Vec<u32>, Vec<u32>) =
        medium.iter().partition(|id| due(id, config.cover_after));
    let fill = quota(config.medium_share, medium.len()).saturating_sub(covered.len());
    let random = random_pick(&rest, fill, rng);
    (stats.medium_covered, stats.medium_trained) = (covered.len(), covered.len() + random.len());
    ids.extend(covered.into_iter().chain(random));

    let easy_quota = quota(config.easy_share, easy.len());
    let (mut due_easy, _): (Vec<u32>, Vec<u32>) =
        easy.iter().partition(|id| due(id, config.review_after));
    due_easy.shuffle(rng);
    due_easy.sort_by_key(|&id| std::cmp::Reverse(unused_for(used[id as usize], epoch)));
    let cap = (config.review_cap * easy_quota as f64 + 1e-9).floor() as usize;
    due_easy.truncate(cap);
    let reviewed: std::collections::HashSet<u32> = due_easy.iter().copied().collect();
    let others: Vec<u32> = easy
        .into_iter()
        .filter(|id| !reviewed.contains(id))
        .collect();
    let random = random_pick(&others, easy_quota - due_easy.len(), rng);
    (stats.easy_reviewed, stats.easy_trained) = (due_easy.len(), due_easy.len() + random.len());
    ids.extend(due_easy.into_iter().chain(random));

    ids.shuffle(rng);
    (ids, stats)
}
