//! The machine's limits: host read and triad bandwidth, the FMA peak at the
//! CPU's widest SIMD width, and the GPU's copy bandwidth and FMA peak.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use tandem::gpu::{Bind, Dispatch, ShaderSpec};
use tandem::kernels::Unary;
use tandem::{Backend, Buffer, Engine, Gpu, Work};

use crate::BoxResult;
use crate::cases::{Finish, Output};
use crate::timing::timed;

/// Elements of each STREAM-triad array: 64 MiB of f32, beyond any cache.
pub(crate) const TRIAD_LEN: usize = 1 << 24;

/// The machine's limits, measured at the start of the run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Roofline {
    /// STREAM triad, bytes/s (two reads and a write per element).
    pub(crate) triad: f64,
    /// A read-only pass, bytes/s.
    pub(crate) read: f64,
    /// f32 FMA peak of the host on all of the engine's threads, flops/s.
    pub(crate) fma: f64,
    /// The same in f64 (the `_f64` kernels' roofline), flops/s.
    pub(crate) fma64: f64,
    /// A resident GPU copy kernel, bytes/s (read + write).
    pub(crate) gpu_copy: Option<f64>,
    /// f32 FMA peak of the GPU, flops/s.
    pub(crate) gpu_fma: Option<f64>,
}

impl Roofline {
    pub(crate) fn measure(engine: &Engine) -> Roofline {
        let (gpu_copy, gpu_fma) = match engine.gpu().filter(|_| engine.has_gpu()) {
            // A GPU that cannot run these leaves its roofline columns empty.
            Some(g) => (gpu_copy_bandwidth(engine).ok(), gpu_fma_peak(g).ok()),
            None => (None, None),
        };
        let (fma, fma64) = fma_peaks(engine);
        Roofline {
            triad: triad_bandwidth(engine),
            read: read_bandwidth(engine),
            fma,
            fma64,
            gpu_copy,
            gpu_fma,
        }
    }

    /// The host bandwidth that applies to `work`: read-only kernels
    /// (reductions) against the read pass, kernels that also write against
    /// the triad.
    pub(crate) fn host_bandwidth(&self, work: &Work) -> f64 {
        if work.bytes_written == 0 {
            self.read
        } else {
            self.triad
        }
    }

    pub(crate) fn describe(&self, engine: &Engine) -> String {
        let mut s = format!(
            "host roofline: triad {:.1} GB/s, read {:.1} GB/s, FMA peak f32 {:.1} / f64 {:.1} \
             GFLOP/s ({} threads; {} MiB arrays, best of 5; triad counts 12 B/element, \
             write-allocate traffic not)",
            self.triad / 1e9,
            self.read / 1e9,
            self.fma / 1e9,
            self.fma64 / 1e9,
            engine.cpu().threads(),
            (TRIAD_LEN * 4) >> 20,
        );
        if engine.has_gpu() {
            let rate = |v: Option<f64>, unit: &str| {
                v.map_or("failed".into(), |v| format!("{:.1} {unit}", v / 1e9))
            };
            let _ = write!(
                s,
                "\ngpu roofline: resident copy {} (scale by 1, read + write), f32 FMA peak {}",
                rate(self.gpu_copy, "GB/s"),
                rate(self.gpu_fma, "GFLOP/s"),
            );
        }
        s.push('\n');
        s
    }
}

/// Read bandwidth: an XOR fold over two arrays of [`TRIAD_LEN`] u32 on all
/// of the engine's threads (integer XOR is associative, so LLVM vectorizes
/// it: nothing of tandem's is used), best of 5, 8 bytes per element.
pub(crate) fn read_bandwidth(engine: &Engine) -> f64 {
    const CHUNK: usize = 1 << 16;
    let b: Vec<u32> = (0..TRIAD_LEN as u32).collect();
    let c: Vec<u32> = b.iter().map(|v| v.rotate_left(7)).collect();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let x = engine.cpu().install(|| {
            b.par_chunks(CHUNK)
                .zip(c.par_chunks(CHUNK))
                .map(|(b, c)| b.iter().zip(c).fold(0u32, |acc, (&b, &c)| acc ^ b ^ c))
                .reduce(|| 0, |p, q| p ^ q)
        });
        black_box(x);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (8 * TRIAD_LEN) as f64 / best
}

