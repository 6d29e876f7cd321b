//! The images behind a report's runs, opened from a run's `config.json`
//! through the trainer, so they are exactly the data the run trained and
//! was scored on: what the gallery, the thumbnail sheets and the per-class
//! shares of training need. The data must be where the configuration says
//! (synth scenes are regenerated from their seed); when it is not, the
//! parts that need it are left out of the report with a note saying why.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use isdet_data::{ClassNames, ImageBuffer};
use isdet_trainer::{
    ClassificationData, DetectionSet, RunConfig, Task, files, open_classification_data,
    open_detection_data,
};

/// The training images of a run, and for detection its validation images.
pub(crate) struct RunImages {
    train: Images,
    val: Option<DetectionSet>,
    classes: ClassNames,
    objects: OnceCell<Result<Vec<Vec<u32>>, String>>,
}

enum Images {
    Detection(DetectionSet),
    Classification(ClassificationData),
}

impl RunImages {
    fn open(config: &RunConfig) -> Result<Self, String> {
        let text = |e: isdet_trainer::TrainerError| e.to_string();
        Ok(match config.task {
            Task::Detection => {
                let (train, val) = open_detection_data(&config.data).map_err(text)?;
                RunImages {
                    classes: train.class_names().clone(),
                    train: Images::Detection(train),
                    val: Some(val),
                    objects: OnceCell::new(),
                }
            }
            Task::Classification => {
                let (train, _) = open_classification_data(&config.data).map_err(text)?;
                RunImages {
                    classes: train.class_names().clone(),
                    train: Images::Classification(train),
                    val: None,
                    objects: OnceCell::new(),
                }
            }
        })
    }

    /// The class names (and category ids).
    pub fn classes(&self) -> &ClassNames {
        &self.classes
    }

    /// Training image `index`.
    pub fn train_image(&self, index: usize) -> Result<ImageBuffer, String> {
        let text = |e: isdet_data::DataError| e.to_string();
        match &self.train {
            Images::Detection(set) => set.get(index).map(|s| s.image).map_err(text),
            Images::Classification(set) => set.get(index).map(|s| s.image).map_err(text),
        }
    }

    /// The class of every object of every training image (the label, for
    /// classification), in training-set order; read once.
    pub fn train_objects(&self) -> Result<&[Vec<u32>], String> {
        self.objects
            .get_or_init(|| self.read_objects())
            .as_deref()
            .map_err(Clone::clone)
    }

    fn read_objects(&self) -> Result<Vec<Vec<u32>>, String> {
        let text = |e: isdet_data::DataError| e.to_string();
        match &self.train {
            Images::Detection(set) => (0..set.len())
                .map(|i| {
                    let s = set.get(i).map_err(text)?;
                    Ok(s.annotations.iter().map(|a| a.class).collect())
                })
                .collect(),
            Images::Classification(set) => (0..set.len())
                .map(|i| set.get(i).map(|s| vec![s.label]).map_err(text))
                .collect(),
        }
    }

    /// The validation images (detection).
    pub fn val(&self) -> Option<&DetectionSet> {
        self.val.as_ref()
    }
}

/// Opened data, one per distinct data configuration (a report's runs
/// usually share one), and why a configuration could not be opened.
#[derive(Default)]
pub(crate) struct ImageCache {
    opened: HashMap<String, Result<Rc<RunImages>, String>>,
}

impl ImageCache {
    /// The images of the run in `run_dir`.
    pub fn of_run(&mut self, run_dir: &Path) -> Result<Rc<RunImages>, String> {
        let path = run_dir.join(files::CONFIG);
        let config = RunConfig::load(&path, &[]).map_err(|e| e.to_string())?;
        let key = serde_json::to_string(&(&config.task, &config.data))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.opened
            .entry(key)
            .or_insert_with(|| RunImages::open(&config).map(Rc::new))
            .clone()
    }
}
