//! Curve metrics and statistics across seeds, on hand-computed cases.

use isdet_eval::{
    CostAxis, CurvePoint, cost_to_target, final_metric, mean_metric_over_cost, metric_at_cost,
    paired_bootstrap, summarize_seeds, top1_accuracy,
};

fn curve(points: &[(f64, f64)]) -> Vec<CurvePoint> {
    points
        .iter()
        .map(|&(steps, metric)| CurvePoint {
            steps,
            backward: steps * 16.0,
            forward: steps * 48.0,
            images: steps * 16.0,
            seconds: steps / 2.0,
            metric,
        })
        .collect()
}

#[test]
fn cost_to_target_interpolates_the_first_crossing() {
    let c = curve(&[
        (100.0, 0.1),
        (200.0, 0.3),
        (300.0, 0.5),
        (400.0, 0.2),
        (500.0, 0.6),
    ]);
    // 0.4 is crossed between 200 (0.3) and 300 (0.5): halfway, 250 steps.
    assert_eq!(cost_to_target(&c, 0.4, CostAxis::Steps), Some(250.0));
    assert_eq!(cost_to_target(&c, 0.4, CostAxis::Backward), Some(4000.0));
    assert_eq!(cost_to_target(&c, 0.4, CostAxis::Forward), Some(12000.0));
    assert_eq!(cost_to_target(&c, 0.4, CostAxis::Seconds), Some(125.0));
    // Reached at the first point: its cost.
    assert_eq!(cost_to_target(&c, 0.05, CostAxis::Steps), Some(100.0));
    // Exactly at a point.
    assert_eq!(cost_to_target(&c, 0.5, CostAxis::Steps), Some(300.0));
    // Never reached.
    assert_eq!(cost_to_target(&c, 0.7, CostAxis::Steps), None);
    assert_eq!(final_metric(&c), Some(0.6));
    assert_eq!(final_metric(&[]), None);
}

#[test]
fn mean_metric_over_cost_is_the_trapezoid_area_over_the_span() {
    let c = curve(&[(0.0, 0.0), (100.0, 0.2), (300.0, 0.4)]);
    // Area: 100·0.1 + 200·0.3 = 70; span 300 → 70/300.
    let m = mean_metric_over_cost(&c, CostAxis::Steps, None).unwrap();
    assert!((m - 70.0 / 300.0).abs() < 1e-12);
    // Cut at 200: the curve is 0.3 there; area 10 + 100·0.25 = 35; span 200.
    let cut = mean_metric_over_cost(&c, CostAxis::Steps, Some(200.0)).unwrap();
    assert!((cut - 35.0 / 200.0).abs() < 1e-12);
    assert!(mean_metric_over_cost(&c[..1], CostAxis::Steps, None).is_err());
}

#[test]
fn seed_summary_has_the_hand_computed_mean_and_std() {
    let s = summarize_seeds(&[0.2, 0.4, 0.6], 2_000, 1).unwrap();
    assert_eq!(s.n, 3);
    assert!((s.mean - 0.4).abs() < 1e-12);
    // Sample std: sqrt((0.04 + 0 + 0.04) / 2) = 0.2.
    assert!((s.std - 0.2).abs() < 1e-12);
    assert!(s.low <= s.mean && s.mean <= s.high);
    assert!(s.low >= 0.2 && s.high <= 0.6);
    assert!(s.high > s.low);
    // The same seed gives the same interval.
    assert_eq!(s, summarize_seeds(&[0.2, 0.4, 0.6], 2_000, 1).unwrap());
    let one = summarize_seeds(&[0.5], 100, 0).unwrap();
    assert_eq!((one.std, one.low, one.high), (0.0, 0.5, 0.5));
    assert!(summarize_seeds(&[], 100, 0).is_err());
    assert!(summarize_seeds(&[0.1, f64::NAN], 100, 0).is_err());
}

#[test]
fn paired_bootstrap_sees_a_consistent_winner() {
    let a = [0.51, 0.62, 0.55, 0.58];
    let b = [0.50, 0.60, 0.52, 0.57];
    let p = paired_bootstrap(&a, &b, 2_000, 3).unwrap();
    assert_eq!(p.prob_a_better, 1.0);
    assert!((p.mean_difference - 0.0175).abs() < 1e-12);
    assert!(p.low > 0.0);
    let q = paired_bootstrap(&b, &a, 2_000, 3).unwrap();
    assert_eq!(q.prob_a_better, 0.0);
    // Mixed signs: neither always wins.
    let mixed = paired_bootstrap(&[0.5, 0.4, 0.6], &[0.45, 0.5, 0.55], 2_000, 3).unwrap();
    assert!(mixed.prob_a_better > 0.0 && mixed.prob_a_better < 1.0);
    assert!(paired_bootstrap(&a, &b[..3], 10, 0).is_err());
}

#[test]
fn top1_accuracy_counts_argmax_hits() {
    let scores = [
        0.1,
        0.7,
        0.2, // → 1
        0.5,
        0.3,
        0.2, // → 0
        0.2,
        0.2,
        0.6, // → 2
        f32::NAN,
        0.1,
        0.1, // → 1 (NaN never wins)
    ];
    assert_eq!(top1_accuracy(&scores, 3, &[1, 0, 1, 1]).unwrap(), 0.75);
    assert_eq!(top1_accuracy(&scores, 3, &[0, 0, 0, 0]).unwrap(), 0.25);
    assert!(top1_accuracy(&scores, 5, &[0, 0, 0]).is_err());
    assert!(top1_accuracy(&[], 3, &[]).is_err());
}

#[test]
fn metric_at_cost_interpolates_inside_the_curve_only() {
    // Seconds are steps / 2: 50 s is step 100, halfway from 0.2 to 0.4.
    let c = curve(&[(0.0, 0.0), (80.0, 0.2), (120.0, 0.4)]);
    let at = metric_at_cost(&c, CostAxis::Seconds, 50.0).unwrap();
    assert!((at - 0.3).abs() < 1e-12, "{at}");
    assert_eq!(metric_at_cost(&c, CostAxis::Steps, 80.0), Some(0.2));
    assert_eq!(metric_at_cost(&c, CostAxis::Steps, 0.0), Some(0.0));
    assert_eq!(metric_at_cost(&c, CostAxis::Steps, 121.0), None);
    assert_eq!(metric_at_cost(&c, CostAxis::Steps, -1.0), None);
}
