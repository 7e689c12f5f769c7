//! Pictures as SVG and PNG, drawn from the CSV files, so
//! `cargo xtask plot RESULTS_DIR` redraws them without retraining:
//! - per training: cost, loss and accuracy (train and validation) against the
//!   update step, plus the learning rate eta in its own panel;
//! - per search: validation accuracy against lambda on a log axis, with
//!   mean ± std error bars over seeds; a search over several settings also
//!   gets one panel per setting (`points`);
//! - per evaluation: the confusion matrix (`confusion`);
//! - per learning-rate range test: accuracy and loss against eta (`lr_range`).
//!
//! Each picture is drawn by one function generic over the plotters backend:
//! once into SVG (vector, for the report) and once into an RGB bitmap encoded
//! as PNG (for viewers without SVG). Everything is pure Rust: text is laid out
//! and rasterised with DejaVu Sans embedded in the binary (`dejavu` crate,
//! registered with plotters' `ab_glyph` font backend), so no system font stack
//! or C library is needed.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::combinators::IntoLogRange;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use mlp::schedule::ScheduleSpec;

use crate::config::RunConfig;
use crate::records::run::{self, CurveRow, RunState};
use crate::records::search::{self, TableRow};
use crate::{io, ExperimentError, Result};

mod confusion;
mod lr_range;
mod points;
pub use confusion::{confusion_png, confusion_svg, CONFUSION_SIZE};
pub use lr_range::{lr_range_png, lr_range_svg, LR_RANGE_SIZE};
pub use points::{points_png, points_svg, POINTS_PANEL_SIZE};

pub(crate) const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
pub(crate) const VALIDATION_COLOR: RGBColor = RGBColor(214, 39, 40);
pub(crate) const ETA_COLOR: RGBColor = RGBColor(44, 160, 44);
const FONT: &str = "sans-serif";

/// Pixel size of a training's learning-curve picture (SVG and PNG).
pub const CURVES_SIZE: (u32, u32) = (1200, 860);
/// Pixel size of a search's accuracy-vs-lambda picture (SVG and PNG).
pub const SEARCH_SIZE: (u32, u32) = (900, 560);

/// Register the embedded DejaVu Sans as the font family [`FONT`], once per
/// process. plotters' `ab_glyph` backend measures (for layout, SVG too) and
/// draws text only with registered fonts.
fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu Sans font could not be parsed".to_string())
    }
}

/// Draw with `draw` into an SVG document of `size` pixels and write it atomically to `path`.
pub(crate) fn write_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<()> {
    ensure_font().map_err(plot_err(path))?;
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, size).into_drawing_area()).map_err(plot_err(path))?;
    io::write_atomic(path, svg.as_bytes())
}

/// Draw with `draw` into an RGB bitmap of `size` pixels, encode it as PNG and
/// write it atomically to `path`.
fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<()> {
    ensure_font().map_err(plot_err(path))?;
    let (width, height) = size;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw(BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area()).map_err(plot_err(path))?;
    let bytes = encode_png(&rgb, size).map_err(plot_err(path))?;
    io::write_atomic(path, &bytes)
}

/// `rgb` (8 bits per channel, row by row) as the bytes of a PNG file.
fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn plot_err(path: &Path) -> impl Fn(String) -> ExperimentError + '_ {
    move |message| ExperimentError::Format {
        path: path.to_path_buf(),
        message: format!("cannot draw: {message}"),
    }
}

/// `(min, max)` of `values` padded by 5% (or ±0.5 when they are all equal).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

/// Draw the learning curves `rows` of the run `title` into the SVG file `path`:
/// four panels (cost, loss, accuracy: train and validation; eta).
/// With the run's `schedule`, eta is drawn exactly at every step (it is
/// piecewise linear); without it, at the recorded points only.
pub fn curves_svg(
    rows: &[CurveRow],
    schedule: Option<&ScheduleSpec>,
    title: &str,
    path: &Path,
) -> Result<()> {
    write_svg(path, CURVES_SIZE, |root| {
        draw_curves(root, rows, schedule, title)
    })
}

