//! The benchmark's text table and CSV.

use std::fmt::Write as _;

use super::{Peak, Rate, Report, Row, BIG_FLOPS, BIG_SAMPLES, SMALL_FLOPS};

/// The column header of [`format_row`] (with the OpenBLAS columns when
/// `openblas`).
fn header(openblas: bool) -> String {
    let ob = if openblas {
        format!(
            " | {:>6} {:>6} | {:>6} | {:>7} {:>7} {:>6} {:>6}",
            "ob1t", "ob2t", "ob1t", "ours/ob", "2t:o/ob", "obpk1t", "obpk2t"
        )
    } else {
        String::new()
    };
    let ours = format!(
        "{:<21} {:>5} {:>5} {:>5} {:<4} | {:>6} {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>7} {:>5} {:>5} {:>5} {:>7}",
        "shape", "m", "k", "n", "type",
        "1t", "2t", "mm", "dot", "blk1t",
        "1t", "2t", "mm", "blk1t",
        "ours/mm", "2t/1t", "pk1t", "pk2t", "dir/blk"
    );
    ours + &ob
}

/// One row: wall-time GFLOP/s, CPU-time GFLOP/s, then the ratios; then,
/// if OpenBLAS was timed, its wall-time and CPU-time GFLOP/s, ours over
/// OpenBLAS on 1 thread (CPU time) and on 2 (wall time), and its share of
/// the peak.
pub(super) fn format_row(r: &Row, peaks: &[Peak; 2]) -> String {
    let peak = peaks[usize::from(r.dtype == "f64")];
    let s = r.shape;
    let (ob1, ob2) = (r.openblas_1t, r.openblas_2t);
    let ob = if ob1.wall.is_nan() {
        String::new()
    } else {
        format!(
            " | {:>6.1} {:>6.1} | {:>6.1} | {:>7.2} {:>7.2} {:>5.0}% {:>5.0}%",
            ob1.wall,
            ob2.wall,
            ob1.cpu,
            r.ours_1t.cpu / ob1.cpu,
            r.ours_2t.wall / ob2.wall,
            100.0 * ob1.cpu / peak.one.cpu,
            100.0 * ob2.wall / peak.two.wall,
        )
    };
    let ours = format!(
        "{:<21} {:>5} {:>5} {:>5} {:<4} | {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} | {:>6.1} {:>6.1} {:>6.1} {:>6.1} | {:>7.2} {:>5.2} {:>4.0}% {:>4.0}% {:>7.2}",
        s.name, s.m, s.k, s.n, r.dtype,
        r.ours_1t.wall, r.ours_2t.wall, r.matrixmultiply.wall, r.ndarray_dot.wall, r.blocked_1t.wall,
        r.ours_1t.cpu, r.ours_2t.cpu, r.matrixmultiply.cpu, r.blocked_1t.cpu,
        r.ours_1t.cpu / r.matrixmultiply.cpu,
        r.ours_2t.wall / r.ours_1t.wall,
        100.0 * r.ours_1t.cpu / peak.one.cpu,
        100.0 * r.ours_2t.cpu / peak.two.cpu,
        r.ours_1t.cpu / r.blocked_1t.cpu,
    );
    ours + &ob
}

fn peak_line(name: &str, p: &Peak) -> String {
    format!(
        "{name} {:.1} / {:.1} (1 thread), {:.1} / {:.1} (2 threads)",
        p.one.wall, p.one.cpu, p.two.wall, p.two.cpu
    )
}

