//! Calibration: measure every kernel on both backends over a sweep of sizes,
//! and the host↔device link, then fit the curves a [`Profile`] holds.
//!
//! Kernels are measured through a registry of per-family probes
//! ([`FAMILIES`]): a new kernel family is covered by adding one entry there.
//!
//! Each kernel's curves are keyed on an [`Axis`] of its [`Work`]: elements
//! for kernels linear in them, flops for gemm and conv2d, whose time grows
//! with `m·n·k` and with the filter's taps, not with their output's
//! elements. A probe builds square shapes from an element count `n`
//! (`side = √n`) and caps its sweep ([`Probe::max_n`]) where calls grow
//! faster than `n`, so one size list serves every family.
//!
//! What is timed (lower quartiles of several calls after one warm-up call):
//! - CPU: `engine.on(Cpu).run(..)` on host inputs, result on the host.
//! - GPU: `engine.on(Gpu).run(..)` on inputs already on the device, then
//!   [`Gpu::wait`](crate::Gpu::wait): the work finished, the result left on
//!   the device (a reduction's scalar is read back, as every call does).
//! - Upload: a fresh host buffer made resident, waited for.
//! - Download: a fresh device-only kernel output read to the host.
//!
//! The dispatcher then composes a call on host data as upload + GPU curve
//! (+ download when the result is read on the host), so one measurement per
//! kernel serves every residency.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::BackendCost;
use super::profile::{Axis, Curve, KernelProfile, LinkCost, Profile, ProfileKey, TransferProfile};
use super::profile::{PROFILE_FORMAT, PROFILE_VERSION};
use crate::buffer::{Buffer, Residency};
use crate::cpu::PARALLEL_THRESHOLD;
use crate::engine::{Backend, Engine};
use crate::error::Result;
use crate::kernel::{Kernel, Work};
use crate::kernels::{
    ArgMax, ArgMin, Argsort, Axpy, Binary, Border, Compact, CompactIf, Compare, Conv2d, Dot, Gemm,
    Histogram, HistogramCounts, HistogramRange, Max, Min, Scan, Sort, SortPairs, Sum, Transpose,
    Unary,
};

/// How thoroughly to calibrate.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrateOptions {
    /// Element counts to measure each kernel at.
    pub sizes: Vec<usize>,
    /// Time spent timing one kernel at one size on one backend; calls
    /// repeat until it is used (between `min_reps` and `max_reps`).
    pub cell_budget: Duration,
    /// Fewest timed calls per cell.
    pub min_reps: usize,
    /// Most timed calls per cell.
    pub max_reps: usize,
    /// Only these kernels (by name); empty: every registered kernel.
    pub kernels: Vec<String>,
    /// Save the profile to the engine's profile path (see
    /// [`EngineBuilder::profile_path`](crate::EngineBuilder::profile_path)).
    pub save: bool,
}

impl Default for CalibrateOptions {
    /// Sizes 2^10, 2^12, ..., 2^22 (gemm up to 512², conv2d up to 1024²);
    /// about 30 s on a 2-core machine with a software GPU (27 s measured
    /// with lavapipe).
    fn default() -> Self {
        CalibrateOptions {
            sizes: (10..=22).step_by(2).map(|k| 1usize << k).collect(),
            cell_budget: Duration::from_millis(25),
            min_reps: 3,
            max_reps: 25,
            kernels: Vec::new(),
            save: true,
        }
    }
}

impl CalibrateOptions {
    /// A few seconds: three sizes, few repetitions, nothing saved. For tests;
    /// its numbers are rough.
    pub fn quick() -> Self {
        CalibrateOptions {
            sizes: vec![1 << 10, 1 << 14, 1 << 18],
            cell_budget: Duration::from_millis(2),
            min_reps: 1,
            max_reps: 5,
            kernels: Vec::new(),
            save: false,
        }
    }
}

