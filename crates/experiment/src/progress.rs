//! Progress display: an indicatif bar when stderr is a terminal, plain lines
//! on stdout otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use mlp::train::{CurvePoint, Observer};

/// Whether to draw bars (stderr is a terminal) or print plain lines.
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Shows one training run: a bar with the step, eta and the last recorded
/// training and validation cost; or, off a terminal, one line per recorded point.
pub struct RunProgress {
    name: String,
    bar: Option<ProgressBar>,
    last: String,
    /// Rows of the training split, when known: points evaluated on fewer
    /// (`curve_train_rows`) say so.
    train_rows: Option<usize>,
}

impl RunProgress {
    /// A display for the run `name` of `n_steps` update steps.
    pub fn new(name: &str, n_steps: u64) -> Self {
        let bar = interactive().then(|| {
            let bar = ProgressBar::new(n_steps);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] step {pos}/{len} {msg} ({elapsed}, ETA {eta})",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            name: name.to_string(),
            bar,
            last: String::new(),
            train_rows: None,
        }
    }

    /// The same display, told that the training split has `total` rows, so
    /// that a point whose training figures are on its first rows only
    /// (`curve_train_rows`) says how many.
    pub fn with_train_rows(mut self, total: usize) -> Self {
        self.train_rows = Some(total);
        self
    }

    /// `train`, or `train (first N of T rows)` for a point evaluated on a
    /// head of the training split.
    fn train_label(&self, point: &CurvePoint) -> String {
        match self.train_rows {
            Some(total) if point.train_rows < total => {
                format!("train (first {} of {total} rows)", point.train_rows)
            }
            _ => "train".to_string(),
        }
    }

    /// The line printed for a recorded point off a terminal.
    fn plain_line(&self, point: &CurvePoint, n_steps: u64) -> String {
        format!(
            "{}: step {}/{} eta {:.3e} {} cost {:.4} acc {:.4} | val cost {:.4} acc {:.4}",
            self.name,
            point.step,
            n_steps,
            point.eta,
            self.train_label(point),
            point.train.cost,
            point.train.accuracy,
            point.validation.cost,
            point.validation.accuracy
        )
    }

    /// Remove the bar (the caller prints the summary).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for RunProgress {
    fn on_step(&mut self, step: u64, _n_steps: u64, eta: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
            if step.is_multiple_of(16) {
                bar.set_message(format!("eta {eta:.2e}{}", self.last));
            }
        }
    }

    fn on_record(&mut self, point: &CurvePoint, n_steps: u64) {
        let train = self.train_label(point);
        self.last = format!(
            " cost {train} {:.4} val {:.4}",
            point.train.cost, point.validation.cost
        );
        match &self.bar {
            Some(bar) => bar.set_message(format!("eta {:.2e}{}", point.eta, self.last)),
            None => println!("{}", self.plain_line(point, n_steps)),
        }
    }
}

/// Shows a search: one bar of finished trials out of all (with ETA) plus one
/// compact line per finished trial.
pub struct SearchProgress {
    bar: Option<ProgressBar>,
}

impl SearchProgress {
    /// A display for a search `name` of `n_trials` trials, `n_done` of them already recorded.
    pub fn new(name: &str, n_trials: usize, n_done: usize, jobs: usize) -> Self {
        let bar = interactive().then(|| {
            let bar = ProgressBar::new(n_trials as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} runs ({elapsed}, ETA {eta})",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar.set_position(n_done as u64);
            bar.reset_eta();
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        let line = format!(
            "{name}: {n_trials} trials, {n_done} already done, {} to run on {jobs} worker(s)",
            n_trials - n_done
        );
        match &bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
        Self { bar }
    }

    /// One trial finished: print its line and advance the bar.
    pub fn finished(&self, line: &str) {
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => println!("{line}"),
        }
    }

    /// A message that is not a finished trial (e.g. a take-over).
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlp::Evaluation;

    fn point(train_rows: usize) -> CurvePoint {
        let e = Evaluation {
            cost: 1.5,
            loss: 1.25,
            accuracy: 0.5,
        };
        CurvePoint {
            step: 10,
            eta: 0.01,
            train: e,
            train_rows,
            validation: e,
        }
    }

    #[test]
    fn a_point_on_a_head_of_the_training_split_says_how_many_rows() {
        let progress = RunProgress::new("run", 100).with_train_rows(45000);
        let head = progress.plain_line(&point(5000), 100);
        assert!(
            head.contains("train (first 5000 of 45000 rows) cost 1.5000 acc 0.5000"),
            "{head}"
        );
        let all = progress.plain_line(&point(45000), 100);
        assert!(
            all.contains(" train cost 1.5000") && !all.contains("first"),
            "{all}"
        );
        // Not told the split's size: plain `train`, as before.
        let unknown = RunProgress::new("run", 100).plain_line(&point(5000), 100);
        assert!(
            unknown.contains(" train cost") && !unknown.contains("first"),
            "{unknown}"
        );
    }
}
