//! The fast convolutions agree with candle's own: forward outputs and the
//! gradients with respect to input, weight and bias, on random shapes,
//! strides, paddings, kernel sizes, batch sizes, with or without a bias,
//! and with or without the fused ReLU of `conv2d_relu`. Both fast paths
//! are checked: `Kernels::Fast` (on AVX-512 CPUs the direct kernel for the
//! forward and input gradient of stride-1 "same" convolutions of at least
//! 16 input channels and their weight gradient by vectors of output
//! channels, and the same kernels for strided convolutions by shifted
//! planes, their input gradient phase by phase; im2col + GEMM for the
//! rest; the same as `Kernels::Gemm` on other CPUs), `Kernels::Gemm` (im2col + GEMM
//! everywhere) and `Kernels::Winograd` (Winograd F(2×2, 3×3) for the
//! forward and both gradients of stride-1 3×3 convolutions).
//!
//! Tolerance: every element within 1e-4 of the stock result, relative to
//! the largest magnitude of the stock result, for both paths (Winograd's
//! transforms add a handful of terms per tile, which moves its rounding
//! error by a few ulps of the partial sums, far inside that bound).

use candle_core::{Device, Tensor, Var};
use isdet_kernels::{Kernels, conv2d, conv2d_relu};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> Var {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Var::from_tensor(&Tensor::from_vec(v, dims, &Device::Cpu).unwrap()).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Every element within `rel` of the reference, relative to the largest
/// magnitude of the reference (sums of many products cancel, so a purely
/// element-wise relative bound would be meaningless near zero), or to
/// `floor` if that is larger.
fn assert_close(what: &str, fast: &[f32], stock: &[f32], rel: f32, floor: f32) {
    assert_eq!(fast.len(), stock.len(), "{what}: lengths differ");
    let scale = stock.iter().fold(floor, |m, v| m.max(v.abs()));
    for (i, (a, b)) in fast.iter().zip(stock).enumerate() {
        assert!(
            (a - b).abs() <= rel * scale,
            "{what}[{i}]: fast {a} vs stock {b} (scale {scale})"
        );
    }
}

struct Case {
    n: usize,
    cin: usize,
    cout: usize,
    size: (usize, usize),
    k: usize,
    stride: usize,
    pad: usize,
    bias: bool,
    /// Through [`conv2d_relu`] instead of [`conv2d`].
    relu: bool,
}

fn check(rng: &mut ChaCha8Rng, c: &Case) {
    compare(rng, c, true);
}

/// [`check`] on data that needs no gradient (a network's first layer on
/// its images): the output and the weight and bias gradients.
fn check_first_layer(rng: &mut ChaCha8Rng, c: &Case) {
    compare(rng, c, false);
}

/// `check` on each `(n, cin, cout, k, stride, pad, size)`, once plain and
/// once with a bias and the fused ReLU.
#[allow(clippy::type_complexity)]
fn check_with_and_without_relu(
    rng: &mut ChaCha8Rng,
    cases: &[(usize, usize, usize, usize, usize, usize, (usize, usize))],
    check: fn(&mut ChaCha8Rng, &Case),
) {
    for &(n, cin, cout, k, stride, pad, size) in cases {
        for relu in [false, true] {
            let case = Case {
                n,
                cin,
                cout,
                size,
                k,
                stride,
                pad,
                bias: relu,
                relu,
            };
            check(rng, &case);
        }
    }
}

fn compare(rng: &mut ChaCha8Rng, c: &Case, input_grad: bool) {
    let x = random(rng, &[c.n, c.cin, c.size.0, c.size.1]);
    // Data that needs no gradient is a plain tensor (a `Var` is tracked).
    let input = if input_grad {
        x.as_tensor().clone()
    } else {
        x.as_tensor().detach()
    };
    let w = random(rng, &[c.cout, c.cin, c.k, c.k]);
    let b = c.bias.then(|| random(rng, &[c.cout]));
    let run = |imp: Kernels| {
        let conv = if c.relu { conv2d_relu } else { conv2d };
        let y = conv(
            &input,
            w.as_tensor(),
            b.as_ref().map(Var::as_tensor),
            c.stride,
            c.pad,
            imp,
        )
        .unwrap();
        // A loss with a non-uniform output gradient.
        let (_, _, ho, wo) = y.dims4().unwrap();
        let probe: Vec<f32> = (0..y.elem_count())
            .map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.4)
            .collect();
        let probe = Tensor::from_vec(probe, (c.n, c.cout, ho, wo), &Device::Cpu).unwrap();
        let loss = (&y * &probe).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = |v: &Var| values(grads.get(v.as_tensor()).unwrap());
        (
            values(&y),
            y.dims().to_vec(),
            grads.get(x.as_tensor()).map(values),
            g(&w),
            b.as_ref().map(g),
        )
    };
    let stock = run(Kernels::Stock);
    for imp in [Kernels::Fast, Kernels::Gemm, Kernels::Winograd] {
        let fast = run(imp);
        let what = format!(
            "{} n{} cin{} cout{} {}x{} k{} s{} p{} bias {} relu {}",
            imp.name(),
            c.n,
            c.cin,
            c.cout,
            c.size.0,
            c.size.1,
            c.k,
            c.stride,
            c.pad,
            c.bias,
            c.relu
        );
        assert_eq!(fast.1, stock.1, "{what}: output shapes differ");
        assert_close(&format!("{what} y"), &fast.0, &stock.0, 1e-4, 1e-6);
        if let (Some(f), Some(s)) = (&fast.2, &stock.2) {
            assert_close(&format!("{what} dx"), f, s, 1e-4, 1e-6);
        }
        assert_eq!(fast.2.is_some(), input_grad, "{what}: input gradient");
        assert_close(&format!("{what} dw"), &fast.3, &stock.3, 1e-4, 1e-6);
        if let (Some(f), Some(s)) = (&fast.4, &stock.4) {
            // db[c] sums output-gradient values (the probe, |v| < 1) in
            // lanes, candle in one chain: their rounding differs by ulps
            // of the terms, not of a sum that may cancel to about zero.
            assert_close(&format!("{what} db"), f, s, 1e-4, 1.0);
        }
    }
}

