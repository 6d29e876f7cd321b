//! Aggregations of location values into an image score, by hand.

use isdet_heuristics::{Aggregation, DETECTION_TOP_K};

fn close(got: f32, want: f64, what: &str) {
    assert!(
        (f64::from(got) - want).abs() <= 1e-6,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn each_aggregation_by_hand() {
    let v = [0.1f32, 0.4, 0.2, 0.3];
    let cases = [
        // (0.1 + 0.4 + 0.2 + 0.3) / 4.
        (Aggregation::Mean, 0.25),
        (Aggregation::Max, 0.4),
        (Aggregation::Sum, 1.0),
        // The two largest, 0.4 and 0.3, whatever their positions.
        (Aggregation::TopKMean { k: 2 }, 0.35),
        // k = 1 is the maximum; k = n and k > n are the mean.
        (Aggregation::TopKMean { k: 1 }, 0.4),
        (Aggregation::TopKMean { k: 4 }, 0.25),
        (Aggregation::TopKMean { k: 10 }, 0.25),
        // (0.4 + 0.3 + 0.2) / 3.
        (Aggregation::TopKMean { k: 3 }, 0.3),
    ];
    for (a, want) in cases {
        close(a.apply(&v), want, &format!("{a:?}"));
    }
}

#[test]
fn ties_and_duplicates_count_once_each() {
    // Top-2 of [0.5, 0.5, 0.5, 0.1] is (0.5 + 0.5) / 2: a duplicate is not
    // dropped.
    close(
        Aggregation::TopKMean { k: 2 }.apply(&[0.5, 0.1, 0.5, 0.5]),
        0.5,
        "ties",
    );
    // The sum of three 0.5s is 1.5, not 0.5 (no deduplication).
    close(Aggregation::Sum.apply(&[0.5, 0.5, 0.5]), 1.5, "sum");
}

#[test]
fn an_image_with_nothing_counted_scores_zero() {
    for a in [
        Aggregation::Mean,
        Aggregation::Max,
        Aggregation::Sum,
        Aggregation::TopKMean { k: 3 },
    ] {
        assert_eq!(a.apply(&[]), 0.0, "{a:?}");
    }
}

#[test]
fn zero_k_is_rejected_by_validation_and_never_panics() {
    assert!(Aggregation::TopKMean { k: 0 }.validate().is_err());
    close(
        Aggregation::TopKMean { k: 0 }.apply(&[0.2, 0.7]),
        0.7,
        "k = 0 read as 1",
    );
    assert!(Aggregation::TopKMean { k: 1 }.validate().is_ok());
}

#[test]
fn the_detection_default_is_the_top_ten_mean() {
    assert_eq!(Aggregation::default(), Aggregation::TopKMean { k: 10 });
    assert_eq!(DETECTION_TOP_K, 10);
    // Twenty values 0.05, 0.10, …, 1.00: the top ten are 0.55 … 1.00, mean
    // 0.775, where the mean of all is 0.525.
    let v: Vec<f32> = (1..=20).map(|i| i as f32 * 0.05).collect();
    close(Aggregation::default().apply(&v), 0.775, "top ten");
}
