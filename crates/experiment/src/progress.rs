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
        }
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
        self.last = format!(
            " cost train {:.4} val {:.4}",
            point.train.cost, point.validation.cost
        );
        match &self.bar {
            Some(bar) => bar.set_message(format!("eta {:.2e}{}", point.eta, self.last)),
            None => println!(
                "{}: step {}/{} eta {:.3e} train cost {:.4} acc {:.4} | val cost {:.4} acc {:.4}",
                self.name,
                point.step,
                n_steps,
                point.eta,
                point.train.cost,
                point.train.accuracy,
                point.validation.cost,
                point.validation.accuracy
            ),
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
