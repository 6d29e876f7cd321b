//! Loose image files without annotations: what a trained detector is run
//! on (`cargo xtask predict --images`).

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, check_index};
use crate::error::{DataError, Result};
use crate::io::read_image;
use crate::types::{ClassNames, DetectionSample};

/// The file extensions taken from a folder (any case); a file named on its
/// own is taken whatever its name.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Image files as a detection dataset with no objects: sample `i` is the
/// `i`-th file, with image id `i + 1`. A file that cannot be decoded is
/// an error naming it when that sample is loaded, not when the set is
/// made, so one bad file costs only itself.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    paths: Vec<PathBuf>,
    classes: ClassNames,
}

impl ImageFiles {
    /// The files of `inputs`: a folder gives its PNG and JPEG files (not
    /// its subfolders), sorted by name; a file is taken as named. The
    /// classes are those the detector was trained on.
    pub fn new(inputs: &[PathBuf], classes: ClassNames) -> Result<Self> {
        let mut paths = Vec::new();
        for input in inputs {
            if input.is_dir() {
                paths.extend(images_in(input)?);
            } else if input.is_file() {
                paths.push(input.clone());
            } else {
                return Err(DataError::io(
                    input,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
                ));
            }
        }
        Ok(ImageFiles { paths, classes })
    }

    /// The file of sample `index`.
    pub fn path(&self, index: usize) -> Option<&Path> {
        self.paths.get(index).map(PathBuf::as_path)
    }
}

/// The image files directly in `dir`, sorted by name.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

impl Dataset for ImageFiles {
    type Sample = DetectionSample;

    fn len(&self) -> usize {
        self.paths.len()
    }

    fn get(&self, index: usize) -> Result<DetectionSample> {
        check_index(index, self.paths.len())?;
        Ok(DetectionSample {
            image_id: index as u64 + 1,
            image: read_image(&self.paths[index])?,
            annotations: Vec::new(),
        })
    }

    fn class_names(&self) -> &ClassNames {
        &self.classes
    }
}
