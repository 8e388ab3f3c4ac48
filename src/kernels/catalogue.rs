//! The kernel catalogue: every kernel family's entries in one registry,
//! each with how to make a call of it at a size, the axis its cost follows
//! and the sizes worth measuring ([`FAMILIES`]). Calibration takes its
//! probes from here; a new kernel is one entry in its family.
//!
//! An entry's call is type-erased ([`Call`]) and runs through the kernel
//! trait alone (`run_cpu` on a [`Cpu`], `run_gpu` on a [`Gpu`]), so this
//! module, like every kernel, depends on the trait, buffers and backends
//! and never on the engine or the dispatcher. [`CallKernel`] lets the
//! engine run a call like any other kernel.

use std::hint::black_box;

use crate::buffer::{Buffer, Residency};
use crate::cpu::Cpu;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernel::{Axis, InputState, Inputs, Kernel, Work};
use crate::kernels::{
    ArgMax, ArgMin, Argsort, Axpy, Binary, Border, Compact, CompactIf, Compare, Conv2d, Dot, Gemm,
    Histogram, HistogramCounts, HistogramRange, Max, Min, Scan, Sort, SortPairs, Sum, Transpose,
    Unary,
};

/// One call of one kernel at one size, on inputs a probe made, with the
/// kernel's type erased: what calibration (and anything else that iterates
/// the catalogue) runs. Through [`CallKernel`] it runs like any kernel,
/// `engine.run(&CallKernel(call.name()), CallInput { call, to_host })`,
/// so the engine's dispatch, counters and fallbacks apply to it.
pub trait Call: Send + Sync {
    /// [`Kernel::name`] of the kernel called.
    fn name(&self) -> &'static str;
    /// The kernel's work estimate for this call (its measure on the probe's
    /// [`Axis`] keys the curve).
    fn work(&self) -> Work;
    /// Visits every input's state (what [`Inputs::visit`] reports).
    fn inputs(&self, f: &mut dyn FnMut(&InputState));
    /// Queues uploads that make every input current on `gpu`.
    fn make_resident(&self, gpu: &Gpu) -> Result<()>;
    /// Runs the kernel once on the CPU backend; reads a buffer result on the
    /// host when `to_host`.
    fn run_cpu(&self, cpu: &Cpu, to_host: bool) -> Result<()>;
    /// Runs the kernel once on the GPU backend; reads a buffer result on the
    /// host when `to_host`, else leaves it on the device.
    fn run_gpu(&self, gpu: &Gpu, to_host: bool) -> Result<()>;
    /// The same call on new host-only copies of the inputs.
    fn fresh(&self) -> Box<dyn Call>;
    /// Whether every input's only current copy is on the host.
    fn on_host_only(&self) -> bool;
}

/// The kernel behind a [`Call`], named as the call's kernel: the cost model
/// keys its curves by that name.
#[derive(Clone, Copy, Debug)]
pub struct CallKernel(pub &'static str);

/// A [`Call`]'s inputs as a kernel input.
#[derive(Clone, Copy)]
pub struct CallInput<'a> {
    /// The call.
    pub call: &'a dyn Call,
    /// Read a buffer result on the host.
    pub to_host: bool,
}

impl Inputs for CallInput<'_> {
    fn visit(&self, f: &mut dyn FnMut(&InputState)) {
        self.call.inputs(f);
    }
}

impl<'a> Kernel<CallInput<'a>> for CallKernel {
    type Out = ();
    fn name(&self) -> &'static str {
        self.0
    }
    fn work(&self, input: &CallInput<'a>) -> Work {
        input.call.work()
    }
    fn run_cpu(&self, cpu: &Cpu, input: CallInput<'a>) -> Result<()> {
        input.call.run_cpu(cpu, input.to_host)
    }
    fn run_gpu(&self, gpu: &Gpu, input: CallInput<'a>) -> Result<()> {
        input.call.run_gpu(gpu, input.to_host)
    }
}

/// How to measure one kernel: its name, how to make a call of size `n`, and
/// the axis its curves are keyed on.
#[derive(Clone, Copy)]
pub struct Probe {
    /// [`Kernel::name`] of the kernel measured.
    pub kernel: &'static str,
    /// Builds the inputs of a call of about `n` elements (for a square
    /// kernel: `side = √n`, so `n` stays the call's element count).
    pub make: fn(n: usize) -> Box<dyn Call>,
    /// The curves' x-axis; `None`: [`Axis::for_work`] of the largest call.
    pub axis: Option<Axis>,
    /// Sizes above this are measured at this size instead: for kernels
    /// whose time grows faster than their elements (gemm: `n^1.5`), so the
    /// sweep stays short.
    pub max_n: usize,
}

