//! What the network trains on, and how a mini-batch is cut from it: plain
//! data (features, one label per row, the number of classes), a seeded
//! shuffled order, the row gather that fills a preallocated batch buffer,
//! and data augmentation applied while gathering.
//!
//! Features are either a matrix in memory or a [`RowSource`] that writes a
//! requested row into a buffer (e.g. raw `u8` pixels normalised as they are
//! read, so no `f32` copy of a data set is kept); batches and evaluation
//! blocks are filled the same way from either.
//!
//! Nothing here knows CIFAR: a data set that holds images says so with an
//! [`ImageShape`] (channel-major rows, `channels x height x width`), which
//! is all augmentation needs.

use ndarray::{Array2, ArrayView2};
use rand::RngCore;
use tensor::Element;

/// Training or evaluation data: one sample per row of `features`.
#[derive(Clone, Copy, Debug)]
pub struct Data<'a, T = f32> {
    /// `n x d` features.
    pub features: Features<'a, T>,
    /// One label per row, below `n_classes`.
    pub labels: &'a [u8],
    /// Number of classes `K`.
    pub n_classes: usize,
    /// How a row is laid out as an image, if it is one (needed by augmentation).
    pub image: Option<ImageShape>,
}

/// Rows of features made on request: the source writes row `i` into a
/// buffer (e.g. raw pixels z-scored as they are read). Each row must depend
/// only on `i`, so a batch or block is the same whoever fills it.
pub trait RowSource<T>: Sync {
    /// Number of rows.
    fn n_rows(&self) -> usize;
    /// Features per row.
    fn n_features(&self) -> usize;
    /// Write row `i` into `dst` (`n_features` long).
    fn fill_row(&self, i: usize, dst: &mut [T]);
    /// Write rows `indices` (any order, repeats allowed) into `dst`, one
    /// `n_features` row after the other: exactly the rows
    /// [`RowSource::fill_row`] writes, which the default calls row by row.
    /// What [`gather_rows`] fills a mini-batch with (evaluation blocks stay
    /// row by row), so a source can fill a whole batch faster (e.g. feature
    /// chunk by feature chunk across the rows) as long as every value stays
    /// the same.
    ///
    /// **Panics** if `dst` is not `indices.len() * n_features` long.
    fn fill_rows(&self, indices: &[usize], dst: &mut [T]) {
        let d = self.n_features();
        assert_eq!(
            dst.len(),
            indices.len() * d,
            "buffer for {} rows",
            indices.len()
        );
        if d == 0 {
            return;
        }
        for (&i, row) in indices.iter().zip(dst.chunks_exact_mut(d)) {
            self.fill_row(i, row);
        }
    }
}

/// Where the rows of a data set come from.
#[derive(Clone, Copy)]
pub enum Features<'a, T = f32> {
    /// An `n x d` matrix in memory.
    Matrix(ArrayView2<'a, T>),
    /// Rows written on request into the caller's buffer.
    Rows(&'a dyn RowSource<T>),
}

impl<T> std::fmt::Debug for Features<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Features::Matrix(_) => "Matrix",
            Features::Rows(_) => "Rows",
        };
        write!(f, "Features::{kind}({} x {})", self.nrows(), self.ncols())
    }
}

impl<'a, T> From<ArrayView2<'a, T>> for Features<'a, T> {
    fn from(m: ArrayView2<'a, T>) -> Self {
        Features::Matrix(m)
    }
}

impl<'a, T> Features<'a, T> {
    /// Number of rows `n`.
    pub fn nrows(&self) -> usize {
        match self {
            Features::Matrix(m) => m.nrows(),
            Features::Rows(r) => r.n_rows(),
        }
    }

    /// Features per row `d`.
    pub fn ncols(&self) -> usize {
        match self {
            Features::Matrix(m) => m.ncols(),
            Features::Rows(r) => r.n_features(),
        }
    }
}