/// Where a calibration run is, for a progress display.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Steps done (a step is one kernel at one size on both backends, or
    /// one transfer size).
    pub done: usize,
    /// Steps in all.
    pub total: usize,
    /// What the step just finished measured, e.g. `gpu axpy n=2^20`.
    pub step: String,
    /// Time since the calibration started.
    pub elapsed: Duration,
}

/// One call of one kernel at one size, on inputs a probe made.
pub trait ProbeCall {
    /// The kernel's work estimate for this call (its measure on the probe's
    /// [`Axis`] keys the curve).
    fn work(&self) -> Work;
    /// Makes every input current on the engine's GPU.
    fn upload(&self, engine: &Engine) -> Result<()>;
    /// Runs the kernel once through `engine` (whose backend is forced) and
    /// returns when the work is finished, the result left where it was
    /// produced.
    fn call(&self, engine: &Engine) -> Result<()>;
    /// Runs the kernel once through `engine` and reads a buffer result on
    /// the host (what a caller that uses the result pays).
    fn call_to_host(&self, engine: &Engine) -> Result<()>;
    /// The same call on new host-only copies of the inputs.
    fn fresh(&self) -> Box<dyn ProbeCall>;
    /// Whether every input's only current copy is on the host.
    fn on_host_only(&self) -> bool;
}

/// How to measure one kernel: its name, how to make a call of size `n`, and
/// the axis its curves are keyed on.
#[derive(Clone, Copy)]
pub struct Probe {
    /// [`Kernel::name`] of the kernel measured.
    pub kernel: &'static str,
    /// Builds the inputs of a call of about `n` elements (for a square
    /// kernel: `side = √n`, so `n` stays the call's element count).
    pub make: fn(n: usize) -> Box<dyn ProbeCall>,
    /// The curves' x-axis; `None`: [`Axis::for_work`] of the largest call.
    pub axis: Option<Axis>,
    /// Sizes above this are measured at this size instead: for kernels
    /// whose time grows faster than their elements (gemm: `n^1.5`), so the
    /// sweep stays short.
    pub max_n: usize,
}

impl Probe {
    /// A probe of `kernel`, keyed by the rule, at every size.
    pub const fn new(kernel: &'static str, make: fn(n: usize) -> Box<dyn ProbeCall>) -> Probe {
        Probe {
            kernel,
            make,
            axis: None,
            max_n: usize::MAX,
        }
    }

    /// Keys the curves on `axis`.
    pub const fn axis(mut self, axis: Axis) -> Probe {
        self.axis = Some(axis);
        self
    }

    /// Measures at most `max_n` (elements).
    pub const fn max_n(mut self, max_n: usize) -> Probe {
        self.max_n = max_n;
        self
    }

    /// The sizes this probe measures out of `sizes` (sorted): those above
    /// [`Probe::max_n`] clamped to it.
    pub fn sizes(&self, sizes: &[usize]) -> Vec<usize> {
        let mut v: Vec<usize> = sizes.iter().map(|&n| n.min(self.max_n)).collect();
        v.dedup();
        v
    }

    /// The work of a call of `n` elements without making one: the work of
    /// two small calls extrapolated field by field as a power of `n` (exact
    /// for the square shapes probes make, to rounding). For reports such as
    /// crossover searches up to sizes no one would allocate.
    pub fn work_at(&self, n: u64) -> Work {
        let (n0, n1) = (1usize << 10, 1usize << 12);
        let (w0, w1) = ((self.make)(n0).work(), (self.make)(n1).work());
        let at = |a: u64, b: u64| -> u64 {
            if a == 0 || b == 0 {
                return b;
            }
            let p = (b as f64 / a as f64).ln() / (n1 as f64 / n0 as f64).ln();
            (a as f64 * (n as f64 / n0 as f64).powf(p)).round() as u64
        };
        Work {
            elements: at(w0.elements, w1.elements),
            bytes_read: at(w0.bytes_read, w1.bytes_read),
            bytes_written: at(w0.bytes_written, w1.bytes_written),
            flops: at(w0.flops, w1.flops),
            host_result_bytes: w1.host_result_bytes,
        }
    }
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("kernel", &self.kernel)
            .field("axis", &self.axis)
            .field("max_n", &self.max_n)
            .finish()
    }
}

