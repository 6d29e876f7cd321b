//! The detector's own entry points for training and inference: targets
//! for a batch of boxes, and detections (or COCO results) from its
//! outputs, so that no caller wires assignment and decoding by hand.

use isdet_data::{Annotation, ClassNames, CocoResult, Letterbox};

use crate::assign::{Targets, assign};
use crate::decode::{DecodeConfig, Detection, decode, to_coco_results};
use crate::error::{DetectorError, Result};
use crate::fcos::{Fcos, HeadOutput};

impl Fcos {
    /// The training targets of a batch, one slice of boxes per image, on
    /// this model's locations with its classes and centre radius.
    pub fn targets(&self, boxes: &[&[Annotation]]) -> Result<Targets> {
        let c = self.config();
        assign(self.locations(), boxes, c.num_classes, c.center_radius)
    }

    /// The detections of each image of a batch, in original image pixels
    /// (`letterboxes` and `sizes` as the images were loaded).
    pub fn detect(
        &self,
        out: &HeadOutput,
        letterboxes: &[Letterbox],
        sizes: &[(usize, usize)],
        config: &DecodeConfig,
    ) -> Result<Vec<Vec<Detection>>> {
        decode(out, self.locations(), letterboxes, sizes, config)
    }

    /// [`detect`](Self::detect) as COCO results, image `k` under id
    /// `image_ids[k]`, class indices turned into the dataset's category
    /// ids through `classes`.
    pub fn detect_coco(
        &self,
        out: &HeadOutput,
        image_ids: &[u64],
        letterboxes: &[Letterbox],
        sizes: &[(usize, usize)],
        config: &DecodeConfig,
        classes: &ClassNames,
    ) -> Result<Vec<CocoResult>> {
        let dets = self.detect(out, letterboxes, sizes, config)?;
        if image_ids.len() != dets.len() {
            return Err(DetectorError::Input(format!(
                "{} image ids for a batch of {} images",
                image_ids.len(),
                dets.len()
            )));
        }
        Ok(image_ids
            .iter()
            .zip(&dets)
            .flat_map(|(&id, d)| to_coco_results(id, d, classes))
            .collect())
    }
}
