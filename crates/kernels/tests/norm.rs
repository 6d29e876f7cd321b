//! The fused normalisation refuses statistics that do not fit the input,
//! with an error instead of a panic on a worker thread.

use candle_core::{Device, Tensor};
use isdet_kernels::{NormStats, norm_relu};

#[test]
fn fixed_statistics_of_the_wrong_length_are_an_error() {
    let x = Tensor::zeros((2, 4, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let gamma = Tensor::ones(4, candle_core::DType::F32, &Device::Cpu).unwrap();
    let beta = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap();
    let short = NormStats::Fixed {
        mean: vec![0.0; 3],
        var: vec![1.0; 4],
    };
    let err = norm_relu(&x, &gamma, &beta, short, 1e-5, true)
        .err()
        .expect("three means for four channels");
    assert!(err.to_string().contains("4 channels but 3 means"), "{err}");
    let fitting = NormStats::Fixed {
        mean: vec![0.0; 4],
        var: vec![1.0; 4],
    };
    let y = norm_relu(&x, &gamma, &beta, fitting, 1e-5, true).unwrap().y;
    assert_eq!(y.dims(), x.dims());
}
