//! What each group's budget was spent on, from its runs' `sampling.json`
//! (docs/run-directory.md): how evenly training went over the images, and
//! how the scores the sampler drew by moved over the run.

use isdet_trainer::SamplingRecord;

use crate::aggregate::{BandPoint, ClassShare, Group, GroupSpending};

/// The spending of every group whose runs have sampling records.
pub fn spending(groups: &[Group]) -> Vec<GroupSpending> {
    groups.iter().filter_map(group_spending).collect()
}

fn group_spending(g: &Group) -> Option<GroupSpending> {
    let records: Vec<&SamplingRecord> = g.runs.iter().filter_map(|r| r.sampling.as_ref()).collect();
    let first = records.first()?;
    let mean = |f: &dyn Fn(&[u32]) -> f64| {
        records.iter().map(|r| f(&r.trained)).sum::<f64>() / records.len() as f64
    };
    let most_trained = records
        .iter()
        .flat_map(|r| r.trained.iter().copied())
        .max()
        .unwrap_or(0);
    Some(GroupSpending {
        method: g.method.clone(),
        budget: g.budget,
        runs: records.len(),
        images: first.trained.len(),
        mean_trained: mean(&|c| total(c) / c.len().max(1) as f64),
        never_trained: mean(&|c| {
            c.iter().filter(|&&k| k == 0).count() as f64 / c.len().max(1) as f64
        }),
        top_decile_share: mean(&top_decile_share),
        gini: mean(&gini),
        most_trained,
        histogram: histogram(&records, most_trained),
        scores_over_run: first.scores_over_run.clone(),
        class_shares: Vec::new(),
        sheet: None,
        tags: None,
    })
}

/// Each class's share of the objects in the data and of the objects
/// trained on (`objects[i]`: the classes of image i's objects), the latter
/// averaged over `records`. Records of another length than the data are
/// an error: they are not this data's runs.
pub(crate) fn class_shares(
    records: &[&SamplingRecord],
    objects: &[Vec<u32>],
    names: &[String],
) -> Result<Vec<ClassShare>, String> {
    let shares = |weight: &dyn Fn(usize) -> f64| {
        let mut per_class = vec![0.0; names.len()];
        for (i, classes) in objects.iter().enumerate() {
            for &c in classes {
                if let Some(slot) = per_class.get_mut(c as usize) {
                    *slot += weight(i);
                }
            }
        }
        let sum: f64 = per_class.iter().sum();
        per_class
            .iter()
            .map(|v| if sum > 0.0 { v / sum } else { 0.0 })
            .collect::<Vec<f64>>()
    };
    if let Some(r) = records.iter().find(|r| r.trained.len() != objects.len()) {
        return Err(format!(
            "sampling.json has {} images but the data has {}",
            r.trained.len(),
            objects.len()
        ));
    }
    let data = shares(&|_| 1.0);
    let mut trained = vec![0.0; names.len()];
    for r in records {
        for (t, s) in trained.iter_mut().zip(shares(&|i| f64::from(r.trained[i]))) {
            *t += s / records.len() as f64;
        }
    }
    Ok(names
        .iter()
        .zip(data.iter().zip(&trained))
        .map(|(class, (&data, &trained))| ClassShare {
            class: class.clone(),
            data,
            trained,
        })
        .collect())
}

fn total(counts: &[u32]) -> f64 {
    counts.iter().map(|&c| f64::from(c)).sum()
}

/// The share of all training that went to the tenth of the images (at
/// least one) trained most.
pub(crate) fn top_decile_share(counts: &[u32]) -> f64 {
    let sum = total(counts);
    if sum == 0.0 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let top = counts.len().div_ceil(10);
    total(&sorted[..top]) / sum
}

/// The Gini coefficient of `counts`: with the counts sorted ascending as
/// x₁ … xₙ, G = 2 Σ i·xᵢ / (n Σ xᵢ) − (n + 1) / n.
pub(crate) fn gini(counts: &[u32]) -> f64 {
    let (n, sum) = (counts.len() as f64, total(counts));
    if sum == 0.0 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| (i + 1) as f64 * f64::from(x))
        .sum();
    2.0 * weighted / (n * sum) - (n + 1.0) / n
}

/// Per train count k = 0 … `most`, the share of a run's images trained k
/// times: mean, lowest and highest over the runs.
fn histogram(records: &[&SamplingRecord], most: u32) -> Vec<BandPoint> {
    let shares: Vec<Vec<f64>> = records
        .iter()
        .map(|r| {
            let mut bins = vec![0.0; most as usize + 1];
            for &c in &r.trained {
                bins[c as usize] += 1.0;
            }
            let n = r.trained.len().max(1) as f64;
            bins.iter().map(|b| b / n).collect()
        })
        .collect();
    (0..=most as usize)
        .map(|k| {
            let at: Vec<f64> = shares.iter().map(|s| s[k]).collect();
            BandPoint::of(k as f64, &at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_training_has_gini_zero_and_a_tenth_in_the_top_decile() {
        let even = [3; 20];
        assert_eq!(gini(&even), 0.0);
        assert!((top_decile_share(&even) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn training_on_one_image_of_ten_is_as_uneven_as_ten_images_allow() {
        let one = [0, 0, 0, 0, 0, 0, 0, 0, 0, 50];
        // G = 2·10·50 / (10·50) − 11/10 = 0.9, the largest for n = 10.
        assert!((gini(&one) - 0.9).abs() < 1e-12);
        assert_eq!(top_decile_share(&one), 1.0);
        assert_eq!(gini(&[0, 0]), 0.0);
    }

    #[test]
    fn class_shares_weigh_each_images_objects_by_its_train_count() {
        let record = SamplingRecord {
            trained: vec![3, 1, 0],
            forwarded: vec![3, 1, 0],
            last_score: vec![None; 3],
            scores_over_run: Vec::new(),
        };
        // Image 0 holds a cat, image 1 a cat and a dog, image 2 two dogs.
        let objects = [vec![0], vec![0, 1], vec![1, 1]];
        let names = ["cat".to_string(), "dog".to_string()];
        let shares = class_shares(&[&record], &objects, &names).unwrap();
        assert_eq!((shares[0].data, shares[1].data), (0.4, 0.6));
        // Trained objects: cat 3 + 1, dog 1 (image 2 was never trained).
        assert!((shares[0].trained - 0.8).abs() < 1e-12);
        assert!((shares[1].trained - 0.2).abs() < 1e-12);
        assert!(class_shares(&[&record], &objects[..2], &names).is_err());
    }

    #[test]
    fn the_histogram_gives_each_runs_share_per_count() {
        let record = |trained: Vec<u32>| SamplingRecord {
            forwarded: trained.clone(),
            last_score: vec![None; trained.len()],
            trained,
            scores_over_run: Vec::new(),
        };
        let (a, b) = (record(vec![0, 1, 1, 2]), record(vec![1, 1, 1, 1]));
        let h = histogram(&[&a, &b], 2);
        let at = |k: usize| (h[k].mean, h[k].min, h[k].max);
        assert_eq!(at(0), (0.125, 0.0, 0.25));
        assert_eq!(at(1), (0.75, 0.5, 1.0));
        assert_eq!(at(2), (0.125, 0.0, 0.25));
    }
}
