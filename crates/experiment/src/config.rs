//! The TOML files of `experiments/` as typed structs: unknown keys are
//! rejected by serde (`deny_unknown_fields`), bad values by `validate()`, and
//! every error names the file and the key. No value has a hidden default: the
//! shipped files write every one out.
//!
//! Two shapes cover every experiment:
//! - [`RunConfig`]: one training (`cargo xtask train CONFIG.toml`), reusing
//!   [`mlp::train::TrainConfig`] and [`cifar::SplitSpec`] as they are;
//! - [`SearchConfig`]: a set of trials that differ only in lambda and seed
//!   (coarse search, fine search, final training over seeds).

use std::path::{Path, PathBuf};

use cifar::SplitSpec;
use mlp::schedule::ScheduleSpec;
use mlp::train::{TrainConfig, TrainSettings};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::prune::Pruning;
use crate::space::Space;

/// A config that could not be used; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, a missing key or a value of the wrong type
    /// (the message, from the TOML parser, names the key and the line).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key holds a value outside its allowed range.
    #[error("config {path}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key, e.g. `train.schedule.eta_max`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

pub use crate::invalid::InvalidValue;

impl InvalidValue {
    /// Attach the file the value came from.
    pub fn in_file(self, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            key: self.key,
            message: self.message,
        }
    }
}

/// Configs that can check their own values.
pub trait Validate {
    /// Check every value; the error names the first bad key.
    fn validate(&self) -> Result<(), InvalidValue>;
}

/// Where a run's results came from; written by the run into its `config.toml`
/// (and the weights' metadata), ignored when the file is read back as input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `git rev-parse HEAD` of the checkout (with `+dirty` when it had
    /// uncommitted changes), or `unknown`.
    pub git_revision: String,
    /// SHA-256 over the six batch files, in order (see [`crate::data`]).
    pub data_fingerprint: String,
    /// The data directory the run read.
    pub data_dir: String,
    /// The search this run belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// The trial number within that search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<usize>,
}

/// One training run: `experiments/clr-1cycle.toml`, `experiments/clr-3cycles.toml`,
/// and the resolved `config.toml` every run writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the run; results go to `<results-dir>/<name>/`.
    pub name: String,
    /// Whether to evaluate the test split at the end (searches leave the test set alone).
    pub evaluate_test: bool,
    /// Training, validation and test data.
    pub data: SplitSpec,
    /// Network size, lambda, batch size, schedule, recording and seed.
    pub train: TrainConfig,
    /// Filled in by the run (git revision, data checksum); not an input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// The training settings every trial of a search shares: mlp's
/// [`TrainSettings`] itself (everything but lambda and seed, which the plan
/// supplies), so no field is copied by hand; [`TrainSettings::with`] makes a
/// trial's [`TrainConfig`].
pub type TrainTemplate = TrainSettings;

/// Which lambdas a search tries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LambdaGrid {
    /// `n` values `10^x`, `x ~ Uniform(log10_min, log10_max)`, drawn from the search seed.
    LogUniform {
        /// Number of lambdas.
        n: usize,
        /// Lower end of the exponent.
        log10_min: f64,
        /// Upper end of the exponent.
        log10_max: f64,
    },
    /// Exactly these values.
    List {
        /// The lambdas.
        values: Vec<f64>,
    },
    /// `start, start + step, ..., start + (n - 1) * step`.
    Range {
        /// First lambda.
        start: f64,
        /// Spacing.
        step: f64,
        /// Number of lambdas.
        n: usize,
    },
    /// `n` values spaced `step` apart, on multiples of `step`, centred as
    /// closely as possible on the best lambda of the search `search`
    /// (read from `<results-dir>/<search>/table.csv`).
    AroundBest {
        /// Name of the earlier search.
        search: String,
        /// Number of lambdas.
        n: usize,
        /// Spacing.
        step: f64,
    },
    /// The single best lambda of the search `search`.
    BestOf {
        /// Name of the earlier search.
        search: String,
    },
}

