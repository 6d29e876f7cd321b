//! The loader: request order, agreement with sequential collation, error
//! propagation naming the sample, panics reported, bounded look-ahead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use isdet_data::{
    BatchRequest, ClassificationPipeline, ClassificationSet, ClsAugment, DataError, DetAugment,
    DetectionPipeline, LabelledImages, Loader, LoaderConfig, Mixing, Pipeline, SynthConfig,
    SynthDataset, collate, mnist_classes,
};

/// A pipeline whose image is the sample id, with uneven delays so that
/// workers finish out of order; sample `fail` errors and `panic` panics.
struct Slow {
    fail: Option<usize>,
    panic: Option<usize>,
}

impl Pipeline for Slow {
    type Target = usize;
    fn sample_shape(&self) -> [usize; 3] {
        [1, 1, 2]
    }
    fn load(&self, index: usize, epoch: u64, out: &mut [f32]) -> isdet_data::Result<usize> {
        std::thread::sleep(Duration::from_micros(((index * 7919) % 13) as u64 * 150));
        if Some(index) == self.fail {
            return Err(DataError::Config(format!("cannot load {index}")));
        }
        if Some(index) == self.panic {
            panic!("sample {index} exploded");
        }
        out[0] = index as f32;
        out[1] = epoch as f32;
        Ok(index * 10)
    }
}

fn requests(batches: usize, size: usize) -> Vec<BatchRequest> {
    (0..batches)
        .map(|b| BatchRequest {
            epoch: (b / 4) as u64,
            ids: (b * size..(b + 1) * size).rev().collect(),
        })
        .collect()
}

#[test]
fn batches_arrive_in_request_order_whatever_the_workers_do() {
    let reqs = requests(40, 3);
    let pipeline = Arc::new(Slow {
        fail: None,
        panic: None,
    });
    let loader = Loader::new(
        pipeline,
        reqs.clone(),
        LoaderConfig {
            workers: 4,
            depth: 6,
        },
    );
    let got: Vec<_> = loader.map(|b| b.unwrap()).collect();
    assert_eq!(got.len(), reqs.len());
    for (i, (batch, req)) in got.iter().zip(&reqs).enumerate() {
        assert_eq!(batch.index, i as u64);
        assert_eq!(batch.ids, req.ids);
        assert_eq!(batch.epoch, req.epoch);
        assert_eq!(batch.shape, [3, 1, 1, 2]);
        let ids: Vec<usize> = batch.images.chunks(2).map(|p| p[0] as usize).collect();
        assert_eq!(ids, req.ids, "images are collated in batch order");
        assert!(batch.images.chunks(2).all(|p| p[1] == req.epoch as f32));
        assert_eq!(
            batch.targets,
            req.ids.iter().map(|i| i * 10).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_failing_sample_reaches_the_caller_at_its_batch_naming_the_sample() {
    let reqs = requests(10, 4);
    let pipeline = Arc::new(Slow {
        fail: Some(21),
        panic: None,
    });
    let results: Vec<_> = Loader::new(
        pipeline,
        reqs,
        LoaderConfig {
            workers: 3,
            depth: 3,
        },
    )
    .collect();
    assert_eq!(results.len(), 10, "the stream goes on after an error");
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (5, Err(DataError::Sample { sample, source })) => {
                assert_eq!(*sample, 21);
                assert!(source.to_string().contains("cannot load 21"));
            }
            (5, other) => panic!("batch 5 should fail on sample 21, got {other:?}"),
            (_, r) => assert!(r.is_ok(), "batch {i}: {r:?}"),
        }
    }
    let err = results[5].as_ref().unwrap_err().to_string();
    assert!(err.starts_with("sample 21:"), "{err}");
}

#[test]
fn a_panicking_worker_is_reported_not_hung() {
    let reqs = requests(8, 2);
    let pipeline = Arc::new(Slow {
        fail: None,
        panic: Some(9),
    });
    let results: Vec<_> = Loader::new(
        pipeline,
        reqs,
        LoaderConfig {
            workers: 2,
            depth: 2,
        },
    )
    .collect();
    assert_eq!(results.len(), 8);
    match &results[4] {
        Err(DataError::Worker(msg)) => {
            assert!(msg.contains("exploded") && msg.contains('9'), "{msg}")
        }
        other => panic!("expected a worker error for batch 4, got {other:?}"),
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 7);
}

#[test]
fn look_ahead_is_bounded_by_depth() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let reqs = requests(50, 1).into_iter().inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let pipeline = Arc::new(Slow {
        fail: None,
        panic: None,
    });
    let mut loader = Loader::new(
        pipeline,
        reqs,
        LoaderConfig {
            workers: 2,
            depth: 3,
        },
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        pulled.load(Ordering::SeqCst) <= 3,
        "pulled {} before any was taken",
        pulled.load(Ordering::SeqCst)
    );
    for taken in 1..=10 {
        loader.next().unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let n = pulled.load(Ordering::SeqCst);
        assert!(n <= taken + 3, "pulled {n} after taking {taken}");
    }
    drop(loader); // stops the threads without draining the stream
    assert!(pulled.load(Ordering::SeqCst) < 50);
}

#[test]
fn loader_output_equals_sequential_collation_for_real_pipelines() {
    let data = SynthDataset::new(SynthConfig {
        len: 40,
        ..SynthConfig::default()
    })
    .unwrap();
    let det = Arc::new(DetectionPipeline::new(data, DetAugment::train(64), 3).unwrap());
    let reqs = requests(6, 5);
    let loaded: Vec<_> = Loader::new(
        Arc::clone(&det),
        reqs.clone(),
        LoaderConfig {
            workers: 2,
            depth: 4,
        },
    )
    .map(|b| b.unwrap())
    .collect();
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(loaded[i], collate(&*det, i as u64, req).unwrap());
    }

    let digits = LabelledImages {
        rows: 28,
        cols: 28,
        pixels: (0..20 * 784).map(|i| (i % 251) as u8).collect(),
        labels: (0..20).map(|i| (i % 10) as u8).collect(),
    };
    let set = ClassificationSet::new(digits, mnist_classes()).unwrap();
    let aug = ClsAugment {
        mixing: Mixing::Ricap { beta: 0.3 },
        mix_prob: 1.0,
        ..ClsAugment::standard(28, 1)
    };
    let cls = Arc::new(ClassificationPipeline::new(set, aug, 1).unwrap());
    let reqs = requests(4, 5);
    let loaded: Vec<_> = Loader::new(
        Arc::clone(&cls),
        reqs.clone(),
        LoaderConfig {
            workers: 2,
            depth: 2,
        },
    )
    .map(|b| b.unwrap())
    .collect();
    for (i, req) in reqs.iter().enumerate() {
        let want = collate(&*cls, i as u64, req).unwrap();
        assert_eq!(loaded[i], want);
        for t in &want.targets {
            assert!((t.parts.iter().map(|p| p.weight).sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(
                t.parts.iter().all(|p| req.ids.contains(&p.sample)),
                "partners come from the batch"
            );
        }
    }
}

#[test]
fn classification_set_rejects_labels_beyond_its_classes() {
    let bad = LabelledImages {
        rows: 1,
        cols: 1,
        pixels: vec![0, 0],
        labels: vec![3, 12],
    };
    let err = ClassificationSet::new(bad, mnist_classes()).unwrap_err();
    assert!(err.to_string().contains("label 12"), "{err}");
}