/// A kernel family's probes.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    /// Family name (the stem of `src/kernels/<family>.rs`).
    pub name: &'static str,
    /// One probe per kernel of the family.
    pub probes: &'static [Probe],
}

/// Largest gemm probe: `512 × 512 × 512` (0.27 Gflop), about 0.1 s a call on
/// a 2-core software GPU.
pub const GEMM_MAX_N: usize = 512 * 512;

/// Largest sort probe: 2^18 keys (four radix passes a call keep bigger
/// cells too slow on a software GPU; beyond it the curves grow ∝ n).
pub const SORT_MAX_N: usize = 1 << 18;

/// Largest conv2d probe: a `1024²` image.
pub const CONV_MAX_N: usize = 1024 * 1024;

/// The filter side of the conv2d probe.
pub const CONV_PROBE_FILTER: usize = 5;

/// Every family calibration measures. Adding a family: one entry here, a
/// [`Probe`] per kernel; name its [`Axis`] where cost is not linear in
/// elements (or leave [`Axis::for_work`] to decide), and cap `max_n` where
/// the largest default size would take more than a fraction of a second on
/// a software GPU.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "map",
        probes: &[
            Probe::new("neg", |n| unary(Unary::Neg, n)),
            Probe::new("abs", |n| unary(Unary::Abs, n)),
            Probe::new("sqrt", |n| unary(Unary::Sqrt, n)),
            Probe::new("exp", |n| unary(Unary::Exp, n)),
            Probe::new("ln", |n| unary(Unary::Ln, n)),
            Probe::new("scale", |n| unary(Unary::Scale(1.5), n)),
            Probe::new("add", |n| binary(Binary::Add, n)),
            Probe::new("sub", |n| binary(Binary::Sub, n)),
            Probe::new("mul", |n| binary(Binary::Mul, n)),
            Probe::new("div", |n| binary(Binary::Div, n)),
            Probe::new("minimum", |n| binary(Binary::Min, n)),
            Probe::new("maximum", |n| binary(Binary::Max, n)),
            Probe::new("axpy", |n| binary(Axpy { a: 1.5 }, n)),
        ],
    },
    Family {
        name: "reduce",
        probes: &[
            Probe::new("sum", |n| unary(Sum, n)),
            Probe::new("dot", |n| binary(Dot, n)),
            Probe::new("min", |n| unary(Min, n)),
            Probe::new("max", |n| unary(Max, n)),
            Probe::new("argmin", |n| unary(ArgMin, n)),
            Probe::new("argmax", |n| unary(ArgMax, n)),
        ],
    },
    Family {
        name: "scan",
        probes: &[
            Probe::new("inclusive_scan", |n| unary(Scan::inclusive(), n)).axis(Axis::Elements),
        ],
    },
    Family {
        name: "compact",
        probes: &[
            // Half the elements kept, in a random pattern.
            Probe::new("compact", |n| {
                let mask = probe_data(n, 4)
                    .iter()
                    .map(|&v| u32::from(v >= 1.25))
                    .collect();
                call::<_, F32Mask>(
                    Compact,
                    vec![probe_data(n, 1)],
                    vec![mask],
                    |k, e, a, host| settle(e.run(k, (&a.f32s[0], &a.u32s[0]))?, host),
                )
            })
            .axis(Axis::Elements),
            Probe::new("compact_if", |n| {
                let keep_half = CompactIf {
                    cmp: Compare::Ge,
                    threshold: 1.25f32,
                };
                unary(keep_half, n)
            })
            .axis(Axis::Elements),
        ],
    },
    Family {
        name: "histogram",
        probes: &[
            Probe::new("histogram", |n| {
                let x = probe_data(n, 5)
                    .iter()
                    .map(|&v| (v * 1000.0) as u32 % 256)
                    .collect();
                call::<_, OneU32>(Histogram { bins: 256 }, vec![], vec![x], |k, e, a, host| {
                    settle(e.run(k, &a.u32s[0])?, host)
                })
            })
            .axis(Axis::Elements),
            Probe::new("histogram_range", |n| {
                unary(
                    HistogramRange {
                        lo: 0.5,
                        hi: 2.0,
                        bins: 256,
                    },
                    n,
                )
            })
            .axis(Axis::Elements),
        ],
    },
    Family {
        name: "transpose",
        probes: &[Probe::new("transpose", |n| {
            let s = side(n);
            unary(Transpose { rows: s, cols: s }, s * s)
        })
        .axis(Axis::Elements)],
    },
    Family {
        name: "gemm",
        probes: &[Probe::new("gemm", |n| {
            let s = side(n);
            let (a, b) = (probe_data(s * s, 1), probe_data(s * s, 2));
            call::<_, TwoF32>(Gemm::new(s, s, s), vec![a, b], vec![], |k, e, a, host| {
                settle(e.run(k, (&a.f32s[0], &a.f32s[1]))?, host)
            })
        })
        .axis(Axis::Flops)
        .max_n(GEMM_MAX_N)],
    },
    Family {
        name: "conv",
        probes: &[Probe::new("conv2d", |n| {
            let (s, f) = (side(n), CONV_PROBE_FILTER);
            let conv = Conv2d {
                height: s,
                width: s,
                filter_height: f,
                filter_width: f,
                border: Border::Zero,
            };
            let filter = vec![1.0 / (f * f) as f32; f * f];
            call::<_, TwoF32>(
                conv,
                vec![probe_data(s * s, 1), filter],
                vec![],
                |k, e, a, host| settle(e.run(k, (&a.f32s[0], &a.f32s[1]))?, host),
            )
        })
        .axis(Axis::Flops)
        .max_n(CONV_MAX_N)],
    },
    // Sorts: keyed on elements (n·log n is close enough to linear over a
    // sweep that the piecewise curve follows it).
    Family {
        name: "sort",
        probes: &[
            Probe::new("sort", |n| {
                call::<_, OneU32>(Sort, vec![], vec![probe_keys(n)], |k, e, a, host| {
                    settle(e.run(k, &a.u32s[0])?, host)
                })
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            Probe::new("sort_pairs", |n| {
                call::<_, F32Mask>(
                    SortPairs,
                    vec![probe_data(n, 6)],
                    vec![probe_keys(n)],
                    |k, e, a, host| settle(e.run(k, (&a.f32s[0], &a.u32s[0]))?, host),
                )
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            Probe::new("argsort", |n| unary(Argsort, n))
                .axis(Axis::Elements)
                .max_n(SORT_MAX_N),
        ],
    },
];

/// `n` u32 keys with all 32 bits varying (no radix pass can be skipped).
fn probe_keys(n: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| {
            let x = i.wrapping_mul(0x9E37_79B9) ^ 0x5bd1_e995;
            (x ^ (x >> 15)).wrapping_mul(0x2c1b_3c6d)
        })
        .collect()
}

/// The side of the square with about `n` elements (at least 1).
fn side(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).max(1)
}

/// Inputs in `[0.5, 2.0)` (valid for every f32 kernel: `ln`, `sqrt`, `div`).
pub fn probe_data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            0.5 + 1.5 * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

/// A probe call's input buffers, by element type.
pub struct Args {
    /// The f32 inputs, in the kernel's order.
    pub f32s: Vec<Buffer<f32>>,
    /// The u32 inputs, in the kernel's order.
    pub u32s: Vec<Buffer<u32>>,
}

impl Args {
    fn new(f32s: &[Vec<f32>], u32s: &[Vec<u32>]) -> Args {
        Args {
            f32s: f32s.iter().map(|d| Buffer::from(d.clone())).collect(),
            u32s: u32s.iter().map(|d| Buffer::from(d.clone())).collect(),
        }
    }
}

/// A kernel result a probe finishes: a buffer read on the host when asked,
/// a host value as it is.
pub trait Settle {
    /// Reads a buffer result on the host if `to_host`.
    fn settle(self, to_host: bool) -> Result<()>;
}

impl<A: Settle, B: Settle> Settle for (A, B) {
    fn settle(self, to_host: bool) -> Result<()> {
        self.0.settle(to_host)?;
        self.1.settle(to_host)
    }
}

impl<T: crate::buffer::Element> Settle for Buffer<T> {
    fn settle(self, to_host: bool) -> Result<()> {
        if to_host {
            black_box(self.host()?);
        }
        black_box(self);
        Ok(())
    }
}

macro_rules! settle_host_value {
    ($($t:ty),*) => {$(
        impl Settle for $t {
            fn settle(self, _to_host: bool) -> Result<()> {
                black_box(self);
                Ok(())
            }
        }
    )*};
}
settle_host_value!(f32, Option<f32>, Option<(usize, f32)>, HistogramCounts);

fn settle<O: Settle>(out: O, to_host: bool) -> Result<()> {
    out.settle(to_host)
}

/// Runs a kernel on a probe's inputs; `bool`: read a buffer result on the host.
type RunFn<K> = fn(&K, &Engine, &Args, bool) -> Result<()>;

/// The host data of a probe's inputs: f32 arrays, u32 arrays.
type HostInputs = std::sync::Arc<(Vec<Vec<f32>>, Vec<Vec<u32>>)>;

/// A probe call of a kernel on f32 and u32 buffers, run by `run`.
struct Call<K> {
    kernel: K,
    data: HostInputs,
    args: Args,
    work: Work,
    run: RunFn<K>,
}

impl<K: Clone + 'static> ProbeCall for Call<K> {
    fn work(&self) -> Work {
        self.work
    }

    fn upload(&self, engine: &Engine) -> Result<()> {
        if let Some(g) = engine.gpu() {
            for b in &self.args.f32s {
                g.resident("calibrate", b)?;
            }
            for b in &self.args.u32s {
                g.resident("calibrate", b)?;
            }
            g.wait("calibrate")?;
        }
        Ok(())
    }

    fn call(&self, engine: &Engine) -> Result<()> {
        (self.run)(&self.kernel, engine, &self.args, false)?;
        if engine.backend() == Backend::Gpu
            && let Some(g) = engine.gpu()
        {
            g.wait("calibrate")?;
        }
        Ok(())
    }

    fn call_to_host(&self, engine: &Engine) -> Result<()> {
        (self.run)(&self.kernel, engine, &self.args, true)
    }

    fn fresh(&self) -> Box<dyn ProbeCall> {
        Box::new(Call {
            kernel: self.kernel.clone(),
            data: self.data.clone(),
            args: Args::new(&self.data.0, &self.data.1),
            work: self.work,
            run: self.run,
        })
    }

    fn on_host_only(&self) -> bool {
        self.args
            .f32s
            .iter()
            .all(|b| b.residency() == Residency::Host)
            && self
                .args
                .u32s
                .iter()
                .all(|b| b.residency() == Residency::Host)
    }
}