/// A set of trials differing in the settings of a space (lambda and any
/// training setting) and in seed: `experiments/coarse-search.toml`,
/// `fine-search.toml`, `final-train.toml`, `beyond-search.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Name of the search; results go to `<results-dir>/<name>/`.
    pub name: String,
    /// Seed of the plan: random lambdas and every trial's training seed are drawn from it.
    pub seed: u64,
    /// Trials (training seeds) per point of the space; every point uses the
    /// same seeds (paired comparison). Older files call it `seeds_per_lambda`.
    #[serde(alias = "seeds_per_lambda")]
    pub seeds_per_point: usize,
    /// Whether each trial evaluates the test split (the final training does;
    /// the searches choose on validation only).
    pub evaluate_test: bool,
    /// Training, validation and test data, shared by every trial.
    pub data: SplitSpec,
    /// Training settings shared by every trial.
    pub train: TrainTemplate,
    /// The lambdas to try (the older form of a space over lambda alone;
    /// give either this or `[space]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambdas: Option<LambdaGrid>,
    /// The settings to try, each with a distribution (see [`crate::space`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<Space>,
    /// Whether hopeless trials stop early (see [`crate::prune`]); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<Pruning>,
}

impl SearchConfig {
    /// The pruning rule (`none` when the file has no `[pruning]`).
    pub fn pruning(&self) -> Pruning {
        self.pruning.clone().unwrap_or(Pruning::None)
    }
}

/// Read, parse and validate the config at `path`.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parse and validate config text; `path` only names the source in errors.
pub fn parse<T: DeserializeOwned + Validate>(text: &str, path: &Path) -> Result<T, ConfigError> {
    let config: T = toml::from_str(text).map_err(|e| {
        let message = e.to_string().trim_end().to_string();
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: match key_of_bad_value(text, e.message(), table_at(text, e.span())) {
                Some(key) => format!("`{key}`: {}\n{message}", e.message()),
                None => message,
            },
        }
    })?;
    config.validate().map_err(|e| e.in_file(path))?;
    Ok(config)
}

/// The name of the table whose header (`[train]`, `[train.schedule]`) an
/// error's span covers, if it covers one.
fn table_at(text: &str, span: Option<std::ops::Range<usize>>) -> Option<&str> {
    let header = text.get(span?)?.trim();
    let name = header.strip_prefix('[')?.split(']').next()?;
    Some(name.trim_matches(|c: char| c == '[' || c.is_whitespace()))
}

/// The dotted key holding the value a serde error quotes (`integer `-5``,
/// `string "fifty"`, `boolean `true``, ...), when exactly one key holds it,
/// or exactly one inside `table` (the table the parser points at). A run's
/// `[train]` table is read through serde's `flatten`, which loses the key's
/// position: the parser then points at the table, and this names the key.
fn key_of_bad_value(text: &str, error: &str, table: Option<&str>) -> Option<String> {
    let parsed: toml::Table = text.parse().ok()?;
    let quoted = |open: &str, close: char| -> Option<String> {
        let start = error.find(open)? + open.len();
        let end = start + error[start..].find(close)?;
        Some(error[start..end].to_string())
    };
    let wanted: toml::Value = if let Some(v) = quoted("integer `", '`') {
        toml::Value::Integer(v.parse().ok()?)
    } else if let Some(v) = quoted("floating point `", '`') {
        toml::Value::Float(v.parse().ok()?)
    } else if let Some(v) = quoted("string \"", '"') {
        toml::Value::String(v)
    } else if let Some(v) = quoted("boolean `", '`') {
        toml::Value::Boolean(v.parse().ok()?)
    } else {
        return None;
    };
    let mut found = Vec::new();
    find_value(&parsed, "", &wanted, &mut found);
    if found.len() > 1 {
        if let Some(table) = table {
            let prefix = format!("{table}.");
            found.retain(|key| key.starts_with(&prefix));
        }
    }
    (found.len() == 1).then(|| found.remove(0))
}