impl Report {
    /// The table with a header naming the CPU, the load and the measured peaks.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let [f32_peak, f64_peak] = &self.peaks;
        let _ = writeln!(
            out,
            "CPU: {}; kernel {}; load average (1/5/15 min) before {}, after {}",
            self.cpu_model,
            self.kernel.name(),
            self.load.0,
            self.load.1
        );
        if let Some(ob) = &self.openblas {
            let _ = writeln!(
                out,
                "OpenBLAS: {ob}; ob1t / ob2t = OpenBLAS on 1 / 2 of its threads, \
                 ours/ob by CPU time (1 thread), 2t:o/ob = ours 2t over ob2t by wall time, \
                 obpk1t by CPU time, obpk2t by wall time (vs the FMA peak)"
            );
        }
        let _ = writeln!(
            out,
            "FMA peak GFLOP/s by wall / CPU time: {}; {}",
            peak_line("f32", f32_peak),
            peak_line("f64", f64_peak)
        );
        let t = &self.tile_alone;
        let pct = |r: &Rate| 100.0 * r.cpu / f32_peak.one.cpu;
        let _ = writeln!(
            out,
            "f32 micro-kernel alone ({}, 1 thread, by CPU time): repeated tile {:.1} GFLOP/s \
             ({:.0}% of the peak), sweeping an MC x KC A block and a 1024-column C {:.1} ({:.0}%)",
            t.tile,
            t.repeated.cpu,
            pct(&t.repeated),
            t.sweep.cpu,
            pct(&t.sweep)
        );
        let _ = writeln!(
            out,
            "GFLOP/s, median of {} round-robin samples (at most {BIG_SAMPLES} above {BIG_FLOPS:e} flops), \
             first by wall time, then by CPU time (all threads' CPU seconds; x2 for 2t); \
             mm = matrixmultiply (1 thread), dot = ndarray dot, blk1t = ours without the direct \
             small-product path (below {SMALL_FLOPS:e} flops); ours/mm, pk1t, pk2t (vs the FMA peak) \
             and dir/blk by CPU time, 2t/1t by wall time",
            self.samples
        );
        let _ = writeln!(
            out,
            "{:<45}| {:^38} | {:^31} |",
            "", "wall-time GFLOP/s", "CPU-time GFLOP/s"
        );
        let _ = writeln!(out, "{}", header(self.openblas.is_some()));
        for row in &self.rows {
            let _ = writeln!(out, "{}", format_row(row, &self.peaks));
        }
        out
    }

    /// Every figure as CSV (one line per row, peaks repeated per row).
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "shape,m,k,n,beta,dtype,kernel,cpu_model,openblas,\
             ours_1t_wall,ours_2t_wall,mm_wall,dot_wall,blocked_1t_wall,openblas_1t_wall,openblas_2t_wall,\
             ours_1t_cpu,ours_2t_cpu,mm_cpu,dot_cpu,blocked_1t_cpu,openblas_1t_cpu,openblas_2t_cpu,\
             peak_1t_wall,peak_2t_wall,peak_1t_cpu,peak_2t_cpu,tile_alone_repeated_cpu,tile_alone_sweep_cpu\n",
        );
        let rate = |r: Rate| format!("{:.2},", r.wall);
        for r in &self.rows {
            let p = self.peaks[usize::from(r.dtype == "f64")];
            let s = r.shape;
            let _ = write!(
                out,
                "{},{},{},{},{},{},{},{},{},",
                s.name,
                s.m,
                s.k,
                s.n,
                s.beta,
                r.dtype,
                self.kernel.name(),
                self.cpu_model.replace(',', " "),
                self.openblas.as_deref().unwrap_or("").replace(',', " ")
            );
            let all = [
                r.ours_1t,
                r.ours_2t,
                r.matrixmultiply,
                r.ndarray_dot,
                r.blocked_1t,
                r.openblas_1t,
                r.openblas_2t,
            ];
            for x in all {
                out.push_str(&rate(x));
            }
            for x in all {
                let _ = write!(out, "{:.2},", x.cpu);
            }
            // The f32 micro-kernel alone (the same on every row).
            let t = &self.tile_alone;
            let _ = writeln!(
                out,
                "{:.2},{:.2},{:.2},{:.2},{:.2},{:.2}",
                p.one.wall, p.two.wall, p.one.cpu, p.two.cpu, t.repeated.cpu, t.sweep.cpu
            );
        }
        out
    }
}