/// A probe call of `kernel` on the given f32 and u32 inputs.
fn call<K, W>(
    kernel: K,
    f32s: Vec<Vec<f32>>,
    u32s: Vec<Vec<u32>>,
    run: RunFn<K>,
) -> Box<dyn ProbeCall>
where
    K: Clone + 'static + WorkOf<W>,
{
    let args = Args::new(&f32s, &u32s);
    let work = kernel.work_of(&args);
    Box::new(Call {
        kernel,
        data: std::sync::Arc::new((f32s, u32s)),
        args,
        work,
        run,
    })
}

/// A kernel's work on a probe's [`Args`], by the shape of its input.
trait WorkOf<Shape> {
    fn work_of(&self, a: &Args) -> Work;
}

/// Input shapes [`WorkOf`] knows.
enum OneF32 {}
enum TwoF32 {}
enum F32Mask {}
enum OneU32 {}

impl<K: for<'a> Kernel<&'a Buffer<f32>>> WorkOf<OneF32> for K {
    fn work_of(&self, a: &Args) -> Work {
        self.work(&&a.f32s[0])
    }
}

impl<K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>)>> WorkOf<TwoF32> for K {
    fn work_of(&self, a: &Args) -> Work {
        self.work(&(&a.f32s[0], &a.f32s[1]))
    }
}

