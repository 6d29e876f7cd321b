//! Checkpoints: weights as safetensors plus the model configuration as JSON,
//! both written atomically.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::{DetectorError, Result};
use crate::params::ParamStore;

fn io(path: &Path) -> impl Fn(std::io::Error) -> DetectorError + '_ {
    move |source| DetectorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    isdet_data::io::write_atomic(path, bytes).map_err(|e| DetectorError::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes every parameter (buffers included) to `weights` (safetensors)
/// and `config` to `config_path` (JSON).
pub fn save<C: Serialize>(
    params: &ParamStore,
    config: &C,
    weights: &Path,
    config_path: &Path,
) -> Result<()> {
    let tensors: HashMap<String, Tensor> = params
        .all()
        .iter()
        .map(|p| (p.name.clone(), p.var.as_tensor().to_device(&Device::Cpu)))
        .map(|(n, t)| t.map(|t| (n, t)))
        .collect::<candle_core::Result<_>>()?;
    let bytes = safetensors::serialize(&tensors, None).map_err(|e| DetectorError::Checkpoint {
        path: weights.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(weights, &bytes)?;
    let json =
        serde_json::to_vec_pretty(config).map_err(|e| DetectorError::Config(e.to_string()))?;
    write_atomic(config_path, &json)
}

/// Reads a model configuration written by [`save`].
pub fn load_config<C: DeserializeOwned>(config_path: &Path) -> Result<C> {
    let bytes = std::fs::read(config_path).map_err(io(config_path))?;
    serde_json::from_slice(&bytes).map_err(|e| DetectorError::Checkpoint {
        path: config_path.to_path_buf(),
        message: format!("line {} column {}: {e}", e.line(), e.column()),
    })
}

/// Loads `weights` into `params`. Every parameter must be present with its
/// exact shape; a mismatch is an error naming the tensor and both shapes.
pub fn load_weights(params: &ParamStore, weights: &Path) -> Result<()> {
    let bytes = std::fs::read(weights).map_err(io(weights))?;
    let err = |message: String| DetectorError::Checkpoint {
        path: weights.to_path_buf(),
        message,
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, params.device())
        .map_err(|e| err(e.to_string()))?;
    for p in params.all() {
        let t = tensors
            .get(&p.name)
            .ok_or_else(|| err(format!("tensor {} is missing", p.name)))?;
        if t.dims() != p.var.dims() {
            return Err(err(format!(
                "tensor {} has shape {:?} in the checkpoint but {:?} in the model",
                p.name,
                t.dims(),
                p.var.dims()
            )));
        }
        p.var.set(&t.to_dtype(p.var.dtype())?)?;
    }
    if let Some(extra) = tensors.keys().find(|k| params.find(k).is_none()) {
        return Err(err(format!(
            "tensor {extra} is not a parameter of the model"
        )));
    }
    Ok(())
}

/// Writes named tensors (e.g. optimiser state) as safetensors, atomically.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let cpu: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(n, t)| t.to_device(&Device::Cpu).map(|t| (n.clone(), t)))
        .collect::<candle_core::Result<_>>()?;
    let bytes = safetensors::serialize(&cpu, None).map_err(|e| DetectorError::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Reads named tensors written by [`save_tensors`] onto `device`.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| DetectorError::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
