//! The sum tree: draws proportional to weights, exact updates, O(log N).

mod common;

use common::{assert_fits, chi_square, chi_square_critical, normalised};
use isdet_sampler::{SamplerError, SumTree};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn draw_counts(tree: &SumTree, draws: usize, seed: u64) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut counts = vec![0u64; tree.len()];
    for _ in 0..draws {
        counts[tree.sample(&mut rng).unwrap()] += 1;
    }
    counts
}

#[test]
fn draws_follow_weights_chi_square() {
    // 37 slots: not a power of two, so leaves sit at two depths.
    let weights: Vec<f64> = (1..=37).map(|w| w as f64).collect();
    let tree = SumTree::from_weights(&weights).unwrap();
    assert_fits(
        &draw_counts(&tree, 200_000, 1),
        &normalised(&weights),
        "sum tree draws",
    );
}

#[test]
fn chi_square_check_rejects_a_mismatched_distribution() {
    let weights: Vec<f64> = (1..=37).map(|w| w as f64).collect();
    let tree = SumTree::from_weights(&weights).unwrap();
    let uniform = vec![1.0 / 37.0; 37];
    let counts = draw_counts(&tree, 200_000, 1);
    assert!(chi_square(&counts, &uniform) > chi_square_critical(36));
}

#[test]
fn find_follows_prefix_sums_and_skips_zero_weights() {
    let tree = SumTree::from_weights(&[1.0, 0.0, 3.0, 2.0]).unwrap();
    assert_eq!(tree.total(), 6.0);
    let cases = [
        (0.0, 0),
        (0.99, 0),
        (1.0, 2),
        (3.99, 2),
        (4.0, 3),
        (5.99, 3),
        (100.0, 3),
    ];
    for (target, slot) in cases {
        assert_eq!(tree.find(target), Some(slot), "target {target}");
    }
    let mut out = Vec::new();
    tree.find_many(&cases.map(|c| c.0), &mut out);
    assert_eq!(out, cases.map(|c| c.1));
    // 5 slots: leaves on two levels, still in slot order.
    let tree = SumTree::from_weights(&[1.0, 2.0, 0.0, 3.0, 4.0]).unwrap();
    let cases = [
        (0.5, 0),
        (1.0, 1),
        (2.99, 1),
        (3.0, 3),
        (5.99, 3),
        (6.0, 4),
        (9.99, 4),
    ];
    for (target, slot) in cases {
        assert_eq!(tree.find(target), Some(slot), "5 slots, target {target}");
    }
    assert_eq!(SumTree::new(3).find(0.0), None);
    assert_eq!(SumTree::new(0).total(), 0.0);
}

#[test]
fn updates_move_the_mass_and_zero_slots_are_never_drawn() {
    let mut tree = SumTree::new(50);
    let slots: Vec<usize> = (0..50).collect();
    let weights: Vec<f64> = slots
        .iter()
        .map(|&s| if s % 5 == 0 { 0.0 } else { (s % 7 + 1) as f64 })
        .collect();
    tree.set_many(&slots, &weights).unwrap();
    assert_eq!(tree.total(), weights.iter().sum::<f64>());
    let counts = draw_counts(&tree, 200_000, 2);
    for s in (0..50).step_by(5) {
        assert_eq!(counts[s], 0, "slot {s} has weight 0");
    }
    let (kept, probs): (Vec<u64>, Vec<f64>) = counts
        .iter()
        .zip(normalised(&weights))
        .filter(|(_, p)| *p > 0.0)
        .map(|(&c, p)| (c, p))
        .unzip();
    assert_fits(&kept, &probs, "sum tree after set_many");
}

#[test]
fn many_updates_leave_no_rounding_drift() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let n = 1000;
    let mut tree = SumTree::new(n);
    for _ in 0..20_000 {
        let slots: Vec<usize> = (0..16).map(|_| rng.random_range(0..n)).collect();
        let weights: Vec<f64> = (0..16).map(|_| rng.random::<f64>() * 1e3).collect();
        tree.set_many(&slots, &weights).unwrap();
    }
    let leaves: Vec<f64> = (0..n).map(|s| tree.weight(s).unwrap()).collect();
    let rebuilt = SumTree::from_weights(&leaves).unwrap();
    assert_eq!(tree.total().to_bits(), rebuilt.total().to_bits());
}

#[test]
fn invalid_weights_and_slots_are_errors_that_change_nothing() {
    let mut tree = SumTree::from_weights(&[1.0, 2.0]).unwrap();
    let before = tree.clone();
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            tree.set(1, bad),
            Err(SamplerError::InvalidWeight { position: 1, .. })
        ));
    }
    assert_eq!(
        tree.set(2, 1.0),
        Err(SamplerError::IdOutOfRange { id: 2, len: 2 })
    );
    assert!(matches!(
        tree.set_many(&[0, 1], &[1.0]),
        Err(SamplerError::LengthMismatch { .. })
    ));
    assert_eq!(tree, before);
    assert!(SumTree::from_weights(&[1.0, -2.0]).is_err());
}
