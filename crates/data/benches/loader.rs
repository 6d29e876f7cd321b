//! Loader throughput on 2 worker threads (the project machine's 2 cores):
//! synth 96×96 with mosaic, and mnist-det decoded from PNG on disk.
//!
//! `cargo bench -p isdet-data --bench loader`; figures go to docs/data.md.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use isdet_data::{
    BatchRequest, CocoDataset, CocoOptions, CocoWriter, DetAugment, DetectionPipeline,
    LabelledImages, Loader, LoaderConfig, MnistDetConfig, Pipeline, SynthConfig, SynthDataset,
    mnist_classes, mnist_det_scene,
};

const BATCH: usize = 32;
const BATCHES: usize = 16;
const LOADER: LoaderConfig = LoaderConfig {
    workers: 2,
    depth: 8,
};

fn requests(len: usize) -> Vec<BatchRequest> {
    (0..BATCHES)
        .map(|b| BatchRequest {
            epoch: 0,
            ids: (0..BATCH).map(|i| (b * BATCH + i) * 7 % len).collect(),
        })
        .collect()
}

fn drain<P: Pipeline + 'static>(pipeline: &Arc<P>, len: usize) -> usize {
    Loader::new(Arc::clone(pipeline), requests(len), LOADER)
        .map(|b| b.expect("batch loads").ids.len())
        .sum()
}

/// Digits with stroke-like content (no download): a thick random walk.
fn stroke_digits(n: usize) -> LabelledImages {
    let mut pixels = vec![0u8; n * 784];
    for i in 0..n {
        let img = &mut pixels[i * 784..(i + 1) * 784];
        let (mut x, mut y) = (14i64, 8i64);
        let mut h = isdet_data::seed::key(&[i as u64]);
        for _ in 0..60 {
            h = isdet_data::seed::mix64(h);
            x = (x + (h % 3) as i64 - 1).clamp(4, 23);
            y = (y + ((h >> 8) % 3) as i64 - 1).clamp(4, 23);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                img[((y + dy) * 28 + x + dx) as usize] = 255 - (h >> 16) as u8 % 60;
            }
        }
    }
    LabelledImages {
        rows: 28,
        cols: 28,
        pixels,
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    }
}

fn loader(c: &mut Criterion) {
    let mut group = c.benchmark_group("loader");
    group.throughput(Throughput::Elements((BATCH * BATCHES) as u64));
    group.sample_size(20);

    let synth = SynthDataset::new(SynthConfig {
        len: 4096,
        ..SynthConfig::default()
    })
    .unwrap();
    let mosaic = DetAugment {
        mosaic: 1.0,
        ..DetAugment::train(96)
    };
    let p = Arc::new(DetectionPipeline::new(synth.clone(), mosaic, 0).unwrap());
    group.bench_function("synth_96_mosaic_always", |b| b.iter(|| drain(&p, 4096)));
    let p = Arc::new(DetectionPipeline::new(synth, DetAugment::train(96), 0).unwrap());
    group.bench_function("synth_96_train_default", |b| b.iter(|| drain(&p, 4096)));

    let dir = tempfile::tempdir().unwrap();
    let digits = stroke_digits(2000);
    let config = MnistDetConfig::default();
    let mut writer = CocoWriter::new(dir.path(), "train", &mnist_classes(), "bench").unwrap();
    for i in 0..1024 {
        writer
            .add(&mnist_det_scene(&config, &digits, 0, i))
            .unwrap();
    }
    let json = writer.finish().unwrap();
    let coco = CocoDataset::open(&json, &dir.path().join("train"), CocoOptions::default()).unwrap();
    let p = Arc::new(DetectionPipeline::new(coco.clone(), DetAugment::eval(96), 0).unwrap());
    group.bench_function("mnist_det_png_letterbox", |b| b.iter(|| drain(&p, 1024)));
    let p = Arc::new(DetectionPipeline::new(coco, DetAugment::train(96), 0).unwrap());
    group.bench_function("mnist_det_png_train_default", |b| {
        b.iter(|| drain(&p, 1024))
    });
    group.finish();
}

criterion_group!(benches, loader);
criterion_main!(benches);
