//! Each op's forward and forward + backward, fast against stock, at the
//! shapes of the tiny detector at batch 16 and 96 px (the stem, a stride-8
//! residual block, the stride-8 pyramid level and the stride-8 stage's
//! downsampling) and of a stride-2 layer of convnet-ref. Convolutions also run
//! `gemm` (im2col + GEMM everywhere) and `winograd`, so that the direct
//! kernel's and Winograd's gains over the GEMM route show per layer.
//!
//! `cargo bench -p isdet-kernels --bench kernels`

use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use criterion::{Criterion, criterion_group};
use isdet_kernels::{
    Kernels, NormStats, add_relu, conv2d, conv2d_relu, norm_relu, upsample_nearest,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 16;

fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> Var {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Var::from_tensor(&Tensor::from_vec(v, dims, &Device::Cpu).unwrap()).unwrap()
}

/// Times `op` alone and `op` followed by the backward pass of its sum,
/// stock against fast.
fn forward_and_backward(c: &mut Criterion, name: &str, op: impl Fn(Kernels) -> Tensor) {
    timed(c, name, &[Kernels::Stock, Kernels::Fast], op)
}

/// [`forward_and_backward`] for a convolution: stock, fast, GEMM and
/// Winograd.
fn conv_forward_and_backward(c: &mut Criterion, name: &str, op: impl Fn(Kernels) -> Tensor) {
    timed(
        c,
        name,
        &[
            Kernels::Stock,
            Kernels::Fast,
            Kernels::Gemm,
            Kernels::Winograd,
        ],
        op,
    )
}

fn timed(c: &mut Criterion, name: &str, impls: &[Kernels], op: impl Fn(Kernels) -> Tensor) {
    for &k in impls {
        c.bench_function(&format!("{name}/forward/{}", k.name()), |b| {
            b.iter(|| black_box(op(k)))
        });
        c.bench_function(&format!("{name}/backward/{}", k.name()), |b| {
            b.iter(|| black_box(op(k).sum_all().unwrap().backward().unwrap()))
        });
    }
}

fn convolutions(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    // The stem: 3 → 16 channels, stride 2, on 96×96 images.
    let x = random(&mut rng, &[BATCH, 3, 96, 96]);
    let w = random(&mut rng, &[16, 3, 3, 3]);
    conv_forward_and_backward(c, "conv_relu_stem", |k| {
        conv2d_relu(x.as_tensor(), w.as_tensor(), None, 2, 1, k).unwrap()
    });
    // A stride-8 block's 3×3 convolution: 24 → 24 channels on 12×12.
    let x = random(&mut rng, &[BATCH, 24, 12, 12]);
    let w = random(&mut rng, &[24, 24, 3, 3]);
    let bias = random(&mut rng, &[24]);
    conv_forward_and_backward(c, "conv_3x3_s8", |k| {
        conv2d(
            x.as_tensor(),
            w.as_tensor(),
            Some(bias.as_tensor()),
            1,
            1,
            k,
        )
        .unwrap()
    });
    // A head tower's 3×3 convolution on the stride-8 pyramid level: 48 → 48
    // channels on 12×12, with a ReLU (the detector's most frequent layer).
    let x = random(&mut rng, &[BATCH, 48, 12, 12]);
    let w = random(&mut rng, &[48, 48, 3, 3]);
    conv_forward_and_backward(c, "conv_relu_3x3_head_s8", |k| {
        conv2d_relu(x.as_tensor(), w.as_tensor(), None, 1, 1, k).unwrap()
    });
    // The stride-8 stage's downsampling: 24 → 48 channels, stride 2, from
    // 24×24 to 12×12.
    let x = random(&mut rng, &[BATCH, 24, 24, 24]);
    let w = random(&mut rng, &[48, 24, 3, 3]);
    conv_forward_and_backward(c, "conv_relu_3x3_down_s8", |k| {
        conv2d_relu(x.as_tensor(), w.as_tensor(), None, 2, 1, k).unwrap()
    });
    // convnet-ref's stride-2 layers at batch 32: 16 → 32 channels from
    // 64×64, 32 → 64 from 32×32 (the second layer at 64 px and the first
    // of the wide net at 32 px), 64 → 128 from 16×16 and 128 → 256 from
    // 8×8 (the wide net's last).
    for (cin, size, name) in [
        (16, 64, "conv_relu_3x3_down_ref16"),
        (32, 32, "conv_relu_3x3_down_ref"),
        (64, 16, "conv_relu_3x3_down_ref64"),
        (128, 8, "conv_relu_3x3_down_ref128"),
    ] {
        let x = random(&mut rng, &[32, cin, size, size]);
        let w = random(&mut rng, &[2 * cin, cin, 3, 3]);
        conv_forward_and_backward(c, name, |k| {
            conv2d_relu(x.as_tensor(), w.as_tensor(), None, 2, 1, k).unwrap()
        });
    }
}

fn elementwise(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // The stride-8 pyramid level: 48 channels on 12×12.
    let x = random(&mut rng, &[BATCH, 48, 12, 12]);
    let gamma = random(&mut rng, &[48]);
    let beta = random(&mut rng, &[48]);
    forward_and_backward(c, "batch_norm_relu", |k| {
        if k == Kernels::Fast {
            let stats = NormStats::Batch;
            norm_relu(
                x.as_tensor(),
                gamma.as_tensor(),
                beta.as_tensor(),
                stats,
                1e-5,
                true,
            )
            .unwrap()
            .y
        } else {
            // The tensor-op form the stock models use.
            let t = x.as_tensor();
            let mean = t
                .mean_keepdim(3)
                .unwrap()
                .mean_keepdim(2)
                .unwrap()
                .mean_keepdim(0)
                .unwrap();
            let centred = t.broadcast_sub(&mean).unwrap();
            let var = centred
                .sqr()
                .unwrap()
                .mean_keepdim(3)
                .unwrap()
                .mean_keepdim(2)
                .unwrap()
                .mean_keepdim(0)
                .unwrap();
            let g = gamma.as_tensor().reshape((1, 48, 1, 1)).unwrap();
            let b = beta.as_tensor().reshape((1, 48, 1, 1)).unwrap();
            centred
                .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
                .unwrap()
                .broadcast_mul(&g)
                .unwrap()
                .broadcast_add(&b)
                .unwrap()
                .relu()
                .unwrap()
        }
    });
    let a = random(&mut rng, &[BATCH, 24, 24, 24]);
    let b = random(&mut rng, &[BATCH, 24, 24, 24]);
    forward_and_backward(c, "add_relu", |k| {
        add_relu(a.as_tensor(), b.as_tensor(), k).unwrap()
    });
    let top = random(&mut rng, &[BATCH, 48, 6, 6]);
    forward_and_backward(c, "upsample_x2", |k| {
        upsample_nearest(top.as_tensor(), 12, 12, k).unwrap()
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = convolutions, elementwise
}
/// `criterion_main!` with the allocator tuned first, as `cargo xtask` runs:
/// without it every iteration's fresh tensors cost page faults, which
/// weigh on some paths more than others (the direct kernels' backward of
/// convnet-ref's 16 → 32 layer took 11.8 ms untuned against 5.1 tuned, the
/// GEMM route's 6.9 against 7.7).
fn main() {
    // SAFETY: the first statement of `main`: no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        isdet_kernels::tune_allocator()
    };
    benches();
    Criterion::default().configure_from_args().final_summary();
}
