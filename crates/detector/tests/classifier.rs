//! The pre-activation ResNet classifier and its per-sample soft-target loss.

use candle_core::{D, Device, Tensor};
use isdet_detector::{
    AdamW, Classifier, ClassifierConfig, Optimizer, class_probabilities, soft_cross_entropy,
};

#[test]
fn soft_cross_entropy_is_per_sample_and_handles_mixed_targets() {
    let dev = Device::Cpu;
    let logits = Tensor::new(&[[2.0f32, 0.0, -1.0], [0.5, 0.5, 3.0]], &dev).unwrap();
    let onehot = Tensor::new(&[[1.0f32, 0.0, 0.0], [0.0, 0.0, 1.0]], &dev).unwrap();
    let got = soft_cross_entropy(&logits, &onehot)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // −log softmax by hand.
    let lse = |v: [f32; 3]| v.iter().map(|x| x.exp()).sum::<f32>().ln();
    let want = [lse([2.0, 0.0, -1.0]) - 2.0, lse([0.5, 0.5, 3.0]) - 3.0];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
    // A 30/70 mix is the same mix of the two hard losses.
    let mixed = Tensor::new(&[[0.3f32, 0.7, 0.0]], &dev).unwrap();
    let row = logits.narrow(0, 0, 1).unwrap();
    let m = soft_cross_entropy(&row, &mixed)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0];
    let w = 0.3 * (lse([2.0, 0.0, -1.0]) - 2.0) + 0.7 * (lse([2.0, 0.0, -1.0]) - 0.0);
    assert!((m - w).abs() < 1e-5, "{m} vs {w}");
    let p = class_probabilities(&logits)
        .unwrap()
        .sum(D::Minus1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(p.iter().all(|s| (s - 1.0).abs() < 1e-5));
}

#[test]
fn classifier_is_seeded_and_learns_a_tiny_batch() {
    let dev = Device::Cpu;
    let config = ClassifierConfig {
        widths: [8, 16, 16],
        blocks: [1, 1, 1],
        ..ClassifierConfig::small(1, 4)
    };
    let a = Classifier::new(config.clone(), 5, &dev).unwrap();
    let b = Classifier::new(config, 5, &dev).unwrap();
    // Four 28×28 images, one per class, each a bright bar in its own place.
    let mut pixels = vec![0f32; 4 * 28 * 28];
    for k in 0..4 {
        for y in 0..28 {
            for x in 7 * k..7 * k + 5 {
                pixels[k * 784 + y * 28 + x] = 1.0;
            }
        }
    }
    let x = Tensor::from_vec(pixels, (4, 1, 28, 28), &dev).unwrap();
    let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(
        flat(a.forward(&x, false).unwrap()),
        flat(b.forward(&x, false).unwrap())
    );
    let targets = Tensor::eye(4, candle_core::DType::F32, &dev).unwrap();
    let mut opt = AdamW::new(a.params().trainable(), 1e-2, 0.0).unwrap();
    let loss_at =
        |m: &Classifier| soft_cross_entropy(&m.forward(&x, true).unwrap(), &targets).unwrap();
    let first = loss_at(&a).mean_all().unwrap().to_scalar::<f32>().unwrap();
    for _ in 0..30 {
        let loss = loss_at(&a).mean_all().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
    }
    let last = loss_at(&a).mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(last < 0.2 * first, "loss {first} -> {last}");
    assert_eq!(loss_at(&a).dims(), &[4]);
}
