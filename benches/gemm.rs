//! Criterion benchmarks of SGEMM (`tandem::kernels::Gemm`) against the
//! loops and crates a user would reach for.
//!
//! ```text
//! cargo bench --bench gemm                   # everything (a few minutes)
//! cargo bench --bench gemm -- 'sgemm/cpu'    # one series
//! cargo bench --bench gemm -- '/1024$'       # one size
//! ```
//!
//! Group `fma_peak`: the machine's FP32 FMA throughput, measured the same run
//! (`tandem::cpu::peak`: twelve independent FMA chains per thread at the
//! widest SIMD width the CPU has, whatever the build was compiled for; one
//! thread per core of the engine's pool): the roofline the GEMM figures are a fraction of.
//! Before it, a line prints the best of many ~0.1 ms bursts (the hardware's
//! peak even on a busy machine); before each size of `sgemm`, a line prints
//! the best of a few alternating runs of tandem's CPU backend and
//! `matrixmultiply`, with tandem's fraction of that peak.
//!
//! Group `sgemm`: square `n × n × n` products, `Throughput::Elements(2·n³)`
//! so criterion's "elem/s" reads as flop/s. Series:
//! - `naive`: the serial triple loop (n ≤ 256 only).
//! - `matrixmultiply`: `matrixmultiply::sgemm` with its `threading` feature
//!   (one thread per physical core; `MMTHREADS` overrides).
//! - `cpu`: tandem's CPU backend.
//! - `gpu_host`: the GPU backend on inputs that start on the host (fresh
//!   buffers per iteration; upload and readback timed).
//! - `gpu_resident`: the GPU backend on inputs uploaded beforehand, result
//!   left on the device (`Gpu::wait` timed).
//! - `auto`: `Backend::Auto` on host inputs, result brought to the host.
//!
//! 2048 runs only the CPU series and peers; on a software GPU (lavapipe) the
//! GPU series stop at 256.

#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Bench, SEED_X, SEED_Y};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tandem::cpu::peak::{fma_burst, fma_level};
use tandem::kernels::Gemm;
use tandem::{Buffer, Engine, Kernel};

const SIZES: &[usize] = &[64, 256, 1024, 2048];
/// Largest size of the naive loop.
const NAIVE_MAX: usize = 256;
/// Largest size of the GPU series (2048 is for the CPU series and peers).
const GPU_MAX: usize = 1024;
/// Largest size of the GPU series on a software driver.
const SOFTWARE_GPU_MAX: usize = 256;

/// `n` floats in `[-1, 1)`.
fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut x = common::random_f32(n, seed);
    // [0.5, 2) onto [-1, 1).
    x.iter_mut()
        .for_each(|v| *v = (*v - 0.5) * (4.0 / 3.0) - 1.0);
    x
}

fn naive(n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut c = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            let mut s = 0.0f32;
            for p in 0..n {
                s += a[i * n + p] * b[p * n + j];
            }
            c[i * n + j] = s;
        }
    }
    c
}

fn matrixmultiply(n: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut c = vec![0.0f32; n * n];
    let s = n as isize;
    // SAFETY: a, b are n × n and c is n × n, row-major (row stride n, column
    // stride 1), so every index sgemm forms is in bounds; c is exclusive.
    unsafe {
        matrixmultiply::sgemm(
            n,
            n,
            n,
            1.0,
            a.as_ptr(),
            s,
            1,
            b.as_ptr(),
            s,
            1,
            0.0,
            c.as_mut_ptr(),
            s,
            1,
        );
    }
    c
}

/// Bursts of the quick peak figure.
const BURST_RUNS: usize = 200;

/// Runs of the quick best-of measurements printed before each group.
const QUICK_RUNS: usize = 5;

/// FMA steps per thread in one `fma_peak` call.
const PEAK_STEPS: usize = 1 << 22;

/// FMA steps per thread in one burst of the quick peak figure: short enough
/// (about 0.1 ms) to fit one scheduler time slice on a shared machine.
const BURST_STEPS: usize = 1 << 16;

/// The library's FMA burst (at the CPU's widest width) for `steps` on every
/// thread of the engine's pool; returns the flops done.
fn fma_all_threads(engine: &Engine, steps: usize) -> u64 {
    tandem::cpu::peak::fma_all_threads(engine.cpu(), steps)
}