#[test]
fn winograd_conv_matches_stock_at_every_padding_and_odd_sizes() {
    // Stride-1 3×3 convolutions of at least 16 channels in and out (the
    // Winograd path; fewer take the GEMM path, also checked): paddings 0
    // to 2 (the input gradient then has padding 2 to 0), odd and even
    // output sizes (a clipped last tile), one pixel, and the detector's
    // widest layers at full width.
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    // (n, cin, cout, k, stride, pad, size)
    check_with_and_without_relu(
        &mut rng,
        &[
            (2, 16, 17, 3, 1, 0, (5, 5)),
            (3, 20, 16, 3, 1, 1, (7, 6)),
            (1, 16, 24, 3, 1, 2, (4, 9)),
            (2, 16, 16, 3, 1, 1, (1, 1)),
            (1, 16, 16, 3, 1, 0, (3, 3)),
            (2, 3, 4, 3, 1, 1, (5, 5)),
            (16, 48, 48, 3, 1, 1, (12, 12)),
            (4, 96, 48, 3, 1, 1, (6, 6)),
        ],
        check,
    );
}

#[test]
fn fast_conv_matches_stock_on_random_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..60 {
        let k = if rng.random_bool(0.5) { 1 } else { 3 };
        let pad = rng.random_range(0..=1usize);
        let stride = rng.random_range(1..=2usize);
        let lo = if k > 2 * pad { k - 2 * pad } else { 1 };
        // Stock candle's input gradient takes its output padding from the
        // height alone, so width and height must leave the same remainder
        // modulo the stride for the reference to be right.
        let h = rng.random_range(lo..=11);
        let w = h + stride * rng.random_range(0..=2usize);
        let case = Case {
            n: rng.random_range(1..=4),
            cin: rng.random_range(1..=9),
            cout: rng.random_range(1..=9),
            size: if rng.random_bool(0.5) { (h, w) } else { (w, h) },
            k,
            stride,
            pad,
            bias: rng.random_bool(0.5),
            relu: rng.random_bool(0.5),
        };
        check(&mut rng, &case);
    }
}

