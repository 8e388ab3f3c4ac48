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

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Bench, Host, Output, SEED_X, SEED_Y, SOFTWARE_GPU_MAX};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use ndarray::{ArrayView1, Zip};
use rayon::prelude::*;
use tandem::kernels::{ArgMax, Axpy, Binary, Dot, Sum, Unary};
use tandem::{Buffer, Kernel, Work};

/// The `a` of `axpy`.
const A: f32 = 2.5;

type LoopFn = Box<dyn Fn(&[f32], &[f32]) + Send + Sync>;
type WorkFn = Box<dyn Fn(&[f32], &[f32]) -> Work>;
type TandemFn = Box<dyn Fn(&Bench, &mut BenchmarkGroup<'_, WallTime>, usize, &[f32], &[f32])>;

/// One benchmark group: a kernel, its serial, rayon and ndarray loops.
struct Case {
    group: &'static str,
    serial: LoopFn,
    rayon: LoopFn,
    ndarray: Option<LoopFn>,
    work: WorkFn,
    tandem: TandemFn,
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
    let k = kernel.clone();
    Case {
        group,
        serial: Box::new(move |x, _| drop(black_box(serial(x)))),
        rayon: Box::new(move |x, _| drop(black_box(rayon(x)))),
        ndarray: None,
        work: Box::new(move |x, _| k.work(&&Buffer::from(x.to_vec()))),
        tandem: Box::new(move |bench, group, n, x, _| {
            bench.tandem(group, n, n, &Buffer::from(x.to_vec()), &kernel);
        }),
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
    let k = kernel.clone();
    let bufs = |x: &[f32], y: &[f32]| (Buffer::from(x.to_vec()), Buffer::from(y.to_vec()));
    Case {
        group,
        serial: Box::new(move |x, y| drop(black_box(serial(x, y)))),
        rayon: Box::new(move |x, y| drop(black_box(rayon(x, y)))),
        ndarray: None,
        work: Box::new(move |x, y| k.work(&bufs(x, y).input())),
        tandem: Box::new(move |bench, group, n, x, y| {
            bench.tandem(group, n, 2 * n, &bufs(x, y), &kernel);
        }),
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

fn kernels(c: &mut Criterion) {
    let bench = Bench::new(SOFTWARE_GPU_MAX);
    let sizes = common::sizes(&[12, 16, 20, 24]);
    let max_n = sizes.iter().copied().max().unwrap_or(0);
    let xs = common::random_f32(max_n, SEED_X);
    let ys = common::random_f32(max_n, SEED_Y);

    for case in cases() {
        let mut group = c.benchmark_group(case.group);
        group.sampling_mode(SamplingMode::Flat);
        for &n in &sizes {
            let (x, y) = (&xs[..n], &ys[..n]);
            group.throughput(Throughput::Bytes((case.work)(x, y).bytes()));
            group.bench_function(BenchmarkId::new("serial", n), |b| {
                b.iter(|| (case.serial)(x, y));
            });
            group.bench_function(BenchmarkId::new("rayon", n), |b| {
                b.iter(|| bench.cpu.cpu().install(|| (case.rayon)(x, y)));
            });
            if let Some(nd) = &case.ndarray {
                group.bench_function(BenchmarkId::new("ndarray", n), |b| {
                    b.iter(|| nd(x, y));
                });
            }
            (case.tandem)(&bench, &mut group, n, x, y);
        }
        group.finish();
    }
}

common::bench_main!(Duration::from_millis(300), Duration::from_millis(700); kernels);
