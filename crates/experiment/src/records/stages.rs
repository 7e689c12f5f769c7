//! The stages of `cargo xtask reproduce` ([`STAGES`], the one list that both
//! `reproduce` runs and the report walks, section by section), and the files
//! written beside their folders: `stage-times.csv` ([`StageTime`]) and the
//! report, `REPORT.md`.

use serde::{Deserialize, Serialize};

/// File name of the report inside the results folder.
pub const REPORT: &str = "REPORT.md";
/// File name of the stage times inside the results folder.
pub const STAGE_TIMES: &str = "stage-times.csv";

/// What a stage does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Check the data (fetch it when there is none at all).
    Data,
    /// Analytic gradients against finite differences.
    Gradcheck,
    /// Overfit a few images.
    Sanity,
    /// One training run from `experiments/<name>.toml`.
    Train,
    /// A search from `experiments/<name>.toml`.
    Search,
    /// The learning-rate range test on `experiments/<config>.toml`.
    LrRangeTest {
        /// The run config whose setting is tested.
        config: &'static str,
    },
}

/// One stage: its name (also its results folder and, for training stages,
/// its config `experiments/<name>.toml`) and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Stage name, as in `stage-times.csv`.
    pub name: &'static str,
    /// What it does.
    pub work: Work,
}

impl Stage {
    /// Whether its time counts as "training" (clr-1cycle .. final-train):
    /// the stages that train from an experiment config.
    pub fn is_training(&self) -> bool {
        matches!(self.work, Work::Train | Work::Search)
    }
}

/// Every stage, in the order `reproduce` runs them and the report shows them.
pub const STAGES: [Stage; 9] = [
    Stage {
        name: "data",
        work: Work::Data,
    },
    Stage {
        name: "gradcheck",
        work: Work::Gradcheck,
    },
    Stage {
        name: "sanity",
        work: Work::Sanity,
    },
    Stage {
        name: "clr-1cycle",
        work: Work::Train,
    },
    Stage {
        name: "clr-3cycles",
        work: Work::Train,
    },
    Stage {
        name: "coarse-search",
        work: Work::Search,
    },
    Stage {
        name: "fine-search",
        work: Work::Search,
    },
    Stage {
        name: "final-train",
        work: Work::Search,
    },
    // Smith's range test on the report's setting: does it land near the
    // report's eta_min / eta_max?
    Stage {
        name: "lr-range-test",
        work: Work::LrRangeTest {
            config: "clr-1cycle",
        },
    },
];

/// The names of the training stages (see [`Stage::is_training`]), in order.
pub fn training_stages() -> impl Iterator<Item = &'static str> {
    STAGES.iter().filter(|s| s.is_training()).map(|s| s.name)
}

/// One row of `stage-times.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// Stage name (`data`, `gradcheck`, `sanity`, `clr-1cycle`, ...).
    pub stage: String,
    /// Wall seconds.
    pub seconds: f64,
    /// `ok`, or `failed: <message>`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_stages_are_the_five_of_the_report_in_order() {
        let names: Vec<&str> = training_stages().collect();
        assert_eq!(
            names,
            [
                "clr-1cycle",
                "clr-3cycles",
                "coarse-search",
                "fine-search",
                "final-train"
            ]
        );
        let mut all: Vec<&str> = STAGES.iter().map(|s| s.name).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), STAGES.len(), "stage names are unique");
    }
}