impl<'a, T: Element> Features<'a, T> {
    /// Rows `lo..hi` as a matrix: a view of the matrix itself, or `buf`
    /// (resized to `(hi - lo) x d` if needed, so it is reused block after
    /// block) filled from the source.
    ///
    /// **Panics** if `hi` is beyond the last row or `lo > hi`.
    pub fn block<'b>(&'b self, lo: usize, hi: usize, buf: &'b mut Array2<T>) -> ArrayView2<'b, T> {
        match self {
            Features::Matrix(m) => m.slice(ndarray::s![lo..hi, ..]),
            Features::Rows(r) => {
                assert!(lo <= hi && hi <= r.n_rows(), "rows {lo}..{hi} out of range");
                let d = r.n_features();
                if buf.dim() != (hi - lo, d) {
                    *buf = Array2::zeros((hi - lo, d));
                }
                // Row by row, not `fill_rows`: on 1000-row blocks of
                // consecutive rows the CIFAR batch fill measured slower
                // (README, bench train).
                for (i, mut row) in (lo..hi).zip(buf.rows_mut()) {
                    r.fill_row(i, row.as_slice_mut().expect("a fresh array is contiguous"));
                }
                buf.view()
            }
        }
    }

    /// Write row `i` into `dst` (`d` long).
    fn fill_row(&self, i: usize, dst: &mut [T]) {
        match self {
            Features::Matrix(m) => {
                let src = m.row(i);
                match src.as_slice() {
                    Some(src) => dst.copy_from_slice(src),
                    None => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v),
                }
            }
            Features::Rows(r) => r.fill_row(i, dst),
        }
    }
}

/// A row of features read as an image: `channels` planes of `height` rows of
/// `width` pixels, plane after plane, row-major within a plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    /// Planes (3 for RGB).
    pub channels: usize,
    /// Rows per plane.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
}

impl ImageShape {
    /// Features per image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when the image has no pixel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a, T> Data<'a, T> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Why this data cannot be used with `n_input` features per sample, if it
    /// cannot (`name` names the split in the message).
    pub fn problem(&self, name: &str, n_input: usize) -> Option<String> {
        if self.features.nrows() == 0 {
            return Some(format!("the {name} split is empty"));
        }
        if self.features.ncols() != n_input {
            return Some(format!(
                "the {name} split has {} features per sample, the network {n_input}",
                self.features.ncols()
            ));
        }
        if self.labels.len() != self.features.nrows() {
            return Some(format!(
                "the {name} split has {} labels for {} samples",
                self.labels.len(),
                self.features.nrows()
            ));
        }
        if let Some((idx, &label)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= self.n_classes)
        {
            return Some(format!(
                "the {name} split has label {label} at row {idx}; labels must be below {}",
                self.n_classes
            ));
        }
        if let Some(shape) = self.image {
            if shape.len() != self.features.ncols() {
                return Some(format!(
                    "the {name} split's image shape {}x{}x{} does not hold its {} features",
                    shape.channels,
                    shape.height,
                    shape.width,
                    self.features.ncols()
                ));
            }
        }
        None
    }
}

/// Data augmentation while a training batch is gathered: validation and
/// test data are never augmented.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Mirror each image left-right with probability 1/2.
    pub flip: bool,
    /// Shift each image by `dx, dy` drawn uniformly from `-translate..=translate`
    /// pixels; pixels shifted in from outside are 0, which in z-scored
    /// features is the training mean of that pixel (zero padding in
    /// normalised space).
    pub translate: usize,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        flip: false,
        translate: 0,
    };

    /// True when it changes nothing.
    pub fn is_none(&self) -> bool {
        !self.flip && self.translate == 0
    }
}

/// The geometric change applied to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transform {
    /// Mirror left-right.
    pub flip: bool,
    /// Output pixel `(y, x)` reads input pixel `(y + dy, x + dx)` (after the flip).
    pub dx: i64,
    /// See `dx`.
    pub dy: i64,
}

impl Transform {
    /// Draw one image's transform from `rng`: one draw for the flip (when
    /// enabled), then one each for `dx` and `dy` (when `translate > 0`).
    pub fn draw<R: RngCore>(augment: &Augment, rng: &mut R) -> Self {
        let flip = augment.flip && rng.next_u64() >> 63 == 1;
        let (dx, dy) = if augment.translate > 0 {
            let span = 2 * augment.translate as u64 + 1;
            let k = augment.translate as i64;
            (bounded(rng, span) as i64 - k, bounded(rng, span) as i64 - k)
        } else {
            (0, 0)
        };
        Self { flip, dx, dy }
    }