impl<K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<u32>)>> WorkOf<F32Mask> for K {
    fn work_of(&self, a: &Args) -> Work {
        self.work(&(&a.f32s[0], &a.u32s[0]))
    }
}

impl<K: for<'a> Kernel<&'a Buffer<u32>>> WorkOf<OneU32> for K {
    fn work_of(&self, a: &Args) -> Work {
        self.work(&&a.u32s[0])
    }
}

/// A probe of a one-input f32 kernel.
pub fn unary<K>(kernel: K, n: usize) -> Box<dyn ProbeCall>
where
    K: for<'a> Kernel<&'a Buffer<f32>, Out: Settle> + Clone + 'static,
{
    call::<K, OneF32>(kernel, vec![probe_data(n, 1)], vec![], |k, e, a, host| {
        settle(e.run(k, &a.f32s[0])?, host)
    })
}

/// A probe of a two-input f32 kernel.
pub fn binary<K>(kernel: K, n: usize) -> Box<dyn ProbeCall>
where
    K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>), Out: Settle> + Clone + 'static,
{
    call::<K, TwoF32>(
        kernel,
        vec![probe_data(n, 1), probe_data(n, 2)],
        vec![],
        |k, e, a, host| settle(e.run(k, (&a.f32s[0], &a.f32s[1]))?, host),
    )
}

