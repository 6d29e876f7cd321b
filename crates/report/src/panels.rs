//! Plots of small panels: each method's paired difference to the baseline
//! over the run, one panel per budget; and τ over the run, a row of two
//! panels (τ of the losses, τ of the gradient-norm bounds, the draws' Gini)
//! per budget.
//! A method keeps its colour in every panel of a plot.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::aggregate::percent;
use crate::curves::{BandPoint, BudgetDifferences, GroupTau};
use crate::error::{ReportError, Result, io_err};
use crate::plot::{DrawResult, PALETTE, encode, register_embedded_font, save, tick};

/// The file name of the paired-difference panels.
pub const DIFFERENCES_PLOT: &str = "paired_difference_vs_steps.png";

/// The file name of the τ panels.
pub const TAU_PLOT: &str = "tau_over_run.png";

/// Width of one panel and height of one row, in pixels.
const PANEL: (u32, u32) = (560, 380);

/// The size of a plot of one panel.
const SINGLE: (u32, u32) = (900, 540);

/// One small chart.
struct Panel {
    title: String,
    y_desc: String,
    series: Vec<Series>,
    /// Horizontal reference lines: (y, label, dashed).
    lines: Vec<(f64, Option<String>, bool)>,
}

/// One method's line with its band.
struct Series {
    label: String,
    colour: RGBColor,
    points: Vec<BandPoint>,
}

/// Draws the paired-difference panels of `curves` into
/// `dir/`[`DIFFERENCES_PLOT`]: per budget, each method's mean difference to
/// the baseline with its 95% t band, and the zero line. Draws nothing
/// without curves.
pub fn write_differences(dir: &Path, curves: &[BudgetDifferences], metric: &str) -> Result<()> {
    if curves.is_empty() {
        return Ok(());
    }
    let methods = names(curves.iter().flat_map(|b| &b.methods).map(|m| &m.method));
    let panels: Vec<Panel> = curves
        .iter()
        .map(|b| Panel {
            title: format!("{} − {} at {}", metric, b.baseline, percent(b.budget)),
            y_desc: format!("Δ {metric} (method − {})", b.baseline),
            series: b
                .methods
                .iter()
                .map(|m| Series {
                    label: m.method.clone(),
                    colour: colour(&methods, &m.method),
                    points: m.points.iter().map(|p| p.band()).collect(),
                })
                .collect(),
            lines: vec![(0.0, None, false)],
        })
        .collect();
    let columns = panels.len().min(3);
    write_grid(&dir.join(DIFFERENCES_PLOT), &panels, columns)
}

/// Draws τ over the run into `dir/`[`TAU_PLOT`]: one row per budget with
/// diagnostics, τ of the losses, τ of the gradient-norm bounds and the
/// Gini of the draws per image, one line per method (mean over its runs,
/// min–max band), and presampling's switch threshold dashed on the τ
/// panels where a group has one. Draws nothing without diagnostics.
pub fn write_tau(dir: &Path, groups: &[GroupTau]) -> Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let methods = names(groups.iter().map(|g| &g.method));
    let mut budgets: Vec<f64> = groups.iter().map(|g| g.budget).collect();
    budgets.dedup_by(|a, b| crate::aggregate::budget_matches(*a, *b));
    let mut panels = Vec::new();
    for budget in budgets {
        let at: Vec<&GroupTau> = groups
            .iter()
            .filter(|g| crate::aggregate::budget_matches(g.budget, budget))
            .collect();
        let mut thresholds: Vec<f64> = at.iter().filter_map(|g| g.tau_threshold).collect();
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        let lines: Vec<(f64, Option<String>, bool)> = thresholds
            .iter()
            .map(|&t| (t, Some(format!("presampling's threshold {t:.2}")), true))
            .collect();
        let panel = |title: &str, y: &str, of: fn(&GroupTau) -> &Vec<BandPoint>| Panel {
            title: format!("{title} at {}", percent(budget)),
            y_desc: y.into(),
            series: at
                .iter()
                .map(|g| Series {
                    label: g.method.clone(),
                    colour: colour(&methods, &g.method),
                    points: of(g).clone(),
                })
                .collect(),
            lines: lines.clone(),
        };
        panels.push(panel("τ of the losses", "τ", |g| &g.tau_loss_over_run));
        panels.push(panel("τ of the gradient-norm bounds", "τ", |g| {
            &g.tau_grad_norm_over_run
        }));
        // The Gini has no threshold: the same panel without the lines.
        let mut gini = panel("Gini of the draws per image", "Gini", |g| {
            &g.draw_gini_over_run
        });
        gini.lines.clear();
        panels.push(gini);
    }
    write_grid(&dir.join(TAU_PLOT), &panels, 3)
}

/// The distinct names, sorted: a method's colour is its place here.
fn names<'a>(all: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut names: Vec<&str> = all.map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn colour(methods: &[&str], method: &str) -> RGBColor {
    let k = methods.iter().position(|m| *m == method).unwrap_or(0);
    PALETTE[k % PALETTE.len()]
}

