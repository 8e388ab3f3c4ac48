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
use crate::expr::Expr;
use crate::gpu::Gpu;
use crate::kernel::{Axis, InputState, Inputs, Kernel, Work};
use crate::kernels::expr::{Args as ExprArgs, Outputs, Reduced};
use crate::kernels::{
    ArgMax, ArgMin, Argsort, Axpy, Binary, Border, Compact, CompactIf, Compare, Conv2d, Dot, Gemm,
    Histogram, HistogramCounts, HistogramRange, Map, MapReduce, Max, Min, Scan, Sort, SortPairs,
    Sum, Transpose, Unary,
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
    /// Runs the kernel once on `on` and reads its whole result on the host.
    fn read(&self, on: On<'_>) -> Result<Vec<Part>>;
    /// The result by the entry's plain scalar oracle, on the same inputs.
    fn oracle(&self) -> Vec<Part>;
    /// How close [`Call::read`] must come to [`Call::oracle`].
    fn tolerance(&self) -> Tolerance;
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

/// A [`Call`] whose whole result is read back: run through the engine as
/// `engine.run(&ReadKernel(call.name()), ReadInput(call))`, it returns what
/// [`Call::read`] does on the backend the engine picked, for checking
/// against [`Call::oracle`].
#[derive(Clone, Copy, Debug)]
pub struct ReadKernel(pub &'static str);

/// A [`Call`] as a [`ReadKernel`] input.
#[derive(Clone, Copy)]
pub struct ReadInput<'a>(pub &'a dyn Call);

impl Inputs for ReadInput<'_> {
    fn visit(&self, f: &mut dyn FnMut(&InputState)) {
        self.0.inputs(f);
    }
}

impl<'a> Kernel<ReadInput<'a>> for ReadKernel {
    type Out = Vec<Part>;
    fn name(&self) -> &'static str {
        self.0
    }
    fn work(&self, input: &ReadInput<'a>) -> Work {
        input.0.work()
    }
    fn run_cpu(&self, cpu: &Cpu, input: ReadInput<'a>) -> Result<Vec<Part>> {
        input.0.read(On::Cpu(cpu))
    }
    fn run_gpu(&self, gpu: &Gpu, input: ReadInput<'a>) -> Result<Vec<Part>> {
        input.0.read(On::Gpu(gpu))
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

/// One catalogue entry: a kernel's name, how to make a call of it at size
/// `n` from seeded inputs (with its oracle and tolerance), the axis its
/// curves are keyed on and the largest size calibration measures.
#[derive(Clone, Copy)]
pub struct Probe {
    /// [`Kernel::name`] of the kernel measured.
    pub kernel: &'static str,
    /// Builds a call of about `n` elements on inputs drawn from `seed` (for
    /// a square kernel: `side ≈ √n`, so `n` stays the call's element count).
    pub make: fn(n: usize, seed: u64) -> Box<dyn Call>,
    /// The curves' x-axis; `None`: [`Axis::for_work`] of the largest call.
    pub axis: Option<Axis>,
    /// Sizes above this are measured at this size instead: for kernels
    /// whose time grows faster than their elements (gemm: `n^1.5`), so the
    /// sweep stays short.
    pub max_n: usize,
    /// Why the GPU backend declines every call of this entry with
    /// [`Error::Unsupported`](crate::Error::Unsupported) (so `Auto` runs it
    /// on the CPU), if it does: the tests check that it does, and says so.
    pub gpu_declines: Option<&'static str>,
}

impl Probe {
    /// A probe of `kernel`, keyed by the rule, at every size.
    pub const fn new(
        kernel: &'static str,
        make: fn(n: usize, seed: u64) -> Box<dyn Call>,
    ) -> Probe {
        Probe {
            kernel,
            make,
            axis: None,
            max_n: usize::MAX,
            gpu_declines: None,
        }
    }

    /// Marks the entry as one the GPU backend declines, for `why`.
    pub const fn gpu_declines(mut self, why: &'static str) -> Probe {
        self.gpu_declines = Some(why);
        self
    }

    /// A call of about `n` elements on the default seed's inputs (the ones
    /// calibration measures).
    pub fn call(&self, n: usize) -> Box<dyn Call> {
        (self.make)(n, 0)
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
        let (w0, w1) = (self.call(n0).work(), self.call(n1).work());
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
            .field("gpu_declines", &self.gpu_declines)
            .finish()
    }
}

/// A kernel family's entries.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    /// Family name (the stem of `src/kernels/<family>.rs`).
    pub name: &'static str,
    /// One entry per kernel of the family.
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

/// The probes' keep-or-drop threshold (compaction): half the inputs of
/// [`probe_data`] lie above it.
const THRESHOLD: f32 = 1.25;

/// Every kernel, by family. Adding a kernel: one [`Probe`] in its family
/// whose `make` builds a call of it at a size from seeded inputs, with its
/// plain scalar oracle and [`Tolerance`] (see [`unary_of`], [`binary_of`] and
/// [`call`]); name its [`Axis`] where cost is not linear in elements (or
/// leave [`Axis::for_work`] to decide), and cap `max_n` where the largest
/// default size would take more than a fraction of a second on a software
/// GPU. Calibration, the conformance and property tests, `compare` and the
/// fuzz target then cover it.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "map",
        probes: &[
            Probe::new("neg", |n, s| map1(Unary::Neg, n, s, Tolerance::Exact)),
            Probe::new("abs", |n, s| map1(Unary::Abs, n, s, Tolerance::Exact)),
            Probe::new("sqrt", |n, s| map1(Unary::Sqrt, n, s, Tolerance::rel(3e-7))),
            Probe::new("exp", |n, s| map1(Unary::Exp, n, s, Tolerance::rel(2e-6))),
            // WGSL bounds `log` by an absolute 2^-21 on [0.5, 2].
            Probe::new("ln", |n, s| {
                map1(Unary::Ln, n, s, Tolerance::close(2e-6, 5e-7))
            }),
            Probe::new("scale", |n, s| {
                map1(Unary::Scale(1.5), n, s, Tolerance::Exact)
            }),
            Probe::new("square", |n, s| map1(Unary::Square, n, s, Tolerance::Exact)),
            Probe::new("add", |n, s| map2(Binary::Add, n, s, Tolerance::Exact)),
            Probe::new("sub", |n, s| map2(Binary::Sub, n, s, Tolerance::Exact)),
            Probe::new("mul", |n, s| map2(Binary::Mul, n, s, Tolerance::Exact)),
            Probe::new("div", |n, s| map2(Binary::Div, n, s, Tolerance::rel(3e-7))),
            Probe::new("minimum", |n, s| map2(Binary::Min, n, s, Tolerance::Exact)),
            Probe::new("maximum", |n, s| map2(Binary::Max, n, s, Tolerance::Exact)),
            // A device may or may not fuse `a·x + y` (one rounding or two).
            Probe::new("axpy", |n, s| {
                binary_of::<f32, _, _>(Axpy { a: 1.5 }, n, s, Tolerance::rel(2e-7), |k, x, y| {
                    zip(x, y, |x, y| k.a * x + y)
                })
            }),
            // f64: IEEE-exact ops exactly; sqrt and div are correctly
            // rounded on both backends; exp and ln within 4 ε (the CPU's
            // `wide` polynomials, the GPU's in the prelude's f64 section).
            Probe::new("neg_f64", |n, s| {
                map1_64(Unary::Neg, n, s, Tolerance::Exact)
            }),
            Probe::new("abs_f64", |n, s| {
                map1_64(Unary::Abs, n, s, Tolerance::Exact)
            }),
            Probe::new("sqrt_f64", |n, s| {
                map1_64(Unary::Sqrt, n, s, Tolerance::Exact)
            }),
            Probe::new("exp_f64", |n, s| {
                map1_64(Unary::Exp, n, s, Tolerance::eps64(4.0))
            }),
            Probe::new("ln_f64", |n, s| {
                map1_64(Unary::Ln, n, s, Tolerance::eps64(4.0))
            }),
            Probe::new("scale_f64", |n, s| {
                map1_64(Unary::Scale(1.5), n, s, Tolerance::Exact)
            }),
            Probe::new("square_f64", |n, s| {
                map1_64(Unary::Square, n, s, Tolerance::Exact)
            }),
            Probe::new("add_f64", |n, s| {
                map2_64(Binary::Add, n, s, Tolerance::Exact)
            }),
            Probe::new("sub_f64", |n, s| {
                map2_64(Binary::Sub, n, s, Tolerance::Exact)
            }),
            Probe::new("mul_f64", |n, s| {
                map2_64(Binary::Mul, n, s, Tolerance::Exact)
            }),
            Probe::new("div_f64", |n, s| {
                map2_64(Binary::Div, n, s, Tolerance::Exact)
            }),
            Probe::new("minimum_f64", |n, s| {
                map2_64(Binary::Min, n, s, Tolerance::Exact)
            }),
            Probe::new("maximum_f64", |n, s| {
                map2_64(Binary::Max, n, s, Tolerance::Exact)
            }),
        ],
    },
    // Sums and dots against an f64 loop: pairwise f32 summation errs by
    // about `log2(n)·ε` of the sum, and every probe input is positive.
    // Expression kernels, on the probe expressions `a·x + y·z − √x` (five
    // operations over three arrays) and `Σ a·x + y`; their curves are keyed
    // on weighted operations, so one calibration serves every expression.
    Family {
        name: "expr",
        probes: &[
            Probe::new("map_expr", |n, s| {
                let map = Map::new(probe_expr_map::<f32>()).expect("probe expression");
                expr_call::<f32, _, _>(map, n, s, 3, Tolerance::close(1e-6, 1e-6), probe_map_value)
            })
            .axis(Axis::Flops),
            Probe::new("reduce_expr", |n, s| {
                let sum = MapReduce::sum(probe_expr_sum::<f32>()).expect("probe expression");
                expr_call::<f32, _, _>(sum, n, s, 2, Tolerance::rel(1e-5), probe_sum_value)
            })
            .axis(Axis::Flops),
            // The same in f64 (values, scalar and result): a GPU may fuse
            // a product into an fma, a few roundings of inputs in [0.5, 2);
            // the sum against a compensated oracle, as `sum_f64`.
            Probe::new("map_expr_f64", |n, s| {
                let map = Map::new(probe_expr_map::<f64>()).expect("probe expression");
                expr_call::<f64, _, _>(map, n, s, 3, Tolerance::eps64(8.0), probe_map_value)
            })
            .axis(Axis::Flops),
            Probe::new("reduce_expr_f64", |n, s| {
                let sum = MapReduce::sum(probe_expr_sum::<f64>()).expect("probe expression");
                expr_call::<f64, _, _>(sum, n, s, 2, Tolerance::eps64(64.0), probe_sum_value)
            })
            .axis(Axis::Flops),
        ],
    },
    Family {
        name: "reduce",
        probes: &[
            Probe::new("sum", |n, s| {
                unary_of::<f32, _, _>(Sum, n, s, Tolerance::rel(1e-5), |_, x| {
                    f32s([x.iter().map(|&v| f64::from(v)).sum::<f64>() as f32])
                })
            }),
            Probe::new("dot", |n, s| {
                binary_of::<f32, _, _>(Dot, n, s, Tolerance::rel(1e-5), |_, x, y| {
                    let d: f64 = x
                        .iter()
                        .zip(y)
                        .map(|(&a, &b)| f64::from(a) * f64::from(b))
                        .sum();
                    f32s([d as f32])
                })
            }),
            Probe::new("min", |n, s| extreme::<f32, _>(Min, n, s)),
            Probe::new("max", |n, s| extreme::<f32, _>(Max, n, s)),
            Probe::new("argmin", |n, s| arg_of::<f32, _>(ArgMin, n, s)),
            Probe::new("argmax", |n, s| arg_of::<f32, _>(ArgMax, n, s)),
            // f64 sums and dots against a compensated (Neumaier / dot2)
            // oracle, good to about ε of the sum: pairwise f64 summation errs
            // by about `log2(n)·ε`, and every input is positive.
            Probe::new("sum_f64", |n, s| {
                unary_of::<f64, _, _>(Sum, n, s, Tolerance::eps64(64.0), |_, x| {
                    f64s([compensated_sum(x.iter().copied())])
                })
            }),
            Probe::new("dot_f64", |n, s| {
                binary_of::<f64, _, _>(Dot, n, s, Tolerance::eps64(64.0), |_, x, y| {
                    f64s([compensated_dot(x, y)])
                })
            }),
            Probe::new("min_f64", |n, s| extreme::<f64, _>(Min, n, s)),
            Probe::new("max_f64", |n, s| extreme::<f64, _>(Max, n, s)),
            Probe::new("argmin_f64", |n, s| arg_of::<f64, _>(ArgMin, n, s)),
            Probe::new("argmax_f64", |n, s| arg_of::<f64, _>(ArgMax, n, s)),
        ],
    },
    Family {
        name: "scan",
        probes: &[
            Probe::new("inclusive_scan", |n, s| {
                unary_of::<f32, _, _>(Scan::inclusive(), n, s, Tolerance::rel(1e-5), |_, x| {
                    let mut acc = 0f64;
                    f32s(x.iter().map(|&v| {
                        acc += f64::from(v);
                        acc as f32
                    }))
                })
            })
            .axis(Axis::Elements),
            // Each prefix is a sum of positive terms, rounded along a
            // blocked chain: within 256 ε of the compensated running sum.
            Probe::new("inclusive_scan_f64", |n, s| {
                unary_of::<f64, _, _>(Scan::inclusive(), n, s, Tolerance::eps64(256.0), |_, x| {
                    let mut acc = Neumaier::default();
                    f64s(x.iter().map(|&v| {
                        acc.add(v);
                        acc.value()
                    }))
                })
            })
            .axis(Axis::Elements),
        ],
    },
    Family {
        name: "compact",
        probes: &[
            // Half the elements kept, in a random pattern.
            Probe::new("compact", |n, s| compact::<f32>(n, s)).axis(Axis::Elements),
            Probe::new("compact_if", |n, s| compact_if::<f32>(n, s)).axis(Axis::Elements),
            Probe::new("compact_f64", |n, s| compact::<f64>(n, s)).axis(Axis::Elements),
            Probe::new("compact_if_f64", |n, s| compact_if::<f64>(n, s)).axis(Axis::Elements),
        ],
    },
    // Counts, then the below, above and NaN slots.
    Family {
        name: "histogram",
        probes: &[
            Probe::new("histogram", |n, s| {
                let x = probe_data(n, s.wrapping_add(5))
                    .iter()
                    .map(|&v| (v * 1000.0) as u32 % 300)
                    .collect();
                call::<f32, _, _>(
                    Histogram { bins: 256 },
                    vec![],
                    vec![x],
                    |k, on, a| exec(k, on, &a.u32s[0]),
                    Tolerance::Exact,
                    |k, _, u| {
                        let bins = k.bins as usize;
                        let mut c = vec![0u32; bins + 3];
                        for &v in &u[0] {
                            c[if (v as usize) < bins {
                                v as usize
                            } else {
                                bins + 1
                            }] += 1;
                        }
                        vec![Part::U32(c)]
                    },
                )
            })
            .axis(Axis::Elements),
            // The range is narrower than the data, so below and above count.
            Probe::new("histogram_range", |n, s| {
                let h = HistogramRange {
                    lo: 0.75,
                    hi: 1.75,
                    bins: 256,
                };
                unary_of::<f32, _, _>(h, n, s, Tolerance::Exact, |k, x| {
                    vec![Part::U32(range_counts(x, k.lo as f32, k.hi as f32, k.bins))]
                })
            })
            .axis(Axis::Elements),
            // Edges that are not f32 values, every bucket formula in f64.
            Probe::new("histogram_range_f64", |n, s| {
                let h = HistogramRange {
                    lo: 0.7,
                    hi: 1.9,
                    bins: 255,
                };
                unary_of::<f64, _, _>(h, n, s, Tolerance::Exact, |k, x| {
                    vec![Part::U32(range_counts(x, k.lo, k.hi, k.bins))]
                })
            })
            .axis(Axis::Elements),
        ],
    },
    Family {
        name: "transpose",
        probes: &[
            Probe::new("transpose", |n, s| transpose::<f32>(n, s)).axis(Axis::Elements),
            Probe::new("transpose_f64", |n, s| transpose::<f64>(n, s)).axis(Axis::Elements),
        ],
    },
    Family {
        name: "gemm",
        probes: &[
            Probe::new("gemm", |n, s| {
                // m ≠ n ≠ k at the edges (`side ± 1`), square in the middle.
                let m = side(n);
                let (a, b) = (
                    probe_data(m * (m + 1), s.wrapping_add(1)),
                    probe_data((m + 1) * m, s.wrapping_add(2)),
                );
                call(
                    Gemm::new(m, m, m + 1),
                    vec![a, b],
                    vec![],
                    |k, on, a| exec(k, on, (&a.f32s[0], &a.f32s[1])),
                    Tolerance::rel(1e-5),
                    |g, f, _| {
                        let (a, b) = (&f[0], &f[1]);
                        f32s((0..g.m).flat_map(|i| {
                            (0..g.n).map(move |j| {
                                (0..g.k)
                                    .map(|p| f64::from(a[i * g.k + p]) * f64::from(b[p * g.n + j]))
                                    .sum::<f64>() as f32
                            })
                        }))
                    },
                )
            })
            .axis(Axis::Flops)
            .max_n(GEMM_MAX_N),
            // DGEMM: each output a k-term fma chain on positive terms, within
            // 32 ε of the compensated sum of the products.
            Probe::new("gemm_f64", |n, s| {
                let m = side(n);
                let (a, b) = (
                    probe_data64(m * (m + 1), s.wrapping_add(1)),
                    probe_data64((m + 1) * m, s.wrapping_add(2)),
                );
                call::<f64, _, _>(
                    Gemm::new(m, m, m + 1),
                    vec![a, b],
                    vec![],
                    |k, on, a| exec(k, on, (&a.f64s[0], &a.f64s[1])),
                    Tolerance::eps64(32.0),
                    |g, f, _| {
                        let (a, b) = (&f[0], &f[1]);
                        f64s((0..g.m).flat_map(|i| {
                            (0..g.n).map(move |j| {
                                let row = &a[i * g.k..(i + 1) * g.k];
                                let col: Vec<f64> = (0..g.k).map(|p| b[p * g.n + j]).collect();
                                compensated_dot(row, &col)
                            })
                        }))
                    },
                )
            })
            .axis(Axis::Flops)
            .max_n(GEMM_MAX_N),
        ],
    },
    Family {
        name: "conv",
        probes: &[
            Probe::new("conv2d", |n, s| {
                let (side, f) = (side(n), CONV_PROBE_FILTER);
                let conv = Conv2d {
                    height: side,
                    width: side + 1,
                    filter_height: f,
                    filter_width: f,
                    border: Border::Zero,
                };
                let filter = probe_data(f * f, s.wrapping_add(2));
                call(
                    conv,
                    vec![probe_data(side * (side + 1), s.wrapping_add(1)), filter],
                    vec![],
                    |k, on, a| exec(k, on, (&a.f32s[0], &a.f32s[1])),
                    Tolerance::rel(1e-5),
                    |c, f, _| {
                        let (img, w) = (&f[0], &f[1]);
                        let (h, wd, fh, fw) = (c.height, c.width, c.filter_height, c.filter_width);
                        f32s((0..h * wd).map(|p| {
                            let (y, x) = (p / wd, p % wd);
                            let mut acc = 0f64;
                            for i in 0..fh {
                                for j in 0..fw {
                                    let (yy, xx) = (
                                        (y + i) as isize - (fh / 2) as isize,
                                        (x + j) as isize - (fw / 2) as isize,
                                    );
                                    if (0..h as isize).contains(&yy)
                                        && (0..wd as isize).contains(&xx)
                                    {
                                        acc += f64::from(w[i * fw + j])
                                            * f64::from(img[yy as usize * wd + xx as usize]);
                                    }
                                }
                            }
                            acc as f32
                        }))
                    },
                )
            })
            .axis(Axis::Flops)
            .max_n(CONV_MAX_N),
            Probe::new("conv2d_f64", |n, s| {
                let (side, f) = (side(n), CONV_PROBE_FILTER);
                let conv = Conv2d {
                    height: side,
                    width: side + 1,
                    filter_height: f,
                    filter_width: f,
                    border: Border::Clamp,
                };
                let filter = probe_data64(f * f, s.wrapping_add(2));
                call::<f64, _, _>(
                    conv,
                    vec![probe_data64(side * (side + 1), s.wrapping_add(1)), filter],
                    vec![],
                    |k, on, a| exec(k, on, (&a.f64s[0], &a.f64s[1])),
                    Tolerance::eps64(16.0),
                    |c, f, _| {
                        let (img, w) = (&f[0], &f[1]);
                        let (h, wd, fh, fw) = (c.height, c.width, c.filter_height, c.filter_width);
                        f64s((0..h * wd).map(|p| {
                            let (y, x) = (p / wd, p % wd);
                            let mut acc = Neumaier::default();
                            for i in 0..fh {
                                for j in 0..fw {
                                    let yy = ((y + i) as isize - (fh / 2) as isize)
                                        .clamp(0, h as isize - 1);
                                    let xx = ((x + j) as isize - (fw / 2) as isize)
                                        .clamp(0, wd as isize - 1);
                                    let (a, b) =
                                        (w[i * fw + j], img[yy as usize * wd + xx as usize]);
                                    acc.add(a * b);
                                    acc.add(a.mul_add(b, -(a * b)));
                                }
                            }
                            acc.value()
                        }))
                    },
                )
            })
            .axis(Axis::Flops)
            .max_n(CONV_MAX_N),
        ],
    },
    // Sorts: keyed on elements (n·log n is close enough to linear over a
    // sweep that the piecewise curve follows it). The oracle is the
    // standard library's stable sort.
    Family {
        name: "sort",
        probes: &[
            Probe::new("sort", |n, s| {
                call::<f32, _, _>(
                    Sort,
                    vec![],
                    vec![probe_keys(n, s)],
                    |k, on, a| exec(k, on, &a.u32s[0]),
                    Tolerance::Exact,
                    |_, _, u| {
                        let mut k = u[0].clone();
                        k.sort_unstable();
                        vec![Part::U32(k)]
                    },
                )
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            // Keys with repeats (so stability shows) and u32 values.
            Probe::new("sort_pairs", |n, s| {
                let keys = probe_data(n, s.wrapping_add(6))
                    .iter()
                    .map(|&v| (v * 64.0).floor())
                    .collect();
                call(
                    SortPairs,
                    vec![keys],
                    vec![probe_keys(n, s)],
                    |k, on, a| exec(k, on, (&a.f32s[0], &a.u32s[0])),
                    Tolerance::Exact,
                    |_, f, u| {
                        let order = stable_order(&f[0]);
                        vec![
                            Part::F32(order.iter().map(|&i| f[0][i]).collect()),
                            Part::U32(order.iter().map(|&i| u[0][i]).collect()),
                        ]
                    },
                )
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            Probe::new("argsort", |n, s| {
                unary_of::<f32, _, _>(Argsort, n, s, Tolerance::Exact, |_, x| {
                    vec![Part::U32(
                        stable_order(x).iter().map(|&i| i as u32).collect(),
                    )]
                })
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            // f64 keys: eight 8-bit digits on the CPU; on the GPU two
            // 32-bit sorts of the key's words (`sort64.wgsl`).
            Probe::new("sort_f64", |n, s| {
                unary_of::<f64, _, _>(Sort, n, s, Tolerance::Exact, |_, x| {
                    let mut k = x.to_vec();
                    k.sort_by(f64::total_cmp);
                    f64s(k)
                })
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            Probe::new("sort_pairs_f64", |n, s| {
                let keys = probe_data64(n, s.wrapping_add(6))
                    .iter()
                    .map(|&v| (v * 64.0).floor())
                    .collect();
                call::<f64, _, _>(
                    SortPairs,
                    vec![keys],
                    vec![probe_keys(n, s)],
                    |k, on, a| exec(k, on, (&a.f64s[0], &a.u32s[0])),
                    Tolerance::Exact,
                    |_, f, u| {
                        let mut order: Vec<usize> = (0..f[0].len()).collect();
                        order.sort_by(|&a, &b| f[0][a].total_cmp(&f[0][b]));
                        vec![
                            Part::F64(order.iter().map(|&i| f[0][i]).collect()),
                            Part::U32(order.iter().map(|&i| u[0][i]).collect()),
                        ]
                    },
                )
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
            Probe::new("argsort_f64", |n, s| {
                unary_of::<f64, _, _>(Argsort, n, s, Tolerance::Exact, |_, x| {
                    let mut order: Vec<usize> = (0..x.len()).collect();
                    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
                    vec![Part::U32(order.iter().map(|&i| i as u32).collect())]
                })
            })
            .axis(Axis::Elements)
            .max_n(SORT_MAX_N),
        ],
    },
];

/// `a·x + y·z − √x`: the map-expression probe.
/// A min or max entry of `T`, against the first extreme element.
fn extreme<T: ProbeFloat, K>(kernel: K, n: usize, seed: u64) -> Box<dyn Call>
where
    K: MaxOrMin
        + for<'a> Kernel<&'a Buffer<T>, Out = Option<T>>
        + WorkOf
        + Clone
        + Send
        + Sync
        + 'static,
    Option<T>: Settle,
{
    unary_of::<T, _, _>(kernel, n, seed, Tolerance::Exact, |k, x| {
        let max = k.name_of_max();
        let best = x.iter().copied().reduce(|a, b| {
            let better = if max { b > a } else { b < a };
            if better { b } else { a }
        });
        vec![T::part(best.into_iter().collect())]
    })
}

/// An argmin or argmax entry of `T`: the first index of the extreme.
fn arg_of<T: ProbeFloat, K>(kernel: K, n: usize, seed: u64) -> Box<dyn Call>
where
    K: MaxOrMin
        + for<'a> Kernel<&'a Buffer<T>, Out = Option<(usize, T)>>
        + WorkOf
        + Clone
        + Send
        + Sync
        + 'static,
    Option<(usize, T)>: Settle,
{
    unary_of::<T, _, _>(kernel, n, seed, Tolerance::Exact, |k, x| {
        let max = k.name_of_max();
        let mut best: Option<(usize, T)> = None;
        for (i, &v) in x.iter().enumerate() {
            if best.is_none_or(|(_, b)| if max { v > b } else { v < b }) {
                best = Some((i, v));
            }
        }
        vec![
            Part::U32(best.iter().map(|&(i, _)| i as u32).collect()),
            T::part(best.iter().map(|&(_, v)| v).collect()),
        ]
    })
}

/// Whether an extreme kernel looks for the largest element.
trait MaxOrMin {
    fn name_of_max(&self) -> bool;
}

macro_rules! max_or_min {
    ($($k:ty => $max:literal),*) => {$(
        impl MaxOrMin for $k {
            fn name_of_max(&self) -> bool {
                $max
            }
        }
    )*};
}
max_or_min!(Min => false, Max => true, ArgMin => false, ArgMax => true);

/// Compaction of `T` by a random half-ones mask.
fn compact<T: ProbeFloat>(n: usize, s: u64) -> Box<dyn Call>
where
    Buffer<T>: Settle,
{
    let mask = probe_data(n, s.wrapping_add(4))
        .iter()
        .map(|&v| u32::from(v >= THRESHOLD))
        .collect();
    call::<T, _, _>(
        Compact,
        vec![T::probe(n, s.wrapping_add(1))],
        vec![mask],
        |k, on, a| exec(k, on, (&T::buffers(a)[0], &a.u32s[0])),
        Tolerance::Exact,
        |_, f, u| {
            vec![T::part(
                f[0].iter()
                    .zip(&u[0])
                    .filter(|(_, m)| **m != 0)
                    .map(|(v, _)| *v)
                    .collect(),
            )]
        },
    )
}

/// Compaction of `T` keeping `x >= THRESHOLD` (half the probe inputs).
fn compact_if<T: ProbeFloat>(n: usize, s: u64) -> Box<dyn Call>
where
    CompactIf<T>: for<'a> Kernel<&'a Buffer<T>, Out = Buffer<T>> + WorkOf,
    Buffer<T>: Settle,
{
    let keep_half = CompactIf {
        cmp: Compare::Ge,
        threshold: T::from_f32(THRESHOLD),
    };
    unary_of::<T, _, _>(keep_half, n, s, Tolerance::Exact, |k, x| {
        vec![T::part(
            x.iter().copied().filter(|&v| v >= k.threshold).collect(),
        )]
    })
}

/// A near-square transpose of `T`.
fn transpose<T: ProbeFloat>(n: usize, s: u64) -> Box<dyn Call>
where
    Buffer<T>: Settle,
{
    let (rows, cols) = (side(n), n.div_ceil(side(n)).max(1));
    call::<T, _, _>(
        Transpose { rows, cols },
        vec![T::probe(rows * cols, s.wrapping_add(1))],
        vec![],
        |k, on, a| exec(k, on, &T::buffers(a)[0]),
        Tolerance::Exact,
        |k, f, _| {
            let x = &f[0];
            vec![T::part(
                (0..k.cols)
                    .flat_map(|c| (0..k.rows).map(move |r| x[r * k.cols + c]))
                    .collect(),
            )]
        },
    )
}

fn probe_expr_map<T: crate::Element>() -> Expr {
    let (x, y, z) = (
        Expr::input::<T>("x"),
        Expr::input::<T>("y"),
        Expr::input::<T>("z"),
    );
    Expr::scalar::<T>("a") * &x + y * z - x.sqrt()
}

/// One element of [`probe_expr_map`], in f64.
fn probe_map_value(v: &[f64]) -> f64 {
    1.5 * v[0] + v[1] * v[2] - v[0].sqrt()
}

/// `a·x + y`: the summed expression probe.
fn probe_expr_sum<T: crate::Element>() -> Expr {
    Expr::scalar::<T>("a") * Expr::input::<T>("x") + Expr::input::<T>("y")
}

/// One element of [`probe_expr_sum`], in f64.
fn probe_sum_value(v: &[f64]) -> f64 {
    1.5 * v[0] + v[1]
}

/// The expression probes' arguments: inputs named `x`, `y`, `z` in order
/// (f64 when the call holds f64 data, else f32), and the scalar `a = 1.5`
/// of their type.
fn expr_args(a: &Args) -> ExprArgs<'_> {
    fn of<T: ProbeFloat + Into<crate::kernels::Scalar>>(a: &Args) -> ExprArgs<'_> {
        let mut args = ExprArgs::new().scalar("a", T::from_f64(1.5));
        for (name, b) in ["x", "y", "z"].into_iter().zip(T::buffers(a)) {
            args = args.array(name, b);
        }
        args
    }
    if a.f64s.is_empty() {
        of::<f32>(a)
    } else {
        of::<f64>(a)
    }
}

/// A catalogue call of an expression kernel over `arrays` inputs of type
/// `T`, its oracle `f` of one element's inputs evaluated in f64 (a map's
/// outputs element by element, a reduction's summed).
fn expr_call<T, K, O>(
    kernel: K,
    n: usize,
    seed: u64,
    arrays: u64,
    tolerance: Tolerance,
    f: fn(&[f64]) -> f64,
) -> Box<dyn Call>
where
    T: ProbeFloat + Into<f64>,
    K: for<'a, 'b> Kernel<&'a ExprArgs<'b>, Out = O>
        + ExprOracle
        + WorkOf
        + Clone
        + Send
        + Sync
        + 'static,
    O: Settle + 'static,
{
    let inputs = (1..=arrays)
        .map(|k| T::probe(n, seed.wrapping_add(k)))
        .collect();
    call(
        (kernel, f),
        inputs,
        vec![],
        |(k, _), on, a| exec(k, on, &expr_args(a)),
        tolerance,
        |(k, f), x: &[Vec<T>], _| {
            let row = |i: usize| -> Vec<f64> { x.iter().map(|v| v[i].into()).collect() };
            let values = (0..x[0].len()).map(|i| f(&row(i)));
            k.oracle::<T>(values)
        },
    )
}

/// How an expression kernel's oracle turns per-element values into its
/// result, of type `T`.
trait ExprOracle {
    fn oracle<T: ProbeFloat>(&self, values: impl Iterator<Item = f64>) -> Vec<Part>;
}

impl ExprOracle for Map {
    fn oracle<T: ProbeFloat>(&self, values: impl Iterator<Item = f64>) -> Vec<Part> {
        vec![T::part(values.map(T::from_f64).collect())]
    }
}

impl ExprOracle for MapReduce {
    fn oracle<T: ProbeFloat>(&self, values: impl Iterator<Item = f64>) -> Vec<Part> {
        vec![T::part(vec![T::from_f64(compensated_sum(values))])]
    }
}

impl WorkOf for Map {
    fn work_of(&self, a: &Args) -> Work {
        Kernel::<&ExprArgs<'_>>::work(self, &&expr_args(a))
    }
    fn name_of(&self, _: &Args) -> &'static str {
        Kernel::<&ExprArgs<'_>>::name(self)
    }
}

impl WorkOf for MapReduce {
    fn work_of(&self, a: &Args) -> Work {
        Kernel::<&ExprArgs<'_>>::work(self, &&expr_args(a))
    }
    fn name_of(&self, _: &Args) -> &'static str {
        Kernel::<&ExprArgs<'_>>::name(self)
    }
}

/// The plain scalar definitions of the [`Unary`] and [`Binary`] ops on one
/// float type (f32 transcendentals in f64, rounded once; no NaNs or signed
/// zeros in probe data), and the map probes checked against them.
macro_rules! map_refs {
    ($t:ty, $unary_ref:ident, $binary_ref:ident, $map1:ident, $map2:ident, $exp:expr, $ln:expr) => {
        fn $unary_ref(op: Unary, x: $t) -> $t {
            match op {
                Unary::Neg => -x,
                Unary::Abs => x.abs(),
                Unary::Sqrt => x.sqrt(),
                Unary::Exp => $exp(x),
                Unary::Ln => $ln(x),
                Unary::Scale(a) => <$t>::from(a) * x,
                Unary::Square => x * x,
            }
        }

        fn $binary_ref(op: Binary, x: $t, y: $t) -> $t {
            match op {
                Binary::Add => x + y,
                Binary::Sub => x - y,
                Binary::Mul => x * y,
                Binary::Div => x / y,
                Binary::Min => x.min(y),
                Binary::Max => x.max(y),
            }
        }

        fn $map1(op: Unary, n: usize, seed: u64, tolerance: Tolerance) -> Box<dyn Call> {
            unary_of::<$t, _, _>(op, n, seed, tolerance, |op, x| {
                vec![<$t>::part(x.iter().map(|&v| $unary_ref(*op, v)).collect())]
            })
        }

        fn $map2(op: Binary, n: usize, seed: u64, tolerance: Tolerance) -> Box<dyn Call> {
            binary_of::<$t, _, _>(op, n, seed, tolerance, |op, x, y| {
                vec![<$t>::part(
                    x.iter()
                        .zip(y)
                        .map(|(&a, &b)| $binary_ref(*op, a, b))
                        .collect(),
                )]
            })
        }
    };
}
map_refs!(
    f32,
    unary_ref,
    binary_ref,
    map1,
    map2,
    |x: f32| f64::from(x).exp() as f32,
    |x: f32| f64::from(x).ln() as f32
);
map_refs!(
    f64,
    unary_ref64,
    binary_ref64,
    map1_64,
    map2_64,
    f64::exp,
    f64::ln
);

fn f64s(v: impl IntoIterator<Item = f64>) -> Vec<Part> {
    vec![Part::F64(v.into_iter().collect())]
}

/// Neumaier's compensated sum: the running sum and the rounding error
/// lost so far, so the result is good to about ε of the exact sum
/// (whatever `n`), the f64 entries' oracle.
#[derive(Clone, Copy, Default)]
struct Neumaier {
    sum: f64,
    err: f64,
}

impl Neumaier {
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        self.err += if self.sum.abs() >= v.abs() {
            (self.sum - t) + v
        } else {
            (v - t) + self.sum
        };
        self.sum = t;
    }

    fn value(self) -> f64 {
        self.sum + self.err
    }
}

fn compensated_sum(x: impl Iterator<Item = f64>) -> f64 {
    let mut acc = Neumaier::default();
    x.for_each(|v| acc.add(v));
    acc.value()
}

/// Ogita–Rump–Oishi `Dot2`: each product split exactly into its rounded
/// value and its error (`fma`), all of them summed compensated.
fn compensated_dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = Neumaier::default();
    for (&a, &b) in x.iter().zip(y) {
        let p = a * b;
        acc.add(p);
        acc.add(a.mul_add(b, -p));
    }
    acc.value()
}

/// `f` over two equal-length inputs, as a result part.
fn zip(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) -> Vec<Part> {
    f32s(x.iter().zip(y).map(|(&a, &b)| f(a, b)))
}

/// An f32 result.
fn f32s(v: impl IntoIterator<Item = f32>) -> Vec<Part> {
    vec![Part::F32(v.into_iter().collect())]
}

/// The stable sorting permutation of `x` (no NaNs in probe data).
fn stable_order(x: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    order
}

/// `n` u32 keys with all 32 bits varying (no radix pass can be skipped).
fn probe_keys(n: usize, seed: u64) -> Vec<u32> {
    let salt = (seed as u32).wrapping_mul(0x85eb_ca6b);
    (0..n as u32)
        .map(|i| {
            let x = i.wrapping_mul(0x9E37_79B9) ^ 0x5bd1_e995 ^ salt;
            (x ^ (x >> 15)).wrapping_mul(0x2c1b_3c6d)
        })
        .collect()
}

/// The side of the square with about `n` elements (at least 1).
fn side(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).max(1)
}

/// The plain scalar oracle of a range histogram (and the serial loop the
/// benches time): `bins` equal buckets over `[lo, hi)`, the bucket formula in
/// `T`, then the below, above and NaN slots.
pub fn range_counts<T>(x: &[T], lo: T, hi: T, bins: u32) -> Vec<u32>
where
    T: crate::cpu::simd::Real
        + PartialOrd
        + std::ops::Sub<Output = T>
        + std::ops::Div<Output = T>
        + Into<f64>,
{
    let b = bins as usize;
    let scale = T::from_f32(bins as f32) / (hi - lo);
    let mut c = vec![0u32; b + 3];
    for &v in x {
        #[allow(clippy::eq_op, reason = "v != v is the generic NaN test")]
        let slot = if v != v {
            b + 2
        } else if v < lo {
            b
        } else if v >= hi {
            b + 1
        } else {
            // Exact widening: the floor is the one `T` would take.
            let t: f64 = ((v - lo) * scale).into();
            t.floor().min((b - 1) as f64) as usize
        };
        c[slot] += 1;
    }
    c
}

/// [`probe_data`] at f64 precision: values in `[0.5, 2)` with all 53
/// significand bits drawn, so no f64 entry sees only f32-exact inputs.
pub fn probe_data64(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            0.5 + 1.5 * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
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

/// One array of a call's result read on the host: a buffer's elements, or a
/// host value's fields (a reduction's value, an arg-reduction's index then
/// value, a histogram's counts then its below, above and NaN slots). An
/// `Option` is a part of zero or one elements.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// f32 elements.
    F32(Vec<f32>),
    /// u32 elements (indices, counts, keys).
    U32(Vec<u32>),
    /// f64 elements.
    F64(Vec<f64>),
}

/// How close a backend's result must come to the oracle's. u32 parts are
/// always compared exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tolerance {
    /// Bit for bit (any NaN matches any NaN).
    Exact,
    /// `|got − want| ≤ rel·|want| + abs`, element by element.
    Close {
        /// Relative bound.
        rel: f32,
        /// Absolute bound.
        abs: f32,
    },
}

impl Tolerance {
    /// Within `rel` of the oracle's value.
    pub const fn rel(rel: f32) -> Tolerance {
        Tolerance::Close { rel, abs: 0.0 }
    }

    /// Within `k` f64 ε (2^-52) of the oracle's value, relatively: how the
    /// f64 entries state their bounds.
    pub const fn eps64(k: f32) -> Tolerance {
        Tolerance::rel(k * f64::EPSILON as f32)
    }

    /// Within `rel·|want| + abs`.
    pub const fn close(rel: f32, abs: f32) -> Tolerance {
        Tolerance::Close { rel, abs }
    }

    /// Whether `got` matches `want`; the error names the first part and
    /// element that does not.
    pub fn check(self, got: &[Part], want: &[Part]) -> std::result::Result<(), String> {
        if got.len() != want.len() {
            return Err(format!(
                "{} result parts, expected {}",
                got.len(),
                want.len()
            ));
        }
        for (p, (g, w)) in got.iter().zip(want).enumerate() {
            match (g, w) {
                (Part::U32(g), Part::U32(w)) => {
                    if g.len() != w.len() {
                        return Err(format!(
                            "part {p}: {} elements, expected {}",
                            g.len(),
                            w.len()
                        ));
                    }
                    if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
                        return Err(format!("part {p}[{i}]: {} != {}", g[i], w[i]));
                    }
                }
                (Part::F32(g), Part::F32(w)) => self.floats(p, g, w, f64::from(f32::EPSILON))?,
                (Part::F64(g), Part::F64(w)) => self.floats(p, g, w, f64::EPSILON)?,
                _ => return Err(format!("part {p}: element types differ")),
            }
        }
        Ok(())
    }

    /// One float part against the oracle's, compared in f64 (exactly: by
    /// bits; any NaN matches any NaN); a mismatch is reported in units of
    /// the part type's `eps`.
    fn floats<F: Copy + Into<f64>>(
        self,
        p: usize,
        g: &[F],
        w: &[F],
        eps: f64,
    ) -> std::result::Result<(), String> {
        if g.len() != w.len() {
            return Err(format!(
                "part {p}: {} elements, expected {}",
                g.len(),
                w.len()
            ));
        }
        let ok = |g: f64, w: f64| match self {
            _ if g.is_nan() || w.is_nan() => g.is_nan() && w.is_nan(),
            Tolerance::Exact => g.to_bits() == w.to_bits(),
            Tolerance::Close { rel, abs } => {
                g == w || (g - w).abs() <= f64::from(rel) * w.abs() + f64::from(abs)
            }
        };
        match (0..g.len()).find(|&i| !ok(g[i].into(), w[i].into())) {
            Some(i) => {
                let (g, w): (f64, f64) = (g[i].into(), w[i].into());
                let ulps = (g - w).abs() / (w.abs() * eps);
                Err(format!(
                    "part {p}[{i}]: {g:e} != {w:e} ({ulps:.1} ε; tolerance {self:?})"
                ))
            }
            None => Ok(()),
        }
    }
}

/// A probe call's input buffers, by element type.
pub struct Args {
    /// The f32 inputs, in the kernel's order.
    pub f32s: Vec<Buffer<f32>>,
    /// The u32 inputs, in the kernel's order.
    pub u32s: Vec<Buffer<u32>>,
    /// The f64 inputs, in the kernel's order.
    pub f64s: Vec<Buffer<f64>>,
}

impl Args {
    fn new(d: &HostData) -> Args {
        Args {
            f32s: d.f32s.iter().map(|d| Buffer::from(d.clone())).collect(),
            u32s: d.u32s.iter().map(|d| Buffer::from(d.clone())).collect(),
            f64s: d.f64s.iter().map(|d| Buffer::from(d.clone())).collect(),
        }
    }
}

/// A kernel result a catalogue call finishes: a buffer read on the host
/// when asked, a host value as it is; or read whole, as [`Part`]s.
pub trait Settle {
    /// Reads a buffer result on the host if `to_host`.
    fn settle(self, to_host: bool) -> Result<()>;
    /// Appends the result, read on the host, to `parts`.
    fn read(self, parts: &mut Vec<Part>) -> Result<()>;
}

impl<A: Settle, B: Settle> Settle for (A, B) {
    fn settle(self, to_host: bool) -> Result<()> {
        self.0.settle(to_host)?;
        self.1.settle(to_host)
    }
    fn read(self, parts: &mut Vec<Part>) -> Result<()> {
        self.0.read(parts)?;
        self.1.read(parts)
    }
}

macro_rules! settle_buffer {
    ($($t:ty => $part:ident),*) => {$(
        impl Settle for Buffer<$t> {
            fn settle(self, to_host: bool) -> Result<()> {
                if to_host {
                    black_box(self.host()?);
                }
                black_box(self);
                Ok(())
            }
            fn read(self, parts: &mut Vec<Part>) -> Result<()> {
                parts.push(Part::$part(self.to_vec()?));
                Ok(())
            }
        }
    )*};
}
settle_buffer!(f32 => F32, u32 => U32, f64 => F64);

/// A host value: nothing to settle; read as its fields.
macro_rules! settle_host_value {
    ($($t:ty => |$v:ident, $parts:ident| $read:expr),* $(,)?) => {$(
        impl Settle for $t {
            fn settle(self, _to_host: bool) -> Result<()> {
                black_box(self);
                Ok(())
            }
            fn read(self, $parts: &mut Vec<Part>) -> Result<()> {
                let $v = self;
                $read;
                Ok(())
            }
        }
    )*};
}
settle_host_value!(
    f32 => |v, parts| parts.push(Part::F32(vec![v])),
    f64 => |v, parts| parts.push(Part::F64(vec![v])),
    Option<f64> => |v, parts| parts.push(Part::F64(v.into_iter().collect())),
    Option<(usize, f64)> => |v, parts| {
        parts.push(Part::U32(v.iter().map(|&(i, _)| i as u32).collect()));
        parts.push(Part::F64(v.iter().map(|&(_, v)| v).collect()));
    },
    Option<f32> => |v, parts| parts.push(Part::F32(v.into_iter().collect())),
    Option<(usize, f32)> => |v, parts| {
        parts.push(Part::U32(v.iter().map(|&(i, _)| i as u32).collect()));
        parts.push(Part::F32(v.iter().map(|&(_, v)| v).collect()));
    },
    HistogramCounts => |h, parts| {
        let mut c = h.counts;
        c.extend([h.below, h.above, h.nan]);
        parts.push(Part::U32(c));
    },
);

impl Settle for Outputs {
    fn settle(self, to_host: bool) -> Result<()> {
        for a in self.0 {
            match a {
                crate::kernels::Array::F32(b) => b.settle(to_host)?,
                crate::kernels::Array::U32(b) => b.settle(to_host)?,
                crate::kernels::Array::F64(b) => b.settle(to_host)?,
                crate::kernels::Array::I32(b) => {
                    if to_host {
                        black_box(b.host()?);
                    }
                }
            }
        }
        Ok(())
    }
    fn read(self, parts: &mut Vec<Part>) -> Result<()> {
        for a in self.0 {
            match a {
                crate::kernels::Array::F32(b) => b.read(parts)?,
                crate::kernels::Array::U32(b) => b.read(parts)?,
                crate::kernels::Array::F64(b) => b.read(parts)?,
                crate::kernels::Array::I32(b) => parts.push(Part::U32(
                    b.to_vec()?.into_iter().map(|v| v as u32).collect(),
                )),
            }
        }
        Ok(())
    }
}

impl Settle for Option<Reduced> {
    fn settle(self, _to_host: bool) -> Result<()> {
        black_box(self);
        Ok(())
    }
    fn read(self, parts: &mut Vec<Part>) -> Result<()> {
        if let Some(i) = self.and_then(|r| r.index) {
            parts.push(Part::U32(vec![i as u32]));
        }
        parts.push(match self.map(|r| r.value) {
            Some(crate::kernels::Scalar::F64(v)) => Part::F64(vec![v]),
            v => Part::F32(v.map(|v| v.as_f64() as f32).into_iter().collect()),
        });
        Ok(())
    }
}

/// Runs a kernel on a call's inputs on one backend.
type RunFn<K, O> = fn(&K, On<'_>, &Args) -> Result<O>;

/// A kernel's plain scalar oracle on a call's host inputs (f32 arrays, u32
/// arrays).
pub(crate) type OracleFn<K> = fn(&K, &[Vec<f32>], &[Vec<u32>]) -> Vec<Part>;

/// The oracle of an entry on `T` arrays and u32 arrays.
pub type OracleOf<K, T> = fn(&K, &[Vec<T>], &[Vec<u32>]) -> Vec<Part>;

/// The oracle of an f64 entry (f64 arrays, u32 arrays).
pub(crate) type OracleFn64<K> = fn(&K, &[Vec<f64>], &[Vec<u32>]) -> Vec<Part>;

/// An entry's oracle, by the float type of its inputs.
#[doc(hidden)]
pub enum Oracle<K> {
    F32(OracleFn<K>),
    F64(OracleFn64<K>),
}

impl<K> Clone for Oracle<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Oracle<K> {}

/// The backend a [`Call`] runs on.
#[derive(Clone, Copy)]
pub enum On<'a> {
    /// The CPU backend.
    Cpu(&'a Cpu),
    /// The GPU backend.
    Gpu(&'a Gpu),
}

/// `kernel` on `input` on the backend `on`.
fn exec<I, K: Kernel<I>>(kernel: &K, on: On<'_>, input: I) -> Result<K::Out> {
    match on {
        On::Cpu(cpu) => kernel.run_cpu(cpu, input),
        On::Gpu(gpu) => kernel.run_gpu(gpu, input),
    }
}

/// The host data of a call's inputs, by element type.
#[derive(Default)]
#[doc(hidden)]
pub struct HostData {
    f32s: Vec<Vec<f32>>,
    u32s: Vec<Vec<u32>>,
    f64s: Vec<Vec<f64>>,
}

type HostInputs = std::sync::Arc<HostData>;

/// A catalogue call of a kernel on f32 and u32 buffers, run by `run`.
struct Probed<K, O> {
    name: &'static str,
    kernel: K,
    data: HostInputs,
    args: Args,
    work: Work,
    run: RunFn<K, O>,
    oracle: Oracle<K>,
    tolerance: Tolerance,
}

impl<K, O> Call for Probed<K, O>
where
    K: Clone + Send + Sync + 'static,
    O: Settle + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn work(&self) -> Work {
        self.work
    }

    fn inputs(&self, f: &mut dyn FnMut(&InputState)) {
        self.args.f32s.iter().for_each(|b| (&b).visit(f));
        self.args.u32s.iter().for_each(|b| (&b).visit(f));
        self.args.f64s.iter().for_each(|b| (&b).visit(f));
    }

    fn make_resident(&self, gpu: &Gpu) -> Result<()> {
        for b in &self.args.f32s {
            gpu.resident("calibrate", b)?;
        }
        for b in &self.args.u32s {
            gpu.resident("calibrate", b)?;
        }
        for b in &self.args.f64s {
            gpu.resident("calibrate", b)?;
        }
        Ok(())
    }

    fn run_cpu(&self, cpu: &Cpu, to_host: bool) -> Result<()> {
        (self.run)(&self.kernel, On::Cpu(cpu), &self.args)?.settle(to_host)
    }

    fn run_gpu(&self, gpu: &Gpu, to_host: bool) -> Result<()> {
        (self.run)(&self.kernel, On::Gpu(gpu), &self.args)?.settle(to_host)
    }

    fn read(&self, on: On<'_>) -> Result<Vec<Part>> {
        let mut parts = Vec::new();
        (self.run)(&self.kernel, on, &self.args)?.read(&mut parts)?;
        Ok(parts)
    }

    fn oracle(&self) -> Vec<Part> {
        match self.oracle {
            Oracle::F32(f) => f(&self.kernel, &self.data.f32s, &self.data.u32s),
            Oracle::F64(f) => f(&self.kernel, &self.data.f64s, &self.data.u32s),
        }
    }

    fn tolerance(&self) -> Tolerance {
        self.tolerance
    }

    fn fresh(&self) -> Box<dyn Call> {
        Box::new(Probed {
            args: Args::new(&self.data),
            kernel: self.kernel.clone(),
            data: self.data.clone(),
            ..*self
        })
    }

    fn on_host_only(&self) -> bool {
        let host = |r: Residency| r == Residency::Host;
        self.args.f32s.iter().all(|b| host(b.residency()))
            && self.args.u32s.iter().all(|b| host(b.residency()))
            && self.args.f64s.iter().all(|b| host(b.residency()))
    }
}

/// The float element types of catalogue entries (f32, f64): how a probe
/// makes their inputs, and where a call's host data and buffers keep them.
pub trait ProbeFloat: crate::cpu::simd::Real + PartialOrd {
    /// [`probe_data`] (or [`probe_data64`]) of this type.
    fn probe(n: usize, seed: u64) -> Vec<Self>;
    /// The call's buffers of this type.
    fn buffers(a: &Args) -> &[Buffer<Self>];
    /// A result part of this type.
    fn part(v: Vec<Self>) -> Part;
    #[doc(hidden)]
    fn host_data(floats: Vec<Vec<Self>>, u32s: Vec<Vec<u32>>) -> HostData;
    #[doc(hidden)]
    fn oracle<K>(f: OracleOf<K, Self>) -> Oracle<K>;
}

impl ProbeFloat for f32 {
    fn probe(n: usize, seed: u64) -> Vec<f32> {
        probe_data(n, seed)
    }
    fn buffers(a: &Args) -> &[Buffer<f32>] {
        &a.f32s
    }
    fn part(v: Vec<f32>) -> Part {
        Part::F32(v)
    }
    fn host_data(f32s: Vec<Vec<f32>>, u32s: Vec<Vec<u32>>) -> HostData {
        HostData {
            f32s,
            u32s,
            f64s: Vec::new(),
        }
    }
    fn oracle<K>(f: OracleFn<K>) -> Oracle<K> {
        Oracle::F32(f)
    }
}

impl ProbeFloat for f64 {
    fn probe(n: usize, seed: u64) -> Vec<f64> {
        probe_data64(n, seed)
    }
    fn buffers(a: &Args) -> &[Buffer<f64>] {
        &a.f64s
    }
    fn part(v: Vec<f64>) -> Part {
        Part::F64(v)
    }
    fn host_data(f64s: Vec<Vec<f64>>, u32s: Vec<Vec<u32>>) -> HostData {
        HostData {
            f32s: Vec::new(),
            u32s,
            f64s,
        }
    }
    fn oracle<K>(f: OracleFn64<K>) -> Oracle<K> {
        Oracle::F64(f)
    }
}

/// A catalogue call of `kernel` on the given float (`T`: f32 or f64) and
/// u32 inputs: `run` calls it on a backend, `oracle` computes its result
/// with plain scalar loops, to within `tolerance`.
pub fn call<T: ProbeFloat, K, O>(
    kernel: K,
    floats: Vec<Vec<T>>,
    u32s: Vec<Vec<u32>>,
    run: RunFn<K, O>,
    tolerance: Tolerance,
    oracle: OracleOf<K, T>,
) -> Box<dyn Call>
where
    K: Clone + Send + Sync + 'static + WorkOf,
    O: Settle + 'static,
{
    let data = T::host_data(floats, u32s);
    let args = Args::new(&data);
    let work = kernel.work_of(&args);
    Box::new(Probed {
        name: kernel.name_of(&args),
        kernel,
        data: std::sync::Arc::new(data),
        args,
        work,
        run,
        oracle: T::oracle(oracle),
        tolerance,
    })
}

/// A kernel's name and work on a call's [`Args`], by the shape of its
/// input: one or two f32 buffers, an f32 and a u32 buffer, or one u32
/// buffer (the first shape the kernel takes, in that order).
pub trait WorkOf {
    /// The kernel's work estimate on `a`.
    fn work_of(&self, a: &Args) -> Work;
    /// [`Kernel::name`] on `a`.
    fn name_of(&self, a: &Args) -> &'static str;
}

macro_rules! work_of {
    ($($k:ty: $input:ty => |$a:ident| $arg:expr $(, $input64:ty => $arg64:expr)?;)*) => {$(
        impl WorkOf for $k {
            fn work_of(&self, $a: &Args) -> Work {
                $(if !$a.f64s.is_empty() {
                    return Kernel::<$input64>::work(self, &$arg64);
                })?
                Kernel::<$input>::work(self, &$arg)
            }
            fn name_of(&self, $a: &Args) -> &'static str {
                $(if !$a.f64s.is_empty() {
                    return Kernel::<$input64>::name(self);
                })?
                let _ = $a;
                Kernel::<$input>::name(self)
            }
        }
    )*};
}
type F1<'a> = &'a Buffer<f32>;
type F2<'a> = (&'a Buffer<f32>, &'a Buffer<f32>);
type FU<'a> = (&'a Buffer<f32>, &'a Buffer<u32>);
type U1<'a> = &'a Buffer<u32>;
type D1<'a> = &'a Buffer<f64>;
type D2<'a> = (&'a Buffer<f64>, &'a Buffer<f64>);
type DU<'a> = (&'a Buffer<f64>, &'a Buffer<u32>);
work_of! {
    Unary: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    Sum: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    Min: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    Max: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    ArgMin: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    ArgMax: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    Scan: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    CompactIf<f32>: F1 => |a| &a.f32s[0];
    CompactIf<f64>: D1 => |a| &a.f64s[0];
    HistogramRange: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    Transpose: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    Argsort: F1 => |a| &a.f32s[0], D1 => &a.f64s[0];
    Binary: F2 => |a| (&a.f32s[0], &a.f32s[1]), D2 => (&a.f64s[0], &a.f64s[1]);
    Axpy: F2 => |a| (&a.f32s[0], &a.f32s[1]);
    Dot: F2 => |a| (&a.f32s[0], &a.f32s[1]), D2 => (&a.f64s[0], &a.f64s[1]);
    Gemm: F2 => |a| (&a.f32s[0], &a.f32s[1]), D2 => (&a.f64s[0], &a.f64s[1]);
    Conv2d: F2 => |a| (&a.f32s[0], &a.f32s[1]), D2 => (&a.f64s[0], &a.f64s[1]);
    Compact: FU => |a| (&a.f32s[0], &a.u32s[0]), DU => (&a.f64s[0], &a.u32s[0]);
    SortPairs: FU => |a| (&a.f32s[0], &a.u32s[0]), DU => (&a.f64s[0], &a.u32s[0]);
    Histogram: U1 => |a| &a.u32s[0];
    Sort: U1 => |a| &a.u32s[0], D1 => &a.f64s[0];
}

/// A catalogue call of a one-input kernel on `T`'s probe data of `seed`
/// ([`probe_data`] for f32, [`probe_data64`] for f64).
pub fn unary_of<T: ProbeFloat, K, O>(
    kernel: K,
    n: usize,
    seed: u64,
    tolerance: Tolerance,
    oracle: fn(&K, &[T]) -> Vec<Part>,
) -> Box<dyn Call>
where
    K: for<'a> Kernel<&'a Buffer<T>, Out = O> + WorkOf + Clone + Send + Sync + 'static,
    O: Settle + 'static,
{
    // The oracle travels as the kernel's companion: `OracleFn` takes no
    // closure state, so a one-input oracle rides in a pair.
    call::<T, _, _>(
        (kernel, oracle),
        vec![T::probe(n, seed.wrapping_add(1))],
        vec![],
        |(k, _), on, a| exec(k, on, &T::buffers(a)[0]),
        tolerance,
        |(k, oracle), f, _| oracle(k, &f[0]),
    )
}

/// A catalogue call of a two-input kernel on `T`'s probe data of `seed`.
pub fn binary_of<T: ProbeFloat, K, O>(
    kernel: K,
    n: usize,
    seed: u64,
    tolerance: Tolerance,
    oracle: fn(&K, &[T], &[T]) -> Vec<Part>,
) -> Box<dyn Call>
where
    K: for<'a> Kernel<(&'a Buffer<T>, &'a Buffer<T>), Out = O>
        + WorkOf
        + Clone
        + Send
        + Sync
        + 'static,
    O: Settle + 'static,
{
    call::<T, _, _>(
        (kernel, oracle),
        vec![
            T::probe(n, seed.wrapping_add(1)),
            T::probe(n, seed.wrapping_add(2)),
        ],
        vec![],
        |(k, _), on, a| exec(k, on, (&T::buffers(a)[0], &T::buffers(a)[1])),
        tolerance,
        |(k, oracle), f, _| oracle(k, &f[0], &f[1]),
    )
}

impl<K: WorkOf, F> WorkOf for (K, F) {
    fn work_of(&self, a: &Args) -> Work {
        self.0.work_of(a)
    }
    fn name_of(&self, a: &Args) -> &'static str {
        self.0.name_of(a)
    }
}