/// Every dotted key under `table` whose value is `wanted`.
fn find_value(table: &toml::Table, prefix: &str, wanted: &toml::Value, found: &mut Vec<String>) {
    for (key, value) in table {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => find_value(inner, &dotted, wanted, found),
            v if v == wanted => found.push(dotted),
            _ => {}
        }
    }
}

/// Largest seed a TOML file can hold (TOML integers are signed 64-bit).
pub const MAX_SEED: u64 = i64::MAX as u64;

fn check(ok: bool, key: &str, message: impl FnOnce() -> String) -> Result<(), InvalidValue> {
    if ok {
        Ok(())
    } else {
        Err(InvalidValue::new(key, message()))
    }
}

/// A name usable as a directory: ASCII letters, digits, `-`, `_`, `.`, not starting with `.`.
fn check_name(name: &str, key: &str) -> Result<(), InvalidValue> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    check(ok, key, || {
        format!("{name:?} is not a usable directory name (use letters, digits, '-', '_', '.')")
    })
}

fn check_seed(seed: u64, key: &str) -> Result<(), InvalidValue> {
    check(seed <= MAX_SEED, key, || {
        format!("{seed} is too large (at most {MAX_SEED})")
    })
}

/// Number of training images a split gives.
pub fn n_train_images(spec: &SplitSpec) -> usize {
    match spec {
        SplitSpec::Batches { train, .. } => train.len() * cifar::RECORDS_PER_FILE,
        SplitSpec::HoldOut { n_validation, .. } => {
            (cifar::TRAIN_FILES.len() * cifar::RECORDS_PER_FILE).saturating_sub(*n_validation)
        }
    }
}

/// Check a data split (keys under `prefix`).
pub fn validate_split(spec: &SplitSpec, prefix: &str) -> Result<(), InvalidValue> {
    let n_files = cifar::TRAIN_FILES.len();
    let n_all = n_files * cifar::RECORDS_PER_FILE;
    match spec {
        SplitSpec::Batches { train, validation } => {
            for (key, list) in [("train", train), ("validation", validation)] {
                let key = format!("{prefix}.{key}");
                check(!list.is_empty(), &key, || {
                    "must list at least one batch number".into()
                })?;
                for &b in list {
                    check((1..=n_files).contains(&b), &key, || {
                        format!("batch number {b} is not in 1..={n_files}")
                    })?;
                }
            }
            let mut all: Vec<usize> = train.iter().chain(validation).copied().collect();
            all.sort_unstable();
            let n = all.len();
            all.dedup();
            check(all.len() == n, &format!("{prefix}.validation"), || {
                "a batch appears twice (in train and validation, or twice in one list)".into()
            })
        }
        SplitSpec::HoldOut { n_validation, seed } => {
            check(
                (1..n_all).contains(n_validation),
                &format!("{prefix}.n_validation"),
                || format!("{n_validation} is not in 1..{n_all}"),
            )?;
            check_seed(*seed, &format!("{prefix}.seed"))
        }
    }
}

/// Check a learning-rate schedule (keys under `prefix`) with the schedule's
/// own rules ([`ScheduleSpec::validate`]), naming the full key.
pub fn validate_schedule(spec: &ScheduleSpec, prefix: &str) -> Result<(), InvalidValue> {
    spec.validate()
        .map_err(|e| InvalidValue::new(format!("{prefix}.{}", e.field), e.message))
}

/// Check the training settings with mlp's own rules (one place), naming
/// the key under `train.`, then the one check that needs the data: a batch
/// no larger than the training split.
fn validate_settings(settings: &TrainSettings, n_train: usize) -> Result<(), InvalidValue> {
    settings
        .validate()
        .map_err(|e| InvalidValue::new(format!("train.{}", e.field), e.message))?;
    let batch_size = settings.batch_size;
    check(batch_size <= n_train, "train.batch_size", || {
        format!("{batch_size} is not in 1..={n_train} (the training images)")
    })
}