    /// Write `src` transformed into `dst` (both one image of `shape`).
    pub fn apply<T: Element>(&self, shape: ImageShape, src: &[T], dst: &mut [T]) {
        let (h, w) = (shape.height as i64, shape.width as i64);
        let plane = shape.height * shape.width;
        for (src, dst) in src.chunks_exact(plane).zip(dst.chunks_exact_mut(plane)) {
            for y in 0..h {
                let dst_row = &mut dst[(y * w) as usize..((y + 1) * w) as usize];
                let sy = y + self.dy;
                if !(0..h).contains(&sy) {
                    dst_row.fill(T::zero());
                    continue;
                }
                let src_row = &src[(sy * w) as usize..((sy + 1) * w) as usize];
                // Output x reads the (flipped) column x + dx.
                let lo = (-self.dx).clamp(0, w);
                let hi = (w - self.dx).clamp(0, w);
                dst_row[..lo as usize].fill(T::zero());
                dst_row[hi as usize..].fill(T::zero());
                if self.flip {
                    for x in lo..hi {
                        dst_row[x as usize] = src_row[(w - 1 - (x + self.dx)) as usize];
                    }
                } else if lo < hi {
                    dst_row[lo as usize..hi as usize].copy_from_slice(
                        &src_row[(lo + self.dx) as usize..(hi + self.dx) as usize],
                    );
                }
            }
        }
    }
}

/// A mini-batch gathered from a [`RowSource`] is split in two at a multiple
/// of this many rows (the batch fill's row group), when it has at least
/// twice as many.
const SPLIT_ROWS: usize = 16;

/// Copy the rows `indices` of `features` into `out` (a preallocated
/// mini-batch buffer); a [`RowSource`] fills a contiguous buffer with one
/// [`RowSource::fill_rows`] call.
///
/// **Panics** if `out` has not `indices.len()` rows of the same width.
#[track_caller]
pub fn gather_rows<T: Element>(features: &Features<'_, T>, indices: &[usize], out: &mut Array2<T>) {
    assert_eq!(
        out.dim(),
        (indices.len(), features.ncols()),
        "mini-batch buffer shape"
    );
    if let (Features::Rows(r), Some(flat)) = (features, out.as_slice_mut()) {
        // Two halves, the second on an awake partner inside a training
        // step's partner scope (else both here): each row depends only on
        // its index, so the batch is the same whoever fills which rows.
        let half = indices.len() / 2 / SPLIT_ROWS * SPLIT_ROWS;
        if half == 0 || !tensor::partners::partners_awake() {
            return r.fill_rows(indices, flat);
        }
        let (lo, hi) = flat.split_at_mut(half * features.ncols());
        let (first, second) = indices.split_at(half);
        return tensor::partners::join_with_partner(
            || r.fill_rows(first, lo),
            || r.fill_rows(second, hi),
        );
    }
    for (mut dst, &idx) in out.rows_mut().into_iter().zip(indices) {
        match dst.as_slice_mut() {
            Some(dst) => features.fill_row(idx, dst),
            None => {
                let mut tmp = vec![T::zero(); features.ncols()];
                features.fill_row(idx, &mut tmp);
                dst.iter_mut().zip(tmp).for_each(|(d, v)| *d = v);
            }
        }
    }
}

/// [`gather_rows`], each image transformed by a [`Transform`] drawn from
/// `rng` (in row order) as it is copied: no second copy of the data set.
/// A row is first written into `scratch` (resized to one image if needed,
/// so a caller that keeps it allocates once), then transformed into `out`.
/// With [`Augment::NONE`] it is exactly [`gather_rows`] and draws nothing.
///
/// **Panics** if `out` has not `indices.len()` rows of `shape.len()` features.
#[track_caller]
pub fn gather_augmented<T: Element, R: RngCore>(
    features: &Features<'_, T>,
    indices: &[usize],
    shape: ImageShape,
    augment: &Augment,
    rng: &mut R,
    scratch: &mut Vec<T>,
    out: &mut Array2<T>,
) {
    if augment.is_none() {
        return gather_rows(features, indices, out);
    }
    assert_eq!(
        (out.dim(), features.ncols()),
        ((indices.len(), shape.len()), shape.len()),
        "mini-batch buffer or image shape"
    );
    scratch.resize(shape.len(), T::zero());
    for (mut dst, &idx) in out.rows_mut().into_iter().zip(indices) {
        let transform = Transform::draw(augment, rng);
        let src: &[T] = match features {
            Features::Matrix(m) => match m.row(idx).to_slice() {
                Some(row) => row,
                None => {
                    features.fill_row(idx, scratch);
                    scratch
                }
            },
            Features::Rows(_) => {
                features.fill_row(idx, scratch);
                scratch
            }
        };
        match dst.as_slice_mut() {
            Some(dst) => transform.apply(shape, src, dst),
            None => {
                let mut tmp = vec![T::zero(); src.len()];
                transform.apply(shape, src, &mut tmp);
                dst.iter_mut().zip(tmp).for_each(|(d, v)| *d = v);
            }
        }
    }
}

