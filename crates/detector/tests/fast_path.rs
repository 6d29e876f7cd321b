//! The models on the fast CPU kernels of isdet-kernels agree with the same
//! models on candle's own ops: objective, every parameter gradient, the
//! BatchNorm running statistics and evaluation-mode outputs.
//!
//! The stock side runs on the test device (`ISDET_TEST_DEVICE`, the CPU by
//! default): on a GPU (`scripts/gpu-check.sh`) this is the check that the
//! CUDA path, which falls back to candle's ops, trains the same model.

mod common;

use candle_core::{Device, Tensor, Var};
use common::{test_device, tolerance};
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
/// element-wise relative bound would be meaningless near zero).
fn assert_close(what: &str, fast: &[f32], stock: &[f32], rel: f32) {
    assert_eq!(fast.len(), stock.len(), "{what}: lengths differ");
    let scale = stock.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in fast.iter().zip(stock).enumerate() {
        assert!(
            (a - b).abs() <= rel * scale,
            "{what}[{i}]: fast {a} vs stock {b} (scale {scale})"
        );
    }
}

/// The whole detector and the classifier (fast convolutions, fused
/// normalisations, upsampling) against the stock path: objective, every
/// parameter gradient, the BatchNorm running statistics after the step, and
/// evaluation-mode outputs.
#[test]
fn whole_models_match_stock() {
    use isdet_data::{Annotation, BBox};
    use isdet_detector::{
        Classifier, ClassifierConfig, Fcos, FcosConfig, Kernels, NormKind, assign, fcos_loss,
    };

    let device = test_device();
    let rel = tolerance(&device);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let images = random(&mut rng, &[3, 3, 64, 64]).as_tensor().detach();
    let a = [Annotation {
        bbox: BBox::new(3.0, 4.0, 40.0, 25.0),
        class: 1,
        crowd: false,
    }];
    let b = [Annotation {
        bbox: BBox::new(10.0, 12.0, 60.0, 44.0),
        class: 0,
        crowd: false,
    }];
    for (norm, head_norm) in [
        (NormKind::Batch, NormKind::Group(4)),
        (NormKind::Group(2), NormKind::Batch),
    ] {
        let config = FcosConfig {
            widths: [8, 8, 16, 16, 16],
            fpn_channels: 16,
            head_convs: 1,
            norm,
            head_norm,
            ..FcosConfig::tiny(2, 64)
        };
        let run = |imp: Kernels, device: &Device| {
            let model = Fcos::new(config.clone(), 1, device)
                .unwrap()
                .with_kernels(imp);
            let targets = assign(model.locations(), &[&a, &[], &b], 2, 1.5).unwrap();
            let out = model
                .forward(&images.to_device(device).unwrap(), true)
                .unwrap();
            let loss = fcos_loss(&out, &targets, None).unwrap();
            let grads = loss.objective.backward().unwrap();
            let mut named = Vec::new();
            for p in model.params().all() {
                let v = match grads.get(p.var.as_tensor()) {
                    Some(g) => values(g),
                    None => values(p.var.as_tensor()),
                };
                named.push((p.name.clone(), v));
            }
            let eval = model
                .forward(&images.to_device(device).unwrap(), false)
                .unwrap();
            named.push(("eval.cls".into(), values(&eval.cls_logits)));
            named.push(("eval.ltrb".into(), values(&eval.ltrb)));
            (loss.objective.to_scalar::<f32>().unwrap(), named)
        };
        let (stock_loss, stock) = run(Kernels::Stock, &device);
        for imp in [Kernels::Fast, Kernels::Gemm, Kernels::Winograd] {
            let (fast_loss, fast) = run(imp, &Device::Cpu);
            assert!(
                (fast_loss - stock_loss).abs() <= rel * stock_loss.abs().max(1.0),
                "{norm:?}: objective {} {fast_loss} vs stock {stock_loss} on {device:?}",
                imp.name()
            );
            for ((name, f), (_, s)) in fast.iter().zip(&stock) {
                assert_close(&format!("{} {norm:?} {name}", imp.name()), f, s, rel);
            }
        }
    }

    // The classifier (pre-activation blocks: normalisation + ReLU first).
    let x = random(&mut rng, &[4, 3, 16, 16]).as_tensor().detach();
    for norm in [NormKind::Batch, NormKind::Group(4)] {
        let config = ClassifierConfig {
            widths: [8, 8, 16],
            blocks: [1, 1, 1],
            norm,
            ..ClassifierConfig::small(3, 5)
        };
        let run = |imp: Kernels, device: &Device| {
            let model = Classifier::new(config.clone(), 2, device)
                .unwrap()
                .with_kernels(imp);
            let x = x.to_device(device).unwrap();
            let logits = model.forward(&x, true).unwrap();
            let grads = logits.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let mut named = vec![("logits".to_string(), values(&logits))];
            for p in model.params().all() {
                if let Some(g) = grads.get(p.var.as_tensor()) {
                    named.push((p.name.clone(), values(g)));
                }
            }
            named.push(("eval".into(), values(&model.forward(&x, false).unwrap())));
            named
        };
        let stock = run(Kernels::Stock, &device);
        for imp in [Kernels::Fast, Kernels::Gemm, Kernels::Winograd] {
            let fast = run(imp, &Device::Cpu);
            assert_eq!(fast.len(), stock.len());
            for ((name, f), (_, s)) in fast.iter().zip(&stock) {
                assert_close(
                    &format!("{} classifier {norm:?} {name}", imp.name()),
                    f,
                    s,
                    rel,
                );
            }
        }
    }
}