fn write_grid(path: &Path, panels: &[Panel], columns: usize) -> Result<()> {
    register_embedded_font()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let columns = columns.max(1);
    let rows = panels.len().div_ceil(columns).max(1);
    // A panel alone (one budget) has the room of a whole chart.
    let panel = if panels.len() == 1 { SINGLE } else { PANEL };
    let width = panel.0 * columns as u32;
    let entries = legend_entries(panels);
    let strip = legend_rows(&entries, width) * LEGEND_ROW + 2 * LEGEND_PAD;
    let size = (width, strip + panel.1 * rows as u32);
    let png = encode(size, |root| {
        root.fill(&WHITE)?;
        let (top, grid) = root.split_vertically(strip);
        draw_legend(&top, &entries)?;
        for (panel, area) in panels.iter().zip(grid.split_evenly((rows, columns))) {
            draw_panel(&area, panel)?;
        }
        Ok(())
    })
    .map_err(|message| ReportError::Plot {
        what: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        message,
    })?;
    save(path, &png)
}

/// One entry of the legend strip: a label, its colour, and whether its
/// line is dashed.
type Entry = (String, RGBColor, bool);

/// Height of a legend row and the padding around the strip, in pixels.
const LEGEND_ROW: u32 = 22;
const LEGEND_PAD: u32 = 6;
const LEGEND_FONT: u32 = 15;
/// The swatch, the gap after it and after the label, in pixels.
const SWATCH: i32 = 24;
const GAP: i32 = 6;
const SPACING: i32 = 22;
/// An estimate of the average glyph width at [`LEGEND_FONT`] (DejaVu Sans
/// runs about 0.6 em), to lay the strip out before drawing.
const GLYPH: f64 = 9.0;

/// Every series and labelled line of the panels, once each, in the order
/// they first appear: one legend for the whole plot, above the panels,
/// so no panel's legend hides its lines.
fn legend_entries(panels: &[Panel]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let lines = panels
        .iter()
        .flat_map(|p| &p.lines)
        .filter_map(|(_, label, dashed)| Some((label.clone()?, RGBColor(90, 90, 90), *dashed)));
    let series = panels
        .iter()
        .flat_map(|p| &p.series)
        .map(|s| (s.label.clone(), s.colour, false));
    for entry in series.chain(lines) {
        if !entries.iter().any(|e| e.0 == entry.0) {
            entries.push(entry);
        }
    }
    entries
}

fn entry_width(label: &str) -> i32 {
    SWATCH + GAP + (label.chars().count() as f64 * GLYPH).ceil() as i32 + SPACING
}

/// Where each entry goes, left to right, wrapping at `width`.
fn legend_layout(entries: &[Entry], width: u32) -> Vec<(i32, i32)> {
    let (mut x, mut row) = (LEGEND_PAD as i32 + 10, 0);
    entries
        .iter()
        .map(|(label, _, _)| {
            let w = entry_width(label);
            if x + w > width as i32 && x > LEGEND_PAD as i32 + 10 {
                x = LEGEND_PAD as i32 + 10;
                row += 1;
            }
            let at = (x, LEGEND_PAD as i32 + row * LEGEND_ROW as i32);
            x += w;
            at
        })
        .collect()
}

fn legend_rows(entries: &[Entry], width: u32) -> u32 {
    let last = legend_layout(entries, width).last().map_or(0, |&(_, y)| y);
    (last - LEGEND_PAD as i32) as u32 / LEGEND_ROW + 1
}

fn draw_legend(area: &DrawingArea<BitMapBackend<'_>, Shift>, entries: &[Entry]) -> DrawResult {
    let (width, _) = area.dim_in_pixel();
    let font = ("sans-serif", LEGEND_FONT).into_font().color(&BLACK);
    for ((label, colour, dashed), (x, y)) in entries.iter().zip(legend_layout(entries, width)) {
        let mid = y + LEGEND_ROW as i32 / 2;
        let style = colour.stroke_width(3);
        if *dashed {
            for k in 0..3 {
                let x0 = x + k * 9;
                area.draw(&PathElement::new([(x0, mid), (x0 + 6, mid)], style))?;
            }
        } else {
            area.draw(&PathElement::new([(x, mid), (x + SWATCH - 4, mid)], style))?;
        }
        let text_y = mid - LEGEND_FONT as i32 / 2 + 1;
        area.draw(&Text::new(
            label.clone(),
            (x + SWATCH + GAP, text_y),
            font.clone(),
        ))?;
    }
    Ok(())
}

fn draw_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, panel: &Panel) -> DrawResult {
    let (x_range, y_range) = ranges(panel);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(10)
        .margin_right(20)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), y_range)?;
    chart
        .configure_mesh()
        .x_desc("optimiser step")
        .y_desc(panel.y_desc.as_str())
        .x_label_formatter(&tick)
        .y_label_formatter(&fine_tick)
        .x_labels(6)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    for (y, _, dashed) in &panel.lines {
        let ends = [(x_range.start, *y), (x_range.end, *y)];
        if *dashed {
            let style = RGBColor(90, 90, 90).stroke_width(2);
            chart.draw_series(DashedLineSeries::new(ends, 8, 6, style))?;
        } else {
            chart.draw_series(LineSeries::new(ends, BLACK.stroke_width(1)))?;
        }
    }
    for s in &panel.series {
        let colour = s.colour;
        let outline: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.x, p.max))
            .chain(s.points.iter().rev().map(|p| (p.x, p.min)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            outline,
            colour.mix(0.18).filled(),
        )))?;
        chart.draw_series(LineSeries::new(
            s.points.iter().map(|p| (p.x, p.mean)),
            colour.stroke_width(2),
        ))?;
        chart.draw_series(
            s.points
                .iter()
                .map(|p| Circle::new((p.x, p.mean), 2, colour.filled())),
        )?;
    }
    Ok(())
}

