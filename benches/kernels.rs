//! Criterion benchmarks: each kernel against the loops a user would write.
//!
//! ```text
//! cargo bench                      # everything (a few minutes)
//! cargo bench -- sum/cpu           # one series of one group
//! cargo bench -- 'axpy/.*/1048576' # one size (the filter is a regex)
//! TANDEM_BENCH_MAX_LOG2=20 cargo bench   # skip the 2^24 inputs
//! ```
//!
//! Groups `sum`, `axpy`, `unary_exp`, `binary_add`, `argmax`, `dot`; in each,
//! one benchmark per series and size (`group/series/n`), with
//! `Throughput::Bytes(Work::bytes())` so criterion reports GB/s. Series:
//! - `serial`: the scalar loop (`iter().sum()`, `zip().map().collect()`).
//! - `rayon`: plain rayon without SIMD (`par_iter().sum()`,
//!   `par_iter().zip().map().collect()`), on the engine's thread pool.
//! - `ndarray`: the peer crate's one-liner where it has the operation
//!   (`sum`, `dot`, `mapv`, `&x + &y`, `Zip::map_collect`; it has no argmax)
//!   on zero-copy `ArrayView1`s of the same data, single-threaded.
//! - `cpu`: tandem's CPU backend on host-resident inputs.
//! - `gpu_host`: the GPU backend on inputs that start on the host: new
//!   buffers are built in `iter_batched`'s (untimed) setup, and the upload and
//!   a buffer result's readback (`Buffer::host`) are timed.
//! - `gpu_resident`: the GPU backend on inputs uploaded once beforehand; a
//!   buffer result stays on the device, but `Gpu::wait` is timed.
//! - `auto`: `Backend::Auto` on host-resident inputs, a buffer result brought
//!   to the host.
//!
//! Outputs are freed inside the timed region (as they would be in a loop).
//! GPU series run only when the engine has a GPU (a line on stderr says when
//! they are skipped), and on a software driver (lavapipe) only up to 2^20
//! elements, to bound the run time;
//! `examples/compare/` sweeps every kernel and size with all columns.

#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use ndarray::{ArrayView1, Zip};
use rayon::prelude::*;
use tandem::kernels::{ArgMax, Axpy, Binary, Dot, Sum, Unary};
use tandem::{Backend, Buffer, Engine, Kernel, Work};

/// Sizes on a software GPU are capped here.
const SOFTWARE_GPU_MAX: usize = 1 << 20;
/// The `a` of `axpy`.
const A: f32 = 2.5;

/// How a timed call ends for a buffer result.
#[derive(Clone, Copy)]
enum Finish {
    /// Bring it to the host (a download if it is on the device).
    Host,
    /// Leave it on the device, but wait for the GPU to finish.
    Device,
}

/// A kernel result the benchmarks know how to finish.
trait Output {
    fn finish(self, engine: &Engine, how: Finish);
}

