//! Histograms: [`Histogram`] of `u32` values into `bins` buckets, and
//! [`HistogramRange`] of `f32` values over `[lo, hi)` into `bins` equal-width
//! buckets. Both return [`HistogramCounts`]. GPU twin: `shaders/histogram.wgsl`.
//!
//! # Semantics (identical on both backends, bit for bit)
//! - `u32`: value `v` goes to bucket `v` when `v < bins`, else to
//!   [`above`](HistogramCounts::above).
//! - `f32`: NaN goes to [`nan`](HistogramCounts::nan); `-Inf` and `v < lo`
//!   to [`below`](HistogramCounts::below); `+Inf` and `v >= hi` to
//!   [`above`](HistogramCounts::above); every other `v` to bucket
//!   `min(floor((v − lo) · scale), bins − 1)` where
//!   `scale = bins as f32 / (hi − lo)`, every operation in `f32` (so an edge
//!   value lands where this formula puts it, which may be one bucket off the
//!   real-number answer; both backends agree). Nothing is dropped: the
//!   counts and the three outlier counts add up to the input length.
//! - Counts are `u32`: inputs of `u32::MAX` elements or more are refused
//!   with [`Error::TooLarge`].
//! - Parameters are checked before any work: zero bins, a non-finite `lo`
//!   or `hi`, `hi <= lo`, a range whose width `hi − lo` is not a finite
//!   normal `f32`, or more than 2^24 bins for `f32` (bucket indices are exact
//!   in `f32` only so far) give [`Error::InvalidArgument`].
//!
//! # Algorithms
//! - CPU: the slots of a block of values computed in SIMD lanes, then
//!   counted; per-task private histograms over rayon chunks, merged; above
//!   [`CPU_PRIVATE_SLOTS`] slots (private copies would not stay in cache),
//!   one shared histogram of atomics.
//! - GPU: a workgroup-memory histogram per 4096-element tile, merged with
//!   global atomics; above 4093 bins (workgroup memory is 16 KiB), global
//!   atomics directly.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::buffer::{Buffer, Element};
use crate::cpu::simd::{F32, F64, F64_LANES, LANES, Simd, U32};
use crate::cpu::{self, Cpu, pool};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Gpu, ShaderSpec, shader};
use crate::kernel::{Kernel, Work};

shader! {
    "histogram.wgsl",
    /// `histogram.wgsl`'s uniform block: `n` elements in this dispatch's
    /// range (`clear`: slots), `groups` the workgroups that hold real tiles,
    /// the bin count, the f32 edges and scale, then the f64 ones as (low,
    /// high) words.
    struct Params {
        n: u32, groups: u32, bins: u32, _pad: u32,
        lo: f32, hi: f32, scale: f32, _pad1: u32,
        lo_bits: [u32; 2], hi_bits: [u32; 2], scale_bits: [u32; 2], _pad2: [u32; 2],
    }
    /// Elements one invocation counts.
    const PER_THREAD: u32 = 16;
    /// Elements one workgroup counts: `WG * PER_THREAD`.
    const TILE: usize = 4096;
    /// Slots of the workgroup-memory histogram: 16 KiB, WebGPU's guaranteed
    /// minimum of workgroup storage. Bins plus the three outlier slots must
    /// fit for the shared path.
    const SHARED_SLOTS: usize = 4096;
}

/// Largest slot count (bins + 3) for which the CPU gives each task a private
/// histogram (256 KiB); above it, tasks share one of atomics.
pub const CPU_PRIVATE_SLOTS: usize = 1 << 16;

/// Most bins a [`HistogramRange`] takes (bucket indices are exact `f32`s).
pub const MAX_RANGE_BINS: u32 = 1 << 24;

/// Most bins a [`Histogram`] takes: 2^28 counters are 1 GiB of output. The
/// counts are an allocation sized by a parameter, not by the input, so they
/// are bounded here (a larger request is an [`Error::InvalidArgument`], not
/// an abort when memory runs out); a histogram of more distinct values than
/// this is better computed by sorting.
pub const MAX_BINS: u32 = 1 << 28;

/// Counts of values into buckets, by [`Histogram`] or [`HistogramRange`].
/// `counts.iter().sum() + below + above + nan` is the input length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramCounts {
    /// One count per bucket (`bins` of them).
    pub counts: Vec<u32>,
    /// Values below the range (`f32`: `v < lo`, `-Inf`; `u32`: always 0).
    pub below: u32,
    /// Values at or above the range (`f32`: `v >= hi`, `+Inf`; `u32`: `v >= bins`).
    pub above: u32,
    /// NaN values (`f32` only).
    pub nan: u32,
}

