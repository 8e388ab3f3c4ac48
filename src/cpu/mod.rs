//! The CPU backend: an engine-owned rayon pool, chunking that keeps each task
//! a useful size, and SIMD helpers over `wide` lanes with scalar tails.
//!
#![doc = include_str!("README.md")]

pub mod peak;
pub mod pool;
pub mod simd;

use std::fmt;

use rayon::prelude::*;

use crate::buffer::{Buffer, Element, HostData};
use crate::error::{Error, Result};

/// Below this much work (elements × the kernel's per-element weight) a call
/// runs on the calling thread: forking costs more than it saves. Measured on
/// the 2-core development machine, a one-flop map only gains from two
/// threads from about 2^19 elements (the data is still in cache below).
pub const PARALLEL_THRESHOLD: usize = 1 << 18;

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
            self.install(|| {
                src.par_chunks(chunk)
                    .zip(out.par_chunks_mut(chunk))
                    .for_each(|(s, o)| f(s, o));
            });
        }
        out
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
            self.install(|| {
                a.par_chunks(chunk)
                    .zip(b.par_chunks(chunk))
                    .zip(out.par_chunks_mut(chunk))
                    .for_each(|((a, b), o)| f(a, b, o));
            });
        }
        out
    }

    /// Reduces `src` chunk by chunk with `leaf`, combining partial results
    /// with `combine` in a balanced tree (so float error grows with the
    /// tree's depth, log n, not with n). Parallel from
    /// [`PARALLEL_THRESHOLD`] elements.
    pub fn reduce_chunks<T: Element, R: Send + Copy>(
        &self,
        src: &[T],
        leaf: impl Fn(&[T], usize) -> R + Sync + Send,
        combine: impl Fn(R, R) -> R + Sync + Send,
    ) -> R {
        self.reduce_zip_chunks(src, src, |a, _, offset| leaf(a, offset), combine)
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
        debug_assert_eq!(a.len(), b.len());
        if a.len() < PARALLEL_THRESHOLD {
            return leaf(a, b, 0);
        }
        // Power-of-two chunk so the tree of chunks is balanced.
        let chunk = self.chunk_len(a.len(), 8192).next_power_of_two();
        fn tree<A: Sync, B: Sync, R: Send + Copy>(
            a: &[A],
            b: &[B],
            offset: usize,
            chunk: usize,
            leaf: &(impl Fn(&[A], &[B], usize) -> R + Sync),
            combine: &(impl Fn(R, R) -> R + Sync),
        ) -> R {
            if a.len() <= chunk {
                return leaf(a, b, offset);
            }
            // Split at a multiple of `chunk` near the middle.
            let mid = (a.len() / 2).div_ceil(chunk) * chunk;
            let (al, ar) = a.split_at(mid);
            let (bl, br) = b.split_at(mid);
            let (l, r) = rayon::join(
                || tree(al, bl, offset, chunk, leaf, combine),
                || tree(ar, br, offset + mid, chunk, leaf, combine),
            );
            combine(l, r)
        }
        self.install(|| tree(a, b, 0, chunk, &leaf, &combine))
    }
}
