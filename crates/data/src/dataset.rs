//! The `Dataset` trait every source implements.

use crate::error::Result;
use crate::types::ClassNames;

/// A finite, indexable collection of samples.
///
/// Implementations are shared between loader worker threads, so `get` takes
/// `&self` and must be safe to call concurrently.
pub trait Dataset: Send + Sync {
    /// What one index yields: a [`DetectionSample`](crate::DetectionSample) or
    /// a [`ClassificationSample`](crate::ClassificationSample).
    type Sample;

    /// Number of samples.
    fn len(&self) -> usize;

    /// True when the dataset holds no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sample at `index` (`0..len()`).
    fn get(&self, index: usize) -> Result<Self::Sample>;

    /// The class names (and COCO category ids) of this dataset.
    fn class_names(&self) -> &ClassNames;
}

impl<D: Dataset + ?Sized> Dataset for std::sync::Arc<D> {
    type Sample = D::Sample;
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Self::Sample> {
        (**self).get(index)
    }
    fn class_names(&self) -> &ClassNames {
        (**self).class_names()
    }
}

/// Returns an error when `index` is outside `0..len`.
pub(crate) fn check_index(index: usize, len: usize) -> Result<()> {
    if index < len {
        Ok(())
    } else {
        Err(crate::DataError::IndexOutOfRange { index, len })
    }
}
