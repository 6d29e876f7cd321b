//! Detector rules on hand-made cases: target assignment, NMS, losses
//! (per-image sums, edge cases), seeded initialisation, checkpoints.

use candle_core::{DType, Device, Tensor};
use isdet_data::{Annotation, BBox};
use isdet_detector::assign::{BACKGROUND, IGNORE};
use isdet_detector::loss::{bce_with_logits, focal_loss, giou_loss};
use isdet_detector::{
    DetectorError, Fcos, FcosConfig, Locations, assign, checkpoint, fcos_loss, nms,
};

fn ann(x0: f32, y0: f32, x1: f32, y1: f32, class: u32, crowd: bool) -> Annotation {
    Annotation {
        bbox: BBox::new(x0, y0, x1, y1),
        class,
        crowd,
    }
}

#[test]
fn locations_and_size_scaled_ranges() {
    let locs = Locations::new(64, &[8, 16, 32]).unwrap();
    assert_eq!(locs.len(), 64 + 16 + 4);
    assert_eq!(locs.point(0), [4.0, 4.0]);
    assert_eq!(locs.point(9), [12.0, 12.0]);
    assert_eq!(locs.point(64), [8.0, 8.0]);
    let r: Vec<_> = locs.levels().iter().map(|l| l.range).collect();
    assert_eq!(r[0], (0.0, 8.0));
    assert_eq!(r[1], (8.0, 16.0));
    assert_eq!(r[2].0, 16.0);
    assert!(r[2].1.is_infinite());
    assert!(Locations::new(60, &[8, 16, 32]).is_err());
}

#[test]
fn assignment_follows_fcos_rules() {
    let locs = Locations::new(64, &[8, 16, 32]).unwrap();
    // A 12x12 box centred on location (28, 28): max distance 6 → P3.
    let small = ann(22.0, 22.0, 34.0, 34.0, 1, false);
    let t = assign(&locs, &[&[small]], 3, 1.5).unwrap();
    let positives: Vec<usize> = (0..locs.len()).filter(|&i| t.labels[i] >= 0).collect();
    assert!(positives.iter().filter(|&&i| locs.level(i) == 0).count() >= 1);
    for &i in &positives {
        // The largest distance, in pixels, lies in the location's level range.
        let m = t.ltrb[i * 4..i * 4 + 4]
            .iter()
            .cloned()
            .fold(0.0f32, f32::max)
            * locs.stride(i);
        let (lo, hi) = locs.levels()[locs.level(i)].range;
        assert!(m > lo && m <= hi, "location {i}: {m} outside ({lo}, {hi}]");
        assert_eq!(t.labels[i], 1);
        let p = locs.point(i);
        assert!(p[0] > 22.0 && p[0] < 34.0 && p[1] > 22.0 && p[1] < 34.0);
    }
    // The location at the exact centre has centre-ness 1 and ltrb = 6/8.
    let centre = (0..64).find(|&i| locs.point(i) == [28.0, 28.0]).unwrap();
    assert!((t.centerness[centre] - 1.0).abs() < 1e-6);
    assert_eq!(&t.ltrb[centre * 4..centre * 4 + 4], &[0.75; 4]);

    // Overlapping boxes: the smaller one wins the shared location.
    let big = ann(4.0, 4.0, 60.0, 60.0, 0, false);
    let mid = ann(10.0, 10.0, 50.0, 50.0, 2, false);
    let t = assign(&locs, &[&[big, mid]], 3, 1.5).unwrap();
    // P5 location (16, 16): max distances 44 (big) and 34 (mid), both in P5.
    let p5 = (80..84).find(|&i| locs.point(i) == [16.0, 16.0]).unwrap();
    assert_eq!(t.labels[p5], 2, "the smaller box wins");

    // Crowd boxes: inside is ignored, not negative.
    let crowd = ann(0.0, 0.0, 30.0, 30.0, 0, true);
    let t = assign(&locs, &[&[crowd]], 3, 1.5).unwrap();
    assert_eq!(t.labels[0], IGNORE);
    assert_eq!(t.labels[63], BACKGROUND);
    assert_eq!(t.num_positives(0), 0);

    // A tiny box between grid points still gets one positive.
    let tiny = ann(5.0, 5.0, 7.0, 7.0, 1, false);
    let t = assign(&locs, &[&[tiny]], 3, 1.5).unwrap();
    assert_eq!(t.num_positives(0), 1);
    assert!(t.centerness.iter().all(|c| c.is_finite()));

    // A class beyond the model is an error.
    let bad = ann(0.0, 0.0, 10.0, 10.0, 3, false);
    assert!(matches!(
        assign(&locs, &[&[bad]], 3, 1.5),
        Err(DetectorError::Input(_))
    ));
}

