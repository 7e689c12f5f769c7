//! The `[space]` of a search: any training setting, by its dotted key below
//! `[train]` (`lambda`, `n_hidden`, `schedule.eta_max`, `dropout`,
//! `optimizer.mu`, ...), each with a distribution. Random keys
//! (`log_uniform`, `uniform`, `int`, `choice`) are drawn `samples` times from
//! the search seed; grid keys (`grid`, `range`, `around_best`,
//! `around_best_log`, `best_of`) multiply those draws. Every point is drawn
//! up front, so the plan does not depend on `--jobs`.
//!
//! ```toml
//! [space]
//! samples = 6                       # random draws (1 when every key is a grid)
//! [space.lambda]
//! kind = "log_uniform"
//! min = 1e-5
//! max = 1e-1
//! [space.schedule.eta_max]
//! kind = "grid"
//! values = [0.01, 0.02]
//! ```
//!
//! A key that is not a setting of the config's `[train]`, a distribution
//! of the wrong type or outside the setting's allowed range is refused
//! naming `space.<key>`.

use std::collections::BTreeMap;
use std::path::Path;

use mlp::train::TrainSettings;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::invalid::InvalidValue;
use crate::{ExperimentError, Result};

/// The key of the number of random draws inside `[space]`.
pub const SAMPLES: &str = "samples";
/// The key of the L2 strength (every space has it: the plan's lambda column).
pub const LAMBDA: &str = "lambda";
/// Upper bound of the number of points of a space.
pub const MAX_POINTS: usize = 10_000;

/// The distribution of one key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// `10^x`, `x ~ Uniform(log10 min, log10 max)`: a rate or a strength.
    LogUniform {
        /// Lowest value (> 0).
        min: f64,
        /// Highest value.
        max: f64,
    },
    /// `Uniform(min, max)`.
    Uniform {
        /// Lowest value.
        min: f64,
        /// Highest value.
        max: f64,
    },
    /// An integer drawn uniformly from `min..=max`.
    Int {
        /// Lowest value.
        min: i64,
        /// Highest value (inclusive).
        max: i64,
    },
    /// One of `values`, drawn uniformly.
    Choice {
        /// The candidates.
        values: Vec<toml::Value>,
    },
    /// Every one of `values` (a grid axis).
    Grid {
        /// The values.
        values: Vec<toml::Value>,
    },
    /// `start, start + step, ..., start + (n - 1) step` (a grid axis).
    Range {
        /// First value.
        start: f64,
        /// Spacing (> 0).
        step: f64,
        /// Number of values.
        n: usize,
    },
    /// `n` multiples of `step`, `step` apart, centred as closely as possible
    /// on the best value of the earlier search `search` (a grid axis; the
    /// report's fine grid).
    AroundBest {
        /// The earlier search.
        search: String,
        /// Number of values.
        n: usize,
        /// Spacing.
        step: f64,
    },
    /// `n` values evenly spaced in log space from `best / factor` to
    /// `best * factor`, `best` the best value of the earlier search `search`
    /// (a grid axis that always brackets it; its middle value is `best`
    /// when `n` is odd).
    AroundBestLog {
        /// The earlier search.
        search: String,
        /// Number of values (>= 2).
        n: usize,
        /// Span on each side (> 1).
        factor: f64,
    },
    /// The best value of the earlier search `search` (a grid axis of one).
    BestOf {
        /// The earlier search.
        search: String,
    },
}

impl Dist {
    /// Drawn `samples` times (as opposed to a grid axis).
    pub fn is_random(&self) -> bool {
        matches!(
            self,
            Dist::LogUniform { .. } | Dist::Uniform { .. } | Dist::Int { .. } | Dist::Choice { .. }
        )
    }

    /// The earlier search this axis reads, if any.
    pub fn reads_search(&self) -> Option<&str> {
        match self {
            Dist::AroundBest { search, .. }
            | Dist::AroundBestLog { search, .. }
            | Dist::BestOf { search } => Some(search),
            _ => None,
        }
    }
}

/// `[space]` as written in the file (kept as TOML so it saves back as it was
/// read); [`Space::parse`] gives its typed form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Space(pub toml::Table);

/// The typed form of a [`Space`].
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSpace {
    /// Random draws per grid combination.
    pub samples: usize,
    /// The distributions by dotted key, sorted by key.
    pub keys: BTreeMap<String, Dist>,
}

