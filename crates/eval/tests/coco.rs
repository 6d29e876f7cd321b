//! COCO box evaluation: hand-computed cases, errors that name the culprit,
//! and parity with pycocotools on a committed fixture.

use std::path::Path;

use isdet_eval::{
    CocoResult, EvalError, GroundTruth, GtImage, STAT_NAMES, evaluate_boxes, evaluate_files,
    read_results, write_results,
};

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-12, "{what}: {a} != {b}");
}

fn image(id: u64) -> GtImage {
    GtImage {
        id,
        width: 100,
        height: 100,
        file_name: format!("{id}.png"),
    }
}

fn det(image_id: u64, category_id: u64, bbox: [f64; 4], score: f64) -> CocoResult {
    CocoResult {
        image_id,
        category_id,
        bbox,
        score,
    }
}

/// Two categories, two images, three medium-sized boxes (area 40·40 =
/// 1600, between 32² and 96²).
fn ground_truth() -> GroundTruth {
    let mut gt = GroundTruth::new([(3, "cat".to_string()), (5, "dog".to_string())]);
    gt.add_image(
        image(1),
        [
            (3, [10.0, 10.0, 40.0, 40.0], false),
            (5, [50.0, 50.0, 40.0, 40.0], false),
        ],
    )
    .unwrap();
    gt.add_image(image(2), [(3, [0.0, 0.0, 40.0, 40.0], false)])
        .unwrap();
    gt
}

#[test]
fn perfect_detections_score_one() {
    let gt = ground_truth();
    let dets: Vec<_> = gt
        .annotations
        .iter()
        .map(|a| det(a.image_id, a.category_id, a.bbox, 0.9))
        .collect();
    let m = evaluate_boxes(&gt, &dets).unwrap();
    for name in ["AP", "AP50", "AP75", "APm", "AR1", "AR10", "AR100", "ARm"] {
        close(m.get(name).unwrap(), 1.0, name);
    }
    // No small or large ground truth: COCO reports −1 for those.
    assert_eq!(m.get("APs"), Some(-1.0));
    assert_eq!(m.get("APl"), Some(-1.0));
    close(m.per_class["cat"], 1.0, "cat");
    close(m.per_class["dog"], 1.0, "dog");
    assert_eq!(m.summary.len(), 12);
}

#[test]
fn half_the_cats_found_gives_the_interpolated_ap() {
    let gt = ground_truth();
    // Only the cat of image 1 and the dog are found. For "cat", recall
    // reaches 0.5 at precision 1: 51 of COCO's 101 recall thresholds
    // (0, 0.01, …, 0.50) get precision 1, so AP = 51/101. "dog" has AP 1.
    let dets = [
        det(1, 3, [10.0, 10.0, 40.0, 40.0], 0.9),
        det(1, 5, [50.0, 50.0, 40.0, 40.0], 0.8),
    ];
    let m = evaluate_boxes(&gt, &dets).unwrap();
    let cat = 51.0 / 101.0;
    assert!(
        (m.per_class["cat"] - cat).abs() < 1e-12,
        "{:?}",
        m.per_class
    );
    assert!((m.get("AP50").unwrap() - (cat + 1.0) / 2.0).abs() < 1e-12);
    // Recall: cat 0.5, dog 1 → mean 0.75.
    assert!((m.get("AR100").unwrap() - 0.75).abs() < 1e-12);
}

#[test]
fn a_shifted_box_counts_at_iou_half_but_not_at_075() {
    let mut gt = GroundTruth::new([(1, "a".to_string())]);
    gt.add_image(image(1), [(1, [0.0, 0.0, 40.0, 40.0], false)])
        .unwrap();
    // Shifted by 8 px in x: IoU = 32·40 / (2·1600 − 32·40) = 1280/1920 = 2/3.
    let m = evaluate_boxes(&gt, &[det(1, 1, [8.0, 0.0, 40.0, 40.0], 0.5)]).unwrap();
    close(m.get("AP50").unwrap(), 1.0, "AP50");
    close(m.get("AP75").unwrap(), 0.0, "AP75");
    // IoU thresholds 0.50, 0.55, 0.60, 0.65 pass: AP = 4/10.
    assert!((m.get("AP").unwrap() - 0.4).abs() < 1e-12);
}

#[test]
fn unknown_image_or_category_is_named() {
    let gt = ground_truth();
    let err = evaluate_boxes(
        &gt,
        &[
            det(1, 3, [0.0, 0.0, 5.0, 5.0], 0.5),
            det(9, 3, [0.0, 0.0, 5.0, 5.0], 0.5),
        ],
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("detection 1") && text.contains("image id 9"),
        "{text}"
    );
    let err = evaluate_boxes(&gt, &[det(1, 4, [0.0, 0.0, 5.0, 5.0], 0.5)]).unwrap_err();
    assert!(err.to_string().contains("category id 4"), "{err}");
    let err = evaluate_boxes(&gt, &[det(1, 3, [0.0, 0.0, 5.0, 5.0], f64::NAN)]).unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
}

#[test]
fn an_invalid_ground_truth_box_is_refused() {
    let mut gt = GroundTruth::new([(1, "a".to_string())]);
    let err = gt
        .add_image(image(4), [(1, [0.0, 0.0, 0.0, 10.0], false)])
        .unwrap_err();
    assert!(err.to_string().contains("image 4"), "{err}");
}

#[test]
fn files_round_trip_and_score_like_memory() {
    let dir = tempfile::tempdir().unwrap();
    let gt = ground_truth();
    let dets = vec![
        det(1, 3, [11.0, 9.0, 30.0, 31.0], 0.7),
        det(2, 3, [1.0, 0.0, 28.0, 30.0], 0.6),
        det(2, 5, [40.0, 40.0, 40.0, 40.0], 0.3),
    ];
    let gt_path = dir.path().join("gt.json");
    let dt_path = dir.path().join("dt.json");
    gt.write(&gt_path).unwrap();
    write_results(&dt_path, &dets).unwrap();
    assert_eq!(GroundTruth::read(&gt_path).unwrap(), gt);
    assert_eq!(read_results(&dt_path).unwrap(), dets);
    let from_files = evaluate_files(&gt_path, &dt_path).unwrap();
    assert_eq!(from_files, evaluate_boxes(&gt, &dets).unwrap());
    // No temporary file is left behind by the atomic writes.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn malformed_files_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[{\"image_id\": 1,").unwrap();
    match read_results(&bad) {
        Err(EvalError::Json { path, .. }) => assert_eq!(path, bad),
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("missing.json");
    let err = GroundTruth::read(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.json"), "{err}");
}

/// The fixture holds a ground truth, detections and the 12 statistics
/// pycocotools printed for them (`fixtures/make_coco_fixture.py`).
#[test]
fn statistics_match_pycocotools_on_the_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let m = evaluate_files(&dir.join("coco_gt.json"), &dir.join("coco_dt.json")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("coco_stats.json")).unwrap())
            .unwrap();
    for (k, name) in STAT_NAMES.iter().enumerate() {
        let want = expected[name].as_f64().unwrap();
        assert!(
            (m.stats[k] - want).abs() < 1e-12,
            "{name}: isdet {} pycocotools {want}",
            m.stats[k]
        );
    }
}
