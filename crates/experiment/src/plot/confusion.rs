//! The confusion matrix of an evaluation as a picture: one cell per (true,
//! predicted) class pair, shaded by the fraction of the true class's images
//! it holds, with the count written in the cell.

use std::path::Path;

use ndarray::Array2;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{write_png, write_svg, FONT};
use crate::Result;

/// Pixel size of a confusion-matrix picture (SVG and PNG).
pub const CONFUSION_SIZE: (u32, u32) = (900, 820);

/// Draws `confusion` (`[[true, predicted]]` counts) with the class names on
/// both axes into the SVG file `path`.
pub fn confusion_svg(
    confusion: &Array2<u64>,
    class_names: &[String],
    title: &str,
    path: &Path,
) -> Result<()> {
    write_svg(path, CONFUSION_SIZE, |root| {
        draw_confusion(root, confusion, class_names, title)
    })
}

/// The same picture as [`confusion_svg`], as a PNG file of [`CONFUSION_SIZE`] pixels.
pub fn confusion_png(
    confusion: &Array2<u64>,
    class_names: &[String],
    title: &str,
    path: &Path,
) -> Result<()> {
    write_png(path, CONFUSION_SIZE, |root| {
        draw_confusion(root, confusion, class_names, title)
    })
}

/// White for 0, dark blue for a whole row; text turns white on dark cells.
fn shade(fraction: f64) -> (RGBColor, RGBColor) {
    let f = fraction.clamp(0.0, 1.0);
    let mix = |white: f64, dark: f64| (white + (dark - white) * f).round() as u8;
    let fill = RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0));
    let text = if f > 0.5 { WHITE } else { BLACK };
    (fill, text)
}

fn draw_confusion<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    confusion: &Array2<u64>,
    class_names: &[String],
    title: &str,
) -> Result<(), String> {
    let k = confusion.nrows();
    if k == 0 || confusion.ncols() != k || class_names.len() != k {
        return Err(format!(
            "a confusion matrix needs K x K counts and K class names (got {:?} and {} names)",
            confusion.dim(),
            class_names.len()
        ));
    }
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let name = |i: &usize| class_names.get(*i).cloned().unwrap_or_default();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(70)
        .y_label_area_size(110)
        // A segmented `0..n` range has n + 1 segments: `0..k - 1` gives the k cells.
        .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class")
        .x_labels(k)
        .y_labels(k)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => name(i),
            _ => String::new(),
        })
        .y_label_formatter(&|v| match v {
            // Row 0 at the top, as a matrix is read.
            SegmentValue::CenterOf(i) => name(&(k - 1 - i)),
            _ => String::new(),
        })
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(|e| e.to_string())?;
    for true_class in 0..k {
        let row_total = confusion.row(true_class).sum().max(1) as f64;
        let y = k - 1 - true_class;
        for predicted in 0..k {
            let count = confusion[[true_class, predicted]];
            let (fill, text) = shade(count as f64 / row_total);
            let cell = [
                (SegmentValue::Exact(predicted), SegmentValue::Exact(y)),
                (
                    SegmentValue::Exact(predicted + 1),
                    SegmentValue::Exact(y + 1),
                ),
            ];
            chart
                .draw_series(std::iter::once(Rectangle::new(cell, fill.filled())))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(std::iter::once(Text::new(
                    count.to_string(),
                    (SegmentValue::CenterOf(predicted), SegmentValue::CenterOf(y)),
                    (FONT, 13).into_font().color(&text).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Center,
                        ),
                    ),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shading_goes_from_white_to_dark_blue() {
        assert_eq!(shade(0.0).0, RGBColor(255, 255, 255));
        assert_eq!(shade(1.0).0, RGBColor(8, 48, 107));
        assert_eq!(shade(0.9).1, WHITE);
        assert_eq!(shade(0.1).1, BLACK);
    }

    #[test]
    fn pictures_are_written_and_bad_shapes_refused() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let confusion = ndarray::array![[5, 1, 0], [2, 3, 1], [0, 0, 6]];
        let svg = dir.path().join("c.svg");
        confusion_svg(&confusion, &names, "test", &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        // Every count and class name is drawn.
        for needle in ["5", "6", "a", "c", "predicted class"] {
            let line = format!("\n{needle}\n");
            assert!(text.contains(&line), "{needle} missing from the SVG");
        }
        let png = dir.path().join("c.png");
        confusion_png(&confusion, &names, "test", &png).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
        let err = confusion_svg(&confusion, &names[..2], "test", &svg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("K class names"), "{err}");
    }
}