/// The same picture as [`curves_svg`], as a PNG file of [`CURVES_SIZE`] pixels.
pub fn curves_png(
    rows: &[CurveRow],
    schedule: Option<&ScheduleSpec>,
    title: &str,
    path: &Path,
) -> Result<()> {
    write_png(path, CURVES_SIZE, |root| {
        draw_curves(root, rows, schedule, title)
    })
}

type Getter = fn(&CurveRow) -> f64;

/// Points of the schedule's eta(t), sampled from the schedule itself (no
/// knowledge of its shape): up to [`ETA_SAMPLES`] evenly spaced steps plus
/// every half period, where cyclic schedules turn.
fn eta_corners(schedule: &ScheduleSpec) -> Vec<(f64, f64)> {
    let schedule = schedule.build();
    let n_steps = schedule.n_steps();
    let n = n_steps.clamp(1, ETA_SAMPLES);
    let half = (schedule.period() / 2).max(1);
    let mut steps: Vec<u64> = (0..=n)
        .map(|i| ((i as u128 * n_steps as u128) / n as u128) as u64)
        .chain(
            (0..=n_steps / half)
                .map(|k| k * half)
                .take(ETA_SAMPLES as usize),
        )
        .collect();
    steps.sort_unstable();
    steps.dedup();
    steps
        .into_iter()
        .map(|t| (t as f64, schedule.eta(t)))
        .collect()
}

/// Most evenly spaced samples of eta(t) in a picture.
const ETA_SAMPLES: u64 = 2000;

