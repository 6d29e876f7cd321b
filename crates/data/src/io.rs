//! File helpers: image decoding and encoding, atomic writes, JSON reading.

use std::io::Write;
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

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, then renamed over the target. A reader never sees a
/// half-written file, and a killed process leaves the old file (or none).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| DataError::Config(format!("{} has no file name", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DataError::io(path, e)
    })
}

/// Reads and parses a JSON file; syntax and schema errors name the file,
/// line and column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| DataError::json(path, &e))
}