/// One point of a space: its lambda and the other settings it changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// L2 strength.
    pub lambda: f64,
    /// The other settings, by dotted key below `[train]`, sorted by key.
    pub settings: Vec<(String, toml::Value)>,
}

fn invalid(key: &str, message: impl Into<String>) -> InvalidValue {
    InvalidValue {
        key: format!("space.{key}"),
        message: message.into(),
    }
}

impl Space {
    /// A space over lambda alone: one grid axis of `values`.
    pub fn lambda_grid(values: &[f64]) -> Self {
        let mut lambda = toml::Table::new();
        lambda.insert("kind".into(), "grid".into());
        lambda.insert(
            "values".into(),
            toml::Value::Array(values.iter().map(|&v| toml::Value::Float(v)).collect()),
        );
        let mut table = toml::Table::new();
        table.insert(SAMPLES.into(), toml::Value::Integer(1));
        table.insert(LAMBDA.into(), toml::Value::Table(lambda));
        Space(table)
    }

    /// The typed space; the error names the bad key.
    pub fn parse(&self) -> Result<ParsedSpace, InvalidValue> {
        let samples = match self.0.get(SAMPLES) {
            Some(toml::Value::Integer(n)) if (1..=MAX_POINTS as i64).contains(n) => *n as usize,
            Some(other) => {
                return Err(invalid(
                    SAMPLES,
                    format!("{other} is not an integer in 1..={MAX_POINTS}"),
                ))
            }
            None => {
                return Err(invalid(
                    SAMPLES,
                    "missing: the number of random draws (1 when every key is a grid)",
                ))
            }
        };
        let mut keys = BTreeMap::new();
        for (key, value) in &self.0 {
            if key != SAMPLES {
                collect_dists(key, value, &mut keys)?;
            }
        }
        if !keys.contains_key(LAMBDA) {
            return Err(invalid(
                LAMBDA,
                "missing: every space gives lambda (e.g. kind = \"grid\", values = [0.0005])",
            ));
        }
        if samples > 1 && !keys.values().any(Dist::is_random) {
            return Err(invalid(
                SAMPLES,
                format!(
                    "{samples} draws of a space without a random key repeat the same points; use 1"
                ),
            ));
        }
        Ok(ParsedSpace { samples, keys })
    }
}

/// The distributions below `key`: a table with `kind` is one, any other
/// table holds more keys.
fn collect_dists(
    key: &str,
    value: &toml::Value,
    out: &mut BTreeMap<String, Dist>,
) -> Result<(), InvalidValue> {
    let toml::Value::Table(table) = value else {
        return Err(invalid(
            key,
            "expected a table with a `kind` (log_uniform, uniform, int, choice, grid, range, \
             around_best, around_best_log, best_of)",
        ));
    };
    if table.contains_key("kind") {
        let dist = Dist::deserialize(value.clone()).map_err(|e| invalid(key, e.to_string()))?;
        out.insert(key.to_string(), dist);
        return Ok(());
    }
    for (inner, value) in table {
        collect_dists(&format!("{key}.{inner}"), value, out)?;
    }
    Ok(())
}

/// The settings of `template` as a TOML table (what `[train]` holds).
fn as_table(template: &TrainSettings) -> toml::Table {
    toml::Table::try_from(template).expect("training settings serialise to TOML")
}

/// Every dotted key of `table` that holds a value (not a table).
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => leaf_keys(inner, &dotted, out),
            _ => out.push(dotted),
        }
    }
}

/// The value at the dotted `key` of `table`, if it is a leaf.
fn leaf_mut<'a>(table: &'a mut toml::Table, key: &str) -> Option<&'a mut toml::Value> {
    let mut parts = key.split('.').peekable();
    let mut table = table;
    while let Some(part) = parts.next() {
        let value = table.get_mut(part)?;
        if parts.peek().is_none() {
            return (!value.is_table()).then_some(value);
        }
        table = value.as_table_mut()?;
    }
    None
}

