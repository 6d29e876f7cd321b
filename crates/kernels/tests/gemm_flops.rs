//! `gemm_flops` counts the matrix-product work of the fast convolution:
//! exactly 2·(B·H_out·W_out)·C_out·(C_in·k²) for the forward pass, and as
//! much again for each of the input and weight gradients. (Its own test
//! binary: the counter is process-wide, and tests in one binary run in
//! parallel.)

use candle_core::{Device, Tensor, Var};
use isdet_kernels::{Kernels, conv2d, gemm_flops};

#[test]
fn the_counter_adds_each_convolutions_gemm_work() {
    let (b, cin, h, cout, k) = (3usize, 5usize, 12usize, 7usize, 3usize);
    let x =
        Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, cin, h, h), &Device::Cpu).unwrap()).unwrap();
    let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (cout, cin, k, k), &Device::Cpu).unwrap())
        .unwrap();
    // Stride 2, padding 1: 6 × 6 outputs.
    let hout = (h + 2 - k) / 2 + 1;
    let forward = 2 * (b * hout * hout * cout * cin * k * k) as u64;

    let before = gemm_flops();
    let y = conv2d(x.as_tensor(), w.as_tensor(), None, 2, 1, Kernels::Fast).unwrap();
    assert_eq!(gemm_flops() - before, forward);

    let before = gemm_flops();
    let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    assert!(grads.get(x.as_tensor()).is_some() && grads.get(w.as_tensor()).is_some());
    assert_eq!(gemm_flops() - before, 2 * forward);

    // The stock path does no counted work.
    let before = gemm_flops();
    conv2d(x.as_tensor(), w.as_tensor(), None, 2, 1, Kernels::Stock).unwrap();
    assert_eq!(gemm_flops(), before);
}