impl HistogramCounts {
    /// From the slot layout the kernels use: bins, then below, above, NaN.
    fn from_slots(mut slots: Vec<u32>) -> HistogramCounts {
        let bins = slots.len() - 3;
        let tail = slots.split_off(bins);
        HistogramCounts {
            counts: slots,
            below: tail[0],
            above: tail[1],
            nan: tail[2],
        }
    }
}

/// Counts `u32` values into `bins` buckets: value `v` into bucket `v`,
/// values `>= bins` into [`HistogramCounts::above`]. `Kernel<&Buffer<u32>>`.
///
/// ```
/// use tandem::{Buffer, Engine};
/// use tandem::kernels::Histogram;
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let x = Buffer::from(vec![0u32, 2, 2, 9]);
/// let h = engine.run(&Histogram { bins: 3 }, &x)?;
/// assert_eq!((h.counts, h.above), (vec![1, 0, 2], 1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram {
    /// Number of buckets (at least 1).
    pub bins: u32,
}

/// Counts `f32` values into `bins` equal-width buckets over `[lo, hi)` (see
/// the [module docs](self) for the exact bucket formula and outliers).
/// `Kernel<&Buffer<f32>>`.
///
/// ```
/// use tandem::{Buffer, Engine};
/// use tandem::kernels::HistogramRange;
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let x = Buffer::from(vec![0.0f32, 0.5, 0.99, 1.0, -3.0, f32::NAN]);
/// let h = engine.run(&HistogramRange { lo: 0.0, hi: 1.0, bins: 2 }, &x)?;
/// assert_eq!((h.counts, h.below, h.above, h.nan), (vec![1, 2], 1, 1, 1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistogramRange {
    /// Lower edge (inclusive), finite. For `f32` data it is rounded to
    /// `f32` first.
    pub lo: f64,
    /// Upper edge (exclusive), finite, above `lo` (for `f32` data, once
    /// both are rounded to `f32`).
    pub hi: f64,
    /// Number of buckets, 1 to [`MAX_RANGE_BINS`].
    pub bins: u32,
}

/// Work of a histogram: one read, the bins written, `flops` per element
/// plus one atomic (or private) increment; the counts come to the host.
fn histogram_work(n: usize, bins: u32, flops: u64) -> Work {
    let n = n as u64;
    let slot_bytes = (u64::from(bins) + 3) * 4;
    Work {
        elements: n,
        bytes_read: n * 4,
        bytes_written: slot_bytes,
        flops: n * (flops + 1),
        host_result_bytes: slot_bytes,
    }
}

fn check_len(kernel: &'static str, n: usize) -> Result<()> {
    if n >= u32::MAX as usize {
        return Err(Error::TooLarge {
            kernel,
            bytes: (n as u64).saturating_mul(4),
            limit: u64::from(u32::MAX - 1) * 4,
            what: "u32 bucket counts",
        });
    }
    Ok(())
}

impl Histogram {
    fn check(&self) -> Result<()> {
        if self.bins == 0 || self.bins > MAX_BINS {
            return Err(Error::InvalidArgument {
                kernel: "histogram",
                message: format!("bins must be 1 to {MAX_BINS} (MAX_BINS), got {}", self.bins),
            });
        }
        Ok(())
    }
}

impl HistogramRange {
    /// Checks the parameters for `f32` data and returns `(lo, hi, scale)`
    /// in f32, `scale = bins / (hi - lo)`.
    fn edges_f32(&self) -> Result<(f32, f32, f32)> {
        let (lo, hi) = (self.lo as f32, self.hi as f32);
        self.check_edges(lo, hi, lo.is_finite() && hi.is_finite(), "f32")?;
        let width = hi - lo;
        let scale = self.bins as f32 / width;
        if !width.is_normal() || !scale.is_normal() {
            return Err(self.invalid(format!(
                "the range width hi - lo = {width} (lo = {lo}, hi = {hi}) and bins / width = \
                 {scale} must be finite normal f32s"
            )));
        }
        Ok((lo, hi, scale))
    }