fn draw_curves<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[CurveRow],
    schedule: Option<&ScheduleSpec>,
    title: &str,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, (FONT, 26)).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((2, 2));
    let (eta_points, eta_label) = match schedule {
        Some(schedule) => (eta_corners(schedule), "eta"),
        None => (
            rows.iter().map(|r| (r.step as f64, r.eta)).collect(),
            "eta (at recorded points)",
        ),
    };
    let max_step = rows
        .iter()
        .map(|r| r.step as f64)
        .chain(eta_points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let metrics: [(&str, Getter, Getter); 3] = [
        ("cost", |r| r.train_cost, |r| r.validation_cost),
        ("loss", |r| r.train_loss, |r| r.validation_loss),
        ("accuracy", |r| r.train_accuracy, |r| r.validation_accuracy),
    ];
    for (panel, (name, train, validation)) in panels.iter().zip(metrics) {
        let (lo, hi) = padded_range(rows.iter().flat_map(|r| [train(r), validation(r)]));
        let mut chart = ChartBuilder::on(panel)
            .caption(name, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..max_step, lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("update step")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc(name)
            .draw()
            .map_err(|e| e.to_string())?;
        for (label, get, color) in [
            (train_label(rows), train, TRAIN_COLOR),
            ("validation".to_string(), validation, VALIDATION_COLOR),
        ] {
            chart
                .draw_series(LineSeries::new(
                    rows.iter().map(|r| (r.step as f64, get(r))),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        // Costs fall and accuracies rise: keep the legend off the curves' ends.
        let corner = if name == "accuracy" {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        };
        draw_legend(&mut chart, corner)?;
    }
    let (_, eta_hi) = padded_range(eta_points.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(&panels[3])
        .caption("learning rate", (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_step, 0f64..eta_hi.max(f64::MIN_POSITIVE))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("update step")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("eta")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(eta_points, ETA_COLOR.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label(eta_label)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ETA_COLOR.stroke_width(2)));
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(|e| e.to_string())
}

/// The legend of the train curve: `train`, or, when the points before the
/// last evaluated fewer training rows than the last (`curve_train_rows`),
/// how many, e.g. `train (first 5000 rows before the end)`.
fn train_label(rows: &[CurveRow]) -> String {
    let whole = rows.last().and_then(|r| r.train_rows);
    let fewer = rows
        .iter()
        .filter_map(|r| r.train_rows)
        .filter(|&n| Some(n) != whole)
        .min();
    match fewer {
        Some(n) => format!("train (first {n} rows before the end)"),
        None => "train".to_string(),
    }
}

/// Draw the chart's legend in `corner`: the one legend style of every
/// picture (a framed, slightly transparent white box).
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    corner: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Draw validation accuracy against lambda (log axis) for the search table
/// `rows` into the SVG file `path`; diverged trials are marked at the bottom.
pub fn search_svg(rows: &[TableRow], title: &str, path: &Path) -> Result<()> {
    write_svg(path, SEARCH_SIZE, |root| draw_search(root, rows, title))
}

/// The same picture as [`search_svg`], as a PNG file of [`SEARCH_SIZE`] pixels.
pub fn search_png(rows: &[TableRow], title: &str, path: &Path) -> Result<()> {
    write_png(path, SEARCH_SIZE, |root| draw_search(root, rows, title))
}

fn draw_search<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    rows: &[TableRow],
    title: &str,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let lambdas = rows.iter().map(|r| r.lambda).filter(|l| *l > 0.0);
    let (lo, hi) = lambdas.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo / 1.5, hi * 1.5)
    } else {
        (1e-5, 1e-1)
    };
    let done: Vec<&TableRow> = rows
        .iter()
        .filter(|r| r.state == RunState::Done && r.lambda > 0.0)
        .collect();
    let (y_lo, y_hi) = padded_range(done.iter().filter_map(|r| r.validation_accuracy));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{title}: validation accuracy against lambda"),
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d((lo..hi).log_scale(), y_lo..y_hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("lambda (log scale)")
        .y_desc("validation accuracy")
        .x_label_formatter(&|v| format!("{v:.1e}"))
        .draw()
        .map_err(|e| e.to_string())?;
    // The mean per lambda as a line, every trial as a point.
    let mut means: Vec<(f64, f64)> = search::lambda_stats(rows)
        .iter()
        .filter(|s| s.lambda > 0.0)
        .filter_map(|s| s.validation_accuracy_mean.map(|m| (s.lambda, m)))
        .collect();
    means.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(means, VALIDATION_COLOR.mix(0.5)))
        .map_err(|e| e.to_string())?;
    // Error bars: mean ± one sample std over the seeds of each lambda.
    chart
        .draw_series(
            search::lambda_stats(rows)
                .iter()
                .filter(|s| s.lambda > 0.0)
                .filter_map(|s| {
                    let (m, sd) = (s.validation_accuracy_mean?, s.validation_accuracy_std?);
                    Some(ErrorBar::new_vertical(
                        s.lambda,
                        m - sd,
                        m,
                        m + sd,
                        VALIDATION_COLOR.stroke_width(2),
                        10,
                    ))
                }),
        )
        .map_err(|e| e.to_string())?
        .label("mean ± std over seeds")
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y - 6), (x, y + 6)],
                VALIDATION_COLOR.stroke_width(2),
            )
        });
    chart
        .draw_series(done.iter().filter_map(|r| {
            r.validation_accuracy
                .map(|acc| Circle::new((r.lambda, acc), 5, VALIDATION_COLOR.filled()))
        }))
        .map_err(|e| e.to_string())?
        .label("validation accuracy")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, VALIDATION_COLOR.filled()));
    let diverged: Vec<f64> = rows
        .iter()
        .filter(|r| r.state == RunState::Diverged && r.lambda > 0.0)
        .map(|r| r.lambda)
        .collect();
    if !diverged.is_empty() {
        chart
            .draw_series(
                diverged
                    .into_iter()
                    .map(|l| Cross::new((l, y_lo), 6, BLACK.stroke_width(2))),
            )
            .map_err(|e| e.to_string())?
            .label("diverged")
            .legend(|(x, y)| Cross::new((x + 10, y), 6, BLACK.stroke_width(2)));
    }
    if let Some(best) = done.first() {
        if let Some(acc) = best.validation_accuracy {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((best.lambda, acc))
                        + Text::new(
                            format!("best {:.4} at {:.6}", acc, best.lambda),
                            (10, 8),
                            (FONT, 15),
                        ),
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(|e| e.to_string())
}

/// Redraw every picture under `dir`: `curves.svg` and `curves.png` beside
/// each `curves.csv`, `accuracy-vs-lambda.svg` and `.png` beside each
/// search's `table.csv`. Returns the pictures written.
///
/// Every CSV is read before any picture is drawn: a CSV that cannot be read
/// or holds no data row (empty, or only its header) is an error naming it,
/// and then no picture is touched. Hidden folders (a run being built aside,
/// see [`crate::run`]) are skipped.
pub fn redraw(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    enum Job {
        Curves(Vec<CurveRow>, Option<ScheduleSpec>),
        Search(Vec<TableRow>),
    }
    let mut jobs = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&folder)
            .map_err(io::io_err(&folder))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !name.starts_with('.') {
                    stack.push(path);
                }
                continue;
            }
            if name == run::files::CURVES {
                let rows: Vec<CurveRow> = read_rows(&path)?;
                let config = folder.join(run::files::CONFIG);
                let schedule = std::fs::read_to_string(config)
                    .ok()
                    .and_then(|text| toml::from_str::<RunConfig>(&text).ok())
                    .map(|c| c.train.settings.schedule);
                jobs.push((folder.clone(), Job::Curves(rows, schedule)));
            } else if name == search::files::TABLE {
                jobs.push((folder.clone(), Job::Search(read_rows(&path)?)));
            }
        }
    }
    let mut written = Vec::new();
    for (folder, job) in jobs {
        let title = folder_title(dir, &folder);
        match job {
            Job::Curves(rows, schedule) => {
                let svg = folder.join(run::files::CURVES_SVG);
                let png = folder.join(run::files::CURVES_PNG);
                curves_svg(&rows, schedule.as_ref(), &title, &svg)?;
                curves_png(&rows, schedule.as_ref(), &title, &png)?;
                written.extend([svg, png]);
            }
            Job::Search(rows) => {
                let svg = folder.join(search::files::ACCURACY_SVG);
                let png = folder.join(search::files::ACCURACY_PNG);
                search_svg(&rows, &title, &svg)?;
                search_png(&rows, &title, &png)?;
                written.extend([svg, png]);
            }
        }
    }
    written.sort();
    Ok(written)
}

