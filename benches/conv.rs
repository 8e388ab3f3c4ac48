//! Criterion benchmarks of `Conv2d` and `Transpose` against the loops a user
//! would write, with the machine's roofline measured in the same run.
//!
//! ```text
//! cargo bench --bench conv                      # everything (a few minutes)
//! cargo bench --bench conv -- 'conv2d/cpu'      # one series
//! cargo bench --bench conv -- roofline          # FMA peak and copy bandwidth only
//! ```
//!
//! Groups:
//! - `conv2d/<series>/<n>x<n>_<f>x<f>`: images 256², 1024², 2048², filters
//!   3×3 and 7×7, zero border. `Throughput::Elements` counts **flops**
//!   (2·h·w·fh·fw), so criterion's `elem/s` reads as flop/s.
//! - `transpose/<series>/<n>x<n>`: f32 matrices 1024², 4096².
//!   `Throughput::Bytes` counts bytes read plus written (8 per element).
//! - `roofline/fma_peak` (elem/s = flop/s of independent FMAs at the CPU's
//!   widest SIMD width on
//!   every thread) and `roofline/copy/<n>` (parallel `copy_from_slice` of
//!   4096² f32, bytes read plus written): the ceilings to compare against.
//!
//! Series (the tandem ones from `benches/common`): `serial` (scalar loop),
//! `transpose_crate` (the `transpose` crate; transpose only), `rayon` (the
//! scalar loop over rows with rayon, no SIMD; conv only), `cpu` (tandem CPU), `gpu_host` (inputs built
//! on the host per iteration, upload and readback timed), `gpu_resident`
//! (inputs uploaded once, result left on the device, `Gpu::wait` timed),
//! `auto` (`Backend::Auto`, result brought to the host). GPU series run only
//! with a GPU, and on a software driver (lavapipe) only up to 1024².

#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Bench, SEED_X, SEED_Y};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rayon::prelude::*;
use tandem::cpu::peak::fma_burst;
use tandem::kernels::{Border, Conv2d, Transpose};
use tandem::{Buffer, Kernel};

/// Pixels (or matrix elements) past which a software GPU is skipped.
const SOFTWARE_GPU_MAX: usize = 1024 * 1024;

/// `n` floats in `[-0.5, 0.5)`.
fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut x = common::random_f32(n, seed);
    // [0.5, 2) onto [-0.5, 0.5).
    x.iter_mut().for_each(|v| *v = (*v - 0.5) / 1.5 - 0.5);
    x
}

/// One output row of a zero-border correlation, as a user writes it.
fn conv_row_scalar(k: &Conv2d, img: &[f32], f: &[f32], y: usize, out: &mut [f32]) {
    let (h, w) = (k.height as isize, k.width as isize);
    let (fh, fw) = (k.filter_height as isize, k.filter_width as isize);
    for (x, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for i in 0..fh {
            let sy = y as isize + i - fh / 2;
            if sy < 0 || sy >= h {
                continue;
            }
            for j in 0..fw {
                let sx = x as isize + j - fw / 2;
                if sx >= 0 && sx < w {
                    acc += f[(i * fw + j) as usize] * img[(sy * w + sx) as usize];
                }
            }
        }
        *o = acc;
    }
}

fn conv_serial(k: &Conv2d, img: &[f32], f: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; k.height * k.width];
    for (y, row) in out.chunks_mut(k.width).enumerate() {
        conv_row_scalar(k, img, f, y, row);
    }
    out
}

fn conv_rayon(k: &Conv2d, img: &[f32], f: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; k.height * k.width];
    out.par_chunks_mut(k.width)
        .enumerate()
        .for_each(|(y, row)| conv_row_scalar(k, img, f, y, row));
    out
}

fn transpose_serial(rows: usize, cols: usize, x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}

