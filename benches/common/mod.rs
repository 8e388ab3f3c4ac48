//! What every criterion bench shares: the engine and its GPU cap, the
//! criterion settings, seeded inputs, and the four tandem series
//! (`cpu`, `gpu_host`, `gpu_resident`, `auto`) of one kernel at one size.
//! A bench file names its kernels and its peers' series; nothing else.
//!
//! The series, for a kernel `k` on host data `d`:
//! - `cpu`: `engine.on(Backend::Cpu).run(k, d)` on host-resident inputs.
//! - `gpu_host`: the GPU backend on inputs that start on the host: new
//!   host-only buffers are made in `iter_batched`'s (untimed) setup, and the
//!   upload and a buffer result's readback (`Buffer::host`) are timed.
//! - `gpu_resident`: the GPU backend on inputs uploaded once beforehand; a
//!   buffer result stays on the device, but `Gpu::wait` is timed.
//! - `auto`: `Backend::Auto` on host-resident inputs (new ones for every
//!   call when the dispatcher picks the GPU, which leaves device copies), a
//!   buffer result brought to the host.
//!
//! Results are dropped inside the timed region, as they would be in a loop.

#![allow(dead_code, reason = "each bench file uses a subset of these helpers")]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion};
use tandem::kernels::HistogramCounts;
use tandem::{Backend, Buffer, Element, Engine, Inputs, Kernel};

/// On a software GPU (lavapipe) the GPU series run only up to this many data
/// elements, unless a bench asks for another cap.
pub(crate) const SOFTWARE_GPU_MAX: usize = 1 << 20;

/// Seeds of the first and second inputs.
pub(crate) const SEED_X: u64 = 0x9E37_79B9_7F4A_7C15;
pub(crate) const SEED_Y: u64 = 0xD1B5_4A32_D192_ED03;

/// The engine and its three views, with the size the GPU series stop at.
pub(crate) struct Bench {
    pub(crate) engine: Engine,
    pub(crate) cpu: Engine,
    pub(crate) gpu: Engine,
    /// The GPU series run at sizes (in data elements) up to this; 0 without
    /// a GPU.
    pub(crate) gpu_max: usize,
}

impl Bench {
    /// A new engine; prints its description and, when the GPU series will
    /// be skipped or capped, why.
    pub(crate) fn new(software_gpu_max: usize) -> Bench {
        let engine = Engine::new().expect("creating the engine");
        eprintln!("{}", engine.info());
        let gpu_max = match engine.gpu() {
            Some(g) if engine.has_gpu() && g.info().is_software => software_gpu_max,
            Some(_) if engine.has_gpu() => usize::MAX,
            _ => 0,
        };
        if gpu_max == 0 {
            let why = engine.info().gpu_unavailable.unwrap_or_default();
            eprintln!("no GPU: skipping the gpu_host and gpu_resident series ({why})");
        } else if gpu_max < usize::MAX {
            eprintln!("software GPU: gpu series only up to {gpu_max} data elements");
        }
        Bench {
            cpu: engine.on(Backend::Cpu),
            gpu: engine.on(Backend::Gpu),
            engine,
            gpu_max,
        }
    }

    /// The `cpu`, `gpu_host`, `gpu_resident` and `auto` series of `kernel`
    /// on `data` at the size labelled `n`; the GPU ones only when `elements`
    /// (the size in data elements) is within [`Bench::gpu_max`].
    pub(crate) fn tandem<D, K>(
        &self,
        group: &mut BenchmarkGroup<'_, WallTime>,
        n: impl std::fmt::Display + Copy,
        elements: usize,
        data: &D,
        kernel: &K,
    ) where
        D: Host,
        K: for<'a> Kernel<D::In<'a>>,
        for<'a> <K as Kernel<D::In<'a>>>::Out: Output,
    {
        let (cpu, gpu, engine) = (&self.cpu, &self.gpu, &self.engine);
        group.bench_function(BenchmarkId::new("cpu", n), |b| {
            b.iter(|| run(cpu, kernel, data.input()).finish(cpu, Finish::Host));
        });
        if elements <= self.gpu_max {
            group.bench_function(BenchmarkId::new("gpu_host", n), |b| {
                b.iter_batched(
                    || data.fresh(),
                    |d| run(gpu, kernel, d.input()).finish(gpu, Finish::Host),
                    BatchSize::LargeInput,
                );
            });
            let resident = data.fresh();
            if let Some(g) = engine.gpu() {
                resident.upload(g);
                g.wait("bench").expect("uploading the inputs");
            }
            group.bench_function(BenchmarkId::new("gpu_resident", n), |b| {
                b.iter(|| run(gpu, kernel, resident.input()).finish(gpu, Finish::Device));
            });
        }
        group.bench_function(BenchmarkId::new("auto", n), |b| {
            if engine.choose(kernel, data.input()) == Backend::Gpu {
                b.iter_batched(
                    || data.fresh(),
                    |d| run(engine, kernel, d.input()).finish(engine, Finish::Host),
                    BatchSize::LargeInput,
                );
            } else {
                b.iter(|| run(engine, kernel, data.input()).finish(engine, Finish::Host));
            }
        });
    }
}

