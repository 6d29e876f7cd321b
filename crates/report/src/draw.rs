//! Pictures of images: a canvas that images are pasted onto (scaled up by
//! whole factors, so pixels stay sharp) and boxes and text are drawn on,
//! with the embedded font, then encoded as PNG. Prediction drawings,
//! report galleries and thumbnail sheets are all made with it.
//!
//! ```
//! use isdet_data::ImageBuffer;
//! use isdet_report::draw::{Canvas, Mark};
//!
//! let image = ImageBuffer::new(64, 48, 1);
//! let mut canvas = Canvas::from_image(&image);
//! canvas.draw(&[Mark::boxed([8.0, 8.0, 40.0, 30.0], 2, "circle 0.91")])?;
//! let png = canvas.png()?;
//! assert!(!png.is_empty());
//! # Ok::<(), isdet_report::ReportError>(())
//! ```

use std::path::Path;

use image::ImageEncoder;
use isdet_base::write_atomic;
use isdet_data::{ClassNames, CocoResult, ImageBuffer};
use plotters::prelude::*;

use crate::error::{ReportError, Result, io_err};
use crate::plot::{PALETTE, register_embedded_font};

/// Something drawn on a canvas, in canvas pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// A box outline `[x0, y0, x1, y1]` in colour `colour` (an index into
    /// the class colours), with an optional label on a filled tab at its
    /// top-left corner.
    Box {
        /// Corners.
        rect: [f64; 4],
        /// Colour index ([`class_colour`]).
        colour: usize,
        /// The label ("7 0.93").
        label: Option<String>,
    },
    /// Black text with its top-left corner at `at`, `size` pixels high.
    Text {
        /// Top-left corner.
        at: (i32, i32),
        /// The text.
        text: String,
        /// Font size in pixels.
        size: u32,
    },
}

impl Mark {
    /// A labelled box.
    pub fn boxed(rect: [f64; 4], colour: usize, label: impl Into<String>) -> Self {
        Mark::Box {
            rect,
            colour,
            label: Some(label.into()),
        }
    }

    /// An object of class index `class` at `[x0, y0, x1, y1]`, in its
    /// class's colour, labelled with the class name (and the score, for a
    /// detection).
    pub fn object(rect: [f64; 4], class: usize, classes: &ClassNames, score: Option<f64>) -> Self {
        let name = classes
            .names()
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string());
        let label = match score {
            Some(score) => format!("{name} {score:.2}"),
            None => name,
        };
        Mark::boxed(rect, class, label)
    }

    /// A detection of a COCO results file, labelled `class score`.
    pub fn detection(found: &CocoResult, classes: &ClassNames) -> Self {
        let class = classes.class_of(found.category_id).unwrap_or(0) as usize;
        let [x, y, w, h] = found.bbox;
        Mark::object([x, y, x + w, y + h], class, classes, Some(found.score))
    }

    /// The mark in canvas pixels, for an image pasted at `at` scaled by
    /// `scale` (the mark being in that image's pixels).
    pub fn placed(self, at: (u32, u32), scale: f64) -> Self {
        let (ox, oy) = (f64::from(at.0), f64::from(at.1));
        match self {
            Mark::Box {
                rect: [x0, y0, x1, y1],
                colour,
                label,
            } => Mark::Box {
                rect: [
                    x0 * scale + ox,
                    y0 * scale + oy,
                    x1 * scale + ox,
                    y1 * scale + oy,
                ],
                colour,
                label,
            },
            Mark::Text {
                at: (x, y),
                text,
                size,
            } => Mark::Text {
                at: (
                    (f64::from(x) * scale + ox).round() as i32,
                    (f64::from(y) * scale + oy).round() as i32,
                ),
                text,
                size,
            },
        }
    }
}

/// The colour of class `class`: the plots' palette, in order.
pub fn class_colour(class: usize) -> (u8, u8, u8) {
    let RGBColor(r, g, b) = PALETTE[class % PALETTE.len()];
    (r, g, b)
}

