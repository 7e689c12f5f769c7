//! OpenBLAS as a contender of the kernel benchmark, loaded at run time from
//! a shared library the user names (`--openblas PATH`), so the comparison
//! with a BLAS is made in the same run, on the same CPU, under the same load.
//!
//! Two builds are understood: a plain one (Debian's `libopenblas.so.0`:
//! `cblas_sgemm` with 32-bit integers) and the one NumPy ships
//! (`libscipy_openblas64_*.so`: `scipy_cblas_sgemm64_` with 64-bit integers).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use ndarray::{ArrayView2, ArrayViewMut2};

use super::BenchError;
use crate::Element;

/// `CblasRowMajor`, `CblasNoTrans`, `CblasTrans` of `cblas.h`.
const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

/// `cblas_?gemm` with integer type `I` (`int` or `int64_t`).
type GemmFn<T, I> =
    unsafe extern "C" fn(c_int, c_int, c_int, I, I, I, T, *const T, I, *const T, I, T, *mut T, I);

/// The entry points of one build (integer type `I`).
struct Api<I> {
    sgemm: GemmFn<f32, I>,
    dgemm: GemmFn<f64, I>,
}

/// Which integer width the loaded build uses.
enum Gemms {
    Lp64(Api<i32>),
    Ilp64(Api<i64>),
}

/// A loaded OpenBLAS: its gemm entry points, thread setting and identity.
pub struct OpenBlas {
    /// The `dlopen` handle (never closed: the library lives for the process).
    _handle: *mut c_void,
    gemms: Gemms,
    set_threads: unsafe extern "C" fn(c_int),
    /// `openblas_get_config()` and the core it chose, e.g.
    /// `OpenBLAS 0.3.31 ... (core SkylakeX)`.
    pub identity: String,
    /// Where it was loaded from.
    pub path: PathBuf,
}

// SAFETY: the handle is only kept alive, never used after loading; the
// function pointers are plain code addresses, and OpenBLAS's gemm and
// thread setting may be called from any thread.
unsafe impl Send for OpenBlas {}
// SAFETY: as for `Send`; `&OpenBlas` exposes no interior mutability.
unsafe impl Sync for OpenBlas {}

/// `dlopen(path)`, or `dlerror()`'s message.
fn open(path: &Path) -> Result<*mut c_void, String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "the path contains a NUL byte".to_string())?;
    // SAFETY: `c_path` is a NUL-terminated string valid for the call; loading
    // runs the library's initialisers, which is what the user asked for by
    // naming it; the handle is never closed.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a NUL-terminated message owned by libc.
        let msg = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "dlopen failed".to_string()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(msg);
    }
    Ok(handle)
}

/// The address of `name` in `handle`, if it is there.
fn symbol(handle: *mut c_void, name: &str) -> Option<*mut c_void> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: `handle` came from a successful dlopen and is still open;
    // `c_name` is NUL-terminated.
    let p = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Reads a `char *f(void)` string getter, if `name` exists.
fn string_from(handle: *mut c_void, name: &str) -> Option<String> {
    let f = symbol(handle, name)?;
    // SAFETY: OpenBLAS's `openblas_get_config` / `_get_corename` (and their
    // scipy-prefixed names) take nothing and return a static NUL-terminated
    // string.
    unsafe {
        let f: unsafe extern "C" fn() -> *const c_char = std::mem::transmute(f);
        let s = f();
        (!s.is_null()).then(|| CStr::from_ptr(s).to_string_lossy().trim().to_string())
    }
}

