//! Clocks and machine facts for the benchmark: wall time, process CPU time
//! (all threads summed, so a product's GFLOP/s can be judged by the CPU it
//! actually got on a loaded machine), the CPU model and the load average.

use std::time::Instant;

/// CPU seconds used so far by all threads of this process (NaN if unknown).
fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call's duration.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    f64::NAN
}

/// Wall and process-CPU time since [`Stopwatch::start`].
pub(super) struct Stopwatch {
    wall: Instant,
    cpu: f64,
}

impl Stopwatch {
    /// Starts both clocks.
    pub(super) fn start() -> Stopwatch {
        Stopwatch {
            cpu: process_cpu_seconds(),
            wall: Instant::now(),
        }
    }

    /// `(wall seconds, CPU seconds of all threads)` since the start.
    pub(super) fn elapsed(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        (wall, process_cpu_seconds() - self.cpu)
    }
}

/// The CPU's model name from `/proc/cpuinfo` (or `unknown CPU`).
pub(super) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg` (or `unknown`).
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string())
}
