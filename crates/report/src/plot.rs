//! PNG plots of the metric against a cost, one mean line per group with a
//! min–max band over its seeds.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (plotters'
//! `ab_glyph` backend), so the plots render the same on a machine without
//! any system font.

use std::collections::BTreeMap;
use std::path::Path;

use image::ImageEncoder;
use isdet_eval::CostAxis;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::aggregate::GroupSpending;
use crate::aggregate::{BandPoint, Group, band, percent};
use crate::error::{ReportError, Result, io_err};
use isdet_base::write_atomic;

/// DejaVu Sans; its licence is crates/report/assets/fonts/LICENSE-DejaVu.txt.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Plot size in pixels.
const SIZE: (u32, u32) = (1000, 640);

/// The axes plotted, each into its own file.
pub const AXES: [CostAxis; 3] = [CostAxis::Steps, CostAxis::Backward, CostAxis::Seconds];

/// The most groups whose curves are drawn overlapping on one chart per
/// axis; beyond it the lines cannot be told apart, and the report shows
/// the paired-difference panels (one per budget) alone.
pub const OVERLAP_LIMIT: usize = 6;

/// Line colours: Tableau 10 (distinguishable and colour-blind tolerant),
/// then six darker ones.
pub(crate) const PALETTE: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    // Beyond ten groups (the classification study has eleven methods):
    // black and five darker shades, still readable on white.
    RGBColor(0, 0, 0),
    RGBColor(0, 90, 50),
    RGBColor(120, 30, 120),
    RGBColor(150, 110, 0),
    RGBColor(0, 60, 140),
    RGBColor(170, 60, 0),
];

/// Registers the embedded font as "sans-serif" (plotters keeps one
/// registry per process; registering again replaces it with the same).
pub(crate) fn register_embedded_font() -> Result<()> {
    register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| ReportError::Plot {
        what: "the embedded font".into(),
        message: "it does not parse".into(),
    })
}

/// The file name of the plot against `axis`, relative to `plots/`.
pub fn file_name(axis: CostAxis) -> String {
    let name = match axis {
        CostAxis::Steps => "steps",
        CostAxis::Backward => "backward",
        CostAxis::Forward => "forward",
        CostAxis::Images => "images",
        CostAxis::Seconds => "seconds",
    };
    format!("metric_vs_{name}.png")
}

/// The file name of the final-metric-against-budget plot.
pub const BUDGET_PLOT: &str = "metric_vs_budget.png";

/// Draws every plot of [`AXES`] (only for up to [`OVERLAP_LIMIT`]
/// groups), and the final metric against the budget, into `dir` (created
/// if missing).
pub fn write_all(dir: &Path, groups: &[Group], metric: &str) -> Result<()> {
    register_embedded_font()?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let overlapping = if groups.len() <= OVERLAP_LIMIT {
        &AXES[..]
    } else {
        &[]
    };
    for &axis in overlapping {
        let bands: Vec<(String, Vec<BandPoint>)> =
            groups.iter().map(|g| (g.label(), band(g, axis))).collect();
        let title = format!("{metric} against {}", axis.label());
        let png =
            render(&bands, &title, axis.label(), metric).map_err(|message| ReportError::Plot {
                what: file_name(axis),
                message,
            })?;
        save(&dir.join(file_name(axis)), &png)?;
    }
    let title = format!("final {metric} against the budget");
    let png = render(
        &budget_bands(groups),
        &title,
        "budget (% of the full schedule)",
        metric,
    )
    .map_err(|message| ReportError::Plot {
        what: BUDGET_PLOT.into(),
        message,
    })?;
    save(&dir.join(BUDGET_PLOT), &png)
}

/// The file name of the train-count histogram.
pub const TRAIN_COUNTS_PLOT: &str = "train_counts.png";

/// The file name of the score-distribution panels.
pub const SCORES_PLOT: &str = "scores_over_run.png";