/// `value` in the type of `current` (an integer for a float setting
/// becomes a float); an error message when the types do not fit.
fn coerce(current: &toml::Value, value: &toml::Value) -> Result<toml::Value, String> {
    match (current, value) {
        (toml::Value::Float(_), toml::Value::Integer(i)) => Ok(toml::Value::Float(*i as f64)),
        (toml::Value::Integer(_), toml::Value::Float(f)) => Err(format!(
            "{f} is not an integer, and this setting is one (use kind = \"int\", or integer values)"
        )),
        (a, b) if a.type_str() == b.type_str() => Ok(value.clone()),
        (a, b) => Err(format!(
            "{b} is a {}, this setting is a {}",
            b.type_str(),
            a.type_str()
        )),
    }
}

/// `template` with the `settings` (dotted keys below `[train]`) changed,
/// checked by mlp's own rules; the error names `space.<key>` when it can.
pub fn apply(
    template: &TrainSettings,
    settings: &[(String, toml::Value)],
) -> Result<TrainSettings, InvalidValue> {
    let mut table = as_table(template);
    for (key, value) in settings {
        let Some(slot) = leaf_mut(&mut table, key) else {
            let mut known = Vec::new();
            leaf_keys(&as_table(template), "", &mut known);
            return Err(invalid(
                key,
                format!(
                    "`train.{key}` is not a setting of this config's [train] (its settings: \
                     lambda, {}; a schedule's or optimizer's keys depend on its kind)",
                    known.join(", ")
                ),
            ));
        };
        *slot = coerce(slot, value).map_err(|m| invalid(key, m))?;
    }
    let settings_out =
        TrainSettings::deserialize(toml::Value::Table(table)).map_err(|e| InvalidValue {
            key: "space".into(),
            message: e.to_string(),
        })?;
    settings_out.validate().map_err(|e| {
        let key = settings
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| *k == e.field || e.field.starts_with(&format!("{k}.")))
            .unwrap_or(&e.field);
        invalid(
            key,
            format!("{} (train.{}: {})", e.message, e.field, e.message),
        )
    })?;
    Ok(settings_out)
}

/// The values a distribution can give at its ends (or all of them), for
/// checking against the setting's rules before anything is drawn.
fn extremes(dist: &Dist) -> Vec<toml::Value> {
    match dist {
        Dist::LogUniform { min, max } | Dist::Uniform { min, max } => {
            vec![toml::Value::Float(*min), toml::Value::Float(*max)]
        }
        Dist::Int { min, max } => vec![toml::Value::Integer(*min), toml::Value::Integer(*max)],
        Dist::Choice { values } | Dist::Grid { values } => values.clone(),
        Dist::Range { start, step, n } => vec![
            toml::Value::Float(*start),
            toml::Value::Float(start + step * (*n as f64 - 1.0)),
        ],
        Dist::AroundBest { .. } | Dist::AroundBestLog { .. } | Dist::BestOf { .. } => vec![],
    }
}

/// Check the shape of one distribution (bounds ordered, counts positive).
fn check_dist(key: &str, dist: &Dist) -> Result<(), InvalidValue> {
    let fail = |m: String| Err(invalid(key, m));
    let count = |n: usize| -> Result<(), InvalidValue> {
        if (1..=MAX_POINTS).contains(&n) {
            Ok(())
        } else {
            fail(format!("n = {n} is not in 1..={MAX_POINTS}"))
        }
    };
    match dist {
        Dist::LogUniform { min, max } => {
            if !(min.is_finite() && max.is_finite() && *min > 0.0 && max > min) {
                return fail(format!(
                    "log_uniform needs 0 < min < max, finite (got min {min}, max {max})"
                ));
            }
        }
        Dist::Uniform { min, max } => {
            if !(min.is_finite() && max.is_finite() && max > min) {
                return fail(format!(
                    "uniform needs min < max, finite (got min {min}, max {max})"
                ));
            }
        }
        Dist::Int { min, max } => {
            if max < min {
                return fail(format!("int needs min <= max (got min {min}, max {max})"));
            }
        }
        Dist::Choice { values } | Dist::Grid { values } => {
            if values.is_empty() || values.len() > MAX_POINTS {
                return fail(format!(
                    "values must list 1..={MAX_POINTS} values (got {})",
                    values.len()
                ));
            }
        }
        Dist::Range { step, n, .. } => {
            count(*n)?;
            if !(step.is_finite() && *step > 0.0) {
                return fail(format!("step {step} must be a positive finite number"));
            }
        }
        Dist::AroundBest { n, step, .. } => {
            count(*n)?;
            if !(step.is_finite() && *step > 0.0) {
                return fail(format!("step {step} must be a positive finite number"));
            }
        }
        Dist::AroundBestLog { n, factor, .. } => {
            if !(2..=MAX_POINTS).contains(n) {
                return fail(format!("n = {n} is not in 2..={MAX_POINTS}"));
            }
            if !(factor.is_finite() && *factor > 1.0) {
                return fail(format!("factor {factor} must be a finite number above 1"));
            }
        }
        Dist::BestOf { .. } => {}
    }
    if let Some(search) = dist.reads_search() {
        let ok = !search.is_empty()
            && !search.starts_with('.')
            && search
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return fail(format!("search {search:?} is not a search name"));
        }
    }
    Ok(())
}