/// A seeded, reshuffled order of `0..n` cut into mini-batches of `batch_size`
/// (the last one shorter when `batch_size` does not divide `n`). Only the
/// index order is shuffled: the data itself is never copied per epoch.
#[derive(Clone, Debug)]
pub struct MiniBatches {
    order: Vec<usize>,
    batch_size: usize,
}

impl MiniBatches {
    /// The identity order of `0..n`; call [`MiniBatches::shuffle`] before each epoch.
    ///
    /// **Panics** if `batch_size == 0`.
    pub fn new(n: usize, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch_size must be positive");
        Self {
            order: (0..n).collect(),
            batch_size,
        }
    }

    /// Reshuffle the order (Fisher-Yates) with `rng`.
    ///
    /// The draw is ours (one `next_u64` per swap, unbiased bounded sampling),
    /// not `rand`'s `SliceRandom::shuffle`, so a seeded ChaCha stream gives the
    /// same order on every platform and `rand` release.
    pub fn shuffle<R: RngCore>(&mut self, rng: &mut R) {
        for i in (1..self.order.len()).rev() {
            let j = bounded(rng, i as u64 + 1) as usize;
            self.order.swap(i, j);
        }
    }

    /// Number of mini-batches per epoch.
    pub fn n_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// The mini-batches of the current order, as index slices.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.batch_size)
    }

    /// The current order of `0..n`.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