/// Draws what the budget was spent on into `dir`: the share of images by
/// times trained, one line per group, and one panel per group with the
/// median and the 10–90% range of the last scores over the run (each with
/// its own scale: heuristics score on different scales). Draws nothing
/// without sampling records.
pub fn write_spending(dir: &Path, spending: &[GroupSpending]) -> Result<()> {
    if spending.is_empty() {
        return Ok(());
    }
    let label = |g: &GroupSpending| format!("{} @ {}", g.method, percent(g.budget));
    let counts: Vec<(String, Vec<BandPoint>)> = spending
        .iter()
        .map(|g| (label(g), g.histogram.clone()))
        .collect();
    let png = render(
        &counts,
        "share of the training images by times trained",
        "times trained",
        "share of images",
    )
    .map_err(|message| ReportError::Plot {
        what: TRAIN_COUNTS_PLOT.into(),
        message,
    })?;
    save(&dir.join(TRAIN_COUNTS_PLOT), &png)?;
    let panels: Vec<(String, Vec<BandPoint>)> = spending
        .iter()
        .map(|g| {
            let points = g
                .scores_over_run
                .iter()
                .map(|q| BandPoint {
                    x: q.step as f64,
                    mean: f64::from(q.quantiles[3]),
                    min: f64::from(q.quantiles[1]),
                    max: f64::from(q.quantiles[5]),
                })
                .collect();
            (label(g), points)
        })
        .collect();
    let png = render_panels(&panels).map_err(|message| ReportError::Plot {
        what: SCORES_PLOT.into(),
        message,
    })?;
    save(&dir.join(SCORES_PLOT), &png)
}

/// The file name of the per-class AP bar chart.
pub const PER_CLASS_PLOT: &str = "per_class_ap.png";

/// Draws the final AP of each class as bars, one bar per group (its label
/// and its class → AP map), classes along the x axis. Draws nothing when
/// no group has per-class AP.
pub fn write_per_class(dir: &Path, groups: &[(String, BTreeMap<String, f64>)]) -> Result<()> {
    let mut classes: Vec<&String> = groups.iter().flat_map(|(_, m)| m.keys()).collect();
    classes.sort();
    classes.dedup();
    if classes.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let png = encode(SIZE, |root| draw_bars(root, groups, &classes)).map_err(|message| {
        ReportError::Plot {
            what: PER_CLASS_PLOT.into(),
            message,
        }
    })?;
    save(&dir.join(PER_CLASS_PLOT), &png)
}

