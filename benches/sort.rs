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

fn sort_group(c: &mut Criterion, bench: &Bench) {
    let mut group = c.benchmark_group("sort");
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let keys = common::random_u32(n, 0x9E37_79B9_7F4A_7C15 ^ n as u64);
        group.throughput(Throughput::Elements(n as u64));
        std_sorts(&mut group, bench, n, &keys, |&k| k);
        bench_copy(&mut group, "voracious_mt_sort", n, &keys, |mut v| {
            bench
                .cpu
                .cpu()
                .install(|| v.voracious_mt_sort(rayon::current_num_threads()));
            v
        });
        bench.tandem(&mut group, n, n, &Buffer::from(keys.clone()), &Sort);
    }
    group.finish();
}

fn pairs_group(c: &mut Criterion, bench: &Bench) {
    let mut group = c.benchmark_group("sort_pairs");
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let keys = common::random_u32(n, 0xD1B5_4A32_D192_ED03 ^ n as u64);
        let vals: Vec<u32> = (0..n as u32).collect();
        let pairs: Vec<(u32, u32)> = keys.iter().copied().zip(vals.iter().copied()).collect();
        group.throughput(Throughput::Elements(n as u64));
        std_sorts(&mut group, bench, n, &pairs, |p| p.0);
        let host = (Buffer::from(keys.clone()), Buffer::from(vals.clone()));
        bench.tandem(&mut group, n, 2 * n, &host, &SortPairs);
    }
    group.finish();
}

fn argsort_group(c: &mut Criterion, bench: &Bench) {
    let mut group = c.benchmark_group("argsort");
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let keys = common::random_u32(n, 0x2545_F491_4F6C_DD1D ^ n as u64);
        let idx: Vec<u32> = (0..n as u32).collect();
        group.throughput(Throughput::Elements(n as u64));
        let k = &keys;
        std_sorts(&mut group, bench, n, &idx, |&i| k[i as usize]);
        bench.tandem(&mut group, n, n, &Buffer::from(keys.clone()), &Argsort);
    }
    group.finish();
}

fn sorts(c: &mut Criterion) {
    let bench = Bench::new(SOFTWARE_GPU_MAX);
    sort_group(c, &bench);
    pairs_group(c, &bench);
    argsort_group(c, &bench);
}

common::bench_main!(Duration::from_millis(300), Duration::from_secs(2); sorts);
