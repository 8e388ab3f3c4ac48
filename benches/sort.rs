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

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use rayon::prelude::*;
use tandem::kernels::{Argsort, Sort, SortPairs};
use tandem::{Backend, Buffer, Engine};

/// Keys at most this many on a software GPU.
const SOFTWARE_GPU_MAX: usize = 1_000_000;

fn random_u32(n: usize, seed: u64) -> Vec<u32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
        })
        .collect()
}

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

fn gpu_max(engine: &Engine) -> usize {
    match engine.gpu() {
        Some(g) if engine.has_gpu() && g.info().is_software => SOFTWARE_GPU_MAX,
        Some(_) if engine.has_gpu() => usize::MAX,
        _ => 0,
    }
}

fn wait(engine: &Engine) {
    if let Some(g) = engine.gpu() {
        g.wait("bench").expect("waiting for the GPU");
    }
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

fn sort_group(c: &mut Criterion, engine: &Engine) {
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let mut group = c.benchmark_group("sort");
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let keys = random_u32(n, 0x9E37_79B9_7F4A_7C15 ^ n as u64);
        group.throughput(Throughput::Elements(n as u64));
        bench_copy(&mut group, "sort_unstable", n, &keys, |mut v| {
            v.sort_unstable();
            v
        });
        bench_copy(&mut group, "sort", n, &keys, |mut v| {
            v.sort();
            v
        });
        bench_copy(&mut group, "par_sort_unstable", n, &keys, |mut v| {
            cpu.cpu().install(|| v.par_sort_unstable());
            v
        });
        let host = Buffer::from(keys.clone());
        group.bench_function(BenchmarkId::new("cpu", n), |b| {
            b.iter(|| black_box(cpu.run(&Sort, &host).unwrap().host().unwrap()));
        });
        if n <= gpu_max(engine) {
            group.bench_function(BenchmarkId::new("gpu_host", n), |b| {
                b.iter_batched(
                    || Buffer::from(keys.clone()),
                    |k| black_box(gpu.run(&Sort, &k).unwrap().host().unwrap()),
                    BatchSize::LargeInput,
                );
            });
            let resident = Buffer::from(keys.clone());
            engine
                .gpu()
                .unwrap()
                .resident("bench", &resident)
                .expect("upload");
            group.bench_function(BenchmarkId::new("gpu_resident", n), |b| {
                b.iter(|| {
                    let out = gpu.run(&Sort, &resident).unwrap();
                    wait(engine);
                    black_box(out)
                });
            });
        }
        group.bench_function(BenchmarkId::new("auto", n), |b| {
            b.iter_batched(
                || Buffer::from(keys.clone()),
                |k| black_box(engine.run(&Sort, &k).unwrap().host().unwrap()),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn pairs_group(c: &mut Criterion, engine: &Engine) {
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let mut group = c.benchmark_group("sort_pairs");
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let keys = random_u32(n, 0xD1B5_4A32_D192_ED03 ^ n as u64);
        let vals: Vec<u32> = (0..n as u32).collect();
        let pairs: Vec<(u32, u32)> = keys.iter().copied().zip(vals.iter().copied()).collect();
        group.throughput(Throughput::Elements(n as u64));
        bench_copy(&mut group, "sort_unstable", n, &pairs, |mut v| {
            v.sort_unstable_by_key(|p| p.0);
            v
        });
        bench_copy(&mut group, "sort", n, &pairs, |mut v| {
            v.sort_by_key(|p| p.0);
            v
        });
        bench_copy(&mut group, "par_sort_unstable", n, &pairs, |mut v| {
            cpu.cpu().install(|| v.par_sort_unstable_by_key(|p| p.0));
            v
        });
        let (hk, hv) = (Buffer::from(keys.clone()), Buffer::from(vals.clone()));
        group.bench_function(BenchmarkId::new("cpu", n), |b| {
            b.iter(|| {
                let (k, v) = cpu.run(&SortPairs, (&hk, &hv)).unwrap();
                black_box((k.host().unwrap(), v.host().unwrap()))
            });
        });
        if n <= gpu_max(engine) {
            group.bench_function(BenchmarkId::new("gpu_host", n), |b| {
                b.iter_batched(
                    || (Buffer::from(keys.clone()), Buffer::from(vals.clone())),
                    |(k, v)| {
                        let (k, v) = gpu.run(&SortPairs, (&k, &v)).unwrap();
                        black_box((k.host().unwrap(), v.host().unwrap()))
                    },
                    BatchSize::LargeInput,
                );
            });
            let (rk, rv) = (Buffer::from(keys.clone()), Buffer::from(vals.clone()));
            let g = engine.gpu().unwrap();
            g.resident("bench", &rk).expect("upload");
            g.resident("bench", &rv).expect("upload");
            group.bench_function(BenchmarkId::new("gpu_resident", n), |b| {
                b.iter(|| {
                    let out = gpu.run(&SortPairs, (&rk, &rv)).unwrap();
                    wait(engine);
                    black_box(out)
                });
            });
        }
        group.bench_function(BenchmarkId::new("auto", n), |b| {
            b.iter_batched(
                || (Buffer::from(keys.clone()), Buffer::from(vals.clone())),
                |(k, v)| {
                    let (k, v) = engine.run(&SortPairs, (&k, &v)).unwrap();
                    black_box((k.host().unwrap(), v.host().unwrap()))
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn argsort_group(c: &mut Criterion, engine: &Engine) {
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let mut group = c.benchmark_group("argsort");
    group.sampling_mode(SamplingMode::Flat);
    for n in sizes() {
        let keys = random_u32(n, 0x2545_F491_4F6C_DD1D ^ n as u64);
        let idx: Vec<u32> = (0..n as u32).collect();
        group.throughput(Throughput::Elements(n as u64));
        let k = &keys;
        bench_copy(&mut group, "sort_unstable", n, &idx, |mut v| {
            v.sort_unstable_by_key(|&i| k[i as usize]);
            v
        });
        bench_copy(&mut group, "sort", n, &idx, |mut v| {
            v.sort_by_key(|&i| k[i as usize]);
            v
        });
        bench_copy(&mut group, "par_sort_unstable", n, &idx, |mut v| {
            cpu.cpu()
                .install(|| v.par_sort_unstable_by_key(|&i| k[i as usize]));
            v
        });
        let host = Buffer::from(keys.clone());
        group.bench_function(BenchmarkId::new("cpu", n), |b| {
            b.iter(|| black_box(cpu.run(&Argsort, &host).unwrap().host().unwrap()));
        });
        if n <= gpu_max(engine) {
            group.bench_function(BenchmarkId::new("gpu_host", n), |b| {
                b.iter_batched(
                    || Buffer::from(keys.clone()),
                    |k| black_box(gpu.run(&Argsort, &k).unwrap().host().unwrap()),
                    BatchSize::LargeInput,
                );
            });
            let resident = Buffer::from(keys.clone());
            engine
                .gpu()
                .unwrap()
                .resident("bench", &resident)
                .expect("upload");
            group.bench_function(BenchmarkId::new("gpu_resident", n), |b| {
                b.iter(|| {
                    let out = gpu.run(&Argsort, &resident).unwrap();
                    wait(engine);
                    black_box(out)
                });
            });
        }
        group.bench_function(BenchmarkId::new("auto", n), |b| {
            b.iter_batched(
                || Buffer::from(keys.clone()),
                |k| black_box(engine.run(&Argsort, &k).unwrap().host().unwrap()),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn sorts(c: &mut Criterion) {
    let engine = Engine::new().expect("creating the engine");
    eprintln!("{}", engine.info());
    if !engine.has_gpu() {
        eprintln!("no GPU: skipping the gpu_host and gpu_resident series");
    }
    sort_group(c, &engine);
    pairs_group(c, &engine);
    argsort_group(c, &engine);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .nresamples(10_000)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = sorts
}
criterion_main!(benches);
