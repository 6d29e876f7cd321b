//! Shared fixtures of the integration tests (included with `mod common`).
#![allow(dead_code)]

use candle_core::{Device, Tensor};

/// Asserts `got ≈ want` element by element (absolute 1e-6 plus relative
/// 1e-5), naming `what`.
pub fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= 1e-6 + 1e-5 * w.abs(),
            "{what}[{i}]: got {g}, want {w} (all: {got:?})"
        );
    }
}

/// A detection batch: 2 images, 3 locations, 2 classes (sigmoid scores).
///
/// | image | location | scores | mask | label |
/// |---|---|---|---|---|
/// | 0 | 0 | 0.5, 0.1 | 1 | class 0 |
/// | 0 | 1 | 0.9, 0.05 | 1 | class 0 |
/// | 0 | 2 | 0.02, 0.01 | 1 | background |
/// | 1 | 0 | 0.3, 0.6 | 1 | class 1 |
/// | 1 | 1 | 0.0, 0.0 | 1 | background |
/// | 1 | 2 | 0.99, 0.0 | 0 | ignored |
pub struct Detection {
    pub probs: Tensor,
    pub mask: Tensor,
    pub labels: Vec<i64>,
    pub losses: Vec<f32>,
    pub parts: Vec<[f32; 3]>,
}

pub fn detection() -> Detection {
    let dev = Device::Cpu;
    Detection {
        probs: Tensor::new(
            &[
                [[0.5f32, 0.1], [0.9, 0.05], [0.02, 0.01]],
                [[0.3, 0.6], [0.0, 0.0], [0.99, 0.0]],
            ],
            &dev,
        )
        .unwrap(),
        mask: Tensor::new(&[[1f32, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev).unwrap(),
        labels: vec![0, 0, -1, 1, -1, -2],
        losses: vec![1.5, 0.7],
        parts: vec![[1.0, 0.3, 0.2], [0.4, 0.2, 0.1]],
    }
}

/// A classification batch: 3 samples, 3 classes (softmax), true classes
/// 0, 2, 1: true-class probabilities 0.7, 0.3, 0.25.
pub fn classification() -> (Tensor, Vec<f32>, Vec<u32>) {
    let probs = Tensor::new(
        &[[0.7f32, 0.2, 0.1], [0.2, 0.5, 0.3], [0.25, 0.25, 0.5]],
        &Device::Cpu,
    )
    .unwrap();
    (probs, vec![0.36, 1.2, 1.39], vec![0, 2, 1])
}
