//! What a generated training set's regime did to each image: the tags
//! file written beside a COCO annotations file
//! (`instances_train.tags.json` beside `instances_train.json`), so that a
//! report can split a run's draws by what the images hold.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The tags of one generated split: the regime's knobs as a JSON object,
/// and one entry per image in the order of the annotations file's images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeTags {
    /// The knobs the split was generated with.
    pub regime: serde_json::Value,
    /// One entry per image, in image order.
    pub images: Vec<ImageTags>,
}

/// What the regime did to one image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTags {
    /// The image id of the annotations file.
    pub id: u64,
    /// The clip the frame belongs to (the scene index when frames are not
    /// in clips).
    pub clip: u64,
    /// The frame's position in its clip (0 without clips).
    pub frame: u32,
    /// Whether the frame holds no object.
    pub empty: bool,
    /// Annotated boxes.
    pub boxes: u32,
    /// Annotated boxes whose class is wrong.
    pub noisy: u32,
    /// Objects drawn in the image but left out of the annotations.
    pub missing: u32,
}

impl RegimeTags {
    /// Reads a tags file; errors name the file.
    pub fn read(path: &Path) -> Result<Self> {
        crate::io::read_json(path)
    }

    /// Writes the tags file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes =
            serde_json::to_vec(self).map_err(|e| crate::error::DataError::json(path, &e))?;
        crate::io::write_atomic(path, &bytes)
    }
}

/// The tags file of an annotations file: `<stem>.tags.json` in the same
/// folder (`instances_train.json` → `instances_train.tags.json`).
pub fn tags_path(annotations_json: &Path) -> PathBuf {
    let stem = annotations_json.file_stem().map_or_else(
        || "annotations".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    annotations_json.with_file_name(format!("{stem}.tags.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_path_sits_beside_the_annotations() {
        assert_eq!(
            tags_path(Path::new("data/x/instances_train.json")),
            Path::new("data/x/instances_train.tags.json")
        );
    }
}
