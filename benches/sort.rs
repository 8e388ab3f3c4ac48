//! Criterion benchmarks of the radix sorts against the sorts a user would
//! call instead.
//!
//! ```text
//! cargo bench --bench sort                  # everything (a few minutes)
//! cargo bench --bench sort -- 'sort/'       # one group
//! cargo bench --bench sort -- '/10000000'   # one size
//! TANDEM_BENCH_MAX_N=1000000 cargo bench --bench sort   # skip 10^7
//! ```
//!
//! Groups `sort` (u32 keys), `sort_pairs` (u32 keys, u32 values) and
//! `argsort` (u32 keys), at 10^5, 10^6 and 10^7 random keys, with
//! `Throughput::Elements`. Series:
//! - `sort_unstable`, `sort` (stable), `par_sort_unstable`: the standard
//!   library's and rayon's sorts of a copy (the copy is made in untimed
//!   setup); for pairs and argsort the `_by_key` forms on `(key, value)`
//!   pairs or on indices.
//! - `voracious_mt_sort` (u32 keys only): voracious_radix_sort's parallel
//!   radix sort, the fastest Rust radix-sort crate, on the engine's pool.
//! - `cpu`: tandem's CPU backend on a host-resident input.
//! - `gpu_host`: the GPU backend on inputs that start on the host (fresh
//!   buffers per iteration: upload and readback are timed).
//! - `gpu_resident`: the GPU backend on inputs already on the device,
//!   results left there, `Gpu::wait` timed.
//! - `auto`: `Backend::Auto` on a host-resident input, result to the host.
//!
//! GPU series run only with a GPU, and on a software driver (lavapipe)
//! only up to 10^6 keys.

#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::Bench;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use rayon::prelude::*;
use tandem::Buffer;
use tandem::kernels::{Argsort, Sort, SortPairs};
use voracious_radix_sort::RadixSort as _;

/// Keys at most this many on a software GPU.
const SOFTWARE_GPU_MAX: usize = 1_000_000;

/// 10^5, 10^6 and 10^7 keys, up to `TANDEM_BENCH_MAX_N`.
fn sizes() -> Vec<usize> {
    let max: usize = std::env::var("TANDEM_BENCH_MAX_N")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(10_000_000);
    [100_000, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect()
}

/// Times a sort of a fresh copy of `data` (made in untimed setup).
fn bench_copy<D: Clone, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    n: usize,
    data: &D,
    f: impl Fn(D) -> R,
) {
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter_batched(|| data.clone(), |d| black_box(f(d)), BatchSize::LargeInput);
    });
}

/// std's three comparison sorts of a fresh copy of `data` by `key`:
/// `sort_unstable`, `sort` (stable) and rayon's `par_sort_unstable`.
fn std_sorts<D, K>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    bench: &Bench,
    n: usize,
    data: &Vec<D>,
    key: impl Fn(&D) -> K + Sync + Copy,
) where
    D: Clone + Send,
    K: Ord,
{
    bench_copy(group, "sort_unstable", n, data, |mut v| {
        v.sort_unstable_by_key(key);
        v
    });
    bench_copy(group, "sort", n, data, |mut v| {
        v.sort_by_key(key);
        v
    });
    bench_copy(group, "par_sort_unstable", n, data, |mut v| {
        bench.cpu.cpu().install(|| v.par_sort_unstable_by_key(key));
        v
    });
}

/// One group at each size of [`sizes`]: `body` times its series on that many
/// random u32 keys drawn from `seed`.
fn group(
    c: &mut Criterion,
    name: &str,
    seed: u64,
    mut body: impl FnMut(&mut BenchmarkGroup<'_, WallTime>, usize, Vec<u32>),
) {
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        group.throughput(Throughput::Elements(n as u64));
        body(&mut group, n, common::random_u32(n, seed ^ n as u64));
    }
    group.finish();
}

fn sorts(c: &mut Criterion) {
    let bench = Bench::new(SOFTWARE_GPU_MAX);
    group(c, "sort", 0x9E37_79B9_7F4A_7C15, |g, n, keys| {
        std_sorts(g, &bench, n, &keys, |&k| k);
        bench_copy(g, "voracious_mt_sort", n, &keys, |mut v| {
            let pool = bench.cpu.cpu();
            pool.install(|| v.voracious_mt_sort(rayon::current_num_threads()));
            v
        });
        bench.tandem(g, n, n, &Buffer::from(keys), &Sort);
    });
    group(c, "sort_pairs", 0xD1B5_4A32_D192_ED03, |g, n, keys| {
        let vals: Vec<u32> = (0..n as u32).collect();
        let pairs: Vec<(u32, u32)> = keys.iter().copied().zip(vals.iter().copied()).collect();
        std_sorts(g, &bench, n, &pairs, |p| p.0);
        let host = (Buffer::from(keys), Buffer::from(vals));
        bench.tandem(g, n, 2 * n, &host, &SortPairs);
    });
    group(c, "argsort", 0x2545_F491_4F6C_DD1D, |g, n, keys| {
        let idx: Vec<u32> = (0..n as u32).collect();
        let k = &keys;
        std_sorts(g, &bench, n, &idx, |&i| k[i as usize]);
        bench.tandem(g, n, n, &Buffer::from(keys.clone()), &Argsort);
    });
}

common::bench_main!(Duration::from_millis(300), Duration::from_secs(2); sorts);
