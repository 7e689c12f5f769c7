//! Spinning partners: the other workers of a dedicated pool kept awake
//! through a run of training steps, so a split product's second half starts
//! at once instead of after a wake-up.
//!
//! Why: a rayon worker with nothing to do sleeps after about 10-20 µs, and
//! waking it costs 22-31 µs on a 2-core KVM guest (Zen 4; a join of two
//! 20 µs halves after 50-1000 µs of single-threaded work, against 1 µs when
//! the worker is still awake). A training step of the report's network
//! splits its products three times (W1ᵀ's packing, the forward product, the
//! weight gradient), with 20-200 µs of single-threaded work between them.
//!
//! [`with_spinning_partners`] keeps every other worker of the current pool
//! waiting on its own `Slot` while `f` runs: spinning for up to
//! `SPIN_LIMIT` after its last job (longer than those gaps), then asleep
//! until a job comes. The crate's splits call `join`, which hands the
//! second closure to an idle partner (waking it if asleep), or runs both
//! halves on the calling thread when none is free. [`join_with_partner`]
//! does the same for other work of the step (`mlp`'s mini-batch gather),
//! and outside a scope runs both halves here instead of calling rayon.
//!
//! Only for a pool that runs one training alone (inside
//! [`crate::with_small_products_split`]): the partners occupy their cores,
//! and rayon work started inside `f` (a parallel evaluation) would find no
//! free worker, so callers end the scope before such work. Results never
//! change: which thread runs a block of a product never changes its
//! arithmetic. [`SPIN_ENV`]`=0` turns partners off (plain rayon joins), for
//! a host whose cores are shared with other work.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a partner spins without a job before it sleeps: above the
/// longest single-threaded stretch of a step of the report's network
/// (100-200 µs); a longer pause puts the partner to sleep instead of
/// keeping its core busy.
const SPIN_LIMIT: Duration = Duration::from_micros(200);

/// How long a caller spins waiting for its partner's half before it
/// sleeps until woken. Halves usually end within a few µs of each other;
/// a partner that does not is likely off its CPU (a host that runs both
/// vCPUs on one core for a while), and a caller spinning on that CPU would
/// only delay it.
const WAIT_SPIN_LIMIT: Duration = Duration::from_micros(50);

/// Environment variable that turns spinning partners off when set to `0`.
pub const SPIN_ENV: &str = "CIFAR_CLR_SPIN_PARTNERS";

/// Whether [`SPIN_ENV`] leaves partners on (read once per process).
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| !std::env::var(SPIN_ENV).is_ok_and(|v| v.trim() == "0"))
}

/// The slot's partner has not started (or has left).
const OFFLINE: u8 = 0;
/// The partner spins, waiting for a job.
const IDLE: u8 = 1;
/// A caller has taken the slot and is writing its job.
const CLAIMED: u8 = 2;
/// The job is written: the partner may run it.
const READY: u8 = 3;
/// The partner has run the job (its panic, if any, is in the slot).
const DONE: u8 = 4;
/// The partner sleeps (it spun longer than [`SPIN_LIMIT`] without a job).
const PARKED: u8 = 5;

/// A job whose closure lives on the stack of the caller of [`join`].
struct ErasedJob {
    /// Points to the caller's `Option<F>`.
    data: *mut (),
    /// Takes the `F` out of `data` and calls it.
    run: unsafe fn(*mut ()),
    /// The caller, woken when the job is done (it may have gone to sleep).
    waiter: std::thread::Thread,
}

/// Calls the `F` in the `Option<F>` at `data`.
///
/// # Safety
/// `data` points to a live `Option<F>` holding a closure, which no other
/// thread touches until this returns.
unsafe fn run_erased<F: FnOnce()>(data: *mut ()) {
    // SAFETY: the caller guarantees `data` is a live, exclusive `Option<F>`.
    let f = unsafe { (*data.cast::<Option<F>>()).take() };
    f.expect("a job runs once")();
}