impl OpenBlas {
    /// Loads OpenBLAS from `path`. Its idle threads are told to spin for
    /// at most 2^20 cycles (about 0.3 ms) before they sleep
    /// (`OPENBLAS_THREAD_TIMEOUT=20`, set before loading unless the user
    /// set it): awake through a sample's back-to-back calls, asleep well
    /// within the pause between contenders, so they burn no CPU time the
    /// process clock would charge to the next one. (The default, 2^28
    /// cycles, halved ours by CPU time after OpenBLAS's samples; 4, the
    /// least, made each 2-thread call wait for a sleeping thread's wake-up:
    /// 0.4 GFLOP/s on the wide hidden gradient.)
    pub fn load(path: &Path) -> Result<OpenBlas, BenchError> {
        let fail = |why: String| {
            BenchError(format!(
                "--openblas {}: {why} (give the path of an OpenBLAS shared library, e.g. \
                 /usr/lib/x86_64-linux-gnu/libopenblas.so.0 from Debian's libopenblas0, or \
                 NumPy's numpy.libs/libscipy_openblas64_*.so)",
                path.display()
            ))
        };
        if !path.is_file() {
            return Err(fail("no such file".into()));
        }
        if std::env::var_os("OPENBLAS_THREAD_TIMEOUT").is_none() {
            std::env::set_var("OPENBLAS_THREAD_TIMEOUT", "20");
        }
        let handle = open(path).map_err(fail)?;
        let find = |names: [&str; 2]| names.into_iter().find_map(|n| symbol(handle, n));
        let gemms = if let (Some(s), Some(d)) = (
            symbol(handle, "scipy_cblas_sgemm64_"),
            symbol(handle, "scipy_cblas_dgemm64_"),
        ) {
            // SAFETY: these symbols are NumPy's ILP64 OpenBLAS cblas gemms,
            // whose C signature is `GemmFn<T, i64>`.
            Gemms::Ilp64(unsafe {
                Api {
                    sgemm: std::mem::transmute::<*mut c_void, GemmFn<f32, i64>>(s),
                    dgemm: std::mem::transmute::<*mut c_void, GemmFn<f64, i64>>(d),
                }
            })
        } else if let (Some(s), Some(d)) =
            (symbol(handle, "cblas_sgemm"), symbol(handle, "cblas_dgemm"))
        {
            // SAFETY: a library exporting `openblas_set_num_threads` (checked
            // below) is OpenBLAS, whose plain cblas gemms take 32-bit ints.
            Gemms::Lp64(unsafe {
                Api {
                    sgemm: std::mem::transmute::<*mut c_void, GemmFn<f32, i32>>(s),
                    dgemm: std::mem::transmute::<*mut c_void, GemmFn<f64, i32>>(d),
                }
            })
        } else {
            return Err(fail("it exports no cblas_sgemm / cblas_dgemm".into()));
        };
        let set_threads = find([
            "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads",
        ])
        .ok_or_else(|| fail("it exports no openblas_set_num_threads: not OpenBLAS".into()))?;
        // SAFETY: `openblas_set_num_threads(int)` in both builds.
        let set_threads: unsafe extern "C" fn(c_int) = unsafe { std::mem::transmute(set_threads) };
        let config = ["scipy_openblas_get_config64_", "openblas_get_config"]
            .into_iter()
            .find_map(|n| string_from(handle, n))
            .unwrap_or_else(|| "OpenBLAS".into());
        let core = ["scipy_openblas_get_corename64_", "openblas_get_corename"]
            .into_iter()
            .find_map(|n| string_from(handle, n))
            .unwrap_or_else(|| "?".into());
        Ok(OpenBlas {
            _handle: handle,
            gemms,
            set_threads,
            identity: format!("{config} (core {core})"),
            path: path.to_path_buf(),
        })
    }

    /// Makes later calls use `n` threads (OpenBLAS's own, not rayon's).
    pub fn set_threads(&self, n: usize) {
        // SAFETY: OpenBLAS's thread setting takes any positive count.
        unsafe { (self.set_threads)(n.clamp(1, c_int::MAX as usize) as c_int) };
    }