    /// [`HistogramRange::edges_f32`] for `f64` data, every operation in f64.
    fn edges_f64(&self) -> Result<(f64, f64, f64)> {
        let (lo, hi) = (self.lo, self.hi);
        self.check_edges(lo, hi, lo.is_finite() && hi.is_finite(), "f64")?;
        let width = hi - lo;
        let scale = f64::from(self.bins) / width;
        if !width.is_normal() || !scale.is_normal() {
            return Err(self.invalid(format!(
                "the range width hi - lo = {width} (lo = {lo}, hi = {hi}) and bins / width = \
                 {scale} must be finite normal f64s"
            )));
        }
        Ok((lo, hi, scale))
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            kernel: "histogram_range",
            message,
        }
    }

    fn check_edges<F: PartialOrd + std::fmt::Display + Copy>(
        &self,
        lo: F,
        hi: F,
        finite: bool,
        ty: &str,
    ) -> Result<()> {
        let bins = self.bins;
        if bins == 0 || bins > MAX_RANGE_BINS {
            return Err(self.invalid(format!("bins must be 1 to {MAX_RANGE_BINS}, got {bins}")));
        }
        if !finite {
            return Err(self.invalid(format!(
                "lo and hi must be finite {ty}s, got lo = {}, hi = {}",
                self.lo, self.hi
            )));
        }
        if hi <= lo {
            return Err(self.invalid(format!(
                "hi must exceed lo, got lo = {lo}, hi = {hi} (as {ty})"
            )));
        }
        Ok(())
    }
}

/// The bucket slot of `v` (see the module docs), for f32 and f64; the
/// same formula as the shader's `slot`.
macro_rules! range_slot {
    ($name:ident, $t:ty) => {
        #[inline(always)]
        fn $name(v: $t, lo: $t, hi: $t, scale: $t, bins: u32) -> usize {
            if v.is_nan() {
                bins as usize + 2
            } else if v < lo {
                bins as usize
            } else if v >= hi {
                bins as usize + 1
            } else {
                ((v - lo) * scale).floor().min((bins - 1) as $t) as usize
            }
        }
    };
}
range_slot!(range_slot, f32);
range_slot!(range_slot_f64, f64);

/// [`range_slot`] of every value of `x` into `out`, a vector of lanes at a
/// time and without branches: the bucket formula in every lane, then the
/// below, above and NaN slots selected over it, all as floats (exact while
/// `bins + 2` is below the type's exact-integer limit, 2^24 or 2^53; past
/// it the scalar formula does all), truncated at the end. Bit for bit the
/// scalar formula (the same operations in the same order, no contraction).
/// Per element the branches and the saturating float-to-integer cast cost
/// more than the counting: in `compare` a range histogram of 2^24 f32 took
/// 17.9 ms where a plain `rayon` fold with constant edges took 10.6. Best
/// of a probe's calls, 2^24 values, 256 bins, one build against the other
/// (2026-12-07): f32 20.5–20.6 → 5.1–5.2 ms, f64 20.7–20.8 → 7.1 ms.
macro_rules! range_slots {
    ($name:ident, $scalar:ident, $t:ty, $v:ty, $lanes:expr, $int:ty, $exact_slots:expr) => {
        fn $name(x: &[$t], lo: $t, hi: $t, scale: $t, bins: u32, out: &mut [u32]) {
            debug_assert_eq!(x.len(), out.len());
            // Past the float's exact integers the scalar formula does all.
            let done = if (bins as u64 + 2) < $exact_slots {
                let (lov, hiv, sc) = (<$v>::splat(lo), <$v>::splat(hi), <$v>::splat(scale));
                let top = <$v>::splat((bins - 1) as $t);
                let below = <$v>::splat(bins as $t);
                let above = <$v>::splat(bins as $t + 1.0);
                let nan = <$v>::splat(bins as $t + 2.0);
                let os = out.chunks_exact_mut($lanes);
                for (xv, ov) in x.chunks_exact($lanes).zip(os) {
                    let v = <$t as Simd>::load(xv);
                    let r = ((v - lov) * sc).floor().min(top);
                    let r = v.simd_lt(lov).select(below, r);
                    let r = v.simd_ge(hiv).select(above, r);
                    let r = v.is_nan().select(nan, r);
                    let lanes: [$int; $lanes] = bytemuck::cast(r.fast_trunc_int());
                    for (o, &l) in ov.iter_mut().zip(&lanes) {
                        *o = l as u32;
                    }
                }
                x.len() - x.len() % $lanes
            } else {
                0
            };
            for (o, &v) in out[done..].iter_mut().zip(&x[done..]) {
                *o = $scalar(v, lo, hi, scale, bins) as u32;
            }
        }
    };
}
range_slots!(range_slots, range_slot, f32, F32, LANES, i32, 1 << 24);
range_slots!(
    range_slots_f64,
    range_slot_f64,
    f64,
    F64,
    F64_LANES,
    i64,
    1 << 53
);