/// One partner's mailbox, alone in its cache lines: its partner polls
/// `state`, and a line shared with data another thread writes would bounce
/// between the cores at every write.
#[repr(align(128))]
struct Slot {
    /// `OFFLINE`, `IDLE`, `PARKED`, `CLAIMED`, `READY` or `DONE`.
    state: AtomicU8,
    /// Written by the claiming caller before `READY`, read by the partner after.
    job: UnsafeCell<Option<ErasedJob>>,
    /// The job's panic, handed back to the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// The partner's thread, to wake it when `PARKED`.
    thread: OnceLock<std::thread::Thread>,
}

// SAFETY: `job` is written only by the caller that moved the state from
// IDLE to CLAIMED, and read only by the partner after it saw READY (release
// / acquire), so no two threads access it at once; the erased closure is
// `Send` (see `join`).
unsafe impl Sync for Slot {}

/// The partners of one [`with_spinning_partners`] call; boxed and aligned
/// so that `stop`, which every partner polls, shares no cache line with the
/// owner's stack or other allocations.
#[repr(align(128))]
struct Partners {
    /// One per other worker of the pool.
    slots: Vec<Slot>,
    /// Hands each arriving partner its slot.
    next_slot: AtomicUsize,
    /// Set when `f` has returned: partners leave.
    stop: AtomicBool,
    /// The rayon index of the thread that runs `f` (never a partner).
    owner: usize,
}

thread_local! {
    /// The partners this thread's [`join`] may use (null outside a scope).
    /// Set only while its `Partners` lives (an `Activate` guard inside
    /// `with_spinning_partners` or a partner's loop), so a join that reads
    /// it non-null may use the `Partners` until it returns.
    static ACTIVE: Cell<*const Partners> = const { Cell::new(std::ptr::null()) };
}

/// Sets [`ACTIVE`] for its lifetime and restores it on drop (also in a panic).
struct Activate(*const Partners);

impl Activate {
    fn new(partners: &Partners) -> Self {
        Self(ACTIVE.with(|a| a.replace(partners)))
    }
}

impl Drop for Activate {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.0));
    }
}

/// Runs `f` with the other workers of the current rayon pool spinning as
/// partners for the crate's split products (see the module docs). Just
/// calls `f` outside a pool worker, in a 1-thread pool, outside
/// [`crate::with_small_products_split`], when [`SPIN_ENV`] is `0`, or
/// inside another such scope (whose partners then serve `f`).
pub fn with_spinning_partners<R>(f: impl FnOnce() -> R) -> R {
    let n_threads = rayon::current_num_threads();
    let Some(owner) = rayon::current_thread_index() else {
        return f();
    };
    if n_threads < 2 || partners_awake() || !crate::gemm::splits_small_products() || !enabled() {
        return f();
    }
    let partners = Box::new(Partners {
        slots: (1..n_threads)
            .map(|_| Slot {
                state: AtomicU8::new(OFFLINE),
                job: UnsafeCell::new(None),
                panic: Mutex::new(None),
                thread: OnceLock::new(),
            })
            .collect(),
        next_slot: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        owner,
    });
    /// Tells the partners to leave when `f` returns or panics.
    struct Stop<'a>(&'a Partners);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.stop.store(true, Ordering::Release);
            for slot in &self.0.slots {
                if let Some(thread) = slot.thread.get() {
                    thread.unpark();
                }
            }
        }
    }
    rayon::in_place_scope(|scope| {
        for _ in 1..n_threads {
            scope.spawn(|_| partner_loop(&partners));
        }
        let _stop = Stop(&partners);
        let _active = Activate::new(&partners);
        f()
    })
}

