//! A search over several settings as a picture: one panel per setting the
//! space varies (lambda included when it varies), validation accuracy
//! against the setting's value, each point's mean over its seeds with a
//! ± one-std error bar, every finished trial as a dot and every pruned trial
//! as a cross at the accuracy where it stopped.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{padded_range, write_png, write_svg, FONT, TRAIN_COLOR, VALIDATION_COLOR};
use crate::records::run::RunState;
use crate::records::search::{lambda_stats, TableRow};
use crate::space::parse_settings;
use crate::Result;

/// Pixel size of one panel of the picture (it is as wide as its panels).
pub const POINTS_PANEL_SIZE: (u32, u32) = (560, 520);

/// One value of a setting per trial, and the accuracy.
type Column = Vec<(f64, f64, RunState)>;

/// A varied setting: its key, its [`Column`] and the per-point (value, mean, std).
type Varied = (String, Column, Vec<(f64, f64, f64)>);

/// The settings a table varies, each with (value, validation accuracy,
/// state) per trial that has an accuracy, and the per-point (value, mean,
/// std) of finished trials; only numeric settings with 2 or more values.
fn varied(rows: &[TableRow]) -> Vec<Varied> {
    let value_of = |r: &TableRow, key: &str| -> Option<f64> {
        if key == "lambda" {
            return Some(r.lambda);
        }
        parse_settings(&r.settings)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_float().or(v.as_integer().map(|i| i as f64)))
    };
    let mut keys: Vec<String> = vec!["lambda".into()];
    if let Some(first) = rows.first() {
        keys.extend(
            parse_settings(&first.settings)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k),
        );
    }
    let stats = lambda_stats(rows);
    keys.into_iter()
        .filter_map(|key| {
            let column: Column = rows
                .iter()
                .filter_map(|r| Some((value_of(r, &key)?, r.validation_accuracy?, r.state)))
                .collect();
            let mut distinct: Vec<f64> = rows.iter().filter_map(|r| value_of(r, &key)).collect();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if distinct.len() < 2 {
                return None;
            }
            let means = stats
                .iter()
                .filter_map(|s| {
                    let row = TableRow {
                        lambda: s.lambda,
                        settings: s.settings.clone(),
                        ..rows[0].clone()
                    };
                    Some((
                        value_of(&row, &key)?,
                        s.validation_accuracy_mean?,
                        s.validation_accuracy_std.unwrap_or(0.0),
                    ))
                })
                .collect();
            Some((key, column, means))
        })
        .collect()
}

/// The picture's size for the table `rows` (one panel per varied setting).
pub fn points_size(rows: &[TableRow]) -> (u32, u32) {
    let n = varied(rows).len().max(1) as u32;
    (POINTS_PANEL_SIZE.0 * n, POINTS_PANEL_SIZE.1)
}

/// Draw the search table `rows` against each setting it varies into the SVG file `path`.
pub fn points_svg(rows: &[TableRow], title: &str, path: &Path) -> Result<()> {
    write_svg(path, points_size(rows), |root| {
        draw_points(root, rows, title)
    })
}

/// The same picture as [`points_svg`], as a PNG file.
pub fn points_png(rows: &[TableRow], title: &str, path: &Path) -> Result<()> {
    write_png(path, points_size(rows), |root| {
        draw_points(root, rows, title)
    })
}

fn draw_points<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[TableRow],
    title: &str,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(
            &format!("{title}: validation accuracy, mean ± std over seeds per point"),
            (FONT, 22),
        )
        .map_err(|e| e.to_string())?;
    let columns = varied(rows);
    if columns.is_empty() {
        return Err("the search varies no numeric setting: nothing to draw".into());
    }
    let panels = root.split_evenly((1, columns.len()));
    let (y_lo, y_hi) = padded_range(rows.iter().filter_map(|r| r.validation_accuracy));
    for ((key, column, means), panel) in columns.iter().zip(panels.iter()) {
        let (x_lo, x_hi) = padded_range(column.iter().map(|c| c.0));
        let mut chart = ChartBuilder::on(panel)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(key.as_str())
            .y_desc("validation accuracy")
            .x_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(means.iter().map(|&(x, m, s)| {
                ErrorBar::new_vertical(x, m - s, m, m + s, VALIDATION_COLOR.stroke_width(2), 12)
            }))
            .map_err(|e| e.to_string())?
            .label("mean ± std (finished trials)")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y - 6), (x, y + 6)],
                    VALIDATION_COLOR.stroke_width(2),
                )
            });
        chart
            .draw_series(
                column
                    .iter()
                    .filter(|c| c.2 == RunState::Done)
                    .map(|&(x, a, _)| Circle::new((x, a), 3, TRAIN_COLOR.filled())),
            )
            .map_err(|e| e.to_string())?
            .label("trial")
            .legend(|(x, y)| Circle::new((x + 10, y), 3, TRAIN_COLOR.filled()));
        let pruned: Vec<(f64, f64)> = column
            .iter()
            .filter(|c| c.2 == RunState::Pruned)
            .map(|c| (c.0, c.1))
            .collect();
        if !pruned.is_empty() {
            chart
                .draw_series(
                    pruned
                        .into_iter()
                        .map(|p| Cross::new(p, 5, BLACK.stroke_width(2))),
                )
                .map_err(|e| e.to_string())?
                .label("pruned (where it stopped)")
                .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
        }
        super::draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    root.present().map_err(|e| e.to_string())
}
