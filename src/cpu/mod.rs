//! The CPU backend: an engine-owned rayon pool, chunking that keeps each task
//! a useful size, and SIMD helpers over `wide` lanes with scalar tails.
//!
#![doc = include_str!("README.md")]

pub mod peak;
pub mod pool;
mod share;
pub mod simd;

use std::fmt;

use crate::buffer::{Buffer, Element, HostData};
use crate::error::{Error, Result};

/// Below this much work (elements × the kernel's per-element weight; for
/// reductions, 4-byte words read) a call runs on the calling thread:
/// sharing its chunks costs more than it saves. With the caller working
/// through the chunks itself (`src/cpu/share.rs`) a second thread
/// pays from about 4 µs of serial work: measured on a 2-core Zen 5 VM,
/// 2^17 (at 2^17: sum 1.1–1.6×, add and scans 1.7–2.0× faster) where 2^16 lost on the
/// cheapest calls (a 2^15-element expression reduction, 3.2 → 4.9 µs).
/// Under `ThreadPool::install` it was 2^18.
pub const PARALLEL_THRESHOLD: usize = 1 << 17;

/// 4-byte words in an element of `T` (at least one).
pub(crate) fn words<T>() -> usize {
    size_of::<T>().div_ceil(4).max(1)
}

/// Elements per parallel task for memory-bound kernels: large enough to
/// amortize scheduling, small enough to balance across cores (256 KiB of f32).
pub const CHUNK_ELEMENTS: usize = 1 << 16;

/// The CPU backend handle a kernel's [`run_cpu`](crate::Kernel::run_cpu)
/// receives.
pub struct Cpu {
    pool: rayon::ThreadPool,
    threads: usize,
}

impl fmt::Debug for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cpu")
            .field("threads", &self.threads)
            .field("simd", &simd::compiled_level())
            .finish()
    }
}