fn gemm(c: &mut Criterion) {
    let mut bench = Bench::new(SOFTWARE_GPU_MAX * SOFTWARE_GPU_MAX);
    bench.gpu_max = bench.gpu_max.min(GPU_MAX * GPU_MAX);
    let (engine, cpu) = (&bench.engine, &bench.cpu);

    // The roofline, measured now: a quick single figure, then criterion's.
    // The hardware's peak: the best of many short bursts on one thread
    // (what a core does when it has the time slice to itself), times the
    // threads; and the best of bursts on all threads at once (lower when
    // the machine is shared: both cores are rarely free together).
    let threads = engine.cpu().threads();
    let (mut core, mut all) = (0.0f64, 0.0f64);
    for _ in 0..BURST_RUNS {
        let t = Instant::now();
        let (v, flops) = fma_burst(BURST_STEPS, 1.0);
        black_box(v);
        core = core.max(flops as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let flops = fma_all_threads(engine, BURST_STEPS);
        all = all.max(flops as f64 / t.elapsed().as_secs_f64());
    }
    let peak = core * threads as f64;
    eprintln!(
        "fma_peak ({}): {:.1} GFLOP/s per core x {threads} = {:.1} GFLOP/s; \
         {:.1} GFLOP/s measured on all threads at once (best of {BURST_RUNS} bursts)",
        fma_level(),
        core / 1e9,
        peak / 1e9,
        all / 1e9,
    );
    let flops = fma_all_threads(engine, PEAK_STEPS);
    {
        let mut group = c.benchmark_group("fma_peak");
        group.throughput(Throughput::Elements(flops));
        group.bench_function("all_threads", |b| {
            b.iter(|| fma_all_threads(engine, PEAK_STEPS));
        });
        group.finish();
    }

    let mut group = c.benchmark_group("sgemm");
    group.sampling_mode(SamplingMode::Flat);
    for &n in SIZES {
        let a = random_f32(n * n, SEED_X);
        let b = random_f32(n * n, SEED_Y);
        let g = Gemm::new(n, n, n);
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        let host = (Buffer::from(a.clone()), Buffer::from(b.clone()));

        // A quick figure beside criterion's: best of a few alternating runs
        // (robust on a shared machine), tandem CPU against matrixmultiply.
        let flop = 2.0 * (n as f64).powi(3);
        let (mut best_cpu, mut best_mm) = (f64::MAX, f64::MAX);
        for _ in 0..QUICK_RUNS {
            let t = Instant::now();
            let out = cpu.run(&g, (&host.0, &host.1)).expect("gemm");
            black_box(out.host().expect("host"));
            best_cpu = best_cpu.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            black_box(matrixmultiply(n, &a, &b));
            best_mm = best_mm.min(t.elapsed().as_secs_f64());
        }
        eprintln!(
            "sgemm/{n}: tandem cpu {:.1} GFLOP/s ({:.0}% of FMA peak), matrixmultiply {:.1} GFLOP/s (best of {QUICK_RUNS})",
            flop / best_cpu / 1e9,
            100.0 * flop / best_cpu / peak,
            flop / best_mm / 1e9,
        );

        if n <= NAIVE_MAX {
            group.bench_function(BenchmarkId::new("naive", n), |bch| {
                bch.iter(|| black_box(naive(n, &a, &b)));
            });
        }
        group.bench_function(BenchmarkId::new("matrixmultiply", n), |bch| {
            bch.iter(|| black_box(matrixmultiply(n, &a, &b)));
        });
        // The GPU series up to GPU_MAX (2048 is for the CPU and its peers).
        bench.tandem(&mut group, n, n * n, &host, &g);
        // Keep the work estimate in view: flops per call.
        debug_assert_eq!(
            Kernel::<(&Buffer<f32>, &Buffer<f32>)>::work(&g, &(&host.0, &host.1)).flops,
            2 * (n as u64).pow(3) + (n * n) as u64
        );
    }
    group.finish();
}

common::bench_main!(Duration::from_millis(500), Duration::from_secs(2); gemm);