impl Probe {
    /// A probe of `kernel`, keyed by the rule, at every size.
    pub const fn new(kernel: &'static str, make: fn(n: usize) -> Box<dyn Call>) -> Probe {
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
                    |k, on, a, host| settle(exec(k, on, (&a.f32s[0], &a.u32s[0]))?, host),
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
                call::<_, OneU32>(
                    Histogram { bins: 256 },
                    vec![],
                    vec![x],
                    |k, on, a, host| settle(exec(k, on, &a.u32s[0])?, host),
                )
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
            call::<_, TwoF32>(Gemm::new(s, s, s), vec![a, b], vec![], |k, on, a, host| {
                settle(exec(k, on, (&a.f32s[0], &a.f32s[1]))?, host)
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
                |k, on, a, host| settle(exec(k, on, (&a.f32s[0], &a.f32s[1]))?, host),
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
                call::<_, OneU32>(Sort, vec![], vec![probe_keys(n)], |k, on, a, host| {
                    settle(exec(k, on, &a.u32s[0])?, host)
                })
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            Probe::new("sort_pairs", |n| {
                call::<_, F32Mask>(
                    SortPairs,
                    vec![probe_data(n, 6)],
                    vec![probe_keys(n)],
                    |k, on, a, host| settle(exec(k, on, (&a.f32s[0], &a.u32s[0]))?, host),
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

/// Runs a kernel on a probe's inputs on one backend; `bool`: read a buffer
/// result on the host.
type RunFn<K> = fn(&K, On<'_>, &Args, bool) -> Result<()>;

/// The backend a [`Call`] runs on.
#[derive(Clone, Copy)]
enum On<'a> {
    Cpu(&'a Cpu),
    Gpu(&'a Gpu),
}

/// `kernel` on `input` on the backend `on`.
fn exec<I, K: Kernel<I>>(kernel: &K, on: On<'_>, input: I) -> Result<K::Out> {
    match on {
        On::Cpu(cpu) => kernel.run_cpu(cpu, input),
        On::Gpu(gpu) => kernel.run_gpu(gpu, input),
    }
}

/// The host data of a probe's inputs: f32 arrays, u32 arrays.
type HostInputs = std::sync::Arc<(Vec<Vec<f32>>, Vec<Vec<u32>>)>;

/// A probe call of a kernel on f32 and u32 buffers, run by `run`.
struct Probed<K> {
    name: &'static str,
    kernel: K,
    data: HostInputs,
    args: Args,
    work: Work,
    run: RunFn<K>,
}

impl<K: Clone + Send + Sync + 'static> Call for Probed<K> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn work(&self) -> Work {
        self.work
    }

    fn inputs(&self, f: &mut dyn FnMut(&InputState)) {
        self.args.f32s.iter().for_each(|b| (&b).visit(f));
        self.args.u32s.iter().for_each(|b| (&b).visit(f));
    }

    fn make_resident(&self, gpu: &Gpu) -> Result<()> {
        for b in &self.args.f32s {
            gpu.resident("calibrate", b)?;
        }
        for b in &self.args.u32s {
            gpu.resident("calibrate", b)?;
        }
        Ok(())
    }

    fn run_cpu(&self, cpu: &Cpu, to_host: bool) -> Result<()> {
        (self.run)(&self.kernel, On::Cpu(cpu), &self.args, to_host)
    }

    fn run_gpu(&self, gpu: &Gpu, to_host: bool) -> Result<()> {
        (self.run)(&self.kernel, On::Gpu(gpu), &self.args, to_host)
    }

    fn fresh(&self) -> Box<dyn Call> {
        Box::new(Probed {
            name: self.name,
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
fn call<K, W>(kernel: K, f32s: Vec<Vec<f32>>, u32s: Vec<Vec<u32>>, run: RunFn<K>) -> Box<dyn Call>
where
    K: Clone + Send + Sync + 'static + WorkOf<W>,
{
    let args = Args::new(&f32s, &u32s);
    let work = kernel.work_of(&args);
    Box::new(Probed {
        name: kernel.name_of(),
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
    fn name_of(&self) -> &'static str;
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
    fn name_of(&self) -> &'static str {
        self.name()
    }
}

impl<K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>)>> WorkOf<TwoF32> for K {
    fn work_of(&self, a: &Args) -> Work {
        self.work(&(&a.f32s[0], &a.f32s[1]))
    }
    fn name_of(&self) -> &'static str {
        self.name()
    }
}

impl<K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<u32>)>> WorkOf<F32Mask> for K {
    fn work_of(&self, a: &Args) -> Work {
        self.work(&(&a.f32s[0], &a.u32s[0]))
    }
    fn name_of(&self) -> &'static str {
        self.name()
    }
}

impl<K: for<'a> Kernel<&'a Buffer<u32>>> WorkOf<OneU32> for K {
    fn work_of(&self, a: &Args) -> Work {
        self.work(&&a.u32s[0])
    }
    fn name_of(&self) -> &'static str {
        self.name()
    }
}

/// A probe of a one-input f32 kernel.
pub fn unary<K>(kernel: K, n: usize) -> Box<dyn Call>
where
    K: for<'a> Kernel<&'a Buffer<f32>, Out: Settle> + Clone + Send + Sync + 'static,
{
    call::<K, OneF32>(kernel, vec![probe_data(n, 1)], vec![], |k, on, a, host| {
        settle(exec(k, on, &a.f32s[0])?, host)
    })
}

/// A probe of a two-input f32 kernel.
pub fn binary<K>(kernel: K, n: usize) -> Box<dyn Call>
where
    K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>), Out: Settle>
        + Clone
        + Send
        + Sync
        + 'static,
{
    call::<K, TwoF32>(
        kernel,
        vec![probe_data(n, 1), probe_data(n, 2)],
        vec![],
        |k, on, a, host| settle(exec(k, on, (&a.f32s[0], &a.f32s[1]))?, host),
    )
}