/// An RGB picture being composed.
#[derive(Clone, Debug)]
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: u32, height: u32) -> Self {
        Canvas {
            width,
            height,
            pixels: vec![255; width as usize * height as usize * 3],
        }
    }

    /// A canvas of the image's size holding the image (grayscale becomes
    /// RGB).
    pub fn from_image(image: &ImageBuffer) -> Self {
        let mut canvas = Canvas::new(image.width as u32, image.height as u32);
        canvas.paste(image, 0, 0, 1.0);
        canvas
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Copies `image` with its top-left corner at (`x`, `y`), scaled by
    /// `scale` with nearest-neighbour sampling (so an image enlarged by a
    /// whole factor keeps sharp pixels); what falls outside is cut.
    pub fn paste(&mut self, image: &ImageBuffer, x: u32, y: u32, scale: f64) {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let (w, h) = (self.width as usize, self.height as usize);
        let out_w = (image.width as f64 * scale).round() as usize;
        let out_h = (image.height as f64 * scale).round() as usize;
        for sy in 0..out_h.min(h.saturating_sub(y as usize)) {
            let iy = ((sy as f64 / scale) as usize).min(image.height - 1);
            let cy = y as usize + sy;
            for sx in 0..out_w.min(w.saturating_sub(x as usize)) {
                let ix = ((sx as f64 / scale) as usize).min(image.width - 1);
                let at = (cy * w + x as usize + sx) * 3;
                for c in 0..3 {
                    let from = if image.channels == 1 { 0 } else { c };
                    self.pixels[at + c] = image.get(ix, iy, from);
                }
            }
        }
    }

    /// The RGB value at (`x`, `y`).
    pub fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let at = (y as usize * self.width as usize + x as usize) * 3;
        (self.pixels[at], self.pixels[at + 1], self.pixels[at + 2])
    }

    /// Draws `marks` in order.
    pub fn draw(&mut self, marks: &[Mark]) -> Result<()> {
        register_embedded_font()?;
        let size = (self.width, self.height);
        let root = BitMapBackend::with_buffer(&mut self.pixels, size).into_drawing_area();
        for mark in marks {
            draw_mark(&root, mark).map_err(|message| ReportError::Plot {
                what: "a drawing".into(),
                message,
            })?;
        }
        root.present().map_err(|e| ReportError::Plot {
            what: "a drawing".into(),
            message: e.to_string(),
        })
    }

    /// Writes the canvas to `path` as PNG, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.png()?).map_err(io_err(path))
    }

    /// The canvas as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(
                &self.pixels,
                self.width,
                self.height,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| ReportError::Plot {
                what: "a drawing".into(),
                message: format!("encoding PNG: {e}"),
            })?;
        Ok(png)
    }
}

/// The label text size for boxes on an image `height` pixels high.
fn label_size(height: u32) -> u32 {
    (height / 24).clamp(10, 16)
}

fn draw_mark(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    mark: &Mark,
) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    match mark {
        Mark::Box {
            rect,
            colour,
            label,
        } => {
            let (r, g, b) = class_colour(*colour);
            let colour = RGBColor(r, g, b);
            let [x0, y0, x1, y1] = rect.map(|v| v.round() as i32);
            root.draw(&Rectangle::new(
                [(x0, y0), (x1, y1)],
                colour.stroke_width(2),
            ))
            .map_err(err)?;
            if let Some(label) = label {
                let size = label_size(root.dim_in_pixel().1);
                let font = ("sans-serif", size).into_font().color(&WHITE);
                let (tw, th) = root.estimate_text_size(label, &font).map_err(err)?;
                // The tab sits above the box, or inside it at the top edge.
                let top = if y0 >= th as i32 + 2 {
                    y0 - th as i32 - 2
                } else {
                    y0
                };
                root.draw(&Rectangle::new(
                    [(x0, top), (x0 + tw as i32 + 3, top + th as i32 + 2)],
                    colour.filled(),
                ))
                .map_err(err)?;
                root.draw(&Text::new(label.clone(), (x0 + 2, top + 1), font))
                    .map_err(err)?;
            }
        }
        Mark::Text { at, text, size } => {
            let font = ("sans-serif", *size).into_font().color(&BLACK);
            root.draw(&Text::new(text.clone(), *at, font))
                .map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_colours_its_edge_and_leaves_the_rest_of_the_image() {
        let image = ImageBuffer::new(100, 80, 1);
        let mut canvas = Canvas::from_image(&image);
        let mark = Mark::Box {
            rect: [20.0, 30.0, 70.0, 60.0],
            colour: 3,
            label: None,
        };
        canvas.draw(&[mark]).unwrap();
        assert_eq!(canvas.pixel(45, 30), class_colour(3));
        assert_eq!(canvas.pixel(20, 45), class_colour(3));
        assert_eq!(canvas.pixel(45, 45), (0, 0, 0));
        assert_eq!(canvas.pixel(5, 5), (0, 0, 0));
    }

    #[test]
    fn paste_scales_each_pixel_to_a_square() {
        let mut image = ImageBuffer::new(2, 1, 3);
        image.data = vec![255, 0, 0, 0, 0, 255];
        let mut canvas = Canvas::new(5, 3);
        canvas.paste(&image, 1, 1, 2.0);
        assert_eq!(canvas.pixel(0, 0), (255, 255, 255));
        assert_eq!(canvas.pixel(2, 2), (255, 0, 0));
        assert_eq!(canvas.pixel(3, 1), (0, 0, 255));
        // The second image pixel's square is cut at the canvas edge.
        assert_eq!(canvas.pixel(4, 2), (0, 0, 255));
    }
}
