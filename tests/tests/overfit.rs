//! The `tiny` detector can memorise 8 synth images: AP50 ≥ 0.9 on those
//! same images, scored with the COCO protocol (hotcoco, bit-identical to
//! pycocotools). If the losses, target assignment, decoding or optimiser
//! were wrong, it could not.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use isdet_data::Dataset as _;
use isdet_data::{
    BatchRequest, ClassNames, DetAugment, DetTarget, DetectionPipeline, Loader, LoaderConfig,
    SynthConfig, SynthDataset,
};
use isdet_detector::{AdamW, DecodeConfig, Fcos, FcosConfig, Optimizer, assign, decode, fcos_loss};
use isdet_eval::{CocoResult, GroundTruth, GtImage, evaluate_boxes};

/// COCO AP50 of `dets` (per image: (image id, detections)) against the
/// dataset's ground truth, through isdet-eval (hotcoco, bit-identical to
/// pycocotools).
fn ap50(gt: &SynthDataset, dets: &[(u64, Vec<isdet_detector::Detection>)]) -> f64 {
    let classes: &ClassNames = gt.class_names();
    let mut truth = GroundTruth::new(
        classes
            .category_ids()
            .iter()
            .copied()
            .zip(classes.names().iter().cloned()),
    );
    for i in 0..gt.len() {
        let s = gt.get(i).unwrap();
        let image = GtImage {
            id: s.image_id,
            width: s.image.width as u32,
            height: s.image.height as u32,
            file_name: format!("{i}.png"),
        };
        let boxes = s.annotations.iter().map(|a| {
            (
                classes.category_of(a.class).unwrap(),
                a.bbox.to_xywh(),
                a.crowd,
            )
        });
        truth.add_image(image, boxes).unwrap();
    }
    let results: Vec<CocoResult> = dets
        .iter()
        .flat_map(|(image_id, ds)| isdet_detector::to_coco_results(*image_id, ds, classes))
        .collect();
    evaluate_boxes(&truth, &results)
        .unwrap()
        .get("AP50")
        .unwrap()
}

#[test]
fn tiny_detector_overfits_eight_synth_images() {
    let device = Device::Cpu;
    let data = SynthDataset::new(SynthConfig {
        len: 8,
        seed: 0,
        ..SynthConfig::default()
    })
    .unwrap();
    let pipeline = Arc::new(DetectionPipeline::new(data.clone(), DetAugment::eval(96), 0).unwrap());
    let request = BatchRequest {
        epoch: 0,
        ids: (0..8).collect(),
    };
    let batch = Loader::new(
        pipeline,
        [request],
        LoaderConfig {
            workers: 1,
            depth: 1,
        },
    )
    .next()
    .unwrap()
    .unwrap();
    let images = Tensor::from_vec(batch.images.clone(), batch.shape.to_vec(), &device).unwrap();
    let boxes: Vec<&[isdet_data::Annotation]> = batch
        .targets
        .iter()
        .map(|t: &DetTarget| &t.annotations[..])
        .collect();

    let model = Fcos::new(FcosConfig::tiny(5, 96), 0, &device).unwrap();
    let targets = assign(model.locations(), &boxes, 5, model.config().center_radius).unwrap();
    let mut opt = AdamW::new(model.params().trainable(), 3e-3, 0.0).unwrap();
    let evaluate = || {
        let out = model.forward(&images, false).unwrap();
        let lbs: Vec<_> = batch.targets.iter().map(|t| t.letterbox).collect();
        let sizes: Vec<_> = batch.targets.iter().map(|t| t.original_size).collect();
        let dets = decode(
            &out,
            model.locations(),
            &lbs,
            &sizes,
            &DecodeConfig::default(),
        )
        .unwrap();
        let per_image: Vec<_> = batch.targets.iter().map(|t| t.image_id).zip(dets).collect();
        ap50(&data, &per_image)
    };
    let start = std::time::Instant::now();
    let mut best = 0.0;
    for step in 1..=400 {
        let out = model.forward(&images, true).unwrap();
        let loss = fcos_loss(&out, &targets, None).unwrap();
        let grads = loss.objective.backward().unwrap();
        opt.step(&grads).unwrap();
        if step % 25 == 0 {
            best = evaluate();
            eprintln!(
                "step {step}: loss {:.4}, AP50 {best:.3}, {:.1}s",
                loss.objective.to_scalar::<f32>().unwrap(),
                start.elapsed().as_secs_f32()
            );
            if best >= 0.9 {
                break;
            }
        }
    }
    assert!(best >= 0.9, "AP50 on the training images is {best:.3}");
}