fn conv2d(c: &mut Criterion) {
    let bench = Bench::new(SOFTWARE_GPU_MAX);
    let cpu = &bench.cpu;
    let mut group = c.benchmark_group("conv2d");
    group.sampling_mode(SamplingMode::Flat);
    for n in [256usize, 1024, 2048] {
        let img = random_f32(n * n, SEED_X);
        for fs in [3usize, 7] {
            let f = random_f32(fs * fs, SEED_Y);
            let k = Conv2d {
                height: n,
                width: n,
                filter_height: fs,
                filter_width: fs,
                border: Border::Zero,
            };
            let (ib, fb) = (Buffer::from(img.clone()), Buffer::from(f.clone()));
            group.throughput(Throughput::Elements(k.work(&(&ib, &fb)).flops));
            let id = |series: &str| BenchmarkId::new(series, format!("{n}x{n}_{fs}x{fs}"));
            group.bench_function(id("serial"), |b| {
                b.iter(|| black_box(conv_serial(&k, &img, &f)));
            });
            group.bench_function(id("rayon"), |b| {
                b.iter(|| black_box(cpu.cpu().install(|| conv_rayon(&k, &img, &f))));
            });
            let label = format!("{n}x{n}_{fs}x{fs}");
            bench.tandem(&mut group, &label, n * n, &(ib, fb), &k);
        }
    }
    group.finish();
}

fn transpose(c: &mut Criterion) {
    let bench = Bench::new(SOFTWARE_GPU_MAX);
    let mut group = c.benchmark_group("transpose");
    group.sampling_mode(SamplingMode::Flat);
    for n in [1024usize, 4096] {
        let x = random_f32(n * n, 0x5851_F42D_4C95_7F2D);
        let k = Transpose { rows: n, cols: n };
        let xb = Buffer::from(x.clone());
        group.throughput(Throughput::Bytes(k.work(&&xb).bytes()));
        let id = |series: &str| BenchmarkId::new(series, format!("{n}x{n}"));
        group.bench_function(id("serial"), |b| {
            b.iter(|| black_box(transpose_serial(n, n, &x)));
        });
        // The `transpose` crate: cache-blocked and recursive, one thread.
        group.bench_function(id("transpose_crate"), |b| {
            let mut out = vec![0.0f32; n * n];
            b.iter(|| {
                transpose::transpose(&x, &mut out, n, n);
                black_box(&out);
            });
        });
        bench.tandem(&mut group, &format!("{n}x{n}"), n * n, &xb, &k);
    }
    group.finish();
}

fn roofline(c: &mut Criterion) {
    let engine = tandem::Engine::new().expect("creating the engine");
    let threads = engine.cpu().threads();
    let mut group = c.benchmark_group("roofline");
    group.sampling_mode(SamplingMode::Flat);
    const ITERS: usize = 1 << 20;
    // flops of one burst on every thread, at the CPU's widest SIMD width.
    let flops = threads as u64 * fma_burst(1, 0.0).1 * ITERS as u64;
    group.throughput(Throughput::Elements(flops));
    group.bench_function("fma_peak", |b| {
        b.iter(|| {
            engine.cpu().install(|| {
                (0..threads)
                    .into_par_iter()
                    .with_max_len(1)
                    .map(|t| fma_burst(black_box(ITERS), t as f32).0)
                    .sum::<f32>()
            })
        });
    });
    let n = 4096 * 4096;
    let src = random_f32(n, 7);
    let mut dst = vec![0.0f32; n];
    group.throughput(Throughput::Bytes((n * 8) as u64));
    group.bench_function(BenchmarkId::new("copy", n), |b| {
        b.iter(|| {
            engine.cpu().install(|| {
                dst.par_chunks_mut(1 << 16)
                    .zip(src.par_chunks(1 << 16))
                    .for_each(|(d, s)| d.copy_from_slice(s));
            });
            black_box(&dst);
        });
    });
    group.finish();
}

common::bench_main!(Duration::from_millis(300), Duration::from_secs(1); roofline, conv2d, transpose);