    /// `C = alpha * A * B + beta * C` by OpenBLAS. A and B each need a unit
    /// stride along one axis (a transposed view is passed as `CblasTrans`),
    /// C along its rows.
    pub fn gemm<T: Element>(
        &self,
        alpha: T,
        a: &ArrayView2<'_, T>,
        b: &ArrayView2<'_, T>,
        beta: T,
        c: &mut ArrayViewMut2<'_, T>,
    ) -> Result<(), BenchError> {
        let (m, k) = a.dim();
        let n = b.ncols();
        if b.nrows() != k || c.dim() != (m, n) {
            return Err(BenchError(format!(
                "OpenBLAS gemm: shapes {:?} x {:?} -> {:?} do not match",
                a.dim(),
                b.dim(),
                c.dim()
            )));
        }
        // (transpose flag, leading dimension) of a `rows x cols` operand.
        let layout = |v: &[isize], rows: usize, cols: usize| match *v {
            [ld, 1] if ld >= cols.max(1) as isize => Some((NO_TRANS, ld)),
            [1, ld] if ld >= rows.max(1) as isize => Some((TRANS, ld)),
            // One row (or column): any stride along the other axis is unused.
            _ if rows <= 1 => Some((NO_TRANS, cols.max(1) as isize)),
            _ => None,
        };
        let no_stride = |what| BenchError(format!("OpenBLAS gemm: {what} has no unit stride"));
        let (ta, lda) = layout(a.strides(), m, k).ok_or_else(|| no_stride("A"))?;
        let (tb, ldb) = layout(b.strides(), k, n).ok_or_else(|| no_stride("B"))?;
        let (NO_TRANS, ldc) = layout(c.strides(), m, n).ok_or_else(|| no_stride("C"))? else {
            return Err(BenchError("OpenBLAS gemm: C must be row-major".into()));
        };
        let dims = [m as isize, n as isize, k as isize, lda, ldb, ldc];
        let ptrs = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        let to = |x: T| x.to_f64().unwrap_or(f64::NAN);
        let (a32, b32) = (to(alpha) as f32, to(beta) as f32);
        let cast32 = (ptrs.0.cast(), ptrs.1.cast(), ptrs.2.cast());
        let cast64 = (ptrs.0.cast(), ptrs.1.cast(), ptrs.2.cast());
        let is_f32 = std::mem::size_of::<T>() == 4;
        // SAFETY: T is f32 or f64 (the only `Element`s), told apart by size,
        // so each cast keeps the element type; the operands span (m, k),
        // (k, n), (m, n) elements at the leading dimensions checked above, C
        // is a unique borrow, and OpenBLAS reads A and B and writes C only
        // within them.
        unsafe {
            match (&self.gemms, is_f32) {
                (Gemms::Lp64(f), true) => call(f.sgemm, (ta, tb), dims, (a32, b32), cast32),
                (Gemms::Lp64(f), false) => {
                    call(f.dgemm, (ta, tb), dims, (to(alpha), to(beta)), cast64)
                }
                (Gemms::Ilp64(f), true) => call(f.sgemm, (ta, tb), dims, (a32, b32), cast32),
                (Gemms::Ilp64(f), false) => {
                    call(f.dgemm, (ta, tb), dims, (to(alpha), to(beta)), cast64)
                }
            }
        }
    }
}

