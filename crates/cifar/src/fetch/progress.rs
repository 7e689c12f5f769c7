//! Byte progress: an indicatif bar (bytes, rate, ETA) on a terminal, plain
//! lines every 10% (or every 5 s when the total is unknown) otherwise, and
//! nothing at all in tests.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// A bar when stderr is a terminal, else plain lines on stdout.
    Auto,
    /// Nothing (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Hidden,
}

/// Progress over a byte count.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    bar: Option<ProgressBar>,
    lines: bool,
    start: Instant,
    last_line: Instant,
    next_percent: u64,
}

impl Progress {
    /// Start showing progress of `label` towards `total` bytes (if known).
    pub fn new(label: &str, total: Option<u64>, display: Display) -> Self {
        let terminal = display == Display::Auto && std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::no_length(),
            };
            let template = if total.is_some() {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            } else {
                "{msg} {bytes} {binary_bytes_per_sec}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            bar
        });
        let now = Instant::now();
        Self {
            label: label.to_string(),
            total,
            done: 0,
            bar,
            lines: display == Display::Auto && !terminal,
            start: now,
            last_line: now,
            next_percent: 10,
        }
    }

    /// `n` more bytes done.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        if !self.lines {
            return;
        }
        let due = match self.total {
            Some(t) if t > 0 => self.done * 100 >= self.next_percent * t,
            _ => self.last_line.elapsed() >= Duration::from_secs(5),
        };
        if due {
            if let Some(t) = self.total.filter(|&t| t > 0) {
                while self.done * 100 >= self.next_percent * t {
                    self.next_percent += 10;
                }
            }
            self.last_line = Instant::now();
            println!("{}", self.line());
        }
    }

    /// One plain status line.
    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        match self.total.filter(|&t| t > 0) {
            Some(t) => {
                let eta = if rate > 0.0 {
                    (t.saturating_sub(self.done)) as f64 / rate
                } else {
                    f64::INFINITY
                };
                format!(
                    "{}: {} / {} ({:.0}%), {}/s, ETA {:.0} s",
                    self.label,
                    mib(self.done),
                    mib(t),
                    100.0 * self.done as f64 / t as f64,
                    mib(rate as u64),
                    eta
                )
            }
            None => format!("{}: {}, {}/s", self.label, mib(self.done), mib(rate as u64)),
        }
    }

    /// Stop showing progress.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