#[test]
fn nms_suppresses_per_class_only() {
    let boxes = [
        BBox::new(0.0, 0.0, 10.0, 10.0),
        BBox::new(1.0, 1.0, 11.0, 11.0),
        BBox::new(1.0, 1.0, 11.0, 11.0),
        BBox::new(30.0, 30.0, 40.0, 40.0),
        BBox::new(0.0, 0.0, 10.0, 16.0),
    ];
    let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
    let classes = [0, 0, 1, 0, 0];
    // IoU(0,1) = 81/119 = 0.68 > 0.6: suppressed. Box 2 is another class.
    // IoU(0,4) = 100/160 = 0.625 > 0.6: suppressed.
    assert_eq!(nms(&boxes, &scores, &classes, 0.6), vec![0, 2, 3]);
    assert_eq!(nms(&boxes, &scores, &classes, 0.7), vec![0, 1, 2, 3, 4]);
}

#[test]
fn per_image_losses_sum_back_to_the_objective() {
    let dev = Device::Cpu;
    let model = Fcos::new(FcosConfig::tiny(3, 64), 1, &dev).unwrap();
    let images = Tensor::rand(0f32, 1.0, (3, 3, 64, 64), &dev).unwrap();
    let a = [
        ann(4.0, 4.0, 30.0, 40.0, 0, false),
        ann(36.0, 10.0, 50.0, 20.0, 2, false),
    ];
    let b = [ann(10.0, 10.0, 60.0, 60.0, 1, false)];
    let boxes: Vec<&[Annotation]> = vec![&a, &b, &[]];
    let targets = assign(model.locations(), &boxes, 3, 1.5).unwrap();
    let out = model.forward(&images, true).unwrap();
    let loss = fcos_loss(&out, &targets, None).unwrap();
    let [n_pos, n_ctr] = loss.batch_norm;
    let mut total = 0.0f32;
    for i in 0..3 {
        let np = (loss.positives[i] as f32).max(1.0);
        let nc: f32 = targets.centerness[i * targets.locations..(i + 1) * targets.locations]
            .iter()
            .sum();
        let p = loss.parts[i];
        // part × own normaliser = raw sum; raw sums over the batch normaliser
        // add up to the objective.
        total += p[0] * np / n_pos + p[1] * nc.max(1e-6) / n_ctr + p[2] * np / n_pos;
        assert!((loss.per_image[i] - p.iter().sum::<f32>()).abs() < 1e-5);
    }
    let objective = loss.objective.to_scalar::<f32>().unwrap();
    assert!(
        (total - objective).abs() < 1e-4 * objective.abs().max(1.0),
        "{total} vs {objective}"
    );
    assert_eq!(loss.positives[2], 0);
    assert_eq!(loss.probs.dims(), &[3, targets.locations, 3]);

    // Weights scale each image's share of the objective.
    let w = fcos_loss(&out, &targets, Some(&[2.0, 0.0, 1.0])).unwrap();
    let want: f32 = (0..3)
        .map(|i| {
            let r = loss.raw[i];
            [2.0, 0.0, 1.0][i] * (r[0] / n_pos + r[1] / n_ctr + r[2] / n_pos)
        })
        .sum();
    let got = w.objective.to_scalar::<f32>().unwrap();
    assert!(
        (got - want).abs() < 1e-4 * want.abs().max(1.0),
        "{got} vs {want}"
    );
    assert!(fcos_loss(&out, &targets, Some(&[1.0])).is_err());
}