/// The rows of the CSV file `path`; an error naming it when there is none.
fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let rows: Vec<T> = io::read_csv(path)?;
    if rows.is_empty() {
        return Err(ExperimentError::Format {
            path: path.to_path_buf(),
            message: "no data rows (the file is empty or holds only its header): nothing to \
                      draw; the pictures beside it were left as they are (re-run the \
                      experiment to write this file again)"
                .into(),
        });
    }
    Ok(rows)
}

/// A title for the results in `folder`: its path below `root` (or its name).
fn folder_title(root: &Path, folder: &Path) -> String {
    let rel = folder.strip_prefix(root).unwrap_or(folder);
    let text = rel.to_string_lossy().replace('\\', "/");
    if text.is_empty() {
        folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve_rows() -> Vec<CurveRow> {
        (0..=10)
            .map(|i| {
                let t = i as f64 / 10.0;
                CurveRow {
                    step: i * 100,
                    eta: 1e-5 + (1.0 - (2.0 * t - 1.0).abs()) * 0.1,
                    train_rows: Some(if i == 10 { 45000 } else { 5000 }),
                    train_cost: 2.3 - t,
                    train_loss: 2.2 - t,
                    train_accuracy: 0.1 + 0.5 * t,
                    validation_cost: 2.3 - 0.8 * t,
                    validation_loss: 2.2 - 0.8 * t,
                    validation_accuracy: 0.1 + 0.4 * t,
                }
            })
            .collect()
    }

    /// The PNG file `path` decoded: its declared size (from the IHDR header,
    /// read by hand) and its RGB pixels (decoded by the `png` crate).
    fn read_png(path: &Path) -> ((u32, u32), Vec<u8>) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} lacks the PNG signature",
            path.display()
        );
        assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let size = (be(16), be(20));
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!((info.width, info.height), size);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(rgb.len(), size.0 as usize * size.1 as usize * 3);
        (size, rgb)
    }

    /// Assert the PNG `path` has `size` pixels and that text was rasterised
    /// in its title band (rows `rows`): many non-white pixels there, some of
    /// them anti-aliased greys (partial glyph coverage), which only the font
    /// renderer produces in that band.
    fn assert_png_with_title(path: &Path, size: (u32, u32), rows: std::ops::Range<usize>) {
        let ((width, height), rgb) = read_png(path);
        assert_eq!((width, height), size, "{}", path.display());
        let band = &rgb[rows.start * width as usize * 3..rows.end * width as usize * 3];
        let pixels: Vec<&[u8]> = band.chunks_exact(3).collect();
        let ink = pixels.iter().filter(|p| p != &&[255, 255, 255]).count();
        let greys = pixels
            .iter()
            .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 0 && p[0] < 255)
            .count();
        assert!(
            ink > 200 && greys > 20,
            "{}: title band has {ink} non-white and {greys} grey pixels",
            path.display()
        );
        // The rest is mostly white background, not a blank or black image.
        let white = rgb
            .chunks_exact(3)
            .filter(|p| p == &[255, 255, 255])
            .count();
        let share = white as f64 / (width as f64 * height as f64);
        assert!((0.5..0.99).contains(&share), "white share {share}");
    }

    #[test]
    fn curves_and_search_pictures_are_redrawn_from_csv() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("clr-1cycle");
        io::write_csv(&run_dir.join(run::files::CURVES), &curve_rows()).unwrap();
        let search_dir = dir.path().join("coarse-search");
        let rows: Vec<TableRow> = [(0.0072, 0.50), (0.0004, 0.46), (0.07, 0.40), (0.09, -1.0)]
            .iter()
            .enumerate()
            .map(|(trial, &(lambda, acc))| TableRow {
                rank: trial + 1,
                trial,
                point: trial,
                seed: 1,
                lambda,
                settings: String::new(),
                state: if acc < 0.0 {
                    RunState::Diverged
                } else {
                    RunState::Done
                },
                validation_accuracy: (acc >= 0.0).then_some(acc),
                validation_cost: None,
                train_accuracy: None,
                train_cost: None,
                test_accuracy: None,
                wall_seconds: 1.0,
            })
            .collect();
        io::write_csv(&search_dir.join(search::files::TABLE), &rows).unwrap();

        let written = redraw(dir.path()).unwrap();
        assert_eq!(
            written,
            vec![
                run_dir.join(run::files::CURVES_PNG),
                run_dir.join(run::files::CURVES_SVG),
                search_dir.join(search::files::ACCURACY_PNG),
                search_dir.join(search::files::ACCURACY_SVG),
            ]
        );
        // Written atomically: no temporary file is left beside them.
        for folder in [&run_dir, &search_dir] {
            for entry in std::fs::read_dir(folder).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                assert!(!name.ends_with(".tmp"), "{name} left behind");
            }
        }
        assert_png_with_title(&written[0], CURVES_SIZE, 0..30);
        assert_png_with_title(&written[2], SEARCH_SIZE, 10..40);
        let curves = std::fs::read_to_string(&written[1]).unwrap();
        assert!(curves.starts_with("<svg"), "not an SVG");
        for needle in [
            "clr-1cycle",
            "cost",
            "loss",
            "accuracy",
            "train (first 5000 rows before the end)",
            "validation",
            "eta",
            "update step",
            "<polyline",
        ] {
            assert!(curves.contains(needle), "curves.svg lacks {needle}");
        }
        let search = std::fs::read_to_string(&written[3]).unwrap();
        for needle in [
            "validation accuracy",
            "lambda (log scale)",
            "diverged",
            "best 0.5000 at 0.007200",
            "<circle",
        ] {
            assert!(
                search.contains(needle),
                "accuracy-vs-lambda.svg lacks {needle}"
            );
        }
    }

    /// A `curves.csv` written before the `train_rows` column existed is
    /// still read and drawn (every point on the whole split: plain `train`).
    #[test]
    fn an_old_curves_csv_without_train_rows_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("old");
        std::fs::create_dir(&run_dir).unwrap();
        std::fs::write(
            run_dir.join(run::files::CURVES),
            "step,eta,train_cost,train_loss,train_accuracy,validation_cost,validation_loss,\
             validation_accuracy\n0,0.00001,2.4,2.3,0.1,2.4,2.3,0.1\n\
             100,0.1,1.9,1.8,0.3,2.0,1.9,0.28\n",
        )
        .unwrap();
        let rows: Vec<CurveRow> = io::read_csv(&run_dir.join(run::files::CURVES)).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.train_rows.is_none()));
        assert_eq!(rows[1].train_accuracy, 0.3);
        assert_eq!(train_label(&rows), "train");
        let written = redraw(dir.path()).unwrap();
        let svg = std::fs::read_to_string(run_dir.join(run::files::CURVES_SVG)).unwrap();
        assert_eq!(written.len(), 2);
        assert!(
            svg.contains("\ntrain\n") && !svg.contains("rows before"),
            "{svg}"
        );
        // Every point on the same rows: plain `train` too.
        let mut same = curve_rows();
        same.iter_mut().for_each(|r| r.train_rows = Some(45000));
        assert_eq!(train_label(&same), "train");
        assert_eq!(
            train_label(&curve_rows()),
            "train (first 5000 rows before the end)"
        );
    }

    #[test]
    fn a_csv_without_data_rows_is_an_error_and_keeps_the_pictures() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("clr-1cycle");
        let curves = run_dir.join(run::files::CURVES);
        io::write_csv(&curves, &curve_rows()).unwrap();
        let search_dir = dir.path().join("coarse-search");
        let table = search_dir.join(search::files::TABLE);
        redraw(dir.path()).unwrap();
        let pictures = [
            run_dir.join(run::files::CURVES_SVG),
            run_dir.join(run::files::CURVES_PNG),
        ];
        let before: Vec<Vec<u8>> = pictures.iter().map(|p| std::fs::read(p).unwrap()).collect();
        let header = std::fs::read_to_string(&curves)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        for (path, text) in [
            (&curves, format!("{header}\n")),
            (&curves, String::new()),
            (&table, "rank,trial,seed,lambda,state\n".to_string()),
        ] {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &text).unwrap();
            let e = redraw(dir.path()).unwrap_err().to_string();
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(e.contains(name) && e.contains("no data rows"), "{e}");
            let after: Vec<Vec<u8>> = pictures.iter().map(|p| std::fs::read(p).unwrap()).collect();
            assert!(after == before, "a picture was redrawn from {text:?}");
            assert!(!search_dir.join(search::files::ACCURACY_SVG).exists());
            // Put the good curves back for the next case.
            io::write_csv(&curves, &curve_rows()).unwrap();
        }
    }

    #[test]
    fn a_single_lambda_and_a_flat_curve_still_draw() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = curve_rows();
        rows.truncate(1);
        curves_svg(&rows, None, "one point", &dir.path().join("a.svg")).unwrap();
        search_svg(&[], "empty", &dir.path().join("b.svg")).unwrap();
        assert!(dir.path().join("a.svg").is_file() && dir.path().join("b.svg").is_file());
        curves_png(&rows, None, "one point", &dir.path().join("a.png")).unwrap();
        search_png(&[], "empty", &dir.path().join("b.png")).unwrap();
        assert_png_with_title(&dir.path().join("a.png"), CURVES_SIZE, 0..30);
        assert_png_with_title(&dir.path().join("b.png"), SEARCH_SIZE, 10..40);
        // Without a title the band is blank: the check above sees text, not the plot.
        curves_png(&rows, None, "", &dir.path().join("c.png")).unwrap();
        let ((width, _), rgb) = read_png(&dir.path().join("c.png"));
        let band = &rgb[..30 * width as usize * 3];
        assert!(band.iter().all(|&v| v == 255), "blank title band has ink");
    }
}