/// Upper bound of `seeds_per_lambda` and of the number of lambdas of a search.
pub const MAX_TRIALS_PER_AXIS: usize = 10_000;

fn check_lambda(lambda: f64, key: &str) -> Result<(), InvalidValue> {
    check(lambda.is_finite() && lambda >= 0.0, key, || {
        format!("{lambda} must be a finite number >= 0")
    })
}

impl Validate for RunConfig {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_name(&self.name, "name")?;
        validate_split(&self.data, "data")?;
        self.train
            .validate()
            .map_err(|e| InvalidValue::new(format!("train.{}", e.field), e.message))?;
        validate_settings(&self.train.settings, n_train_images(&self.data))
    }
}

impl Validate for LambdaGrid {
    fn validate(&self) -> Result<(), InvalidValue> {
        let at_least_one = |n: usize| {
            check((1..=MAX_TRIALS_PER_AXIS).contains(&n), "lambdas.n", || {
                format!("{n} is not in 1..={MAX_TRIALS_PER_AXIS}")
            })
        };
        let positive_step = |step: f64| {
            check(step.is_finite() && step > 0.0, "lambdas.step", || {
                format!("{step} must be a positive finite number")
            })
        };
        match self {
            LambdaGrid::LogUniform {
                n,
                log10_min,
                log10_max,
            } => {
                at_least_one(*n)?;
                check(log10_min.is_finite(), "lambdas.log10_min", || {
                    "must be finite".into()
                })?;
                check(
                    log10_max.is_finite() && log10_max > log10_min,
                    "lambdas.log10_max",
                    || format!("{log10_max} must be finite and above log10_min {log10_min}"),
                )
            }
            LambdaGrid::List { values } => {
                check(!values.is_empty(), "lambdas.values", || {
                    "must list at least one lambda".into()
                })?;
                check(
                    values.len() <= MAX_TRIALS_PER_AXIS,
                    "lambdas.values",
                    || {
                        format!(
                            "lists {} lambdas, at most {MAX_TRIALS_PER_AXIS}",
                            values.len()
                        )
                    },
                )?;
                values
                    .iter()
                    .try_for_each(|&v| check_lambda(v, "lambdas.values"))
            }
            LambdaGrid::Range { start, step, n } => {
                at_least_one(*n)?;
                check_lambda(*start, "lambdas.start")?;
                positive_step(*step)
            }
            LambdaGrid::AroundBest { search, n, step } => {
                check_name(search, "lambdas.search")?;
                at_least_one(*n)?;
                positive_step(*step)
            }
            LambdaGrid::BestOf { search } => check_name(search, "lambdas.search"),
        }
    }
}