impl Output for Buffer<f32> {
    fn finish(self, engine: &Engine, how: Finish) {
        match how {
            Finish::Host => {
                black_box(self.host().expect("bringing the result to the host"));
            }
            Finish::Device => {
                if let Some(g) = engine.gpu() {
                    g.wait("bench").expect("waiting for the GPU");
                }
            }
        }
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
scalar_output!(f32, Option<(usize, f32)>);

type LoopFn = Box<dyn Fn(&[f32], &[f32]) + Send + Sync>;
type RunFn = Box<dyn Fn(&Engine, &[Buffer<f32>], Finish)>;
type WorkFn = Box<dyn Fn(&[Buffer<f32>]) -> Work>;
type ChooseFn = Box<dyn Fn(&Engine, &[Buffer<f32>]) -> Backend>;

/// One benchmark group: a kernel, its serial and rayon loops.
struct Case {
    group: &'static str,
    inputs: usize,
    serial: LoopFn,
    rayon: LoopFn,
    ndarray: Option<LoopFn>,
    run: RunFn,
    work: WorkFn,
    choose: ChooseFn,
}

fn one<K, O, R>(
    group: &'static str,
    kernel: K,
    serial: impl Fn(&[f32]) -> R + Send + Sync + 'static,
    rayon: impl Fn(&[f32]) -> R + Send + Sync + 'static,
) -> Case
where
    K: for<'a> Kernel<&'a Buffer<f32>, Out = O> + Clone + 'static,
    O: Output,
{
    let (k, k2) = (kernel.clone(), kernel.clone());
    Case {
        group,
        inputs: 1,
        serial: Box::new(move |x, _| drop(black_box(serial(x)))),
        rayon: Box::new(move |x, _| drop(black_box(rayon(x)))),
        ndarray: None,
        run: Box::new(move |e, b, how| {
            e.run(&kernel, &b[0])
                .expect("running the kernel")
                .finish(e, how);
        }),
        work: Box::new(move |b| k.work(&&b[0])),
        choose: Box::new(move |e, b| e.choose(&k2, &b[0])),
    }
}

fn two<K, O, R>(
    group: &'static str,
    kernel: K,
    serial: impl Fn(&[f32], &[f32]) -> R + Send + Sync + 'static,
    rayon: impl Fn(&[f32], &[f32]) -> R + Send + Sync + 'static,
) -> Case
where
    K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>), Out = O> + Clone + 'static,
    O: Output,
{
    let (k, k2) = (kernel.clone(), kernel.clone());
    Case {
        group,
        inputs: 2,
        serial: Box::new(move |x, y| drop(black_box(serial(x, y)))),
        rayon: Box::new(move |x, y| drop(black_box(rayon(x, y)))),
        ndarray: None,
        run: Box::new(move |e, b, how| {
            e.run(&kernel, (&b[0], &b[1]))
                .expect("running the kernel")
                .finish(e, how);
        }),
        work: Box::new(move |b| k.work(&(&b[0], &b[1]))),
        choose: Box::new(move |e, b| e.choose(&k2, (&b[0], &b[1]))),
    }
}

impl Case {
    /// Adds the `ndarray` series: `f` gets views of the inputs (the second
    /// one empty for a one-input kernel).
    fn ndarray<R>(
        mut self,
        f: impl Fn(ArrayView1<'_, f32>, ArrayView1<'_, f32>) -> R + Send + Sync + 'static,
    ) -> Case {
        self.ndarray = Some(Box::new(move |x, y| {
            drop(black_box(f(ArrayView1::from(x), ArrayView1::from(y))));
        }));
        self
    }
}

/// Index and value of the first largest element, as a user's loop finds it.
fn argmax_serial(x: &[f32]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in x.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best
}

/// The same with rayon: the first index wins ties.
fn argmax_rayon(x: &[f32]) -> Option<(usize, f32)> {
    x.par_iter()
        .copied()
        .enumerate()
        .reduce_with(|a, b| if b.1 > a.1 { b } else { a })
}

fn cases() -> Vec<Case> {
    vec![
        one(
            "sum",
            Sum,
            |x| x.iter().sum::<f32>(),
            |x| x.par_iter().sum::<f32>(),
        )
        .ndarray(|x, _| x.sum()),
        two(
            "axpy",
            Axpy { a: A },
            |x, y| {
                x.iter()
                    .zip(y)
                    .map(|(&x, &y)| A * x + y)
                    .collect::<Vec<f32>>()
            },
            |x, y| {
                x.par_iter()
                    .zip(y)
                    .map(|(&x, &y)| A * x + y)
                    .collect::<Vec<f32>>()
            },
        )
        .ndarray(|x, y| Zip::from(&x).and(&y).map_collect(|&x, &y| A * x + y)),
        one(
            "unary_exp",
            Unary::Exp,
            |x| x.iter().map(|v| v.exp()).collect::<Vec<f32>>(),
            |x| x.par_iter().map(|v| v.exp()).collect::<Vec<f32>>(),
        )
        .ndarray(|x, _| x.mapv(f32::exp)),
        two(
            "binary_add",
            Binary::Add,
            |x, y| x.iter().zip(y).map(|(a, b)| a + b).collect::<Vec<f32>>(),
            |x, y| {
                x.par_iter()
                    .zip(y)
                    .map(|(a, b)| a + b)
                    .collect::<Vec<f32>>()
            },
        )
        .ndarray(|x, y| &x + &y),
        one("argmax", ArgMax, argmax_serial, argmax_rayon),
        two(
            "dot",
            Dot,
            |x, y| x.iter().zip(y).map(|(a, b)| a * b).sum::<f32>(),
            |x, y| x.par_iter().zip(y).map(|(a, b)| a * b).sum::<f32>(),
        )
        .ndarray(|x, y| x.dot(&y)),
    ]
}

/// `n` floats in `[0.5, 2.0)` from a xorshift64* generator.
fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            0.5 + 1.5 * (bits as f32 / (1u32 << 24) as f32)
        })
        .collect()
}