#[test]
fn fast_conv_matches_stock_on_the_detectors_shapes() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // (cin, cout, k, stride, pad, size, bias): stem, strided block,
    // shortcut, lateral, pyramid/head, prediction layer.
    for (cin, cout, k, stride, pad, size, bias) in [
        (3, 16, 3, 2, 1, 32, false),
        (16, 24, 3, 2, 1, 16, false),
        (16, 24, 1, 2, 0, 16, false),
        (24, 24, 3, 1, 1, 8, false),
        (48, 16, 1, 1, 0, 4, true),
        (16, 5, 3, 1, 1, 4, true),
        (16, 16, 3, 1, 1, 1, true),
    ] {
        for n in [1, 3] {
            check(
                &mut rng,
                &Case {
                    n,
                    cin,
                    cout,
                    size: (size, size),
                    k,
                    stride,
                    pad,
                    bias,
                    relu: false,
                },
            );
        }
    }
}

#[test]
fn fast_conv_matches_stock_through_the_direct_kernel() {
    // Stride-1 "same" convolutions of at least 16 input channels (the
    // direct kernel on AVX-512 CPUs): blocks of output channels with a
    // narrower last one (1, 2, 3, 5, 7 and 9 channels), units of several
    // small images whose vectors span images, units of several images of
    // a multiple of 16 pixels (read and written in NCHW, tiles across
    // images), non-square images, a tile tail of one vector (20 × 20 = 25
    // vectors), 5 × 5 kernels, and 15 channels (below the kernel's
    // minimum: the GEMM route).
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    // (n, cin, cout, k, stride, pad, size)
    check_with_and_without_relu(
        &mut rng,
        &[
            (1, 16, 1, 3, 1, 1, (12, 12)),
            (2, 16, 2, 3, 1, 1, (7, 5)),
            (5, 17, 3, 3, 1, 1, (3, 3)),
            (3, 16, 5, 3, 1, 1, (6, 6)),
            (1, 16, 7, 3, 1, 1, (20, 20)),
            (1, 20, 9, 3, 1, 1, (8, 8)),
            (4, 16, 4, 3, 1, 1, (4, 4)),
            (3, 18, 6, 3, 1, 1, (12, 12)),
            (2, 16, 6, 5, 1, 2, (9, 7)),
            (2, 15, 4, 3, 1, 1, (6, 6)),
        ],
        check,
    );
}

#[test]
fn fast_conv_weight_gradient_by_output_channels_matches_stock() {
    // The weight gradient of the direct kernel's convolutions (vectors of
    // 16 output channels, tiles of up to 8 input channels): one, three
    // and four vectors a tile (48, 64 channels), two blocks of vectors
    // (96 channels as 3 + 3; 100 as 4 + 3, the last vector 4 lanes wide),
    // a last vector of one lane (17), input channels in tiles of 8 and of
    // 6 beside four vectors with a remainder (21 = 6 + 6 + 6 + 3), 5 × 5
    // kernels, and taps whose window is empty on 2 × 2 images.
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    // (n, cin, cout, k, stride, pad, size)
    check_with_and_without_relu(
        &mut rng,
        &[
            (2, 16, 48, 3, 1, 1, (12, 12)),
            (1, 21, 64, 3, 1, 1, (6, 6)),
            (3, 16, 96, 3, 1, 1, (5, 5)),
            (1, 16, 100, 3, 1, 1, (4, 4)),
            (2, 24, 17, 5, 1, 2, (7, 7)),
            (2, 16, 16, 5, 1, 2, (2, 2)),
        ],
        check,
    );
}