/// Calls a cblas gemm with `[m, n, k, lda, ldb, ldc]` converted to its
/// integer type (an error if one does not fit).
///
/// # Safety
/// `f` is a cblas `?gemm` and the arguments describe valid operands.
unsafe fn call<T, I: TryFrom<isize>>(
    f: GemmFn<T, I>,
    (ta, tb): (c_int, c_int),
    dims: [isize; 6],
    (alpha, beta): (T, T),
    (a, b, c): (*const T, *const T, *mut T),
) -> Result<(), BenchError> {
    let int = |x: isize| {
        I::try_from(x).map_err(|_| BenchError(format!("OpenBLAS gemm: {x} overflows its integers")))
    };
    let [m, n, k, lda, ldb, ldc] = dims;
    let (m, n, k, lda, ldb, ldc) = (int(m)?, int(n)?, int(k)?, int(lda)?, int(ldb)?, int(ldc)?);
    // SAFETY: the caller's contract.
    unsafe {
        f(
            ROW_MAJOR, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
        )
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    /// Debian's OpenBLAS (`libopenblas0`), which `.ci/run` installs.
    const DEBIAN_PATH: &str = "/usr/lib/x86_64-linux-gnu/libopenblas.so.0";

    /// The library under test: `CIFAR_CLR_OPENBLAS` if set (then it must
    /// load), else Debian's if installed, else none.
    fn library() -> Option<OpenBlas> {
        match std::env::var_os("CIFAR_CLR_OPENBLAS") {
            Some(path) => Some(OpenBlas::load(Path::new(&path)).expect("CIFAR_CLR_OPENBLAS")),
            None => OpenBlas::load(Path::new(DEBIAN_PATH)).ok(),
        }
    }

    #[test]
    fn a_missing_file_or_a_file_that_is_no_library_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("openblas-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("libopenblas.so");
        std::fs::write(&fake, b"not a shared library").unwrap();
        for path in [fake.clone(), dir.join("absent.so")] {
            let err = OpenBlas::load(&path).err().expect("refused").to_string();
            assert!(err.contains(&*path.to_string_lossy()), "{err}");
            assert!(err.contains("libopenblas.so.0"), "names the fix: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// OpenBLAS's products, every operand layout, f32 and f64, on 1 and 2
    /// of its threads, agree with the naive f64 loop to within rounding
    /// (|error| <= 8 eps k * sum |a b|, the same bound as ours). Skipped,
    /// saying so, where no OpenBLAS is installed and none is named.
    #[test]
    fn openblas_agrees_with_the_naive_product() {
        let Some(ob) = library() else {
            eprintln!("no {DEBIAN_PATH} and no CIFAR_CLR_OPENBLAS: skipped");
            return;
        };
        assert!(ob.identity.contains("OpenBLAS"), "{}", ob.identity);
        fn check<T: Element>(ob: &OpenBlas, threads: usize) {
            let (m, k, n) = (37, 129, 70);
            let mut seed = 11;
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_s = if ta {
                    super::super::random::<T>(k, m, &mut seed)
                } else {
                    super::super::random::<T>(m, k, &mut seed)
                };
                let b_s = if tb {
                    super::super::random::<T>(n, k, &mut seed)
                } else {
                    super::super::random::<T>(k, n, &mut seed)
                };
                let a = if ta { a_s.t() } else { a_s.view() };
                let b = if tb { b_s.t() } else { b_s.view() };
                let c0 = super::super::random::<T>(m, n, &mut seed);
                let want = reference::gemm(0.5, &a, &b, 0.999, &c0.view());
                let scale = reference::gemm_abs(&a, &b);
                let mut c = c0.clone();
                ob.set_threads(threads);
                let half = T::from(0.5).unwrap();
                let beta = T::from(0.999).unwrap();
                ob.gemm(half, &a, &b, beta, &mut c.view_mut()).unwrap();
                let eps = T::epsilon().to_f64().unwrap();
                for ((ij, &got), &w) in c.indexed_iter().zip(want.iter()) {
                    let got = got.to_f64().unwrap();
                    let bound = 8.0 * eps * k as f64 * (scale[ij] + w.abs() + 1.0);
                    assert!(
                        (got - w).abs() <= bound,
                        "{} ta {ta} tb {tb} {threads}t {ij:?}: {got} vs {w}",
                        std::any::type_name::<T>()
                    );
                }
            }
        }
        for threads in [1, 2] {
            check::<f32>(&ob, threads);
            check::<f64>(&ob, threads);
        }
        // A wrong shape is an error, not a call.
        let a = ndarray::Array2::<f32>::zeros((3, 4));
        let mut c = ndarray::Array2::<f32>::zeros((3, 3));
        let err = ob.gemm(1.0, &a.view(), &a.view(), 0.0, &mut c.view_mut());
        assert!(err.is_err());
    }
}