/// Check `space` against the settings it varies: every key is a setting of
/// `template` (or `lambda`), every distribution well formed, its ends (or
/// values) allowed by the setting's rules, and the number of points bounded.
pub fn validate(space: &Space, template: &TrainSettings) -> Result<ParsedSpace, InvalidValue> {
    let parsed = space.parse()?;
    let mut n_points = parsed.samples;
    for (key, dist) in &parsed.keys {
        check_dist(key, dist)?;
        let n_axis = match dist {
            Dist::Grid { values } => values.len(),
            Dist::Range { n, .. } | Dist::AroundBest { n, .. } | Dist::AroundBestLog { n, .. } => {
                *n
            }
            _ => 1,
        };
        n_points = n_points.saturating_mul(n_axis);
        for value in extremes(dist) {
            if key == LAMBDA {
                let ok = value
                    .as_float()
                    .or(value.as_integer().map(|i| i as f64))
                    .is_some_and(|l| l.is_finite() && l >= 0.0);
                if !ok {
                    return Err(invalid(
                        key,
                        format!("{value} must be a finite number >= 0"),
                    ));
                }
            } else {
                apply(template, &[(key.clone(), value)])?;
            }
        }
        if key != LAMBDA && matches!(dist, Dist::LogUniform { .. } | Dist::Uniform { .. }) {
            // A float distribution on an integer setting: refused even when
            // its ends happen to be integral.
            let mut table = as_table(template);
            if leaf_mut(&mut table, key).is_some_and(|v| v.is_integer()) {
                return Err(invalid(
                    key,
                    "this setting is an integer: use kind = \"int\" (or a grid of integers)",
                ));
            }
        }
    }
    if n_points > MAX_POINTS {
        return Err(invalid(
            SAMPLES,
            format!("the space has {n_points} points, at most {MAX_POINTS}"),
        ));
    }
    Ok(parsed)
}

/// A value as a number, for axes that compute (log spacing, ranges).
fn as_f64(value: &toml::Value) -> Option<f64> {
    value.as_float().or(value.as_integer().map(|i| i as f64))
}