fn run<I: Inputs + Clone, K: Kernel<I>>(engine: &Engine, kernel: &K, input: I) -> K::Out {
    engine
        .run(kernel, input)
        .unwrap_or_else(|e| panic!("{}: {e}", kernel.name()))
}

/// Criterion with few samples (the machines are shared; criterion's
/// confidence intervals say how far to trust a figure), no plots.
pub(crate) fn config(warm_up: Duration, measurement: Duration) -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measurement)
        .nresamples(10_000)
        .without_plots()
}

/// Powers of two 2^k for `k` in `log2s`, up to `TANDEM_BENCH_MAX_LOG2`
/// (default: no cap).
pub(crate) fn sizes(log2s: &[u32]) -> Vec<usize> {
    let max: u32 = std::env::var("TANDEM_BENCH_MAX_LOG2")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u32::MAX);
    log2s
        .iter()
        .filter(|&&k| k <= max)
        .map(|&k| 1usize << k)
        .collect()
}

/// `n` floats in `[0.5, 2.0)` from a xorshift64* generator.
pub(crate) fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    xorshift(n, seed)
        .map(|bits| 0.5 + 1.5 * ((bits >> 40) as f32 / (1u32 << 24) as f32))
        .collect()
}

/// `n` u32 with all 32 bits random (a radix sort cannot skip a pass).
pub(crate) fn random_u32(n: usize, seed: u64) -> Vec<u32> {
    xorshift(n, seed).map(|bits| (bits >> 32) as u32).collect()
}

fn xorshift(n: usize, seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed | 1;
    (0..n).map(move |_| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// How a timed call ends for a buffer result.
#[derive(Clone, Copy)]
pub(crate) enum Finish {
    /// Bring it to the host (a download if it is on the device).
    Host,
    /// Leave it on the device, but wait for the GPU to finish.
    Device,
}

/// A kernel result the benchmarks know how to finish.
pub(crate) trait Output {
    fn finish(self, engine: &Engine, how: Finish);
}

impl<T: Element> Output for Buffer<T> {
    fn finish(self, engine: &Engine, how: Finish) {
        match how {
            Finish::Host => drop(black_box(self.host().expect("bringing the result home"))),
            Finish::Device => {
                if let Some(g) = engine.gpu() {
                    g.wait("bench").expect("waiting for the GPU");
                }
                drop(black_box(self));
            }
        }
    }
}

impl<A: Output, B: Output> Output for (A, B) {
    fn finish(self, engine: &Engine, how: Finish) {
        self.0.finish(engine, how);
        self.1.finish(engine, how);
    }
}

macro_rules! scalar_output {
    ($($t:ty),*) => {$(
        impl Output for $t {
            fn finish(self, _: &Engine, _: Finish) {
                black_box(self);
            }
        }
    )*};
}
scalar_output!(f32, u32, Option<f32>, Option<(usize, f32)>, HistogramCounts);

/// Host inputs of a kernel: one `Buffer` or a pair of them.
pub(crate) trait Host {
    /// The kernel's input, borrowed.
    type In<'a>: Inputs + Clone
    where
        Self: 'a;
    fn input(&self) -> Self::In<'_>;
    /// New host-only copies.
    fn fresh(&self) -> Self;
    /// Queues uploads of every buffer to `gpu`.
    fn upload(&self, gpu: &tandem::Gpu);
}

impl<T: Element> Host for Buffer<T> {
    type In<'a> = &'a Buffer<T>;
    fn input(&self) -> &Buffer<T> {
        self
    }
    fn fresh(&self) -> Self {
        Buffer::from(self.to_vec().expect("reading the inputs"))
    }
    fn upload(&self, gpu: &tandem::Gpu) {
        gpu.resident("bench", self).expect("uploading the inputs");
    }
}

impl<A: Element, B: Element> Host for (Buffer<A>, Buffer<B>) {
    type In<'a> = (&'a Buffer<A>, &'a Buffer<B>);
    fn input(&self) -> Self::In<'_> {
        (&self.0, &self.1)
    }
    fn fresh(&self) -> Self {
        (self.0.fresh(), self.1.fresh())
    }
    fn upload(&self, gpu: &tandem::Gpu) {
        self.0.upload(gpu);
        self.1.upload(gpu);
    }
}

/// A bench file's `main`: its targets, run under [`config`] with these
/// warm-up and measurement times.
macro_rules! bench_main {
    ($warm_up:expr, $measurement:expr; $($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = bench_targets;
            config = common::config($warm_up, $measurement);
            targets = $($target),+
        }
        criterion::criterion_main!(bench_targets);
    };
}
pub(crate) use bench_main;