fn draw_bars(
    root: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    groups: &[(String, BTreeMap<String, f64>)],
    classes: &[&String],
) -> DrawResult {
    root.fill(&WHITE)?;
    let top = groups
        .iter()
        .flat_map(|(_, m)| m.values().copied())
        .fold(0.0f64, f64::max);
    let n = classes.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption("final AP per class", ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..n, 0.0..(top * 1.1).max(0.05))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(classes.len() * 2 + 1)
        .x_label_formatter(&|x| {
            // A label at each class's centre only.
            let k = x.floor();
            let centre = (x - k - 0.5).abs() < 1e-6;
            match classes.get(k as usize) {
                Some(c) if centre => c.to_string(),
                _ => String::new(),
            }
        })
        .x_desc("class")
        .y_desc("AP")
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    let width = 0.8 / groups.len().max(1) as f64;
    for (g, (label, per_class)) in groups.iter().enumerate() {
        let colour = PALETTE[g % PALETTE.len()];
        let bars = classes.iter().enumerate().filter_map(|(k, c)| {
            let v = *per_class.get(*c)?;
            let x0 = k as f64 + 0.1 + g as f64 * width;
            Some(Rectangle::new(
                [(x0, 0.0), (x0 + width, v)],
                colour.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled()));
    }
    legend(&mut chart)
}

/// Columns of the panel grid, and the height of one row in pixels.
const PANEL_COLUMNS: usize = 3;
const PANEL_ROW_HEIGHT: u32 = 340;

/// One small chart per entry, three to a row.
fn render_panels(panels: &[(String, Vec<BandPoint>)]) -> std::result::Result<Vec<u8>, String> {
    let rows = panels.len().div_ceil(PANEL_COLUMNS).max(1);
    let size = (SIZE.0 * 3 / 2, PANEL_ROW_HEIGHT * rows as u32);
    encode(size, |root| {
        root.fill(&WHITE)?;
        let areas = root.split_evenly((rows, PANEL_COLUMNS));
        for ((label, points), area) in panels.iter().zip(&areas) {
            let one = [(label.clone(), points.clone())];
            draw(area, &one, label, "optimiser step", "last score")?;
        }
        Ok(())
    })
}

pub(crate) fn save(path: &Path, png: &[u8]) -> Result<()> {
    write_atomic(path, png).map_err(io_err(path))
}

/// One series per method: its mean final metric (min–max over seeds) at
/// each of its budgets, in percent.
fn budget_bands(groups: &[Group]) -> Vec<(String, Vec<BandPoint>)> {
    let mut methods: Vec<&str> = groups.iter().map(|g| g.method.as_str()).collect();
    methods.dedup();
    methods.sort_unstable();
    methods.dedup();
    methods
        .into_iter()
        .map(|m| {
            let mut points: Vec<BandPoint> = groups
                .iter()
                .filter(|g| g.method == m && !g.runs.is_empty())
                .map(|g| {
                    let finals: Vec<f64> = g.runs.iter().map(|r| r.final_metric).collect();
                    BandPoint::of(g.budget * 100.0, &finals)
                })
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            (m.to_string(), points)
        })
        .collect()
}

/// Renders one plot and encodes it as PNG in memory.
fn render(
    bands: &[(String, Vec<BandPoint>)],
    title: &str,
    x_desc: &str,
    metric: &str,
) -> std::result::Result<Vec<u8>, String> {
    encode(SIZE, |root| draw(root, bands, title, x_desc, metric))
}

/// Draws with `paint` on a white bitmap of `size` and encodes it as PNG.
pub(crate) fn encode(
    (w, h): (u32, u32),
    paint: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> std::result::Result<Vec<u8>, String> {
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        paint(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| format!("encoding PNG: {e}"))?;
    Ok(png)
}

pub(crate) type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    bands: &[(String, Vec<BandPoint>)],
    title: &str,
    x_desc: &str,
    metric: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (x_range, y_range) = ranges(bands);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .margin_right(36)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&tick)
        .y_desc(metric)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    for (k, (label, points)) in bands.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        // The band is one polygon: up along the highest seed, back along the
        // lowest.
        let outline: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.x, p.max))
            .chain(points.iter().rev().map(|p| (p.x, p.min)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            outline,
            colour.mix(0.2).filled(),
        )))?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.x, p.mean)),
                colour.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        // Markers, so that a series of one point (one budget) shows.
        chart.draw_series(
            points
                .iter()
                .map(|p| Circle::new((p.x, p.mean), 3, colour.filled())),
        )?;
    }
    legend(&mut chart)
}

/// The series legend every chart has: lower right, on a light box.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A tick label without the noise of a default float format: whole numbers
/// as integers (`1000`, not `1000.0`), others to at most three decimals.
pub(crate) fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// The plotted ranges: every band fits, with a little room above and
/// below, and an empty or flat range is widened so the chart can be drawn.
fn ranges(bands: &[(String, Vec<BandPoint>)]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let points = bands.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in points {
        x0 = x0.min(p.x);
        x1 = x1.max(p.x);
        y0 = y0.min(p.min);
        y1 = y1.max(p.max);
    }
    let widen = |lo: f64, hi: f64| {
        if !(lo.is_finite() && hi.is_finite()) {
            (0.0, 1.0)
        } else if hi - lo < 1e-12 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    };
    let (x0, x1) = widen(x0, x1);
    let (y0, y1) = widen(y0, y1);
    let pad = (y1 - y0) * 0.05;
    (x0..x1, (y0 - pad)..(y1 + pad))
}