#[test]
fn fast_conv_matches_stock_on_first_layers() {
    // Convolutions of a few input planes whose input needs no gradient (a
    // network's first layer on its images): on AVX-512 CPUs the direct
    // kernel's weight gradient, with tiles of fewer rows and channels
    // than full (3·9 = 27 rows, 5 and 16 channels), one and several
    // images per unit, stride 1 and stride 2 (through phase planes), and
    // the detector's stem and convnet-ref's first layer.
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    // (n, cin, cout, k, stride, pad, size)
    check_with_and_without_relu(
        &mut rng,
        &[
            (2, 3, 16, 3, 1, 1, (64, 64)),
            (2, 3, 16, 3, 2, 1, (96, 96)),
            (3, 3, 5, 3, 1, 1, (7, 9)),
            (4, 1, 3, 3, 2, 1, (6, 6)),
            (2, 2, 7, 5, 1, 2, (8, 5)),
            (1, 15, 4, 3, 1, 1, (10, 10)),
            // Strided without an input gradient: 4 · 2² and 3 · 3² phase
            // planes (too many for the first layers' kernel, too few
            // channels for the strided direct path: GEMM), and 16
            // channels (the weight gradient by channels alone).
            (2, 4, 16, 3, 2, 1, (12, 12)),
            (2, 3, 16, 3, 3, 0, (9, 9)),
            (2, 16, 16, 3, 2, 1, (12, 12)),
        ],
        check_first_layer,
    );
}

#[test]
fn fast_conv_matches_stock_through_phase_planes() {
    // Inputs `s` times the output on both axes with `k ≥ s` take the
    // phase-plane im2col/col2im: stride 2 (convnet-ref's and the
    // detector's downsampling), stride 3, non-square and one-pixel
    // outputs, one image per unit and several.
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    // (n, cin, cout, k, stride, pad, size)
    check_with_and_without_relu(
        &mut rng,
        &[
            (2, 3, 5, 3, 2, 1, (8, 8)),
            (3, 4, 6, 3, 2, 1, (6, 10)),
            (5, 2, 3, 3, 2, 1, (2, 2)),
            (2, 3, 4, 2, 2, 0, (8, 6)),
            (2, 3, 4, 3, 3, 0, (9, 9)),
            (2, 2, 3, 5, 3, 1, (6, 9)),
        ],
        check,
    );
}

#[test]
fn fast_conv_matches_stock_through_the_strided_direct_kernels() {
    // Strided shifted-planes convolutions on AVX-512 CPUs: the forward by
    // the direct kernel from phase planes (at least 16 input channels),
    // the input gradient as one direct convolution per phase plane and the
    // weight gradient by vectors of output channels read from the strided
    // input (at least 16 channels in and out). One image per unit, several
    // of 64 pixels (NCHW), several of 9 (channel-major, vectors across
    // images), non-square, 33 output channels (a 1-lane vector), each side
    // of the channel minimum alone (8 in: GEMM throughout; 8 out: the
    // forward direct, the gradients by GEMM), stride 3 with one tap a
    // phase and with one to four (5 × 5), a 2 × 2 kernel, and a large
    // image.
    let mut rng = ChaCha8Rng::seed_from_u64(37);
    // (n, cin, cout, k, stride, pad, size)
    check_with_and_without_relu(
        &mut rng,
        &[
            (2, 16, 16, 3, 2, 1, (16, 16)),
            (8, 16, 20, 3, 2, 1, (16, 16)),
            (9, 17, 16, 3, 2, 1, (6, 6)),
            (2, 16, 33, 3, 2, 1, (10, 14)),
            (2, 8, 16, 3, 2, 1, (12, 12)),
            (2, 16, 8, 3, 2, 1, (12, 12)),
            (3, 16, 16, 3, 3, 0, (9, 9)),
            (2, 16, 18, 5, 3, 1, (12, 9)),
            (2, 16, 16, 2, 2, 0, (8, 6)),
            (1, 16, 16, 3, 2, 1, (96, 96)),
        ],
        check,
    );
}

#[test]
fn fast_conv_matches_stock_on_large_images_in_blocks() {
    // Patch matrices of more than 2^18 floats per image (72 × 4,096 here):
    // one image per unit, run in blocks of 28 output rows (the last one
    // shorter), at stride 1 and 2.
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    // (n, cin, cout, k, stride, pad, size)
    check_with_and_without_relu(
        &mut rng,
        &[(2, 8, 5, 3, 1, 1, (64, 64)), (1, 8, 3, 3, 2, 1, (128, 128))],
        check,
    );
}

