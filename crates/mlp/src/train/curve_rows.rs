//! Which training rows a learning-curve point evaluates: the
//! `curve_train_rows` setting. Evaluating the whole training split at every
//! point costs a search trial a sixth of its time at m = 50 and more for
//! wider networks (README); the first `N` rows tell the curve's shape as
//! well, and the last point still sees them all.

use std::fmt;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use ndarray::ArrayView2;

use crate::data::{Features, RowSource};

/// How many training rows the learning-curve points before the last one
/// evaluate. The last point of a run (its final step) always evaluates the
/// whole training split, so a run's final numbers do not depend on it.
///
/// In a config: `curve_train_rows = "all"` or a positive integer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CurveTrainRows {
    /// The whole training split at every point (`"all"`; also when absent).
    #[default]
    All,
    /// The first `n` rows of the training split (in the order the trainer
    /// is given them) at every point but the last; `n` at least the split's
    /// size means all of it.
    First(u64),
}

impl CurveTrainRows {
    /// Rows an intermediate point evaluates out of a training split of `n_train`.
    pub fn rows(self, n_train: usize) -> usize {
        match self {
            CurveTrainRows::All => n_train,
            CurveTrainRows::First(n) => usize::try_from(n).map_or(n_train, |n| n.min(n_train)),
        }
    }

    /// What is wrong with the value, if anything (0 rows; too large for TOML).
    pub(crate) fn problem(self) -> Option<String> {
        match self {
            CurveTrainRows::First(0) => Some(
                "0 rows: write a positive number of training rows, or \"all\" for the whole split"
                    .into(),
            ),
            CurveTrainRows::First(n) if n > i64::MAX as u64 => Some(format!(
                "{n} is too large (at most {}); write \"all\" for the whole split",
                i64::MAX
            )),
            _ => None,
        }
    }
}

impl Serialize for CurveTrainRows {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            CurveTrainRows::All => serializer.serialize_str("all"),
            CurveTrainRows::First(n) => serializer.serialize_u64(*n),
        }
    }
}

/// Reads `"all"` or a non-negative integer (0 is left to `validate`, which
/// names the key); anything else is refused, quoting the value.
struct RowsVisitor;

impl Visitor<'_> for RowsVisitor {
    type Value = CurveTrainRows;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"all\" or a positive number of training rows (curve_train_rows)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v == "all" {
            Ok(CurveTrainRows::All)
        } else {
            Err(E::invalid_value(Unexpected::Str(v), &self))
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(CurveTrainRows::First(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(CurveTrainRows::First)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }
}

impl<'de> Deserialize<'de> for CurveTrainRows {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RowsVisitor)
    }
}

/// The first `n` rows of a row source.
pub(crate) struct HeadRows<'a> {
    /// The whole source.
    source: &'a dyn RowSource<f32>,
    /// Rows kept, at most the source's.
    n: usize,
}

impl RowSource<f32> for HeadRows<'_> {
    fn n_rows(&self) -> usize {
        self.n
    }
    fn n_features(&self) -> usize {
        self.source.n_features()
    }
    fn fill_row(&self, i: usize, dst: &mut [f32]) {
        assert!(i < self.n, "row {i} beyond the first {}", self.n);
        self.source.fill_row(i, dst)
    }
}

/// The first rows of a training split's features: a view of the matrix,
/// or the source limited to them (read row by row as the source is).
pub(crate) enum Head<'a> {
    /// Rows of a matrix in memory.
    Matrix(ArrayView2<'a, f32>),
    /// Rows of a source.
    Rows(HeadRows<'a>),
}

impl<'a> Head<'a> {
    /// The first `n` rows of `features` (all of them if it has fewer).
    pub(crate) fn new(features: &Features<'a>, n: usize) -> Self {
        let n = n.min(features.nrows());
        match *features {
            Features::Matrix(m) => Head::Matrix(m.slice_move(ndarray::s![..n, ..])),
            Features::Rows(source) => Head::Rows(HeadRows { source, n }),
        }
    }

    /// As [`Features`], for evaluation.
    pub(crate) fn features(&self) -> Features<'_> {
        match self {
            Head::Matrix(m) => Features::Matrix(m.view()),
            Head::Rows(r) => Features::Rows(r),
        }
    }
}