/// A partner's life: take a slot, run the jobs posted to it, leave on stop.
fn partner_loop(partners: &Partners) {
    // The owner runs the spawned jobs nobody stole once `f` has returned; it
    // must never spin in one while `f` waits below it on its stack.
    if rayon::current_thread_index() == Some(partners.owner) {
        return;
    }
    let index = partners.next_slot.fetch_add(1, Ordering::Relaxed);
    let Some(slot) = partners.slots.get(index) else {
        return;
    };
    let _active = Activate::new(partners);
    slot.thread.get_or_init(std::thread::current);
    slot.state.store(IDLE, Ordering::Release);
    let mut idle_since = Instant::now();
    // Polls so far: the clock is read on every 64th.
    let mut polls = 0u32;
    loop {
        let state = slot.state.load(Ordering::Acquire);
        if state == READY {
            run_posted(slot);
            idle_since = Instant::now();
        } else if partners.stop.load(Ordering::Acquire) {
            // Every join has returned before `f` did, so no job is pending.
            break;
        } else if state == IDLE
            && polls.is_multiple_of(64)
            && idle_since.elapsed() > SPIN_LIMIT
            && slot
                .state
                .compare_exchange(IDLE, PARKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // Sleep until a caller posts a job (or `f` returns).
            while slot.state.load(Ordering::Acquire) != READY
                && !partners.stop.load(Ordering::Acquire)
            {
                std::thread::park_timeout(Duration::from_millis(1));
            }
            idle_since = Instant::now();
        } else {
            std::hint::spin_loop();
        }
        polls = polls.wrapping_add(1);
    }
    slot.state.store(OFFLINE, Ordering::Release);
}

/// Runs the job posted to `slot` and marks it `DONE`.
fn run_posted(slot: &Slot) {
    // SAFETY: READY means the claiming caller has written the job and waits
    // (without touching it) until we store DONE.
    let job = unsafe { (*slot.job.get()).take() }.expect("a READY slot has a job");
    // SAFETY: `job.data` is the caller's `Option<F>`, alive until DONE.
    let result = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (job.run)(job.data) }));
    if let Err(payload) = result {
        *slot.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
    }
    slot.state.store(DONE, Ordering::Release);
    job.waiter.unpark();
}

/// Runs `a` and `b`, in parallel when possible: on a spinning partner
/// inside [`with_spinning_partners`] (both on this thread when none is
/// idle), else with `rayon::join`. Panics of either are propagated after
/// both have finished.
pub(crate) fn join<A, B>(a: A, b: B)
where
    A: FnOnce() + Send,
    B: FnOnce() + Send,
{
    let active = ACTIVE.with(Cell::get);
    if active.is_null() {
        rayon::join(a, b);
    } else {
        // SAFETY: see `ACTIVE`.
        join_on(unsafe { &*active }, a, b);
    }
}

/// Runs `a` on this thread and `b` on an idle spinning partner inside
/// [`with_spinning_partners`]; anywhere else (or with no partner idle),
/// `a` then `b` on this thread, never handing work to a rayon worker that
/// may be busy with something else. For work outside the products that
/// pays to split only when a partner is already awake: a mini-batch's
/// gather. Panics of either are propagated after both have finished.
pub fn join_with_partner<A, B>(a: A, b: B)
where
    A: FnOnce() + Send,
    B: FnOnce() + Send,
{
    let active = ACTIVE.with(Cell::get);
    if active.is_null() {
        a();
        b();
    } else {
        // SAFETY: see `ACTIVE`.
        join_on(unsafe { &*active }, a, b);
    }
}

/// Whether this thread is inside [`with_spinning_partners`] with partners
/// (in a partner's job too): whether [`join_with_partner`] may run in
/// parallel.
pub fn partners_awake() -> bool {
    ACTIVE.with(|a| !a.get().is_null())
}