#[test]
fn fast_conv_relu_matches_stock_on_the_reference_nets_shapes() {
    // convnet-ref at a small scale: batches of several images per unit of
    // work (small outputs) and of one (large outputs), with bias and ReLU.
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for (n, cin, cout, k, stride, size) in [
        (6, 3, 4, 3, 1, 24),
        (6, 4, 8, 3, 2, 24),
        (6, 8, 16, 3, 2, 12),
        (33, 8, 6, 3, 2, 6),
        (6, 16, 5, 1, 1, 3),
    ] {
        check(
            &mut rng,
            &Case {
                n,
                cin,
                cout,
                size: (size, size),
                k,
                stride,
                pad: k / 2,
                bias: true,
                relu: true,
            },
        );
    }
}

#[test]
fn fast_conv_without_gradients_matches_stock() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = random(&mut rng, &[2, 4, 9, 7]).as_tensor().detach();
    let w = random(&mut rng, &[6, 4, 3, 3]).as_tensor().detach();
    let b = random(&mut rng, &[6]).as_tensor().detach();
    let fast = conv2d(&x, &w, Some(&b), 2, 1, Kernels::Fast).unwrap();
    let stock = conv2d(&x, &w, Some(&b), 2, 1, Kernels::Stock).unwrap();
    assert_close("no-grad y", &values(&fast), &values(&stock), 1e-4, 1e-6);
}

#[test]
fn fast_conv_gradients_are_the_same_bits_on_every_run() {
    // Twelve images of 16×16 make twelve units on the worker pool; the
    // weight and bias gradients are summed over them per thread. Whatever
    // the timing, every run must give the same bits (seeded training
    // depends on it).
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // 16 channels in and out: the direct kernels on AVX-512 CPUs, at
    // stride 1 and at stride 2 (the input gradient by phases).
    let x = random(&mut rng, &[12, 16, 16, 16]);
    let w = random(&mut rng, &[16, 16, 3, 3]);
    let b = random(&mut rng, &[16]);
    for stride in [1, 2] {
        let grads = || {
            let y = conv2d_relu(
                x.as_tensor(),
                w.as_tensor(),
                Some(b.as_tensor()),
                stride,
                1,
                Kernels::Fast,
            )
            .unwrap();
            let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            [&x, &w, &b].map(|v| values(g.get(v.as_tensor()).unwrap()))
        };
        let first = grads();
        for run in 1..8 {
            let again = grads();
            for (name, (a, b)) in ["dx", "dw", "db"].iter().zip(first.iter().zip(&again)) {
                let same = a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(
                    same,
                    "stride {stride}, run {run}: {name} differs from the first run's"
                );
            }
        }
    }
}

#[test]
fn fast_conv_handles_non_contiguous_inputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = random(&mut rng, &[2, 5, 6, 3])
        .as_tensor()
        .transpose(2, 3)
        .unwrap();
    let w = random(&mut rng, &[4, 5, 3, 3]).as_tensor().detach();
    let fast = conv2d(&x, &w, None, 1, 1, Kernels::Fast).unwrap();
    let stock = conv2d(&x, &w, None, 1, 1, Kernels::Stock).unwrap();
    assert_close("transposed y", &values(&fast), &values(&stock), 1e-4, 1e-6);
}

#[test]
fn conv_impl_parses_its_names() {
    assert_eq!(Kernels::parse("stock"), Some(Kernels::Stock));
    assert_eq!(Kernels::parse(" FAST "), Some(Kernels::Fast));
    assert_eq!(Kernels::parse("Winograd"), Some(Kernels::Winograd));
    assert_eq!(Kernels::parse("gemm"), Some(Kernels::Gemm));
    assert_eq!(Kernels::parse("slow"), None);
    for imp in [
        Kernels::Stock,
        Kernels::Fast,
        Kernels::Gemm,
        Kernels::Winograd,
    ] {
        assert_eq!(Kernels::parse(imp.name()), Some(imp));
    }
}