/// Round away binary noise (`13 * 0.0005 = 0.006500000000000001`) to 12 significant digits.
pub fn tidy(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// `n` values evenly spaced in log space from `centre / factor` to
/// `centre * factor` (12 significant digits; the middle one is `centre`
/// when `n` is odd).
pub fn around_log(centre: f64, n: usize, factor: f64) -> Vec<f64> {
    let (lo, hi) = ((centre / factor).log10(), (centre * factor).log10());
    (0..n)
        .map(|j| {
            if n % 2 == 1 && j == n / 2 {
                return centre;
            }
            tidy(10f64.powf(lo + (hi - lo) * j as f64 / (n as f64 - 1.0)))
        })
        .collect()
}

/// `n` multiples of `step`, `step` apart, whose middle is as close as
/// possible to `centre`, all positive.
pub fn around(centre: f64, n: usize, step: f64) -> Vec<f64> {
    let first = (centre / step - (n as f64 - 1.0) / 2.0).round().max(1.0);
    (0..n).map(|j| tidy((first + j as f64) * step)).collect()
}

/// How an axis that reads an earlier search finds its best point:
/// [`crate::search::best_point`] in the results folder.
pub type BestOf<'a> = &'a dyn Fn(&str) -> Result<Point>;

/// The value of `key` in the best point of the finished search `search`.
fn best_value(
    results_dir: &Path,
    best_of: BestOf<'_>,
    search: &str,
    key: &str,
) -> Result<toml::Value> {
    let best = best_of(search)?;
    if key == LAMBDA {
        return Ok(toml::Value::Float(best.lambda));
    }
    best.settings
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .ok_or_else(|| ExperimentError::Format {
            path: results_dir.join(search),
            message: format!(
                "the search `{search}` did not vary `{key}`: its best point has no value for it \
                 (give the values in this config instead)"
            ),
        })
}

/// The values of a grid axis.
fn axis_values(
    key: &str,
    dist: &Dist,
    results_dir: &Path,
    best_of: BestOf<'_>,
) -> Result<Option<Vec<toml::Value>>> {
    let floats = |v: Vec<f64>| Some(v.into_iter().map(toml::Value::Float).collect());
    let number = |search: &str| -> Result<f64> {
        let value = best_value(results_dir, best_of, search, key)?;
        as_f64(&value).ok_or_else(|| ExperimentError::Format {
            path: results_dir.join(search),
            message: format!("the best `{key}` of `{search}` is {value}, not a number"),
        })
    };
    Ok(match dist {
        Dist::Grid { values } => Some(values.clone()),
        Dist::Range { start, step, n } => {
            floats((0..*n).map(|i| tidy(start + i as f64 * step)).collect())
        }
        Dist::AroundBest { search, n, step } => floats(around(number(search)?, *n, *step)),
        Dist::AroundBestLog { search, n, factor } => {
            floats(around_log(number(search)?, *n, *factor))
        }
        Dist::BestOf { search } => Some(vec![best_value(results_dir, best_of, search, key)?]),
        _ => None,
    })
}

/// Draw one value of a random distribution.
fn draw(dist: &Dist, rng: &mut ChaCha8Rng) -> toml::Value {
    match dist {
        Dist::LogUniform { min, max } => {
            toml::Value::Float(10f64.powf(rng.random_range(min.log10()..max.log10())))
        }
        Dist::Uniform { min, max } => toml::Value::Float(rng.random_range(*min..*max)),
        Dist::Int { min, max } => toml::Value::Integer(rng.random_range(*min..=*max)),
        Dist::Choice { values } => values[rng.random_range(0..values.len())].clone(),
        _ => unreachable!("only random distributions are drawn"),
    }
}

/// Every point of `space`: the grid axes' product (keys in sorted order, the
/// last fastest), each combination with `samples` random draws (ChaCha8 from
/// `seed`, keys in sorted order). Axes that read an earlier search ask
/// `best_of` for its best point (`<results_dir>/<search>/table.csv`).
pub fn draw_points(
    space: &ParsedSpace,
    seed: u64,
    results_dir: &Path,
    best_of: BestOf<'_>,
) -> Result<Vec<Point>> {
    let mut axes: Vec<(&String, Vec<toml::Value>)> = Vec::new();
    let mut random: Vec<(&String, &Dist)> = Vec::new();
    for (key, dist) in &space.keys {
        match axis_values(key, dist, results_dir, best_of)? {
            Some(values) => axes.push((key, values)),
            None => random.push((key, dist)),
        }
    }
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (key, values) in &axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push(((*key).clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut points = Vec::with_capacity(combos.len() * space.samples);
    for combo in &combos {
        for _ in 0..space.samples {
            let mut all: BTreeMap<String, toml::Value> = combo.iter().cloned().collect();
            for (key, dist) in &random {
                all.insert((*key).clone(), draw(dist, &mut rng));
            }
            let lambda = all.remove(LAMBDA).as_ref().and_then(as_f64).unwrap_or(0.0);
            points.push(Point {
                lambda,
                settings: all.into_iter().collect(),
            });
        }
    }
    Ok(points)
}

/// `key=value;key=value` (TOML values), the form of the `settings` column
/// of `plan.csv` and `table.csv`; empty for none.
pub fn settings_string(settings: &[(String, toml::Value)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Read back a [`settings_string`]; an error message naming the bad part.
pub fn parse_settings(text: &str) -> Result<Vec<(String, toml::Value)>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(';')
        .map(|part| {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not key=value"))?;
            let table: toml::Table = format!("v = {value}")
                .parse()
                .map_err(|e| format!("`{part}`: {e}"))?;
            Ok((key.to_string(), table["v"].clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