/// The slots of `u32` values into `out`: `v` below `bins`, else `bins + 1`
/// (above), a vector of lanes at a time: `min(v, bins)`, plus one where
/// that is `bins` (subtracting the all-ones lanes of the comparison).
fn value_slots(x: &[u32], bins: u32, out: &mut [u32]) {
    debug_assert_eq!(x.len(), out.len());
    let top = U32::splat(bins);
    for (xv, ov) in x.chunks_exact(LANES).zip(out.chunks_exact_mut(LANES)) {
        let m = u32::load(xv).min(top);
        u32::store(m - m.simd_eq(top), ov);
    }
    let done = x.len() - x.len() % LANES;
    for (o, &v) in out[done..].iter_mut().zip(&x[done..]) {
        *o = if v < bins { v } else { bins + 1 };
    }
}

impl Kernel<&Buffer<u32>> for Histogram {
    type Out = HistogramCounts;

    fn name(&self) -> &'static str {
        "histogram"
    }

    fn work(&self, x: &&Buffer<u32>) -> Work {
        histogram_work(x.len(), self.bins, 1)
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<u32>) -> Result<HistogramCounts> {
        self.check()?;
        check_len("histogram", x.len())?;
        let data = cpu.host(x)?;
        let bins = self.bins;
        let slots = count_cpu(cpu, "histogram", &data, bins, move |x, out| {
            value_slots(x, bins, out)
        })?;
        Ok(HistogramCounts::from_slots(slots))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<u32>) -> Result<HistogramCounts> {
        self.check()?;
        check_len("histogram", x.len())?;
        let params = Params {
            bins: self.bins,
            ..Params::default()
        };
        count_gpu(gpu, "histogram", x, params)
    }
}

/// The element types of [`HistogramRange`]: f32 (edges rounded to f32,
/// every bucket computation in f32) and f64 (all in f64).
pub trait RangeFloat: Element + PartialOrd {
    /// The kernel's name for this type.
    #[doc(hidden)]
    const NAME: &'static str;
    /// `(lo, hi, scale)` in this type, after the checks.
    #[doc(hidden)]
    fn edges(h: &HistogramRange) -> Result<(Self, Self, Self)>;
    /// The bucket slot (the module docs' formula) of every value of `x`
    /// into `out` (as long).
    #[doc(hidden)]
    fn slots(x: &[Self], lo: Self, hi: Self, scale: Self, bins: u32, out: &mut [u32]);
    /// The edges and scale as `histogram.wgsl` reads them: as f32, or as
    /// the (low, high) words of f64s.
    #[doc(hidden)]
    fn gpu_edges(lo: Self, hi: Self, scale: Self) -> ([f32; 3], [[u32; 2]; 3]);
}

/// One [`RangeFloat`] impl: its name, edge check, slot formula and GPU
/// edge words.
macro_rules! range_float {
    (
        $t:ty, $name:literal, $edges:ident, $slots:ident,
        |$lo:ident, $hi:ident, $scale:ident| $gpu:expr
    ) => {
        impl RangeFloat for $t {
            const NAME: &'static str = $name;
            fn edges(h: &HistogramRange) -> Result<($t, $t, $t)> {
                h.$edges()
            }
            #[inline(always)]
            fn slots(x: &[$t], lo: $t, hi: $t, scale: $t, bins: u32, out: &mut [u32]) {
                $slots(x, lo, hi, scale, bins, out)
            }
            fn gpu_edges($lo: $t, $hi: $t, $scale: $t) -> ([f32; 3], [[u32; 2]; 3]) {
                $gpu
            }
        }
    };
}
range_float!(
    f32,
    "histogram_range",
    edges_f32,
    range_slots,
    |lo, hi, scale| ([lo, hi, scale], [[0; 2]; 3])
);
range_float!(
    f64,
    "histogram_range_f64",
    edges_f64,
    range_slots_f64,
    |lo, hi, scale| ([0.0; 3], bytemuck::cast([lo, hi, scale]))
);

impl<R: RangeFloat> Kernel<&Buffer<R>> for HistogramRange {
    type Out = HistogramCounts;