/// [`join`] with `partners`: `b` to an idle one, or both here.
fn join_on<A, B>(partners: &Partners, a: A, b: B)
where
    A: FnOnce() + Send,
    B: FnOnce() + Send,
{
    let claim = |from: u8| {
        partners.slots.iter().find(|slot| {
            slot.state
                .compare_exchange(from, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    };
    let (claimed, parked) = match claim(IDLE) {
        Some(slot) => (Some(slot), false),
        None => (claim(PARKED), true),
    };
    let Some(slot) = claimed else {
        a();
        b();
        return;
    };
    let mut b = Some(b);
    let job = ErasedJob {
        data: (&raw mut b).cast(),
        run: run_erased::<B>,
        waiter: std::thread::current(),
    };
    // SAFETY: CLAIMED gives this thread the job cell until it stores READY.
    unsafe { *slot.job.get() = Some(job) };
    slot.state.store(READY, Ordering::Release);
    if parked {
        slot.thread
            .get()
            .expect("a partner sets its thread before it parks")
            .unpark();
    }
    let a_result = panic::catch_unwind(AssertUnwindSafe(a));
    // `b` lives on this stack frame: wait for the partner whatever `a` did;
    // spinning at first, then asleep (the partner wakes us).
    let waiting_since = Instant::now();
    let mut polls = 0u32;
    while slot.state.load(Ordering::Acquire) != DONE {
        if polls.is_multiple_of(64) && waiting_since.elapsed() > WAIT_SPIN_LIMIT {
            std::thread::park_timeout(Duration::from_millis(1));
        } else {
            std::hint::spin_loop();
        }
        polls = polls.wrapping_add(1);
    }
    let b_panic = slot.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    slot.state.store(IDLE, Ordering::Release);
    if let Err(payload) = a_result {
        panic::resume_unwind(payload);
    }
    if let Some(payload) = b_panic {
        panic::resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::ThreadId;
    use std::time::Instant;

    /// Runs `f` on a 2-thread pool, inside the dedicated-pool scope and the
    /// partners' scope.
    fn with_partners_on_two_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| crate::with_small_products_split(|| with_spinning_partners(f)))
    }

    /// The threads `a` and `b` of one `join` ran on.
    fn join_threads() -> (ThreadId, ThreadId) {
        let (mut a, mut b) = (None, None);
        join(
            || a = Some(std::thread::current().id()),
            || b = Some(std::thread::current().id()),
        );
        (a.unwrap(), b.unwrap())
    }

    /// Joins until one runs its second half on a partner (the partner needs
    /// a moment to steal its spawned job), for at most 10 s.
    fn until_a_partner_runs_b() -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let (a, b) = join_threads();
            if a != b {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    #[test]
    fn the_second_half_runs_on_a_spinning_then_a_sleeping_partner() {
        with_partners_on_two_threads(|| {
            assert!(until_a_partner_runs_b(), "no partner ever took a job");
            // Still spinning: the next join goes to it at once.
            let (a, b) = join_threads();
            assert_ne!(a, b, "a spinning partner was skipped");
            // Asleep after SPIN_LIMIT without a job: woken for the next one.
            std::thread::sleep(SPIN_LIMIT * 10);
            let (a, b) = join_threads();
            assert_ne!(a, b, "a sleeping partner was not woken");
        });
    }

    #[test]
    fn join_with_partner_hands_over_only_to_an_awake_partner() {
        let threads = || {
            let (mut a, mut b) = (None, None);
            join_with_partner(
                || a = Some(std::thread::current().id()),
                || b = Some(std::thread::current().id()),
            );
            (a.unwrap(), b.unwrap())
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        // Outside a scope, both halves here, even with an idle worker.
        let here = std::thread::current().id();
        assert_eq!(threads(), (here, here));
        let (a, b) = pool.install(threads);
        assert_eq!(a, b);
        assert!(!pool.install(partners_awake));
        // Inside, the second half goes to the partner.
        with_partners_on_two_threads(|| {
            assert!(partners_awake());
            assert!(until_a_partner_runs_b());
            let (a, b) = threads();
            assert_ne!(a, b);
        });
    }

    #[test]
    fn there_are_no_partners_outside_a_dedicated_pool_or_when_nested() {
        let active = || ACTIVE.with(|a| !a.get().is_null());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        // A pool shared by concurrent trials (no small-products scope).
        assert!(!pool.install(|| with_spinning_partners(active)));
        // Outside any pool worker.
        assert!(!crate::with_small_products_split(
            || with_spinning_partners(active)
        ));
        // A 1-thread pool.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert!(
            !one.install(|| crate::with_small_products_split(|| with_spinning_partners(active)))
        );
        // Nested: the inner scope reuses the outer partners, and joins work.
        with_partners_on_two_threads(|| {
            assert!(active());
            with_spinning_partners(|| {
                assert!(until_a_partner_runs_b(), "no partner in a nested scope");
            });
            assert!(active());
        });
    }

    #[test]
    fn a_panic_in_either_half_reaches_the_caller_after_both_have_run() {
        with_partners_on_two_threads(|| {
            assert!(until_a_partner_runs_b());
            // `b` panics on the partner; `a` still completes.
            let a_done = AtomicBool::new(false);
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                join(
                    || {
                        std::thread::sleep(Duration::from_millis(5));
                        a_done.store(true, Ordering::SeqCst);
                    },
                    || panic!("b failed"),
                )
            }));
            let payload = caught.expect_err("b's panic was lost");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"b failed"));
            assert!(a_done.load(Ordering::SeqCst));
            // `a` panics; `b` (slower, on the partner) finishes first.
            let b_done = AtomicBool::new(false);
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                join(
                    || panic!("a failed"),
                    || {
                        std::thread::sleep(Duration::from_millis(5));
                        b_done.store(true, Ordering::SeqCst);
                    },
                )
            }));
            let payload = caught.expect_err("a's panic was lost");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"a failed"));
            assert!(
                b_done.load(Ordering::SeqCst),
                "a's panic returned before b ended"
            );
            // The partner is still there for the next join.
            assert!(until_a_partner_runs_b());
        });
    }

    #[test]
    fn a_panic_in_the_scope_releases_the_partners() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let caught = pool.install(|| {
            panic::catch_unwind(|| {
                crate::with_small_products_split(|| {
                    with_spinning_partners(|| {
                        assert!(until_a_partner_runs_b());
                        panic!("inside the scope")
                    })
                })
            })
        });
        assert!(caught.is_err());
        // The pool's other worker is free again: a rayon join uses it.
        let threads = pool.install(|| {
            let start = Instant::now();
            loop {
                let (mut a, mut b) = (None, None);
                rayon::join(
                    || {
                        a = Some(std::thread::current().id());
                        std::thread::sleep(Duration::from_millis(2));
                    },
                    || b = Some(std::thread::current().id()),
                );
                if a != b || start.elapsed() > Duration::from_secs(10) {
                    break (a, b);
                }
            }
        });
        assert_ne!(threads.0, threads.1, "the partner never left");
    }

    #[test]
    fn products_split_on_partners_give_the_bits_of_one_thread() {
        use ndarray::Array2;
        let fill = |m: usize, n: usize, seed: u32| {
            Array2::from_shape_fn((m, n), |(i, j)| {
                let h = (i as u32 * 7919 + j as u32 * 104729 + seed).wrapping_mul(2654435761);
                (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
        };
        // The report's training step: forward X W1^T and the W1 update.
        let (x, w1) = (fill(100, 3072, 1), fill(50, 3072, 2));
        let g = fill(100, 50, 3);
        let step = |rounds: usize| {
            let (mut h, mut w) = (Array2::<f32>::zeros((100, 50)), w1.clone());
            for _ in 0..rounds {
                crate::gemm(1.0, &x.view(), &w.t(), 0.0, &mut h.view_mut());
                crate::gemm(-1e-3, &g.t(), &x.view(), 0.999, &mut w.view_mut());
            }
            (h, w)
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| step(5));
        let two = with_partners_on_two_threads(|| {
            assert!(until_a_partner_runs_b());
            step(5)
        });
        assert_eq!(one.0, two.0);
        assert_eq!(one.1, two.1);
    }
}
