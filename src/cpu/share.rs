//! Chunks shared between the calling thread and the pool's workers.
//!
//! `ThreadPool::install` hands the whole call to a worker and puts the
//! caller to sleep: on two cores a mid-size reduction then pays for waking
//! one worker, that worker waking the other, and the caller waking at the
//! end, which at 2^18 elements cost more than the serial loop. Here the
//! caller works through the chunks itself from a shared counter, and the
//! helpers it spawns claim chunks from the same counter once they wake. A
//! helper that wakes after the last chunk is claimed finds nothing to do;
//! the caller waits only for helpers that are running a chunk, never for
//! one that has not started, so the call is never slower than the caller
//! alone by more than the cost of spawning.
//!
//! The helpers are `'static` jobs, but the work borrows the caller's data.
//! The borrow is made safe by a handshake: a helper announces itself
//! (`active`) before it looks at `closed`, and runs the work only if it
//! was still open; the caller claims until none are left, then sets
//! `closed` and waits until no helper is active. Both sides use
//! sequentially consistent operations, so either the caller sees the
//! helper's announcement and waits for it, or the helper sees `closed`
//! and leaves without touching the work.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// A runner: claims and runs chunks until none are left.
type Runner<'a> = dyn Fn() + Sync + 'a;

/// A runner with its lifetime erased, for a helper job: only called by a
/// helper that announced itself before the caller closed, so while the
/// caller still waits (and the runner and what it borrows are alive).
struct Erased(*const Runner<'static>);

// SAFETY: the runner is `Sync`, and it outlives every call (see above).
unsafe impl Send for Erased {}

/// What the caller and its helpers share.
struct Shared {
    /// The next chunk to claim.
    next: AtomicUsize,
    /// Chunks in all.
    chunks: usize,
    /// Helpers between their announcement and their exit.
    active: AtomicUsize,
    /// Set by the caller once every chunk is claimed.
    closed: AtomicBool,
    /// The first panic a helper caught, for the caller to resume.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Shared {
    /// The next unclaimed chunk, if any.
    fn claim(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, SeqCst);
        (i < self.chunks).then_some(i)
    }

    /// A helper's whole life: announce, run if still open, leave.
    fn help(&self, runner: &Erased) {
        self.active.fetch_add(1, SeqCst);
        if !self.closed.load(SeqCst) {
            // SAFETY: this helper announced itself before the caller set
            // `closed` (it read it clear afterwards), so the caller waits
            // for `active` to drop before the runner's borrows end.
            let run = unsafe { &*runner.0 };
            if let Err(p) = catch_unwind(AssertUnwindSafe(run)) {
                let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(p);
                // Stop the others early: nothing after a panic matters.
                self.next.store(self.chunks, SeqCst);
            }
        }
        self.active.fetch_sub(1, SeqCst);
    }
}

/// Runs `work(i)` once for every `i < chunks`: see [`for_each_chunk_init`].
pub(crate) fn for_each_chunk(
    pool: &rayon::ThreadPool,
    helpers: usize,
    chunks: usize,
    work: &(impl Fn(usize) + Sync),
) {
    for_each_chunk_init(pool, helpers, chunks, &|| (), &|_: &mut (), i| work(i));
}

/// Runs `work(state, i)` once for every `i < chunks`, on the calling thread
/// and on up to `helpers` jobs spawned into `pool`, each claiming the next
/// chunk; each runner makes its `state` with `init` once, before its first
/// chunk. Returns when every chunk has run. A panic in `init` or `work`
/// reaches the caller (after every running helper has stopped).
pub(crate) fn for_each_chunk_init<S>(
    pool: &rayon::ThreadPool,
    helpers: usize,
    chunks: usize,
    init: &(impl Fn() -> S + Sync),
    work: &(impl Fn(&mut S, usize) + Sync),
) {
    if chunks == 0 {
        return;
    }
    let helpers = helpers.min(chunks - 1);
    if helpers == 0 {
        let mut state = init();
        (0..chunks).for_each(|i| work(&mut state, i));
        return;
    }
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        chunks,
        active: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
        panic: Mutex::new(None),
    });
    let claims: &Shared = &shared;
    let runner = || {
        let Some(mut i) = claims.claim() else {
            return;
        };
        let mut state = init();
        loop {
            work(&mut state, i);
            match claims.claim() {
                Some(next) => i = next,
                None => break,
            }
        }
    };
    let runner: &Runner<'_> = &runner;
    // SAFETY: only the lifetime changes (same vtable and layout); helpers
    // call it only while this function waits (see `Shared::help`).
    let erased = unsafe { std::mem::transmute::<&Runner<'_>, &Runner<'static>>(runner) };
    for _ in 0..helpers {
        let (s, r) = (Arc::clone(&shared), Erased(erased));
        pool.spawn(move || s.help(&r));
    }
    let mine = catch_unwind(AssertUnwindSafe(runner)).err();
    if mine.is_some() {
        shared.next.store(chunks, SeqCst);
    }
    shared.closed.store(true, SeqCst);
    // Helpers still active are finishing one chunk each.
    let mut spins = 0u32;
    while shared.active.load(SeqCst) != 0 {
        if spins < 1 << 10 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    if let Some(p) = mine {
        resume_unwind(p);
    }
    let theirs = shared
        .panic
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(p) = theirs {
        resume_unwind(p);
    }
}

#[cfg(test)]
mod tests {
    use super::for_each_chunk;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
    }

    #[test]
    fn every_chunk_runs_exactly_once() {
        let p = pool(2);
        for chunks in [0, 1, 2, 3, 17, 1000] {
            for helpers in [0, 1, 3] {
                let hits: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
                for_each_chunk(&p, helpers, chunks, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "chunks {chunks} helpers {helpers}"
                );
            }
        }
    }

    #[test]
    fn a_busy_pool_leaves_the_work_to_the_caller() {
        // Both workers blocked: the helpers cannot start, and the call
        // must still finish, on the calling thread alone.
        use std::sync::{Arc, Barrier};
        let p = pool(2);
        let started = Arc::new(Barrier::new(3));
        let release = Arc::new(Barrier::new(3));
        for _ in 0..2 {
            let (started, release) = (started.clone(), release.clone());
            p.spawn(move || {
                started.wait();
                release.wait();
            });
        }
        started.wait();
        let caller = std::thread::current().id();
        let on_caller = AtomicUsize::new(0);
        for_each_chunk(&p, 1, 64, &|_| {
            if std::thread::current().id() == caller {
                on_caller.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(on_caller.load(Ordering::Relaxed), 64);
        // The helper runs after this, finds the call closed, and leaves.
        release.wait();
    }

    #[test]
    fn a_panic_in_a_chunk_reaches_the_caller() {
        let p = pool(2);
        for bad in [0, 5, 63] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for_each_chunk(&p, 1, 64, &|i| {
                    assert!(i != bad, "chunk {i}");
                });
            }));
            assert!(r.is_err(), "bad chunk {bad}");
        }
    }
}
