//! The f32 micro-kernel alone, without packing or the driver, for the
//! benchmark: what one kernel's tiles sustain on panels already packed and
//! cached. Beside the FMA peak and a whole product's rate it splits the gap
//! into the kernel's own and the memory traffic around it (on a Zen 4 the
//! 10 x 32 AVX-512 tile runs at 93-98% of the peak on a repeated tile, while
//! whole wide products land at 67-88%).

use super::{ALayout, Ahead, Kernel, KernelError, MicroKernel, Tile};

/// Where the tiles' operands sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileData {
    /// The same A and B micro-panels and C tile on every call: in L1 and L2.
    Repeated,
    /// As inside a product: one B micro-panel meets every A micro-panel of
    /// an `MC x KC` packed block (in L2), each tile updating its own C tile
    /// of a C `MC` rows by 1024 columns, column panel after column panel.
    Sweep,
}

/// Columns of the C a [`TileData::Sweep`] moves over (its rows, like the
/// wide layer's 1024 hidden units, are a whole number of 4 KiB pages).
const SWEEP_COLS: usize = 1024;

/// Packed operands for timing one kernel's f32 tiles, all ones, with
/// `beta = 1`, so after `calls` tiles every updated C element holds a
/// whole multiple of `k` (exact in f32 at these sizes).
pub struct TileBench {
    kernel: Kernel,
    mr: usize,
    nr: usize,
    k: usize,
    /// Packed A block: `rows / mr` micro-panels of `mr x k`.
    a: Vec<f32>,
    /// One `k x nr` B micro-panel.
    b: Vec<f32>,
    /// C, `rows x SWEEP_COLS`, row-major.
    c: Vec<f32>,
}

impl TileBench {
    /// Operands shaped by `kernel`'s own tile and blocking constants: the
    /// reduction `k` is its `KC`, the block its `MC` rows. Fails if this
    /// CPU cannot run `kernel`.
    pub fn new(kernel: Kernel) -> Result<TileBench, KernelError> {
        Ok(match kernel.check()? {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => TileBench::for_kernel::<super::x86::Avx512>(kernel),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => TileBench::for_kernel::<super::x86::Avx2>(kernel),
            _ => TileBench::for_kernel::<super::portable::Portable>(Kernel::Portable),
        })
    }

    /// `K`'s `KC` and `MC` as the driver chooses them for a large product
    /// `SWEEP_COLS` wide.
    fn for_kernel<K: MicroKernel<f32>>(kernel: Kernel) -> TileBench {
        let (mr, nr) = (K::MR, K::NR);
        let big = 1 << 20;
        let blk = crate::gemm::blocking::<f32, K>(big, SWEEP_COLS, big);
        let (k, rows) = (blk.kc, blk.mc);
        TileBench {
            kernel,
            mr,
            nr,
            k,
            a: vec![1.0; rows * k],
            b: vec![1.0; k * nr],
            c: vec![0.0; rows * SWEEP_COLS],
        }
    }

    /// The tile and its reduction, e.g. "10x32, k 256".
    pub fn label(&self) -> String {
        format!("{}x{}, k {}", self.mr, self.nr, self.k)
    }

    /// The flops of one tile (`2 x MR x NR x k`).
    pub fn flops_per_tile(&self) -> f64 {
        2.0 * (self.mr * self.nr * self.k) as f64
    }

    /// Tiles in one full [`TileData::Sweep`] of C.
    pub fn tiles_per_sweep(&self) -> usize {
        self.a.len() / (self.mr * self.k) * (SWEEP_COLS / self.nr)
    }

    /// The C element at row `i`, column `j`.
    #[cfg(test)]
    fn c(&self, i: usize, j: usize) -> f32 {
        self.c[i * SWEEP_COLS + j]
    }

    /// Runs `calls` tiles of `data`.
    pub fn run(&mut self, data: TileData, calls: usize) {
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => self.run_with(super::x86::Avx512, data, calls),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => self.run_with(super::x86::Avx2, data, calls),
            _ => self.run_with(super::portable::Portable, data, calls),
        }
    }

    fn run_with<K: MicroKernel<f32>>(&mut self, kernel: K, data: TileData, calls: usize) {
        let (mr, nr, k) = (self.mr, self.nr, self.k);
        let panels = self.a.len() / (mr * k);
        let c = self.c.as_mut_ptr();
        for call in 0..calls {
            // Sweep: down the block's micro-panels, then the next column panel.
            let (i, q) = match data {
                TileData::Repeated => (0, 0),
                TileData::Sweep => (call % panels, call / panels % (SWEEP_COLS / nr)),
            };
            let tile = Tile {
                k,
                a: self.a[i * mr * k..].as_ptr(),
                rsa: 1,
                csa: mr as isize,
                b: self.b.as_ptr(),
                rsb: nr as isize,
                c: c.wrapping_add(i * mr * SWEEP_COLS + q * nr),
                rsc: SWEEP_COLS as isize,
                csc: 1,
                c_next: std::ptr::null(),
                ahead: [Ahead::NONE; 2],
                fill: std::ptr::null_mut(),
                m_eff: mr,
                n_eff: nr,
                alpha: 1.0,
                beta: 1.0,
            };
            // SAFETY: A holds `mr x k` packed values at micro-panel i, B a
            // `k x nr` panel, and the `mr x nr` tile at (i * mr, q * nr) lies
            // inside C's `panels * mr` rows and SWEEP_COLS columns; `new`
            // checked that the CPU runs `self.kernel`.
            unsafe { kernel.tile(ALayout::Cols, &tile) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TileBench, TileData, SWEEP_COLS};
    use crate::kernel::available_kernels;

    /// Every tile runs its whole `k` and a sweep reaches every element of
    /// C once: after 3 repeated tiles the first tile holds 3k, the next
    /// panel of C nothing, and after one more full sweep every element one
    /// more `k`.
    #[test]
    fn tiles_run_the_whole_reduction_over_the_whole_c() {
        for kernel in available_kernels() {
            let mut bench = TileBench::new(kernel).unwrap();
            let (mr, nr, k) = (bench.mr, bench.nr, bench.k as f32);
            assert_eq!(bench.label(), format!("{mr}x{nr}, k {k}"));
            assert_eq!(
                bench.flops_per_tile(),
                2.0 * (mr * nr) as f64 * f64::from(k)
            );
            bench.run(TileData::Repeated, 3);
            assert_eq!(bench.c(mr - 1, nr - 1), 3.0 * k, "{kernel:?}");
            assert_eq!(bench.c(0, nr), 0.0, "{kernel:?}");
            assert_eq!(bench.c(mr, 0), 0.0, "{kernel:?}");
            bench.run(TileData::Sweep, bench.tiles_per_sweep());
            let rows = bench.c.len() / SWEEP_COLS;
            for i in 0..rows {
                for j in 0..SWEEP_COLS {
                    let first_tile = i < mr && j < nr;
                    let expected = if first_tile { 4.0 * k } else { k };
                    assert_eq!(bench.c(i, j), expected, "{kernel:?} C[{i}, {j}]");
                }
            }
        }
    }
}