impl Cpu {
    /// A backend with `threads` worker threads (0: one per core).
    pub(crate) fn new(threads: usize) -> Result<Cpu> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tandem-cpu-{i}"))
            .build()
            .map_err(|e| Error::ThreadPool(e.to_string()))?;
        let threads = pool.current_num_threads();
        Ok(Cpu { pool, threads })
    }

    /// Worker threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` inside the engine's pool, so rayon calls in it use the
    /// engine's threads. A panic in `f` reaches the caller.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// The host copy of `buf`, downloading it once if only the device has it.
    pub fn host<T: Element>(&self, buf: &Buffer<T>) -> Result<HostData<T>> {
        buf.host()
    }

    /// Elements per task for `n` elements: [`CHUNK_ELEMENTS`], or fewer so
    /// each thread gets a few tasks, never below `min` (rounded to 64 so SIMD
    /// loops see whole vectors).
    pub fn chunk_len(&self, n: usize, min: usize) -> usize {
        let per_task = n
            .div_ceil(self.threads * 4)
            .max(min)
            .min(CHUNK_ELEMENTS.max(min));
        per_task.div_ceil(64) * 64
    }

    /// Maps `src` to a new vector with `f` applied to each chunk pair
    /// `(input, output)`. `weight` is the cost of one element relative to a
    /// one-flop map (16 for `exp`, say): the call runs in parallel when
    /// `len × weight` reaches [`PARALLEL_THRESHOLD`]. The output comes from
    /// the host [`pool`]: its contents are unspecified and `f` must write
    /// every element.
    pub fn map_chunks<T: Element, U: Element>(
        &self,
        src: &[T],
        weight: usize,
        f: impl Fn(&[T], &mut [U]) + Sync + Send,
    ) -> Vec<U> {
        let n = src.len();
        let mut out = pool::take::<U>(n);
        if n.saturating_mul(weight) < PARALLEL_THRESHOLD {
            f(src, &mut out);
        } else {
            let chunk = self.chunk_len(n, 4096);
            self.for_each_out_chunk(&mut out, chunk, |i, o| {
                f(&src[i * chunk..i * chunk + o.len()], o);
            });
        }
        out
    }

    /// Runs `f(i, chunk i of out)` for every `chunk`-element chunk of
    /// `out`, as shared chunks ([`Cpu::for_each_chunk`]).
    pub(crate) fn for_each_out_chunk<U: Send>(
        &self,
        out: &mut [U],
        chunk: usize,
        f: impl Fn(usize, &mut [U]) + Sync,
    ) {
        self.for_each_out_chunk_init(out, chunk, &|| (), |_, i, o| f(i, o));
    }

    /// [`Cpu::for_each_out_chunk`] with a state each thread makes once
    /// with `init` and passes to each of its chunks.
    pub(crate) fn for_each_out_chunk_init<U: Send, S>(
        &self,
        out: &mut [U],
        chunk: usize,
        init: &(impl Fn() -> S + Sync),
        f: impl Fn(&mut S, usize, &mut [U]) + Sync,
    ) {
        /// The output's base, shared by the chunks' runners.
        struct Base<U>(*mut U);
        // SAFETY: runners only make disjoint `&mut` chunks of it (below).
        unsafe impl<U: Send> Sync for Base<U> {}
        impl<U> Base<U> {
            // A method, so closures capture the `Sync` wrapper, not the
            // raw pointer field.
            fn at(&self, i: usize) -> *mut U {
                self.0.wrapping_add(i)
            }
        }
        let n = out.len();
        let chunk = chunk.max(1);
        let base = Base(out.as_mut_ptr());
        self.for_each_chunk_init(n.div_ceil(chunk), init, &|state, i| {
            let start = i * chunk;
            let len = chunk.min(n - start);
            // SAFETY: `for_each_chunk_init` runs each `i` exactly once, so
            // the chunks are disjoint, all within `out`, which the caller
            // borrows mutably until every runner is done.
            let o = unsafe { std::slice::from_raw_parts_mut(base.at(start), len) };
            f(state, i, o);
        });
    }

    /// `f(i)` for every `i < parts`, run as shared chunks
    /// ([`Cpu::for_each_chunk`]), in index order.
    pub(crate) fn map_parts<R: Send>(&self, parts: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
        use std::sync::Mutex;
        let slots: Vec<Mutex<Option<R>>> = (0..parts).map(|_| Mutex::new(None)).collect();
        self.for_each_chunk(parts, &|i| {
            let v = f(i);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        });
        slots
            .into_iter()
            .map(|s| {
                let s = s.into_inner().unwrap_or_else(|e| e.into_inner());
                s.expect("every part ran")
            })
            .collect()
    }

    /// Like [`Cpu::map_chunks`] over two inputs of equal length (`f` must
    /// write every output element).
    pub fn zip_chunks<A: Element, B: Element, U: Element>(
        &self,
        a: &[A],
        b: &[B],
        weight: usize,
        f: impl Fn(&[A], &[B], &mut [U]) + Sync + Send,
    ) -> Vec<U> {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len();
        let mut out = pool::take::<U>(n);
        if n.saturating_mul(weight) < PARALLEL_THRESHOLD {
            f(a, b, &mut out);
        } else {
            let chunk = self.chunk_len(n, 4096);
            self.for_each_out_chunk(&mut out, chunk, |i, o| {
                let r = i * chunk..i * chunk + o.len();
                f(&a[r.clone()], &b[r], o);
            });
        }
        out
    }

    /// Reduces `src` chunk by chunk with `leaf`, combining partial results
    /// with `combine` in a balanced tree (so float error grows with the
    /// tree's depth, log n, not with n). Parallel from
    /// [`PARALLEL_THRESHOLD`] 4-byte words read.
    pub fn reduce_chunks<T: Element, R: Send + Copy>(
        &self,
        src: &[T],
        leaf: impl Fn(&[T], usize) -> R + Sync + Send,
        combine: impl Fn(R, R) -> R + Sync + Send,
    ) -> R {
        self.reduce_weighted(src, words::<T>(), leaf, combine)
    }

    /// [`Cpu::reduce_chunks`] of a kernel whose element costs `weight`
    /// one-word reads (an arg-reduction reads each chunk twice, say).
    pub(crate) fn reduce_weighted<T: Element, R: Send + Copy>(
        &self,
        src: &[T],
        weight: usize,
        leaf: impl Fn(&[T], usize) -> R + Sync + Send,
        combine: impl Fn(R, R) -> R + Sync + Send,
    ) -> R {
        let f = |a: &[T], _: &[T], offset| leaf(a, offset);
        self.reduce_zip_weighted(src, src, weight, f, combine)
    }

    /// Like [`Cpu::reduce_chunks`] over two inputs of equal length. `leaf`
    /// gets the chunks and the chunk's offset in the whole input.
    pub fn reduce_zip_chunks<A: Element, B: Element, R: Send + Copy>(
        &self,
        a: &[A],
        b: &[B],
        leaf: impl Fn(&[A], &[B], usize) -> R + Sync + Send,
        combine: impl Fn(R, R) -> R + Sync + Send,
    ) -> R {
        self.reduce_zip_weighted(a, b, words::<A>() + words::<B>(), leaf, combine)
    }

    fn reduce_zip_weighted<A: Element, B: Element, R: Send + Copy>(
        &self,
        a: &[A],
        b: &[B],
        weight: usize,
        leaf: impl Fn(&[A], &[B], usize) -> R + Sync + Send,
        combine: impl Fn(R, R) -> R + Sync + Send,
    ) -> R {
        debug_assert_eq!(a.len(), b.len());
        if a.len().saturating_mul(weight) < PARALLEL_THRESHOLD {
            return leaf(a, b, 0);
        }
        // Power-of-two chunks: whole multiples of the leaves' pairwise blocks.
        let n = a.len();
        let chunk = self.chunk_len(n, 8192).next_power_of_two();
        self.reduce_parts(
            n.div_ceil(chunk),
            |i| {
                let r = i * chunk..(i * chunk + chunk).min(n);
                leaf(&a[r.clone()], &b[r.clone()], r.start)
            },
            combine,
        )
    }

    /// `leaf(i)` for every `i < parts`, run as shared chunks
    /// ([`Cpu::for_each_chunk`]), combined in a balanced tree in index
    /// order: the same result whichever thread ran which part.
    pub(crate) fn reduce_parts<R: Send + Copy>(
        &self,
        parts: usize,
        leaf: impl Fn(usize) -> R + Sync,
        combine: impl Fn(R, R) -> R,
    ) -> R {
        let values = self.map_parts(parts, leaf);
        fn tree<R: Copy>(parts: &[R], combine: &impl Fn(R, R) -> R) -> R {
            if let [one] = parts {
                return *one;
            }
            let (l, r) = parts.split_at(parts.len().div_ceil(2));
            combine(tree(l, combine), tree(r, combine))
        }
        tree(&values, &combine)
    }

    /// Runs `work(i)` once for every `i < chunks`, on the calling thread
    /// and the pool's other threads, each taking the next chunk as it
    /// becomes free: the caller works instead of sleeping through the
    /// workers' wake-up, and never waits for a worker that has not started
    /// (`share.rs`). A panic in `work` reaches the caller.
    pub(crate) fn for_each_chunk(&self, chunks: usize, work: &(impl Fn(usize) + Sync)) {
        share::for_each_chunk(&self.pool, self.threads - 1, chunks, work);
    }

    /// [`Cpu::for_each_chunk`] with a state each thread makes once with
    /// `init` (scratch space, say) and passes to each of its chunks.
    pub(crate) fn for_each_chunk_init<S>(
        &self,
        chunks: usize,
        init: &(impl Fn() -> S + Sync),
        work: &(impl Fn(&mut S, usize) + Sync),
    ) {
        share::for_each_chunk_init(&self.pool, self.threads - 1, chunks, init, work);
    }
}
