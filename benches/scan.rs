//! Criterion benchmarks of the scan family: `scan` (inclusive f32 prefix
//! sum), `compact` (`CompactIf { Gt, 1.25 }` on f32 in [0.5, 2): about half
//! kept), `histogram` (`HistogramRange` over [0.5, 2) into 256 bins), and
//! `bandwidth`, a parallel copy of the same bytes as the scan's ideal
//! traffic, measured in the same run as the roofline to compare with.
//!
//! ```text
//! cargo bench --bench scan                         # everything (a few minutes)
//! cargo bench --bench scan -- 'scan/cpu'           # one series
//! TANDEM_BENCH_MAX_LOG2=20 cargo bench --bench scan
//! ```
//!
//! Series per group and size (`group/series/n`):
//! - `serial`: the scalar loop a user would write.
//! - `rayon`: plain rayon without SIMD, on the engine's thread pool.
//! - `cpu`: tandem's CPU backend on host-resident inputs.
//! - `gpu_host`: the GPU backend on inputs that start on the host (new
//!   buffers per iteration in untimed setup; upload and the result's
//!   readback timed).
//! - `gpu_resident`: the GPU backend on inputs uploaded once; the result
//!   stays on the device but `Gpu::wait` is timed.
//! - `auto`: `Backend::Auto` on host-resident inputs, the result brought to
//!   the host.
//!
//! Throughput: `scan` and `bandwidth` in bytes of one read and one write
//! per element (the ideal traffic of a scan, so their GB/s compare
//! directly); `compact` and `histogram` in elements. GPU series run only with
//! a GPU, and on a software driver only up to 2^20 elements.

#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Bench, SEED_X, SOFTWARE_GPU_MAX};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use rayon::prelude::*;
use tandem::Buffer;
use tandem::kernels::{CompactIf, Compare, HistogramRange, Scan};

const LO: f32 = 0.5;
const HI: f32 = 2.0;
const BINS: u32 = 256;
const KEEP_ABOVE: f32 = 1.25;

/// Elements per task of the plain-rayon loops.
const RAYON_CHUNK: usize = 1 << 16;

type LoopFn = Box<dyn Fn(&[f32]) + Send + Sync>;
type TandemFn = Box<dyn Fn(&Bench, &mut BenchmarkGroup<'_, WallTime>, usize, &Buffer<f32>)>;

struct Case {
    group: &'static str,
    throughput: fn(usize) -> Throughput,
    serial: LoopFn,
    rayon: LoopFn,
    tandem: TandemFn,
}

fn scan_serial(x: &[f32]) -> Vec<f32> {
    let mut acc = 0.0f32;
    x.iter()
        .map(|&v| {
            acc += v;
            acc
        })
        .collect()
}

/// Two-pass scan with plain rayon: chunk sums, then each chunk from its carry.
fn scan_rayon(x: &[f32]) -> Vec<f32> {
    let sums: Vec<f32> = x
        .par_chunks(RAYON_CHUNK)
        .map(|c| c.iter().sum::<f32>())
        .collect();
    let mut carry = 0.0f32;
    let carries: Vec<f32> = sums
        .iter()
        .map(|s| {
            let c = carry;
            carry += s;
            c
        })
        .collect();
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(RAYON_CHUNK)
        .zip(x.par_chunks(RAYON_CHUNK))
        .zip(carries)
        .for_each(|((o, x), mut acc)| {
            for (o, &v) in o.iter_mut().zip(x) {
                acc += v;
                *o = acc;
            }
        });
    out
}

/// The catalogue's scalar oracle is the serial loop.
fn hist_serial(x: &[f32]) -> Vec<u32> {
    tandem::kernels::catalogue::range_counts(x, LO, HI, BINS)
}

fn hist_rayon(x: &[f32]) -> Vec<u32> {
    x.par_chunks(RAYON_CHUNK).map(hist_serial).reduce(
        || vec![0u32; BINS as usize + 3],
        |mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        },
    )
}

/// The compaction's predicate.
fn kept(v: &f32) -> bool {
    *v > KEEP_ABOVE
}

fn cases() -> Vec<Case> {
    let compact = CompactIf {
        cmp: Compare::Gt,
        threshold: KEEP_ABOVE,
    };
    let hist = HistogramRange {
        lo: f64::from(LO),
        hi: f64::from(HI),
        bins: BINS,
    };
    vec![
        Case {
            group: "scan",
            throughput: |n| Throughput::Bytes(8 * n as u64),
            serial: Box::new(|x| drop(black_box(scan_serial(x)))),
            rayon: Box::new(|x| drop(black_box(scan_rayon(x)))),
            tandem: Box::new(|bench, g, n, x| bench.tandem(g, n, n, x, &Scan::inclusive())),
        },
        Case {
            group: "compact",
            throughput: |n| Throughput::Elements(n as u64),
            serial: Box::new(|x| {
                drop(black_box(
                    x.iter().copied().filter(kept).collect::<Vec<_>>(),
                ))
            }),
            rayon: Box::new(|x| {
                drop(black_box(
                    x.par_iter().copied().filter(kept).collect::<Vec<_>>(),
                ));
            }),
            tandem: Box::new(move |bench, g, n, x| bench.tandem(g, n, n, x, &compact)),
        },
        Case {
            group: "histogram",
            throughput: |n| Throughput::Elements(n as u64),
            serial: Box::new(|x| drop(black_box(hist_serial(x)))),
            rayon: Box::new(|x| drop(black_box(hist_rayon(x)))),
            // The counts always come to the host.
            tandem: Box::new(move |bench, g, n, x| bench.tandem(g, n, n, x, &hist)),
        },
    ]
}

fn benches(c: &mut Criterion) {
    let bench = Bench::new(SOFTWARE_GPU_MAX);
    let cpu = &bench.cpu;
    let sizes = common::sizes(&[12, 16, 20, 24]);
    let xs = common::random_f32(sizes.iter().copied().max().unwrap_or(0), SEED_X);

    // The roofline: a parallel copy moving the bytes a scan ideally moves.
    let mut group = c.benchmark_group("bandwidth");
    group.sampling_mode(SamplingMode::Flat);
    for &n in &sizes {
        let x = &xs[..n];
        let mut dst = vec![0.0f32; n];
        group.throughput(Throughput::Bytes(8 * n as u64));
        group.bench_function(BenchmarkId::new("copy", n), |b| {
            b.iter(|| {
                cpu.cpu().install(|| {
                    dst.par_chunks_mut(RAYON_CHUNK)
                        .zip(x.par_chunks(RAYON_CHUNK))
                        .for_each(|(d, s)| d.copy_from_slice(s));
                });
                black_box(&dst);
            });
        });
    }
    group.finish();

    for case in cases() {
        let mut group = c.benchmark_group(case.group);
        group.sampling_mode(SamplingMode::Flat);
        for &n in &sizes {
            let x = &xs[..n];
            group.throughput((case.throughput)(n));
            group.bench_function(BenchmarkId::new("serial", n), |b| {
                b.iter(|| (case.serial)(x));
            });
            group.bench_function(BenchmarkId::new("rayon", n), |b| {
                b.iter(|| cpu.cpu().install(|| (case.rayon)(x)));
            });
            (case.tandem)(&bench, &mut group, n, &Buffer::from(x.to_vec()));
        }
        group.finish();
    }
}

common::bench_main!(Duration::from_millis(300), Duration::from_millis(700); benches);
