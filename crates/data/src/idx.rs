//! The IDX format of MNIST and Fashion-MNIST: reading (plain or gzipped, as
//! users download them) and writing (plain).

use std::io::Read;
use std::path::Path;

use crate::dataset::{Dataset, check_index};
use crate::error::{DataError, Result};
use crate::io::write_atomic;
use crate::types::{ClassNames, ClassificationSample, ImageBuffer};

/// A set of same-sized grayscale images with one label each: what an IDX
/// image file and its label file hold together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImages {
    /// Rows of each image.
    pub rows: usize,
    /// Columns of each image.
    pub cols: usize,
    /// `len * rows * cols` bytes, image after image.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl LabelledImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images whose indices `keep` says, in that order.
    pub fn select(&self, keep: &[usize]) -> LabelledImages {
        let mut pixels = Vec::with_capacity(keep.len() * self.rows * self.cols);
        for &i in keep {
            pixels.extend_from_slice(self.image(i));
        }
        LabelledImages {
            rows: self.rows,
            cols: self.cols,
            pixels,
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::Idx {
                path: path.to_path_buf(),
                message: format!("gzip: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file of unsigned bytes; returns its dimensions and data.
fn parse_idx(path: &Path, bytes: &[u8], want_dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |message: String| DataError::Idx {
        path: path.to_path_buf(),
        message,
    };
    if bytes.len() < 4 {
        return Err(bad("shorter than its 4-byte header".into()));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("magic number does not start with two zero bytes".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        )));
    }
    let dims = bytes[3] as usize;
    if dims != want_dims {
        return Err(bad(format!("has {dims} dimensions, expected {want_dims}")));
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad("truncated header".into()));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|d| {
            u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap_or([0; 4])) as usize
        })
        .collect();
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match count {
        Some(n) if bytes.len() - header == n => Ok((shape, bytes[header..].to_vec())),
        Some(n) => Err(bad(format!(
            "header promises {n} bytes of data but the file holds {}",
            bytes.len() - header
        ))),
        None => Err(bad("dimensions overflow".into())),
    }
}

/// Reads an IDX image file (3 dimensions) and its label file (1 dimension);
/// either may be gzipped. Fails when the counts disagree.
pub fn read_idx_pair(images: &Path, labels: &Path) -> Result<LabelledImages> {
    let (shape, pixels) = parse_idx(images, &read_maybe_gz(images)?, 3)?;
    let (lshape, labels_data) = parse_idx(labels, &read_maybe_gz(labels)?, 1)?;
    if shape[0] != lshape[0] {
        return Err(DataError::Idx {
            path: labels.to_path_buf(),
            message: format!(
                "{} labels for {} images in {}",
                lshape[0],
                shape[0],
                images.display()
            ),
        });
    }
    Ok(LabelledImages {
        rows: shape[1],
        cols: shape[2],
        pixels,
        labels: labels_data,
    })
}

/// Writes an IDX image file and label file (uncompressed), atomically.
pub fn write_idx_pair(set: &LabelledImages, images: &Path, labels: &Path) -> Result<()> {
    let mut img = Vec::with_capacity(16 + set.pixels.len());
    img.extend_from_slice(&[0, 0, 0x08, 3]);
    for d in [set.len(), set.rows, set.cols] {
        img.extend_from_slice(&(d as u32).to_be_bytes());
    }
    img.extend_from_slice(&set.pixels);
    write_atomic(images, &img)?;
    let mut lab = Vec::with_capacity(8 + set.labels.len());
    lab.extend_from_slice(&[0, 0, 0x08, 1]);
    lab.extend_from_slice(&(set.len() as u32).to_be_bytes());
    lab.extend_from_slice(&set.labels);
    write_atomic(labels, &lab)
}

/// The standard file names of an MNIST-style split (`train` or `t10k`).
pub fn idx_file_names(split: &str) -> (String, String) {
    (
        format!("{split}-images-idx3-ubyte"),
        format!("{split}-labels-idx1-ubyte"),
    )
}

/// Reads split `split` (`train` or `t10k`) from `dir`, accepting the plain
/// names and the `.gz` names users download.
pub fn read_idx_split(dir: &Path, split: &str) -> Result<LabelledImages> {
    let (img, lab) = idx_file_names(split);
    let pick = |name: &str| {
        let plain = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        if !plain.exists() && gz.exists() {
            gz
        } else {
            plain
        }
    };
    read_idx_pair(&pick(&img), &pick(&lab))
}

/// A classification dataset held in memory (MNIST, Fashion-MNIST or any
/// IDX pair).
#[derive(Debug, Clone)]
pub struct ClassificationSet {
    images: LabelledImages,
    classes: ClassNames,
}

impl ClassificationSet {
    /// A dataset over `images`; fails if a label is outside `classes`.
    pub fn new(images: LabelledImages, classes: ClassNames) -> Result<Self> {
        if let Some((i, &l)) = images
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= classes.len())
        {
            return Err(DataError::Config(format!(
                "image {i} has label {l} but there are only {} classes",
                classes.len()
            )));
        }
        Ok(ClassificationSet { images, classes })
    }

    /// The underlying images and labels.
    pub fn images(&self) -> &LabelledImages {
        &self.images
    }
}

impl Dataset for ClassificationSet {
    type Sample = ClassificationSample;

    fn len(&self) -> usize {
        self.images.len()
    }

    fn get(&self, index: usize) -> Result<ClassificationSample> {
        check_index(index, self.images.len())?;
        Ok(ClassificationSample {
            image: ImageBuffer {
                width: self.images.cols,
                height: self.images.rows,
                channels: 1,
                data: self.images.image(index).to_vec(),
            },
            label: self.images.labels[index] as u32,
        })
    }

    fn class_names(&self) -> &ClassNames {
        &self.classes
    }
}
