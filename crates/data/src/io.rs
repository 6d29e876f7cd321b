//! File helpers: image decoding and encoding, atomic writes, JSON reading.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::types::ImageBuffer;

/// Decodes a PNG or JPEG file into an 8-bit grayscale or RGB image.
///
/// Grayscale files stay single-channel; everything else (palette, alpha,
/// 16-bit) becomes 8-bit RGB.
pub fn read_image(path: &Path) -> Result<ImageBuffer> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_image(&bytes).map_err(|message| DataError::Image {
        path: path.to_path_buf(),
        message,
    })
}

/// Decodes PNG or JPEG bytes (the format is sniffed from the content).
pub fn decode_image(bytes: &[u8]) -> std::result::Result<ImageBuffer, String> {
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    if width == 0 || height == 0 {
        return Err("image has zero width or height".into());
    }
    Ok(match img {
        image::DynamicImage::ImageLuma8(g) => ImageBuffer {
            width,
            height,
            channels: 1,
            data: g.into_raw(),
        },
        other => ImageBuffer {
            width,
            height,
            channels: 3,
            data: other.into_rgb8().into_raw(),
        },
    })
}

/// Encodes an image as PNG (deterministic: same pixels, same bytes).
pub fn encode_png(img: &ImageBuffer) -> Result<Vec<u8>> {
    let colour = match img.channels {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        c => {
            return Err(DataError::Config(format!(
                "cannot encode {c}-channel image"
            )));
        }
    };
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &img.data,
        img.width as u32,
        img.height as u32,
        colour,
    )
    .map_err(|e| DataError::Config(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Writes `bytes` to `path` atomically (`isdet_base::write_atomic`); the
/// error names the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    isdet_base::write_atomic(path, bytes).map_err(|e| DataError::io(path, e))
}

/// Reads and parses a JSON file; syntax and schema errors name the file,
/// line and column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| DataError::json(path, &e))
}
