//! "## Signal or seed noise?": whether each search's best lambda beats the
//! others by more than the spread between training seeds.

use std::fmt::Write as _;

use super::Results;
use crate::records::run::RunState;
use crate::records::search::TableRow;
use crate::stats;

/// A table's finished rows with a validation accuracy, best first.
fn ranked(rows: &[TableRow]) -> Vec<(f64, f64, u64)> {
    let mut done: Vec<(f64, f64, u64)> = rows
        .iter()
        .filter(|r| r.state == RunState::Done)
        .filter_map(|r| r.validation_accuracy.map(|a| (r.lambda, a, r.seed)))
        .collect();
    done.sort_by(|a, b| b.1.total_cmp(&a.1));
    done
}

/// "## Signal or seed noise?": whether each search's best lambda beats the
/// runner-up and its neighbours (next lower and higher lambda) by more than
/// the spread between training seeds. With several seeds per lambda, a paired
/// t-test over the shared seeds; with one, the margin against the seed noise
/// measured by final-train (several seeds at one lambda): two single runs
/// differ by `s * sqrt(2)` on average, and a margin under twice that is noise.
pub(super) fn section(out: &mut String, results: &Results) {
    let _ = writeln!(out, "## Signal or seed noise?\n");
    let final_val: Vec<f64> = results
        .table("final-train")
        .into_iter()
        .flatten()
        .filter(|r| r.state == RunState::Done)
        .filter_map(|r| r.validation_accuracy)
        .collect();
    let (_, seed_std) = stats::mean_std(&final_val);
    match seed_std {
        Some(s) => {
            let _ = writeln!(
                out,
                "Seed noise: final-train's {} seeds at one lambda have a validation accuracy \
                 std of {s:.4} (on its 1000 validation images; on the searches' 5000 the spread \
                 is somewhat smaller, so this is a generous yardstick). A difference between \
                 two single runs has a std of {:.4}; below twice that it is not signal.\n",
                final_val.len(),
                s * std::f64::consts::SQRT_2
            );
        }
        None => {
            let _ = writeln!(
                out,
                "(no final-train with 2 or more seeds: no noise estimate)\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "The best lambda of a search is the one with the highest mean validation accuracy \
         over its seeds. With 2 or more seeds per lambda (shared by every lambda) it is \
         compared with the runner-up and its neighbours by a two-sided paired t-test over \
         the shared seeds: beyond seed noise when p < 0.05; with one seed each, by the \
         margin against the seed noise above.\n"
    );
    let _ = writeln!(
        out,
        "| search | best lambda | compared with | its lambda | margin | test | verdict |\n|---|---|---|---|---|---|---|"
    );
    for name in ["coarse-search", "fine-search"] {
        let Some(rows) = results.table(name) else {
            continue;
        };
        for line in noise_rows(rows, seed_std) {
            let _ = writeln!(out, "| {name} | {line} |");
        }
    }
    out.push('\n');
    for name in ["coarse-search", "fine-search"] {
        let Some(rows) = results.table(name) else {
            continue;
        };
        let lines = noise_rows(rows, seed_std);
        let neighbours: Vec<&String> = lines.iter().filter(|l| l.contains("neighbour")).collect();
        if neighbours.is_empty() {
            continue;
        }
        let beyond = neighbours
            .iter()
            .filter(|l| l.ends_with("beyond seed noise"))
            .count();
        let _ = writeln!(
            out,
            "- {name}: the best lambda beats {beyond} of its {} neighbour(s) beyond seed \
             noise{}",
            neighbours.len(),
            if beyond == neighbours.len() {
                ": a real optimum at this resolution."
            } else {
                ": at this number of seeds its lead over them is seed noise (more seeds, or \
                 a wider spacing, would be needed to tell them apart)."
            }
        );
    }
    out.push('\n');
}

/// The comparison rows of one search (see [`section`]).
pub(super) fn noise_rows(rows: &[TableRow], seed_std: Option<f64>) -> Vec<String> {
    let done = ranked(rows);
    let Some(&(best_lambda, _, _)) = done.first() else {
        return vec!["- | - | - | - | - | no finished trial".to_string()];
    };
    let per_lambda = |lambda: f64| -> Vec<(u64, f64)> {
        let mut v: Vec<(u64, f64)> = done
            .iter()
            .filter(|r| r.0 == lambda)
            .map(|r| (r.2, r.1))
            .collect();
        v.sort_by_key(|r| r.0);
        v
    };
    let mut lambdas: Vec<f64> = done.iter().map(|r| r.0).collect();
    lambdas.sort_by(f64::total_cmp);
    lambdas.dedup();
    let mean = |l: f64| {
        let v = per_lambda(l);
        v.iter().map(|r| r.1).sum::<f64>() / v.len() as f64
    };
    // The best lambda by mean over its seeds, and who it is compared with.
    let best = lambdas
        .iter()
        .copied()
        .max_by(|a, b| mean(*a).total_cmp(&mean(*b)))
        .unwrap_or(best_lambda);
    let runner_up = lambdas
        .iter()
        .copied()
        .filter(|l| *l != best)
        .max_by(|a, b| mean(*a).total_cmp(&mean(*b)));
    let i = lambdas.iter().position(|l| *l == best).unwrap_or(0);
    let mut others: Vec<(&str, f64)> = Vec::new();
    if let Some(r) = runner_up {
        others.push(("runner-up", r));
    }
    if i > 0 {
        others.push(("lower neighbour", lambdas[i - 1]));
    }
    if i + 1 < lambdas.len() {
        others.push(("higher neighbour", lambdas[i + 1]));
    }
    others
        .into_iter()
        .map(|(what, other)| {
            let a = per_lambda(best);
            let b = per_lambda(other);
            let margin = mean(best) - mean(other);
            let shared: Vec<(f64, f64)> = a
                .iter()
                .filter_map(|(seed, x)| b.iter().find(|(s, _)| s == seed).map(|(_, y)| (*x, *y)))
                .collect();
            let (test, verdict) = if shared.len() >= 2 {
                let xs: Vec<f64> = shared.iter().map(|p| p.0).collect();
                let ys: Vec<f64> = shared.iter().map(|p| p.1).collect();
                match stats::paired_t_test(&xs, &ys) {
                    Some(t) => (
                        format!("paired t over {} seeds: p = {:.3}", shared.len(), t.p_value),
                        if t.significant(0.05) {
                            "beyond seed noise"
                        } else {
                            "within seed noise"
                        },
                    ),
                    None => ("paired t: no spread".to_string(), "-"),
                }
            } else {
                match seed_std {
                    Some(s) => {
                        let z = margin / (s * std::f64::consts::SQRT_2);
                        (
                            format!("one seed each: margin / (s sqrt 2) = {z:.2}"),
                            if z >= 2.0 {
                                "beyond seed noise"
                            } else {
                                "within seed noise"
                            },
                        )
                    }
                    None => ("one seed each, no noise estimate".to_string(), "-"),
                }
            };
            format!("{best:.6} | {what} | {other:.6} | {margin:+.4} | {test} | {verdict}")
        })
        .collect()
}