fn host_buffers(data: &[&[f32]]) -> Vec<Buffer<f32>> {
    data.iter().map(|d| Buffer::from(d.to_vec())).collect()
}

/// 2^12, 2^16, 2^20, 2^24, up to `TANDEM_BENCH_MAX_LOG2` (default 24).
fn sizes() -> Vec<usize> {
    let max: u32 = std::env::var("TANDEM_BENCH_MAX_LOG2")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(24);
    [12, 16, 20, 24]
        .into_iter()
        .filter(|&k| k <= max)
        .map(|k| 1usize << k)
        .collect()
}

fn kernels(c: &mut Criterion) {
    let engine = Engine::new().expect("creating the engine");
    eprintln!("{}", engine.info());
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let gpu_max = match engine.gpu() {
        Some(g) if engine.has_gpu() && g.info().is_software => SOFTWARE_GPU_MAX,
        Some(_) if engine.has_gpu() => usize::MAX,
        _ => 0,
    };
    if gpu_max == 0 {
        let why = engine.info().gpu_unavailable.unwrap_or_default();
        eprintln!("no GPU: skipping the gpu_host and gpu_resident series ({why})");
    } else if gpu_max < usize::MAX {
        eprintln!("software GPU: gpu series only up to {gpu_max} elements");
    }
    let sizes = sizes();
    let max_n = sizes.iter().copied().max().unwrap_or(0);
    let xs = random_f32(max_n, 0x9E37_79B9_7F4A_7C15);
    let ys = random_f32(max_n, 0xD1B5_4A32_D192_ED03);

    for case in cases() {
        let mut group = c.benchmark_group(case.group);
        group.sampling_mode(SamplingMode::Flat);
        for &n in &sizes {
            let (x, y) = (&xs[..n], &ys[..n]);
            let data: Vec<&[f32]> = [x, y][..case.inputs].to_vec();
            let host = host_buffers(&data);
            group.throughput(Throughput::Bytes((case.work)(&host).bytes()));

            group.bench_function(BenchmarkId::new("serial", n), |b| {
                b.iter(|| (case.serial)(x, y));
            });
            group.bench_function(BenchmarkId::new("rayon", n), |b| {
                b.iter(|| cpu.cpu().install(|| (case.rayon)(x, y)));
            });
            if let Some(nd) = &case.ndarray {
                group.bench_function(BenchmarkId::new("ndarray", n), |b| {
                    b.iter(|| nd(x, y));
                });
            }
            group.bench_function(BenchmarkId::new("cpu", n), |b| {
                b.iter(|| (case.run)(&cpu, &host, Finish::Host));
            });
            if n <= gpu_max {
                group.bench_function(BenchmarkId::new("gpu_host", n), |b| {
                    b.iter_batched(
                        || host_buffers(&data),
                        |bufs| (case.run)(&gpu, &bufs, Finish::Host),
                        BatchSize::LargeInput,
                    );
                });
                let resident = host_buffers(&data);
                if let Some(g) = engine.gpu() {
                    for buf in &resident {
                        g.resident("bench", buf).expect("uploading the inputs");
                    }
                }
                group.bench_function(BenchmarkId::new("gpu_resident", n), |b| {
                    b.iter(|| (case.run)(&gpu, &resident, Finish::Device));
                });
            }
            group.bench_function(BenchmarkId::new("auto", n), |b| {
                if (case.choose)(&engine, &host) == Backend::Gpu {
                    // A GPU call leaves device copies on its inputs: give
                    // every call new host-only ones.
                    b.iter_batched(
                        || host_buffers(&data),
                        |bufs| (case.run)(&engine, &bufs, Finish::Host),
                        BatchSize::LargeInput,
                    );
                } else {
                    b.iter(|| (case.run)(&engine, &host, Finish::Host));
                }
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
        .nresamples(10_000)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = kernels
}
criterion_main!(benches);