    fn name(&self) -> &'static str {
        R::NAME
    }

    fn work(&self, x: &&Buffer<R>) -> Work {
        histogram_work(x.len(), self.bins, 4)
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<R>) -> Result<HistogramCounts> {
        let (lo, hi, scale) = R::edges(self)?;
        check_len(R::NAME, x.len())?;
        let data = cpu.host(x)?;
        let bins = self.bins;
        let slots = count_cpu(cpu, R::NAME, &data, bins, move |x, out| {
            R::slots(x, lo, hi, scale, bins, out)
        })?;
        Ok(HistogramCounts::from_slots(slots))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<R>) -> Result<HistogramCounts> {
        let (lo, hi, scale) = R::edges(self)?;
        check_len(R::NAME, x.len())?;
        gpu.check_element(R::NAME, R::TYPE)?;
        let ([lo, hi, scale], [lo_bits, hi_bits, scale_bits]) = R::gpu_edges(lo, hi, scale);
        let params = Params {
            bins: self.bins,
            lo,
            hi,
            scale,
            lo_bits,
            hi_bits,
            scale_bits,
            ..Params::default()
        };
        count_gpu(gpu, R::NAME, x, params)
    }
}

/// Most slots for which [`count_into`] interleaves four counter sets.
const INTERLEAVED_MAX_SLOTS: usize = 4096;

/// Values whose slots [`count_into`] computes at a time, into a buffer on
/// the stack.
const SLOT_BLOCK: usize = 256;

/// Calls `f` with the slots `slots` gives `data`, [`SLOT_BLOCK`] values
/// at a time.
#[inline(always)]
fn slot_blocks<T>(data: &[T], slots: &impl Fn(&[T], &mut [u32]), mut f: impl FnMut(&[u32])) {
    let mut buf = [0u32; SLOT_BLOCK];
    for block in data.chunks(SLOT_BLOCK) {
        let s = &mut buf[..block.len()];
        slots(block, s);
        f(s);
    }
}

/// Adds the counts of the slots `slots` gives `data` to `h`. Four private
/// copies of the counters take consecutive elements in turn: runs of equal
/// values would otherwise serialise on one counter's load-add-store (the
/// copies are summed at the end). Up to [`INTERLEAVED_MAX_SLOTS`] slots,
/// and only when there are enough values to repay the extra sets.
fn count_into<T: Element>(h: &mut [u32], data: &[T], slots: &impl Fn(&[T], &mut [u32])) {
    let n_slots = h.len();
    if n_slots > INTERLEAVED_MAX_SLOTS || data.len() < 4 * n_slots {
        // Many bins (repeats are rare, and three more copies to clear and
        // sum would cost more than the counting) or few values: one set.
        slot_blocks(data, slots, |s| {
            for &i in s {
                h[i as usize] += 1;
            }
        });
        return;
    }
    let mut copies = vec![0u32; 3 * n_slots];
    let (h1, rest) = copies.split_at_mut(n_slots);
    let (h2, h3) = rest.split_at_mut(n_slots);
    slot_blocks(data, slots, |s| {
        let mut quads = s.chunks_exact(4);
        for q in &mut quads {
            h[q[0] as usize] += 1;
            h1[q[1] as usize] += 1;
            h2[q[2] as usize] += 1;
            h3[q[3] as usize] += 1;
        }
        for &i in quads.remainder() {
            h[i as usize] += 1;
        }
    });
    for i in 0..n_slots {
        h[i] += h1[i] + h2[i] + h3[i];
    }
}