impl Validate for SearchConfig {
    fn validate(&self) -> Result<(), InvalidValue> {
        check_name(&self.name, "name")?;
        check_seed(self.seed, "seed")?;
        check(
            (1..=MAX_TRIALS_PER_AXIS).contains(&self.seeds_per_point),
            "seeds_per_point",
            || {
                format!(
                    "{} is not in 1..={MAX_TRIALS_PER_AXIS}",
                    self.seeds_per_point
                )
            },
        )?;
        validate_split(&self.data, "data")?;
        validate_settings(&self.train, n_train_images(&self.data))?;
        if let Some(pruning) = &self.pruning {
            pruning.validate()?;
        }
        match (&self.lambdas, &self.space) {
            (Some(grid), None) => grid.validate(),
            (None, Some(space)) => crate::space::validate(space, &self.train).map(|_| ()),
            (Some(_), Some(_)) => Err(InvalidValue::new(
                "space",
                "give either [space] or the older [lambdas], not both",
            )),
            (None, None) => Err(InvalidValue::new(
                "space",
                "missing: a search needs a [space] (the settings to try; see README) or the \
                 older [lambdas]",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiments_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
    }

    /// Every shipped file parses and validates, as whichever type its content is.
    #[test]
    fn every_shipped_experiment_parses_and_validates() {
        let mut n_files = 0;
        for entry in std::fs::read_dir(experiments_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            n_files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let as_run = parse::<RunConfig>(&text, &path);
            let as_search = parse::<SearchConfig>(&text, &path);
            assert!(
                as_run.is_ok() || as_search.is_ok(),
                "{}: {:?} / {:?}",
                path.display(),
                as_run.err(),
                as_search.err()
            );
            // The name inside matches the file name, so results land where users look.
            let name = as_run
                .map(|c| c.name)
                .or_else(|_| as_search.map(|c| c.name))
                .unwrap();
            assert_eq!(
                Some(name.as_str()),
                path.file_stem().and_then(|s| s.to_str())
            );
        }
        assert_eq!(n_files, 8, "expected the eight shipped experiments");
    }

    fn clr_1cycle_text() -> String {
        std::fs::read_to_string(experiments_dir().join("clr-1cycle.toml")).unwrap()
    }

    fn coarse_text() -> String {
        std::fs::read_to_string(experiments_dir().join("coarse-search.toml")).unwrap()
    }

    #[test]
    fn shipped_clr_1cycle_says_what_spec_says() {
        let c: RunConfig = parse(&clr_1cycle_text(), Path::new("x.toml")).unwrap();
        assert_eq!(
            c.data,
            SplitSpec::Batches {
                train: vec![1],
                validation: vec![2]
            }
        );
        assert_eq!(c.train.settings.batch_size, 100);
        assert_eq!(c.train.lambda, 0.01);
        assert_eq!(
            c.train.settings.schedule,
            ScheduleSpec::Triangular {
                eta_min: 1e-5,
                eta_max: 1e-1,
                n_s: 500,
                n_cycles: 1
            }
        );
    }

    #[test]
    fn unknown_key_is_rejected_naming_the_key() {
        let text =
            clr_1cycle_text().replace("batch_size = 100", "batch_size = 100\nbatch_sise = 3");
        let err = parse::<RunConfig>(&text, Path::new("exp.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("batch_sise") && err.contains("exp.toml"),
            "{err}"
        );

        let text = coarse_text().replace("[space.lambda]", "[space.lambda]\nscale = 2.0");
        let err = parse::<SearchConfig>(&text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scale") && err.contains("`space.lambda`"),
            "{err}"
        );
        // A key that is no training setting.
        let text = coarse_text().replace(
            "[pruning]",
            "[space.schedule.eta_mx]\nkind = \"uniform\"\nmin = 0.01\nmax = 0.1\n\n[pruning]",
        );
        let err = parse::<SearchConfig>(&text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`space.schedule.eta_mx`") && err.contains("c.toml"),
            "{err}"
        );
        // An unknown pruning rule.
        let text = coarse_text().replace("kind = \"none\"", "kind = \"hyperband\"");
        let err = parse::<SearchConfig>(&text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hyperband"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected_naming_the_key() {
        let cases = [
            ("eta_max = 0.1", "eta_max = 1e-6", "train.schedule.eta_max"),
            ("lambda = 0.01", "lambda = -0.01", "train.lambda"),
            ("batch_size = 100", "batch_size = 0", "train.batch_size"),
            ("n_s = 500", "n_s = 0", "train.schedule.n_s"),
            ("validation = [2]", "validation = [1]", "data.validation"),
            ("validation = [2]", "validation = [6]", "data.validation"),
            ("name = \"clr-1cycle\"", "name = \"../x\"", "name"),
        ];
        for (from, to, key) in cases {
            let text = clr_1cycle_text();
            assert!(text.contains(from), "{from}");
            let err =
                parse::<RunConfig>(&text.replace(from, to), Path::new("exp.toml")).unwrap_err();
            match err {
                ConfigError::Invalid { key: k, .. } => assert_eq!(k, key, "{to}"),
                other => panic!("{to}: expected an invalid value, got {other}"),
            }
        }
        let text = coarse_text().replace("max = 1e-1", "max = 1e-6");
        let err = parse::<SearchConfig>(&text, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("`space.lambda`"), "{err}");
        // The older `[lambdas]` form still parses, and its errors name its keys.
        let old_form = coarse_text().replace(
            "[space]\n# 8 random lambdas (the report drew 10; 8 x 3 seeds keeps reproduce short).\nsamples = 8\n\n[space.lambda]\nkind = \"log_uniform\"\nmin = 1e-5\nmax = 1e-1",
            "[lambdas]\nkind = \"log_uniform\"\nn = 10\nlog10_min = -5.0\nlog10_max = -1.0",
        );
        assert!(old_form.contains("[lambdas]"));
        parse::<SearchConfig>(&old_form, Path::new("c.toml")).unwrap();
        let text = old_form.replace("log10_max = -1.0", "log10_max = -6.0");
        let err = parse::<SearchConfig>(&text, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("`lambdas.log10_max`"), "{err}");
        // Both forms at once are refused.
        let text = format!("{old_form}\n[space]\nsamples = 1\n");
        let err = parse::<SearchConfig>(&text, Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("`space`"), "{err}");
    }

    #[test]
    fn wrong_type_is_a_parse_error_naming_the_key() {
        let text = coarse_text().replace("n_hidden = 50", "n_hidden = \"fifty\"");
        let err = parse::<SearchConfig>(&text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("n_hidden"), "{err}");
        // A run's `[train]` table holds lambda and seed beside the shared
        // settings (serde's flatten), which costs the parser the key's
        // position: the message points at the table and quotes the value.
        let text = clr_1cycle_text().replace("n_hidden = 50", "n_hidden = \"fifty\"");
        let err = parse::<RunConfig>(&text, Path::new("exp.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[train]") && err.contains("fifty"), "{err}");
        assert!(err.contains("`train.n_hidden`"), "{err}");
        // A negative count is named too (issue 13: `n_s = -5`).
        let text = clr_1cycle_text().replace("n_s = 500", "n_s = -5");
        let err = parse::<RunConfig>(&text, Path::new("exp.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`train.schedule.n_s`") && err.contains("-5"),
            "{err}"
        );
        // A value other keys also hold (`evaluate_test = true` beside a
        // boolean where a count belongs) is named by the table the parser
        // points at.
        assert!(clr_1cycle_text().contains("evaluate_test = true"));
        for (old, new, key) in [
            ("n_hidden = 50", "n_hidden = true", "`train.n_hidden`"),
            (
                "curve_train_rows = \"all\"",
                "curve_train_rows = true",
                "`train.curve_train_rows`",
            ),
        ] {
            assert!(clr_1cycle_text().contains(old), "{old}");
            let text = clr_1cycle_text().replace(old, new);
            let err = parse::<RunConfig>(&text, Path::new("exp.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    /// Every shipped `[train]` writes `curve_train_rows` out, and the configs
    /// `reproduce` runs keep "all" (their curves stay as they were).
    #[test]
    fn shipped_configs_state_curve_train_rows_and_reproduce_keeps_all() {
        use crate::records::stages::{Work, STAGES};
        use mlp::train::CurveTrainRows;
        let dir = experiments_dir();
        let mut paths: Vec<PathBuf> = Vec::new();
        for sub in [dir.clone(), dir.join("ablation")] {
            for entry in std::fs::read_dir(sub).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().and_then(|e| e.to_str()) == Some("toml") {
                    paths.push(path);
                }
            }
        }
        let mut n_train = 0;
        for path in &paths {
            let text = std::fs::read_to_string(path).unwrap();
            if !text.contains("\n[train]\n") {
                continue;
            }
            n_train += 1;
            let stated = text
                .lines()
                .filter(|l| l.starts_with("curve_train_rows = "))
                .count();
            assert_eq!(stated, 1, "{}", path.display());
        }
        assert_eq!(n_train, 13, "the eight experiments and five ablation steps");
        let rows_of = |name: &str| -> CurveTrainRows {
            let path = dir.join(format!("{name}.toml"));
            let text = std::fs::read_to_string(&path).unwrap();
            match parse::<RunConfig>(&text, &path) {
                Ok(run) => run.train.settings.curve_train_rows,
                Err(_) => {
                    parse::<SearchConfig>(&text, &path)
                        .unwrap()
                        .train
                        .curve_train_rows
                }
            }
        };
        let mut n_stages = 0;
        for stage in STAGES {
            let name = match stage.work {
                Work::Train | Work::Search => stage.name,
                Work::LrRangeTest { config } => config,
                _ => continue,
            };
            n_stages += 1;
            assert_eq!(rows_of(name), CurveTrainRows::All, "{name}");
        }
        assert_eq!(n_stages, 6);
        for name in ["beyond", "beyond-search"] {
            assert_eq!(rows_of(name), CurveTrainRows::First(5000), "{name}");
        }
    }

    #[test]
    fn bad_curve_train_rows_are_refused_naming_the_key() {
        let run = clr_1cycle_text();
        let search = coarse_text();
        for text in [&run, &search] {
            assert!(text.contains("curve_train_rows = \"all\""));
        }
        let with = |text: &str, value: &str| {
            text.replace(
                "curve_train_rows = \"all\"",
                &format!("curve_train_rows = {value}"),
            )
        };
        // Accepted: a positive count.
        let c: RunConfig = parse(&with(&run, "5000"), Path::new("r.toml")).unwrap();
        assert_eq!(
            c.train.settings.curve_train_rows,
            mlp::train::CurveTrainRows::First(5000)
        );
        let c: SearchConfig = parse(&with(&search, "1"), Path::new("s.toml")).unwrap();
        assert_eq!(
            c.train.curve_train_rows,
            mlp::train::CurveTrainRows::First(1)
        );
        // 0: a value out of range, named.
        for err in [
            parse::<RunConfig>(&with(&run, "0"), Path::new("r.toml")).unwrap_err(),
            parse::<SearchConfig>(&with(&search, "0"), Path::new("s.toml")).unwrap_err(),
        ] {
            match &err {
                ConfigError::Invalid { key, message, .. } => {
                    assert_eq!(key, "train.curve_train_rows");
                    assert!(message.contains("\"all\""), "{message}");
                }
                other => panic!("expected an invalid value, got {other}"),
            }
        }
        // Negative, another word, a float, a boolean: parse errors that name
        // the key and say what is allowed.
        for value in ["-5", "\"some\"", "1.5", "true"] {
            for (text, file) in [(&run, "r.toml"), (&search, "s.toml")] {
                let err = match file {
                    "r.toml" => parse::<RunConfig>(&with(text, value), Path::new(file))
                        .unwrap_err()
                        .to_string(),
                    _ => parse::<SearchConfig>(&with(text, value), Path::new(file))
                        .unwrap_err()
                        .to_string(),
                };
                assert!(
                    err.contains("curve_train_rows") && err.contains(file),
                    "{value}: {err}"
                );
                assert!(
                    err.contains("\"all\" or a positive number of training rows"),
                    "{value}: {err}"
                );
            }
        }
        // Absent (files written before the key existed): "all".
        let old = run.replace("curve_train_rows = \"all\"\n", "");
        let c: RunConfig = parse(&old, Path::new("old.toml")).unwrap();
        assert_eq!(
            c.train.settings.curve_train_rows,
            mlp::train::CurveTrainRows::All
        );
    }

    #[test]
    fn resolved_config_round_trips_through_toml() {
        let mut c: RunConfig = parse(&clr_1cycle_text(), Path::new("x.toml")).unwrap();
        c.provenance = Some(Provenance {
            git_revision: "abc".into(),
            data_fingerprint: "f00".into(),
            data_dir: "/data".into(),
            search: Some("coarse-search".into()),
            trial: Some(3),
        });
        let text = toml::to_string_pretty(&c).unwrap();
        let back: RunConfig = parse(&text, Path::new("y.toml")).unwrap();
        assert_eq!(back, c);
    }
}
