//! The learning-rate range test as a picture: accuracy (validation, and the
//! smoothed mini-batch accuracy) and the smoothed loss against eta on a log
//! axis, with the suggested eta_min and eta_max marked.

use std::path::Path;

use plotters::coord::combinators::IntoLogRange;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{padded_range, write_png, write_svg, ETA_COLOR, FONT, TRAIN_COLOR, VALIDATION_COLOR};
use crate::records::lr_range::{RangePoint, Suggestion};
use crate::Result;

/// Pixel size of a range-test picture (SVG and PNG).
pub const LR_RANGE_SIZE: (u32, u32) = (1000, 820);

/// Draws the range test `points` (and the `suggestion`, if any) into the SVG file `path`.
pub fn lr_range_svg(
    points: &[RangePoint],
    suggestion: Option<&Suggestion>,
    title: &str,
    path: &Path,
) -> Result<()> {
    write_svg(path, LR_RANGE_SIZE, |root| {
        draw_lr_range(root, points, suggestion, title)
    })
}

/// The same picture as [`lr_range_svg`], as a PNG file of [`LR_RANGE_SIZE`] pixels.
pub fn lr_range_png(
    points: &[RangePoint],
    suggestion: Option<&Suggestion>,
    title: &str,
    path: &Path,
) -> Result<()> {
    write_png(path, LR_RANGE_SIZE, |root| {
        draw_lr_range(root, points, suggestion, title)
    })
}

type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

fn draw_lr_range<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    points: &[RangePoint],
    suggestion: Option<&Suggestion>,
    title: &str,
) -> Result<(), String> {
    if points.is_empty() {
        return Err("the range test has no point to draw".to_string());
    }
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, (FONT, 24)).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((2, 1));
    let eta_lo = points.first().map_or(1e-6, |p| p.eta);
    let eta_hi = points.last().map_or(1.0, |p| p.eta).max(eta_lo * 10.0);
    let accuracy: [Series<'_>; 2] = [
        (
            "validation accuracy",
            points
                .iter()
                .filter_map(|p| p.validation_accuracy.map(|a| (p.eta, a)))
                .collect(),
            VALIDATION_COLOR,
        ),
        (
            "mini-batch accuracy (smoothed)",
            points
                .iter()
                .map(|p| (p.eta, p.batch_accuracy_smoothed))
                .collect(),
            TRAIN_COLOR,
        ),
    ];
    let loss: [Series<'_>; 1] = [(
        "mini-batch loss (smoothed)",
        points.iter().map(|p| (p.eta, p.loss_smoothed)).collect(),
        TRAIN_COLOR,
    )];
    for (panel, (name, series)) in panels
        .iter()
        .zip([("accuracy", &accuracy[..]), ("loss", &loss[..])])
    {
        let (lo, mut hi) = padded_range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        if name == "loss" {
            // The explosion at the end would flatten the rest: cap the axis
            // at 1.5x the starting loss.
            hi = hi.min(1.5 * points[0].loss_smoothed).max(lo + 1e-9);
        }
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{name} against eta"), (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((eta_lo..eta_hi).log_scale(), lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("eta (log scale)")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_desc(name)
            .draw()
            .map_err(|e| e.to_string())?;
        for (label, data, color) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(data.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if let Some(s) = suggestion {
            for (label, eta) in [
                ("suggested eta_min", s.eta_min),
                ("suggested eta_max", s.eta_max),
            ] {
                chart
                    .draw_series(LineSeries::new(
                        [(eta, lo), (eta, hi)],
                        ETA_COLOR.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(format!("{label} {eta:.1e}"))
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], ETA_COLOR.stroke_width(2))
                    });
            }
        }
        super::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present().map_err(|e| e.to_string())
}
