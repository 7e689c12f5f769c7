//! Thread pools whose workers keep one core each.
//!
//! Why: after a pause (a pool asleep between products, a benchmark's
//! sample gap) Linux may wake both workers of a 2-thread pool on the same
//! core and leave them there for milliseconds, until its load balancer
//! moves one. A product split in two halves then takes as long as on one
//! thread. On a 2-core Zen 5 VM, a 100x3072x1024 product run after 10 ms of
//! sleep reached a median of 168 GFLOP/s on 2 threads (one core's worth of
//! CPU time) and 300 with its workers pinned. Pinning changes no result:
//! which thread computes a block never changes the arithmetic.
//!
//! Workers are pinned only when the pool has one thread per CPU the process
//! may use (its affinity mask: all cores on a laptop, the job's cores under
//! Slurm), so two processes each using a few threads of a larger machine are
//! never forced onto the same cores. `CIFAR_CLR_PIN_THREADS=0` turns it off.

/// Environment variable that turns pinning off when set to `0`.
pub const PIN_ENV: &str = "CIFAR_CLR_PIN_THREADS";

/// A rayon pool builder for `n_threads` workers (at least one), each pinned
/// to its own CPU of the process's affinity mask when the pool uses all of
/// them (see the module docs). Call `.build()` or `.build_global()` on it.
pub fn pool_builder(n_threads: usize) -> rayon::ThreadPoolBuilder {
    let n_threads = n_threads.max(1);
    let builder = rayon::ThreadPoolBuilder::new().num_threads(n_threads);
    match pinning_cores(n_threads) {
        Some(cores) => builder.start_handler(move |i| {
            // A failed pin leaves the worker unpinned: slower at worst.
            core_affinity::set_for_current(cores[i % cores.len()]);
        }),
        None => builder,
    }
}

/// The cores to pin `n_threads` workers to, or `None` to leave them free.
fn pinning_cores(n_threads: usize) -> Option<Vec<core_affinity::CoreId>> {
    if std::env::var(PIN_ENV).is_ok_and(|v| v.trim() == "0") || n_threads < 2 {
        return None;
    }
    let cores = core_affinity::get_core_ids()?;
    (cores.len() == n_threads).then_some(cores)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_pool_using_every_allowed_cpu_puts_each_worker_on_its_own() {
        let Some(cores) = core_affinity::get_core_ids() else {
            return;
        };
        if cores.len() < 2 || std::env::var(PIN_ENV).is_ok() {
            return;
        }
        let n = cores.len();
        let pool = pool_builder(n).build().unwrap();
        // Each worker's own affinity mask: one CPU, a different one each.
        let masks: Vec<Vec<usize>> = pool.broadcast(|_| {
            let mine = core_affinity::get_core_ids().expect("worker's mask");
            mine.iter().map(|c| c.id).collect()
        });
        let mut cpus: Vec<usize> = masks.iter().flatten().copied().collect();
        assert_eq!(cpus.len(), n, "each worker has one CPU: {masks:?}");
        cpus.sort_unstable();
        cpus.dedup();
        assert_eq!(cpus.len(), n, "workers share a CPU: {masks:?}");
    }

    #[test]
    fn a_pool_smaller_than_the_mask_is_not_pinned() {
        let Some(cores) = core_affinity::get_core_ids() else {
            return;
        };
        assert!(pinning_cores(1).is_none());
        assert!(pinning_cores(cores.len() + 1).is_none());
        // And its workers keep the whole mask.
        let pool = pool_builder(cores.len() + 1).build().unwrap();
        let sizes = pool.broadcast(|_| core_affinity::get_core_ids().map(|c| c.len()));
        assert!(sizes.iter().all(|&s| s == Some(cores.len())), "{sizes:?}");
    }
}