#[test]
fn losses_stay_finite_at_the_edges() {
    let dev = Device::Cpu;
    let x = Tensor::new(&[-1e4f32, -50.0, 0.0, 50.0, 1e4], &dev).unwrap();
    for target in [0.0f32, 1.0] {
        let t = Tensor::full(target, 5, &dev).unwrap();
        for v in bce_with_logits(&x, &t).unwrap().to_vec1::<f32>().unwrap() {
            assert!(v.is_finite() && v >= 0.0, "bce {v}");
        }
        for v in focal_loss(&x, &t, 0.25, 2.0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
        {
            assert!(v.is_finite() && v >= 0.0, "focal {v}");
        }
    }
    // Huge logits of the right sign cost nothing; of the wrong sign, ~|x|.
    let t = Tensor::new(&[0f32, 0.0, 0.0, 1.0, 1.0], &dev).unwrap();
    let b = bce_with_logits(&x, &t).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(b[0], 0.0);
    assert!((b[4] - 0.0).abs() < 1e-6);
    // Empty and identical boxes.
    let empty = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
    for v in giou_loss(&empty, &empty).unwrap().to_vec1::<f32>().unwrap() {
        assert!(v.is_finite());
    }
    let same = Tensor::new(&[[0f32, 0.0, 2.0, 3.0]], &dev).unwrap();
    assert!(giou_loss(&same, &same).unwrap().to_vec1::<f32>().unwrap()[0].abs() < 1e-6);
    // Disjoint boxes: GIoU < 0, loss in (1, 2].
    let far = Tensor::new(&[[10f32, 10.0, 12.0, 13.0]], &dev).unwrap();
    let l = giou_loss(&same, &far).unwrap().to_vec1::<f32>().unwrap()[0];
    assert!(l > 1.0 && l <= 2.0, "{l}");
    // No positives in the batch: the objective is finite.
    let model = Fcos::new(FcosConfig::tiny(2, 64), 0, &dev).unwrap();
    let images = Tensor::zeros((2, 3, 64, 64), DType::F32, &dev).unwrap();
    let targets = assign(model.locations(), &[&[], &[]], 2, 1.5).unwrap();
    let loss = fcos_loss(&model.forward(&images, true).unwrap(), &targets, None).unwrap();
    assert!(loss.objective.to_scalar::<f32>().unwrap().is_finite());
}

#[test]
fn same_seed_same_weights_and_checkpoints_round_trip() {
    let dev = Device::Cpu;
    let config = FcosConfig::tiny(4, 64);
    let a = Fcos::new(config.clone(), 7, &dev).unwrap();
    let b = Fcos::new(config.clone(), 7, &dev).unwrap();
    let c = Fcos::new(config.clone(), 8, &dev).unwrap();
    let values = |m: &Fcos| -> Vec<f32> {
        m.params().all()[0]
            .var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(values(&a), values(&b));
    assert_ne!(values(&a), values(&c));
    let count = Fcos::new(FcosConfig::tiny(5, 96), 0, &dev)
        .unwrap()
        .params()
        .count();
    assert!(
        (300_000..=600_000).contains(&count),
        "tiny has {count} parameters"
    );

    let x = Tensor::rand(0f32, 1.0, (2, 3, 64, 64), &dev).unwrap();
    // Train-mode passes move BatchNorm's running statistics: saved too.
    a.forward(&x, true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (w, j) = (
        dir.path().join("model.safetensors"),
        dir.path().join("model.json"),
    );
    checkpoint::save(a.params(), a.config(), &w, &j).unwrap();
    let restored_config: FcosConfig = checkpoint::load_config(&j).unwrap();
    assert_eq!(&restored_config, a.config());
    checkpoint::load_weights(c.params(), &w).unwrap();
    let (oa, oc) = (a.forward(&x, false).unwrap(), c.forward(&x, false).unwrap());
    assert_eq!(
        oa.cls_logits
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        oc.cls_logits
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    );
    assert_eq!(
        oa.ltrb.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        oc.ltrb.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );

    // A model of another shape: the error names the tensor and both shapes.
    let other = Fcos::new(FcosConfig::tiny(6, 64), 0, &dev).unwrap();
    let err = checkpoint::load_weights(other.params(), &w)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("head.cls_pred.weight")
            && err.contains("[4, 48, 3, 3]")
            && err.contains("[6, 48, 3, 3]"),
        "{err}"
    );
}