/// Tick labels for small differences: up to four decimals, trailing
/// zeros dropped (plotters' own format prints long float tails).
fn fine_tick(v: &f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Every band and line fits, with a little room; an empty or flat range
/// is widened so the panel can be drawn.
fn ranges(panel: &Panel) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let points = panel.series.iter().flat_map(|s| &s.points);
    let xs = points.clone().map(|p| p.x);
    let ys = points
        .flat_map(|p| [p.min, p.max, p.mean])
        .chain(panel.lines.iter().map(|l| l.0));
    let span = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if !(lo.is_finite() && hi.is_finite()) {
            (0.0, 1.0)
        } else if hi - lo < 1e-12 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    };
    let (x0, x1) = span(&mut xs.into_iter());
    let (y0, y1) = span(&mut ys.into_iter());
    let pad = (y1 - y0) * 0.08;
    (x0..x1, (y0 - pad)..(y1 + pad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curves::{DifferenceCurve, DifferencePoint};

    fn curve(method: &str, means: &[f64]) -> DifferenceCurve {
        DifferenceCurve {
            method: method.into(),
            seeds: vec![0, 1],
            points: means
                .iter()
                .enumerate()
                .map(|(k, &mean)| DifferencePoint {
                    step: 100.0 * k as f64,
                    mean,
                    interval: Some([mean - 0.01, mean + 0.01]),
                })
                .collect(),
        }
    }

    /// Two budgets side by side, each with the zero line and its methods
    /// in their own colours.
    #[test]
    fn difference_panels_are_drawn_one_per_budget() {
        let dir = tempfile::tempdir().unwrap();
        let curves = [0.3, 1.0].map(|budget| BudgetDifferences {
            budget,
            baseline: "uniform".into(),
            methods: vec![
                curve("loss", &[0.0, 0.02, 0.01]),
                curve("entropy", &[0.0, -0.03, -0.02]),
            ],
        });
        write_differences(dir.path(), &curves, "AP").unwrap();
        let img = image::open(dir.path().join(DIFFERENCES_PLOT))
            .unwrap()
            .to_rgb8();
        // One legend row above the two panels.
        let strip = LEGEND_ROW + 2 * LEGEND_PAD;
        assert_eq!(img.dimensions(), (2 * PANEL.0, strip + PANEL.1));
        // The two methods' colours (sorted: entropy first) are in both
        // halves, below the legend.
        for half in [0, 1] {
            for c in [PALETTE[0], PALETTE[1]] {
                let found = (0..PANEL.0).any(|x| {
                    (strip..strip + PANEL.1)
                        .any(|y| img.get_pixel(half * PANEL.0 + x, y).0 == [c.0, c.1, c.2])
                });
                assert!(found, "colour {c:?} missing from panel {half}");
            }
        }
        write_differences(dir.path(), &[], "AP").unwrap();
    }

    #[test]
    fn the_legend_lists_each_series_once_and_wraps() {
        let series = |label: &str| Series {
            label: label.into(),
            colour: PALETTE[0],
            points: Vec::new(),
        };
        let panel = |labels: &[&str]| Panel {
            title: String::new(),
            y_desc: String::new(),
            series: labels.iter().map(|l| series(l)).collect(),
            lines: vec![(1.8, Some("threshold".into()), true), (0.0, None, false)],
        };
        let entries = legend_entries(&[panel(&["a", "b"]), panel(&["b", "c"])]);
        let labels: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(labels, ["a", "b", "c", "threshold"]);
        assert_eq!(legend_rows(&entries, 1000), 1);
        // Too narrow for all four: each entry is about 60 px wide.
        assert!(legend_rows(&entries, 150) >= 2);
    }

    #[test]
    fn the_y_range_holds_the_reference_lines() {
        let panel = Panel {
            title: String::new(),
            y_desc: String::new(),
            series: vec![Series {
                label: "x".into(),
                colour: PALETTE[0],
                points: vec![BandPoint::of(0.0, &[1.1]), BandPoint::of(10.0, &[1.3])],
            }],
            lines: vec![(1.8, None, true)],
        };
        let (x, y) = ranges(&panel);
        assert_eq!((x.start, x.end), (0.0, 10.0));
        assert!(y.start < 1.1 && y.end > 1.8, "{y:?}");
        assert_eq!(fine_tick(&-0.0), "0");
        assert_eq!(fine_tick(&0.0125), "0.0125");
        assert_eq!(fine_tick(&2.0), "2");
    }
}