/// STREAM triad `a[i] = b[i] + s·c[i]` over three arrays of [`TRIAD_LEN`]
/// f32 on all of the engine's threads: bytes per second, best of 5, counting
/// 12 bytes per element (two reads, one write).
pub(crate) fn triad_bandwidth(engine: &Engine) -> f64 {
    const CHUNK: usize = 1 << 16;
    let s = black_box(3.0f32);
    let mut a = vec![0.5f32; TRIAD_LEN];
    let b = vec![1.0f32; TRIAD_LEN];
    let c = vec![2.0f32; TRIAD_LEN];
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        engine.cpu().install(|| {
            a.par_chunks_mut(CHUNK)
                .zip(b.par_chunks(CHUNK))
                .zip(c.par_chunks(CHUNK))
                .for_each(|((a, b), c)| {
                    for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                        *a = b + s * c;
                    }
                });
        });
        black_box(&mut a);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (12 * TRIAD_LEN) as f64 / best
}

/// FMA rounds per thread in one burst of [`fma_peaks`] (about 0.1 ms).
pub(crate) const FMA_ITERS: usize = 1 << 16;
/// Bursts of each precision in [`fma_peaks`]: many short ones, so that one
/// of them finds every core free on a shared machine (a peak, not an
/// average, is wanted).
pub(crate) const FMA_RUNS: usize = 300;

/// Host f32 and f64 FMA peaks on all of the engine's threads, at the widest
/// SIMD width the CPU has (not the build's), best of [`FMA_RUNS`] bursts
/// each, the precisions alternating: [`tandem::cpu::peak::fma_peaks`].
pub(crate) fn fma_peaks(engine: &Engine) -> (f64, f64) {
    tandem::cpu::peak::fma_peaks(engine.cpu(), FMA_ITERS, FMA_RUNS)
}

/// The GPU's bandwidth through a tandem kernel on resident data:
/// `Unary::Scale(1.0)` (a copy: one read, one write per element), timed to
/// `Gpu::wait`, no transfers, best of 3 after a warm-up.
pub(crate) fn gpu_copy_bandwidth(engine: &Engine) -> BoxResult<f64> {
    let software = engine.gpu().is_some_and(|g| g.info().is_software);
    let n: usize = if software { 1 << 22 } else { 1 << 26 };
    let gpu = engine.on(Backend::Gpu);
    let x = Buffer::from(vec![1.0f32; n]);
    if let Some(g) = engine.gpu() {
        g.resident("compare", &x)?;
        g.wait("compare")?;
    }
    let copy = Unary::Scale(1.0);
    let mut best = f64::INFINITY;
    for i in 0..4 {
        let (t, kept) = timed(|| gpu.run(&copy, &x)?.finish(engine, Finish::Device))?;
        drop(kept);
        if i > 0 {
            best = best.min(t.as_secs_f64());
        }
    }
    Ok((8 * n) as f64 / best)
}

/// A GPU FMA loop: each invocation runs 8 independent `vec4<f32>` FMA
/// chains and writes their sum (so nothing is optimized away).
pub(crate) const FMA_SHADER: &str = r#"
struct Params { iters: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(256)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = f32(gid.x) * 1e-9;
    var a0 = vec4<f32>(s, s + 0.1, s + 0.2, s + 0.3);
    var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
    var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
    let m = vec4<f32>(0.999999);
    let c = vec4<f32>(1e-7);
    for (var k = 0u; k < params.iters; k++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    out[gid.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
"#;

/// GPU f32 FMA peak from [`FMA_SHADER`] (64 flops per invocation and
/// iteration), best of 3 after a warm-up that compiles the pipeline.
pub(crate) fn gpu_fma_peak(gpu: &Gpu) -> BoxResult<f64> {
    let (workgroups, iters): (u32, u32) = if gpu.info().is_software {
        (64, 256)
    } else {
        (8192, 4096)
    };
    let invocations = workgroups as u64 * 256;
    let pipeline = gpu.pipeline(&ShaderSpec {
        label: "compare_fma_peak",
        source: FMA_SHADER,
        entry: "fma_peak",
        element: None,
        constants: &[],
    })?;
    let out = gpu.alloc::<f32>("compare", invocations as usize * 4)?;
    let params = [iters, 0, 0, 0];
    let bindings = [
        (0, Bind::Uniform(bytemuck::cast_slice(&params))),
        (1, Bind::storage(&out, 0..invocations * 16)),
    ];
    let dispatch = [Dispatch {
        pipeline: &pipeline,
        bindings: &bindings,
        workgroups,
    }];
    let mut best = f64::INFINITY;
    for i in 0..4 {
        let start = Instant::now();
        gpu.submit("compare", &dispatch)?;
        gpu.wait("compare")?;
        if i > 0 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    Ok((invocations * iters as u64 * 64) as f64 / best)
}
