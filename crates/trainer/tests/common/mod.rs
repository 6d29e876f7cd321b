//! What the trainer's end-to-end tests on small COCO sets share: writing
//! such a set from synth scenes, and reading a run's JSON files.
#![allow(dead_code)] // each test binary uses its own part of this

use std::path::Path;

use isdet_data::{CocoWriter, Dataset, DetectionSample, ImageBuffer, SynthConfig, SynthDataset};
use serde_json::{Value, json};

/// Writes each `(split, scenes, seed)` of `splits` as a COCO split of synth
/// scenes at 64 px under `root`, passing every training scene through
/// `edit(index, scene)` first; returns the `data` configuration that reads
/// the `train` and `val` splits.
pub fn write_coco_set(
    root: &Path,
    splits: &[(&str, usize, u64)],
    edit: impl Fn(usize, &mut DetectionSample),
) -> Value {
    for &(split, len, seed) in splits {
        let data = SynthDataset::new(SynthConfig {
            seed,
            len,
            size: 64,
            ..SynthConfig::default()
        })
        .unwrap();
        let classes = data.class_names().clone();
        let mut writer = CocoWriter::new(root, split, &classes, "trainer test").unwrap();
        for i in 0..len {
            let mut sample = data.get(i).unwrap();
            if split == "train" {
                edit(i, &mut sample);
            }
            writer.add(&sample).unwrap();
        }
        writer.finish().unwrap();
    }
    let path = |p: &str| root.join(p).to_string_lossy().into_owned();
    json!({
        "kind": "coco",
        "train_json": path("instances_train.json"),
        "train_images": path("train"),
        "val_json": path("instances_val.json"),
        "val_images": path("val"),
    })
}

/// Makes `sample` an empty frame: a blank canvas of its size, no object.
pub fn make_empty(sample: &mut DetectionSample) {
    let image = &sample.image;
    sample.image = ImageBuffer::new(image.width, image.height, image.channels);
    sample.annotations.clear();
}

/// A JSON file of a run directory, parsed.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