/// Counts of the slots `slot` gives `data` (a block of values at a time)
/// into `bins + 3` slots. The counters are allocated fallibly
/// ([`Error::HostOutOfMemory`]): their size comes from the `bins`
/// parameter, not from the input.
fn count_cpu<T: Element>(
    cpu: &Cpu,
    kernel: &'static str,
    data: &[T],
    bins: u32,
    slot: impl Fn(&[T], &mut [u32]) + Sync + Send,
) -> Result<Vec<u32>> {
    let slots = bins as usize + 3;
    let n = data.len();
    if n < cpu::PARALLEL_THRESHOLD {
        let mut h = pool::try_take_zeroed::<u32>(kernel, "histogram counters", slots)?;
        count_into(&mut h, data, &slot);
        return Ok(h);
    }
    if slots > CPU_PRIVATE_SLOTS {
        let mut h: Vec<AtomicU32> = Vec::new();
        h.try_reserve_exact(slots)
            .map_err(|_| Error::HostOutOfMemory {
                kernel,
                bytes: slots as u64 * 4,
                what: "histogram counters",
            })?;
        h.extend((0..slots).map(|_| AtomicU32::new(0)));
        let chunk = cpu.chunk_len(n, 8192);
        cpu.for_each_chunk(n.div_ceil(chunk), &|i| {
            let c = &data[i * chunk..(i * chunk + chunk).min(n)];
            slot_blocks(c, &slot, |s| {
                for &i in s {
                    h[i as usize].fetch_add(1, Ordering::Relaxed);
                }
            });
        });
        return Ok(h.into_iter().map(AtomicU32::into_inner).collect());
    }
    // At most CPU_PRIVATE_SLOTS (256 KiB) per thread from here on: each
    // thread counts its chunks into its own counters, which it adds to
    // the total when it has no chunk left (`Private`'s drop).
    struct Private<'a> {
        h: Vec<u32>,
        total: &'a Mutex<Vec<u32>>,
    }
    impl Drop for Private<'_> {
        fn drop(&mut self) {
            let mut t = self.total.lock().unwrap_or_else(|e| e.into_inner());
            for (t, h) in t.iter_mut().zip(&self.h) {
                *t += h;
            }
        }
    }
    let total = Mutex::new(vec![0u32; slots]);
    let chunk = cpu.chunk_len(n, 8192);
    cpu.for_each_chunk_init(
        n.div_ceil(chunk),
        &|| Private {
            h: vec![0u32; slots],
            total: &total,
        },
        &|p, i| {
            count_into(
                &mut p.h,
                &data[i * chunk..(i * chunk + chunk).min(n)],
                &slot,
            )
        },
    );
    Ok(total.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// Runs `histogram.wgsl` over `x` with `params` (`n` and `groups` are
/// filled in per chunk) and reads back the `bins + 3` slots.
fn count_gpu<T: Element>(
    gpu: &Gpu,
    kernel: &'static str,
    x: &Buffer<T>,
    params: Params,
) -> Result<HistogramCounts> {
    let slots = params.bins as usize + 3;
    let slot_bytes = slots as u64 * 4;
    if slot_bytes > gpu.info().chunk_bytes {
        return Err(Error::TooLarge {
            kernel,
            bytes: slot_bytes,
            limit: gpu.info().chunk_bytes,
            what: "storage binding (histogram bins)",
        });
    }
    let n = x.len();
    if n == 0 {
        return Ok(HistogramCounts::from_slots(vec![0; slots]));
    }
    gpu.scoped(kernel, || {
        let constants = [("KIND", f64::from(T::TYPE.kind_code()))];
        let spec = |entry| ShaderSpec {
            label: "histogram",
            source: SHADER,
            entry,
            element: Some(T::TYPE),
            constants: &constants,
        };
        let entry = if slots <= SHARED_SLOTS {
            "shared_hist"
        } else {
            "global_hist"
        };
        let p_clear = gpu.pipeline(&spec("clear"))?;
        let p_count = gpu.pipeline(&spec(entry))?;
        let xc = gpu.resident(kernel, x)?;
        let counts = gpu.alloc::<u32>(kernel, slots)?;
        let size = size_of::<T>() as u64;
        let chunks = gpu.chunks::<T>(n);
        let mut all_params: Vec<Params> = Vec::with_capacity(chunks.len() + 1);
        all_params.push(Params {
            n: slots as u32,
            ..params
        });
        for c in &chunks {
            all_params.push(Params {
                n: c.len() as u32,
                groups: c.len().div_ceil(TILE) as u32,
                ..params
            });
        }
        let counts_range = 0..slot_bytes;
        let mut bindings: Vec<Vec<(u32, Bind<'_>)>> = vec![vec![
            (0, Bind::Uniform(all_params[0].bytes())),
            (2, Bind::storage(&counts, counts_range.clone())),
        ]];
        for (c, p) in chunks.iter().zip(&all_params[1..]) {
            bindings.push(vec![
                (0, Bind::Uniform(p.bytes())),
                (
                    1,
                    Bind::storage(&xc, c.start as u64 * size..c.end as u64 * size),
                ),
                (2, Bind::storage(&counts, counts_range.clone())),
            ]);
        }
        let mut dispatches = vec![Dispatch::new(
            &p_clear,
            &bindings[0],
            slots.div_ceil(crate::gpu::WORKGROUP_SIZE as usize) as u32,
        )];
        for (b, p) in bindings[1..].iter().zip(&all_params[1..]) {
            dispatches.push(Dispatch::new(&p_count, b, p.groups));
        }
        gpu.submit(kernel, &dispatches)?;
        let slots = gpu.read::<u32>(kernel, &counts, 0..slots)?;
        Ok(HistogramCounts::from_slots(slots))
    })
}