/// Lower-quartile seconds of `f`: one warm-up call, then calls until
/// `budget` is spent (at least `min`, at most `max` of them). A quartile,
/// not the median: on a busy machine other processes only ever add time,
/// and one preempted cell would otherwise bend a curve.
fn time_quartile(
    budget: Duration,
    min: usize,
    max: usize,
    mut f: impl FnMut() -> Result<Duration>,
) -> Result<f64> {
    f()?;
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < max.max(1) && (times.len() < min.max(1) || start.elapsed() < budget) {
        times.push(f()?.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[(times.len() - 1) / 4])
}

/// `latency + bytes / bandwidth` through `(bytes, seconds)`: the latency is
/// the time of the smallest transfer (a few bytes: all fixed cost), the
/// bandwidth that of the largest once the latency is taken off. Two
/// anchors, not least squares: on a noisy machine a regression's intercept
/// swings negative and its slope with it.
fn fit_link(points: &[(u64, f64)]) -> LinkCost {
    let &(_, small) = points.iter().min_by_key(|p| p.0).expect("points");
    let &(bx, by) = points.iter().max_by_key(|p| p.0).expect("points");
    let latency = small.max(0.0);
    let bw = bx as f64 / (by - latency).max(by * 0.1).max(1e-9);
    LinkCost {
        latency_s: latency,
        bytes_per_s: bw,
    }
}

/// Seconds since the epoch (0 if the clock is before it).
fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One kernel at one size: its work, CPU seconds, GPU seconds (NaN: none).
type Sample = (Work, f64, f64);

/// Runs the calibration on `engine`'s backends; see the module docs.
pub(crate) fn run(
    engine: &Engine,
    opts: &CalibrateOptions,
    key: ProfileKey,
    mut progress: impl FnMut(Progress),
) -> Result<Profile> {
    let start = Instant::now();
    let probes: Vec<(&'static str, Probe)> = FAMILIES
        .iter()
        .flat_map(|f| f.probes.iter().map(move |p| (f.name, *p)))
        .filter(|(_, p)| opts.kernels.is_empty() || opts.kernels.iter().any(|k| k == p.kernel))
        .collect();
    let mut sizes: Vec<usize> = opts.sizes.iter().copied().filter(|&n| n > 0).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let gpu = engine.has_gpu();
    let link_sizes: Vec<usize> = if gpu {
        // Bytes: 4 B .. 4 × the largest size (f32s).
        let top = sizes.last().copied().unwrap_or(1 << 20);
        let mut v = vec![1usize];
        v.extend(sizes.iter().copied().filter(|&n| n >= 1 << 12 && n < top));
        v.push(top);
        v.dedup();
        v
    } else {
        Vec::new()
    };
    let total = probes
        .iter()
        .map(|(_, p)| p.sizes(&sizes).len())
        .sum::<usize>()
        + link_sizes.len();
    let mut done = 0;
    let mut step = |what: String, progress: &mut dyn FnMut(Progress)| {
        done += 1;
        progress(Progress {
            done,
            total,
            step: what,
            elapsed: start.elapsed(),
        });
    };

    let (cpu_engine, gpu_engine) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let (budget, lo, hi) = (opts.cell_budget, opts.min_reps, opts.max_reps);

    // The link first: its numbers matter for every decision on host data.
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut round_trip = f64::INFINITY;
    if let Some(g) = engine.gpu().filter(|_| gpu) {
        for &n in &link_sizes {
            let data = probe_data(n, 3);
            let bytes = (n * size_of::<f32>()) as u64;
            let t_up = time_quartile(budget, lo, hi, || {
                let b = Buffer::from(data.clone());
                let t = Instant::now();
                g.resident("calibrate", &b)?;
                g.wait("calibrate")?;
                Ok(t.elapsed())
            })?;
            let src = Buffer::from(data.clone());
            g.resident("calibrate", &src)?;
            let t_down = time_quartile(budget, lo, hi, || {
                let out = gpu_engine.run(&Unary::Neg, &src)?;
                g.wait("calibrate")?;
                let t = Instant::now();
                black_box(out.host()?);
                Ok(t.elapsed())
            })?;
            if n == 1 {
                round_trip = time_quartile(budget, lo, hi, || {
                    let b = Buffer::from(data.clone());
                    let t = Instant::now();
                    let out = gpu_engine.run(&Unary::Neg, &b)?;
                    black_box(out.host()?);
                    Ok(t.elapsed())
                })?;
            }
            up.push((bytes, t_up));
            down.push((bytes, t_down));
            step(format!("link {} B", bytes), &mut progress);
        }
    }

    let mut kernels: BTreeMap<String, KernelProfile> = BTreeMap::new();
    // For the fallback costs of kernels the profile lacks.
    let mut samples: Vec<Sample> = Vec::new();
    for &(family, probe) in &probes {
        let mut cpu_pts = Vec::new();
        let mut gpu_pts = Vec::new();
        let mut largest = Work::default();
        for n in probe.sizes(&sizes) {
            let call = (probe.make)(n);
            let work = call.work();
            largest = work;
            let t_cpu = time_quartile(budget, lo, hi, || {
                let t = Instant::now();
                call.call(&cpu_engine)?;
                Ok(t.elapsed())
            })?;
            cpu_pts.push((work, t_cpu));
            let mut t_gpu = f64::NAN;
            if gpu {
                // A GPU that refuses a size (limits) leaves a gap, not an error.
                let measured = call.upload(engine).and_then(|()| {
                    time_quartile(budget, lo, hi, || {
                        let t = Instant::now();
                        call.call(&gpu_engine)?;
                        Ok(t.elapsed())
                    })
                });
                if let Ok(t) = measured {
                    t_gpu = t;
                    gpu_pts.push((work, t));
                }
            }
            samples.push((work, t_cpu, t_gpu));
            step(
                format!("{} n={}", probe.kernel, size_label(n)),
                &mut progress,
            );
        }
        let axis = probe.axis.unwrap_or_else(|| Axis::for_work(&largest));
        let on_axis =
            |pts: Vec<(Work, f64)>| Curve::fit(pts.iter().map(|(w, t)| (axis.of(w), *t)).collect());
        kernels.insert(
            probe.kernel.to_string(),
            KernelProfile {
                family: family.to_string(),
                axis,
                cpu: on_axis(cpu_pts),
                gpu: on_axis(gpu_pts),
            },
        );
    }

    let transfer = (!up.is_empty()).then(|| TransferProfile {
        upload: fit_link(&up),
        download: fit_link(&down),
        round_trip_s: round_trip,
    });
    let defaults = super::CostModel::defaults(engine.cpu().threads(), None);
    let fallback =
        |pick: &dyn Fn(&Sample) -> Option<f64>, parallel: Option<bool>, base: BackendCost| {
            let usable = |s: &&Sample| {
                parallel.is_none_or(|p| (s.0.elements >= PARALLEL_THRESHOLD as u64) == p)
                    && pick(s).is_some_and(f64::is_finite)
            };
            let latency = samples
                .iter()
                .filter(usable)
                .filter_map(pick)
                .fold(f64::INFINITY, f64::min);
            // Rates: the median over kernels at their largest usable size,
            // bandwidth from the memory-bound kernels, arithmetic from the
            // compute-bound ones (gemm, conv2d), which the other would misprice.
            let rate = |heavy: bool, amount: &dyn Fn(&Work) -> u64| {
                let of_kind = |s: &&Sample| (Axis::for_work(&s.0) == Axis::Flops) == heavy;
                let top = samples
                    .iter()
                    .filter(usable)
                    .filter(of_kind)
                    .map(|s| s.0.elements)
                    .max();
                let mut rates: Vec<f64> = samples
                    .iter()
                    .filter(usable)
                    .filter(of_kind)
                    .filter(|s| Some(s.0.elements) == top)
                    .filter_map(|s| Some(amount(&s.0) as f64 / (pick(s)? - latency).max(1e-9)))
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .collect();
                rates.sort_by(f64::total_cmp);
                rates.get(rates.len() / 2).copied()
            };
            match (latency.is_finite(), rate(false, &Work::bytes)) {
                (true, Some(bw)) => BackendCost {
                    latency_s: latency,
                    bytes_per_s: bw,
                    flops_per_s: rate(true, &|w| w.flops).unwrap_or(base.flops_per_s),
                },
                _ => base,
            }
        };
    let cpu = fallback(&|s| Some(s.1), Some(true), defaults.cpu);
    let cpu_serial = fallback(&|s| Some(s.1), Some(false), defaults.cpu_serial);
    let gpu_cost = gpu.then(|| {
        let base = super::CostModel::defaults(1, engine.gpu().map(|g| g.info())).gpu;
        fallback(&|s| Some(s.2).filter(|t| t.is_finite()), None, base)
    });
    Ok(Profile {
        format: PROFILE_FORMAT.to_string(),
        version: PROFILE_VERSION,
        key,
        created_unix_s: now_unix(),
        calibration_s: start.elapsed().as_secs_f64(),
        transfer,
        cpu,
        cpu_serial,
        gpu: gpu_cost,
        kernels,
    })
}

/// `2^k` for powers of two, the number otherwise.
pub(crate) fn size_label(n: usize) -> String {
    if n.is_power_of_two() {
        format!("2^{}", n.trailing_zeros())
    } else {
        n.to_string()
    }
}
