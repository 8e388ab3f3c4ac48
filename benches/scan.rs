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

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rayon::prelude::*;
use tandem::kernels::{CompactIf, Compare, HistogramRange, Scan};
use tandem::{Backend, Buffer, Engine};

/// Sizes on a software GPU are capped here.
const SOFTWARE_GPU_MAX: usize = 1 << 20;
const LO: f32 = 0.5;
const HI: f32 = 2.0;
const BINS: u32 = 256;
const KEEP_ABOVE: f32 = 1.25;

/// Elements per task of the plain-rayon loops.
const RAYON_CHUNK: usize = 1 << 16;

#[derive(Clone, Copy)]
enum Finish {
    Host,
    Device,
}

fn finish(engine: &Engine, out: Buffer<f32>, how: Finish) {
    match how {
        Finish::Host => {
            black_box(out.host().expect("bringing the result to the host"));
        }
        Finish::Device => {
            if let Some(g) = engine.gpu() {
                g.wait("bench").expect("waiting for the GPU");
            }
        }
    }
}

type LoopFn = Box<dyn Fn(&[f32]) + Send + Sync>;
type RunFn = Box<dyn Fn(&Engine, &Buffer<f32>, Finish)>;
type ChooseFn = Box<dyn Fn(&Engine, &Buffer<f32>) -> Backend>;

struct Case {
    group: &'static str,
    throughput: fn(usize) -> Throughput,
    serial: LoopFn,
    rayon: LoopFn,
    run: RunFn,
    choose: ChooseFn,
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

fn hist_serial(x: &[f32]) -> Vec<u32> {
    let mut h = vec![0u32; BINS as usize + 3];
    let scale = BINS as f32 / (HI - LO);
    for &v in x {
        let s = if v.is_nan() {
            BINS as usize + 2
        } else if v < LO {
            BINS as usize
        } else if v >= HI {
            BINS as usize + 1
        } else {
            ((v - LO) * scale).floor().min((BINS - 1) as f32) as usize
        };
        h[s] += 1;
    }
    h
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

fn cases() -> Vec<Case> {
    let compact = CompactIf {
        cmp: Compare::Gt,
        threshold: KEEP_ABOVE,
    };
    let hist = HistogramRange {
        lo: LO,
        hi: HI,
        bins: BINS,
    };
    vec![
        Case {
            group: "scan",
            throughput: |n| Throughput::Bytes(8 * n as u64),
            serial: Box::new(|x| drop(black_box(scan_serial(x)))),
            rayon: Box::new(|x| drop(black_box(scan_rayon(x)))),
            run: Box::new(|e, x, how| {
                finish(e, e.run(&Scan::inclusive(), x).expect("scan"), how);
            }),
            choose: Box::new(|e, x| e.choose(&Scan::inclusive(), x)),
        },
        Case {
            group: "compact",
            throughput: |n| Throughput::Elements(n as u64),
            serial: Box::new(|x| {
                black_box(
                    x.iter()
                        .copied()
                        .filter(|&v| v > KEEP_ABOVE)
                        .collect::<Vec<f32>>(),
                );
            }),
            rayon: Box::new(|x| {
                black_box(
                    x.par_iter()
                        .copied()
                        .filter(|&v| v > KEEP_ABOVE)
                        .collect::<Vec<f32>>(),
                );
            }),
            run: Box::new(move |e, x, how| {
                finish(e, e.run(&compact, x).expect("compact"), how);
            }),
            choose: Box::new(move |e, x| e.choose(&compact, x)),
        },
        Case {
            group: "histogram",
            throughput: |n| Throughput::Elements(n as u64),
            serial: Box::new(|x| drop(black_box(hist_serial(x)))),
            rayon: Box::new(|x| drop(black_box(hist_rayon(x)))),
            // The counts always come to the host.
            run: Box::new(move |e, x, _| drop(black_box(e.run(&hist, x).expect("histogram")))),
            choose: Box::new(move |e, x| e.choose(&hist, x)),
        },
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

fn benches(c: &mut Criterion) {
    let engine = Engine::new().expect("creating the engine");
    eprintln!("{}", engine.info());
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let gpu_max = match engine.gpu() {
        Some(g) if engine.has_gpu() && g.info().is_software => SOFTWARE_GPU_MAX,
        Some(_) if engine.has_gpu() => usize::MAX,
        _ => {
            eprintln!("no GPU: skipping the gpu_host and gpu_resident series");
            0
        }
    };
    let sizes = sizes();
    let xs = random_f32(
        sizes.iter().copied().max().unwrap_or(0),
        0x9E37_79B9_7F4A_7C15,
    );

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
            let host = Buffer::from(x.to_vec());
            group.throughput((case.throughput)(n));
            group.bench_function(BenchmarkId::new("serial", n), |b| {
                b.iter(|| (case.serial)(x));
            });
            group.bench_function(BenchmarkId::new("rayon", n), |b| {
                b.iter(|| cpu.cpu().install(|| (case.rayon)(x)));
            });
            group.bench_function(BenchmarkId::new("cpu", n), |b| {
                b.iter(|| (case.run)(&cpu, &host, Finish::Host));
            });
            if n <= gpu_max {
                group.bench_function(BenchmarkId::new("gpu_host", n), |b| {
                    b.iter_batched(
                        || Buffer::from(x.to_vec()),
                        |buf| (case.run)(&gpu, &buf, Finish::Host),
                        BatchSize::LargeInput,
                    );
                });
                let resident = Buffer::from(x.to_vec());
                if let Some(g) = engine.gpu() {
                    g.resident("bench", &resident).expect("uploading the input");
                }
                group.bench_function(BenchmarkId::new("gpu_resident", n), |b| {
                    b.iter(|| (case.run)(&gpu, &resident, Finish::Device));
                });
            }
            group.bench_function(BenchmarkId::new("auto", n), |b| {
                if (case.choose)(&engine, &host) == Backend::Gpu {
                    b.iter_batched(
                        || Buffer::from(x.to_vec()),
                        |buf| (case.run)(&engine, &buf, Finish::Host),
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
    name = scan_family;
    config = config();
    targets = benches
}
criterion_main!(scan_family);