/// Uniform in `0..range` from one or more `next_u64` draws (Lemire's
/// multiply-and-reject: unbiased, portable).
pub(crate) fn bounded<R: RngCore>(rng: &mut R, range: u64) -> u64 {
    debug_assert!(range > 0);
    let threshold = range.wrapping_neg() % range;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(range);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The obvious per-pixel definition, for comparison.
    fn naive(t: &Transform, shape: ImageShape, src: &[f32]) -> Vec<f32> {
        let (c, h, w) = (shape.channels, shape.height as i64, shape.width as i64);
        let mut out = vec![0.0; src.len()];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let (sy, sx) = (y + t.dy, x + t.dx);
                    if (0..h).contains(&sy) && (0..w).contains(&sx) {
                        let sx = if t.flip { w - 1 - sx } else { sx };
                        out[ch * (h * w) as usize + (y * w + x) as usize] =
                            src[ch * (h * w) as usize + (sy * w + sx) as usize];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn transforms_match_the_naive_definition() {
        let shape = ImageShape {
            channels: 3,
            height: 5,
            width: 4,
        };
        let src: Vec<f32> = (0..shape.len()).map(|v| v as f32 + 1.0).collect();
        for flip in [false, true] {
            for dx in -5..=5 {
                for dy in -6..=6 {
                    let t = Transform { flip, dx, dy };
                    let mut dst = vec![f32::NAN; src.len()];
                    t.apply(shape, &src, &mut dst);
                    assert_eq!(dst, naive(&t, shape, &src), "{t:?}");
                }
            }
        }
        // Hand-checked corner: a flip alone mirrors each row.
        let t = Transform {
            flip: true,
            dx: 0,
            dy: 0,
        };
        let mut dst = vec![0.0; src.len()];
        t.apply(shape, &src, &mut dst);
        assert_eq!(&dst[..4], &[4.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn gather_augmented_draws_per_image_and_is_seeded() {
        let shape = ImageShape {
            channels: 2,
            height: 4,
            width: 4,
        };
        let features = Array2::from_shape_fn((6, 32), |(i, j)| (i * 100 + j) as f32);
        let augment = Augment {
            flip: true,
            translate: 2,
        };
        let indices = [5, 0, 3, 3];
        let source = Copied(features.clone());
        let run_on = |features: Features<'_, f32>, seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut out = Array2::from_elem((4, 32), f32::NAN);
            let mut scratch = Vec::new();
            gather_augmented(
                &features,
                &indices,
                shape,
                &augment,
                &mut rng,
                &mut scratch,
                &mut out,
            );
            out
        };
        let run = |seed| run_on(Features::Matrix(features.view()), seed);
        let out = run(7);
        assert_eq!(out, run(7), "same seed, same batch");
        assert_ne!(out, run(8));
        // Rows written on request give the same batch as the matrix, and so
        // does a matrix whose rows are not contiguous.
        assert_eq!(out, run_on(Features::Rows(&source), 7));
        let columns = features.t().to_owned();
        assert_eq!(out, run_on(Features::Matrix(columns.t()), 7));
        // Each row is its source under the transform drawn in row order.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (row, &idx) in out.rows().into_iter().zip(&indices) {
            let t = Transform::draw(&augment, &mut rng);
            let src = features.row(idx).to_vec();
            assert_eq!(row.to_vec(), naive(&t, shape, &src));
        }
        // Without augmentation it is the plain gather, from either kind of source.
        let mut plain = Array2::zeros((4, 32));
        gather_rows(&Features::Matrix(features.view()), &indices, &mut plain);
        let mut from_rows = Array2::zeros((4, 32));
        gather_rows(&Features::Rows(&source), &indices, &mut from_rows);
        assert_eq!(plain, from_rows);
        assert_eq!(plain.row(0), features.row(5));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut none = Array2::zeros((4, 32));
        gather_augmented(
            &Features::Matrix(features.view()),
            &indices,
            shape,
            &Augment::NONE,
            &mut rng,
            &mut Vec::new(),
            &mut none,
        );
        assert_eq!(plain, none);
    }

    /// A row source that copies the rows of a matrix (what a CIFAR split
    /// is to training).
    pub(crate) struct Copied(pub(crate) Array2<f32>);

    impl RowSource<f32> for Copied {
        fn n_rows(&self) -> usize {
            self.0.nrows()
        }
        fn n_features(&self) -> usize {
            self.0.ncols()
        }
        fn fill_row(&self, i: usize, dst: &mut [f32]) {
            dst.copy_from_slice(self.0.row(i).as_slice().unwrap());
        }
    }

    /// [`Copied`] with its own [`RowSource::fill_rows`] (rows written last
    /// to first), recording the indices and the thread of each call; it has
    /// no `fill_row`.
    struct Batched(Copied, std::sync::Mutex<Vec<Call>>);

    /// The indices and the thread of one `fill_rows` call.
    type Call = (Vec<usize>, std::thread::ThreadId);

    impl RowSource<f32> for Batched {
        fn n_rows(&self) -> usize {
            self.0.n_rows()
        }
        fn n_features(&self) -> usize {
            self.0.n_features()
        }
        fn fill_row(&self, _: usize, _: &mut [f32]) {
            panic!("a batch must be filled by fill_rows");
        }
        fn fill_rows(&self, indices: &[usize], dst: &mut [f32]) {
            let call = (indices.to_vec(), std::thread::current().id());
            self.1.lock().unwrap().push(call);
            let d = self.n_features();
            for (&i, row) in indices.iter().zip(dst.chunks_exact_mut(d)).rev() {
                self.0.fill_row(i, row);
            }
        }
    }

    #[test]
    fn a_batch_of_a_source_is_filled_in_one_call() {
        let m = Array2::from_shape_fn((7, 5), |(i, j)| (i * 10 + j) as f32);
        let source = Batched(Copied(m.clone()), Default::default());
        let rows = Features::Rows(&source);
        // Unsorted, repeated indices.
        let indices = [6, 0, 6, 3];
        let mut out = Array2::from_elem((4, 5), f32::NAN);
        gather_rows(&rows, &indices, &mut out);
        let mut want = Array2::zeros((4, 5));
        gather_rows(&Features::Matrix(m.view()), &indices, &mut want);
        assert_eq!(out, want);
        // The default fill_rows is fill_row row after row.
        let mut default = vec![f32::NAN; 20];
        Copied(m.clone()).fill_rows(&indices, &mut default);
        assert_eq!(default, want.iter().copied().collect::<Vec<_>>());
        let calls = source.1.lock().unwrap();
        assert_eq!(calls.iter().map(|c| &c.0).collect::<Vec<_>>(), [&indices]);
    }

    /// With a spinning partner awake (a training step of a dedicated pool),
    /// a 100-row batch is filled in two calls, 48 rows here and 52 on the
    /// partner; the batch is the one gathered from the matrix.
    #[test]
    fn a_batch_is_filled_in_two_halves_when_a_partner_is_awake() {
        let m = Array2::from_shape_fn((300, 24), |(i, j)| (i * 100 + j) as f32);
        let indices: Vec<usize> = (0..100).map(|i| (i * 37 + 11) % 300).collect();
        let mut want = Array2::zeros((100, 24));
        gather_rows(&Features::Matrix(m.view()), &indices, &mut want);
        let source = Batched(Copied(m.clone()), Default::default());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let split_on_two_threads = pool.install(|| {
            tensor::with_small_products_split(|| {
                tensor::with_spinning_partners(|| {
                    // Until the partner has taken its place (at most 10 s).
                    let start = std::time::Instant::now();
                    loop {
                        source.1.lock().unwrap().clear();
                        let mut out = Array2::from_elem((100, 24), f32::NAN);
                        gather_rows(&Features::Rows(&source), &indices, &mut out);
                        assert_eq!(out, want);
                        // The two halves, recorded in whichever order they ran.
                        let mut calls = source.1.lock().unwrap().clone();
                        calls.sort_by_key(|c| c.0.len());
                        let halves = [&indices[..48], &indices[48..]];
                        assert_eq!(calls.iter().map(|c| &c.0[..]).collect::<Vec<_>>(), halves);
                        if calls[0].1 != calls[1].1 || start.elapsed().as_secs() > 10 {
                            break calls[0].1 != calls[1].1;
                        }
                    }
                })
            })
        });
        assert!(split_on_two_threads, "the partner never filled a half");
        // Without partners: one call, as before.
        source.1.lock().unwrap().clear();
        let mut out = Array2::zeros((100, 24));
        pool.install(|| gather_rows(&Features::Rows(&source), &indices, &mut out));
        assert_eq!(out, want);
        assert_eq!(source.1.lock().unwrap().len(), 1);
    }

    #[test]
    fn blocks_view_the_matrix_or_fill_the_reused_buffer() {
        let m = Array2::from_shape_fn((7, 5), |(i, j)| (i * 10 + j) as f32);
        let source = Copied(m.clone());
        let mut buf = Array2::zeros((0, 0));
        for (lo, hi) in [(0, 3), (3, 6), (6, 7), (2, 2)] {
            let want = m.slice(ndarray::s![lo..hi, ..]).to_owned();
            let rows = Features::Rows(&source);
            assert_eq!(rows.block(lo, hi, &mut buf), want);
            let matrix = Features::Matrix(m.view());
            assert_eq!(matrix.block(lo, hi, &mut buf), want);
        }
        assert_eq!(Features::<f32>::Rows(&source).nrows(), 7);
        assert_eq!(Features::<f32>::Rows(&source).ncols(), 5);
    }

    #[test]
    fn draws_cover_the_whole_range_evenly() {
        let augment = Augment {
            flip: true,
            translate: 3,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 7];
        let mut flips = 0;
        for _ in 0..7000 {
            let t = Transform::draw(&augment, &mut rng);
            counts[(t.dx + 3) as usize] += 1;
            assert!((-3..=3).contains(&t.dy));
            flips += usize::from(t.flip);
        }
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
        assert!((3200..3800).contains(&flips), "{flips}");
    }

    #[test]
    fn mini_batches_shuffle_reproducibly_and_cover_everything() {
        let order = |seed: u64, epochs: usize| {
            let mut mb = MiniBatches::new(103, 10);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            for _ in 0..epochs {
                mb.shuffle(&mut rng);
                out.push(mb.iter().map(<[usize]>::to_vec).collect::<Vec<_>>());
            }
            out
        };
        let a = order(1, 2);
        assert_eq!(a, order(1, 2));
        assert_ne!(a, order(2, 2));
        assert_ne!(a[0], a[1], "each epoch reshuffles");
        for epoch in &a {
            assert_eq!(epoch.len(), 11);
            assert_eq!(epoch.last().unwrap().len(), 3);
            let mut all: Vec<usize> = epoch.concat();
            all.sort_unstable();
            assert_eq!(all, (0..103).collect::<Vec<_>>());
        }
    }

    #[test]
    fn mini_batch_shuffle_is_pinned() {
        // Portability guard: Fisher-Yates from the end with our bounded draw.
        let mut mb = MiniBatches::new(20, 7);
        mb.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(99));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
        let mut want: Vec<usize> = (0..20).collect();
        for i in (1..20).rev() {
            let r = rand::RngCore::next_u64(&mut rng);
            let j = ((u128::from(r) * (i as u128 + 1)) >> 64) as usize;
            want.swap(i, j);
        }
        assert_eq!(mb.order(), want.as_slice());
    }
}
