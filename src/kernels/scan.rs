//! Prefix sums: [`Scan`] (inclusive or exclusive) over `f32`, `i32`, `u32`.
//! GPU twin: `shaders/scan.wgsl`.
//!
//! # Semantics (both backends)
//! - Inclusive: `out[i] = x[0] + … + x[i]`; exclusive: `out[i] = x[0] + … +
//!   x[i-1]`, `out[0] = 0`. The output has the input's length and stays on
//!   the backend that computed it. An empty input gives an empty output and
//!   dispatches nothing.
//! - Integer scans wrap (two's complement), and are exact and identical on
//!   both backends.
//! - Float scans add in blocks, not left to right, so the two backends may
//!   differ in the last bits. The error bound, for every prefix `i`, is
//!   `|out[i] − S_i| ≤ d(n)·ε·Σ_{j≤i}|x_j|` with `ε = 2^-24` and
//!   `d(n) = 600 + n/2^11` ([`float_error_depth`]): the longest chain of
//!   additions any prefix goes through. On the CPU that is the chain inside a
//!   block (520 adds), 8 sub-block offsets, 16 block carries, the pairwise
//!   task totals (≤ 48) and one carry per task ([`TASK`] > 2^16 elements)
//!   before it; on the GPU, a few dozen adds inside a tile plus, in the
//!   single pass, one add per earlier tile of 2^11 elements (the look-back
//!   chain; two passes add a few carry levels instead). The single pass's
//!   float results can also differ from run to run: a tile's carry adds the
//!   same tile totals, grouped by which predecessors had published.
//!   NaN and ±Inf propagate as IEEE addition says (`Inf + -Inf = NaN`).
//!
//! # Algorithms
//! - CPU: two passes over super-blocks of [`SUPER_BLOCK`] elements, so the
//!   second pass reads the input from the last-level cache: pass 1 sums each
//!   task chunk (in parallel), the carries are scanned serially, pass 2 scans
//!   each chunk from its carry (in parallel). Inside a chunk, blocks of
//!   [`BLOCK`] elements are scanned as 8 interleaved sub-block chains
//!   (instruction-level parallelism, since a scan is a dependency chain),
//!   then the sub-block offsets are added with vectorized adds.
//! - GPU, where the device has subgroups of 8 or more and is hardware: one
//!   pass. Each workgroup takes the next tile from a counter, publishes its
//!   total, and finds its carry by decoupled look-back: it walks back over
//!   its predecessors' published totals until one has published its
//!   inclusive prefix. WebGPU promises no forward progress between
//!   workgroups, so a walk that waits too long reduces the predecessor's
//!   input itself instead (Levien's "decoupled fallback"): correct on any
//!   scheduler. It reads the input once; its speed on hardware is not
//!   measured yet (no device was lent).
//! - GPU otherwise (and on software adapters such as lavapipe, where two
//!   passes measured 1.03-1.30× faster than the single pass at 2^18 in
//!   each of four alternated pairs: BENCHMARKS.md): reduce-then-scan,
//!   multi-level (see the shader's header), with the tile sums, their scan
//!   and the tile scans in one submission up to 2^22 elements. `TANDEM_SCAN_PASSES=1` or `2` forces either way.

use std::ops::Range;

use crate::buffer::{Buffer, Element, ElementType};
use crate::cpu::{self, Cpu, simd};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DeviceCopy, Dispatch, Gpu, ShaderSpec, shader};
use crate::kernel::{Kernel, Work, typed_name};

shader! {
    "scan.wgsl",
    /// `scan.wgsl`'s uniform block: `n` elements in this dispatch's range,
    /// `tile_offset` the index (in `carry`, or in `out` for `reduce`) of its
    /// first tile, `groups` the workgroups that hold real tiles, `flags`
    /// `EXCLUSIVE | HAS_CARRY`. For the single pass (`scan_lb`): `counter`
    /// the index in `state` of this dispatch's tile counter, `states` that
    /// of tile 0's first state word.
    struct Params { n: u32, tile_offset: u32, groups: u32, flags: u32, counter: u32, states: u32, _pad0: u32, _pad1: u32 }
    /// Elements one invocation scans sequentially.
    const PER_THREAD: u32 = 8;
    /// Elements one workgroup handles: `WG * PER_THREAD`.
    const TILE: usize = 2048;
    /// `Params::flags`: write exclusive sums.
    const EXCLUSIVE: u32 = 1;
    /// `Params::flags`: add the tile's carry from `carry`.
    const HAS_CARRY: u32 = 2;
}

/// Elements of one L1-resident block, scanned as 8 interleaved chains of
/// `BLOCK / 8` = 520. Not 512: with sub-blocks 2 KiB apart, a load and an
/// earlier store two sub-blocks away share their low 12 address bits, and
/// the CPU's 4K-aliasing check serializes them.
pub const BLOCK: usize = 8 * 520;

/// Elements of one parallel task (16 blocks).
pub const TASK: usize = 16 * BLOCK;

/// Elements of one super-block (32 tasks, 8.1 MiB of f32): both passes run
/// over it before the next, so pass 2 reads its input from the last-level
/// cache.
pub const SUPER_BLOCK: usize = 32 * TASK;

/// The depth `d(n)` of the float error bound `|out[i] − S_i| ≤
/// d(n)·ε·Σ_{j≤i}|x_j|` of a float scan of `n` elements, on either backend
/// (see the [module docs](self)).
pub fn float_error_depth(n: usize) -> f64 {
    600.0 + (n as f64) / (1u64 << 11) as f64
}

/// Prefix sum of a buffer: inclusive (`out[i] = x[0] + … + x[i]`) or
/// exclusive (`out[i] = x[0] + … + x[i-1]`, `out[0] = 0`).
///
/// ```
/// use tandem::{Buffer, Engine};
/// use tandem::kernels::Scan;
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let x = Buffer::from(vec![1u32, 2, 3, 4]);
/// assert_eq!(engine.run(&Scan::inclusive(), &x)?.to_vec()?, [1, 3, 6, 10]);
/// assert_eq!(engine.run(&Scan::exclusive(), &x)?.to_vec()?, [0, 1, 3, 6]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Exclusive (`true`) or inclusive (`false`).
    pub exclusive: bool,
}

impl Scan {
    /// The inclusive scan.
    pub const fn inclusive() -> Scan {
        Scan { exclusive: false }
    }

    /// The exclusive scan.
    pub const fn exclusive() -> Scan {
        Scan { exclusive: true }
    }
}

impl<T: Element> Kernel<&Buffer<T>> for Scan {
    type Out = Buffer<T>;

    fn name(&self) -> &'static str {
        if self.exclusive {
            typed_name::<T>("exclusive_scan", "exclusive_scan_f64")
        } else {
            typed_name::<T>("inclusive_scan", "inclusive_scan_f64")
        }
    }

    /// Two reads of the input (chunk totals, then the scan) and one write;
    /// an add per element in each pass. That is what the CPU and the
    /// two-pass GPU scan move; the single pass (hardware GPUs with
    /// subgroups) reads the input once, so a roofline fraction computed
    /// from this overstates it by up to 1.5×.
    fn work(&self, x: &&Buffer<T>) -> Work {
        Work::elementwise::<T>(x.len(), 2, 2)
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        let data = cpu.host(x)?;
        let ex = self.exclusive;
        let out: Vec<T> = match T::TYPE {
            ElementType::F32 => cast_vec(scan_cpu::<f32>(cpu, bytemuck::cast_slice(&data), ex)),
            ElementType::I32 => cast_vec(scan_cpu::<i32>(cpu, bytemuck::cast_slice(&data), ex)),
            ElementType::U32 => cast_vec(scan_cpu::<u32>(cpu, bytemuck::cast_slice(&data), ex)),
            ElementType::F64 => cast_vec(scan_cpu::<f64>(cpu, bytemuck::cast_slice(&data), ex)),
        };
        Ok(Buffer::from(out))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        let kernel = Kernel::<&Buffer<T>>::name(self);
        let n = x.len();
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        check_u32_indices::<T>(kernel, n)?;
        gpu.check_element(kernel, T::TYPE)?;
        gpu.scoped(kernel, || {
            let input = gpu.resident(kernel, x)?;
            let out = scan_device::<T>(gpu, kernel, &input, n, self.exclusive)?;
            Ok(gpu.into_buffer(out, n))
        })
    }
}

fn cast_vec<A: Element, B: Element>(v: Vec<A>) -> Vec<B> {
    // Same size and alignment (checked by bytemuck): no copy.
    bytemuck::allocation::cast_vec(v)
}

/// GPU kernels index elements with `u32`.
pub(crate) fn check_u32_indices<T: Element>(kernel: &'static str, n: usize) -> Result<()> {
    if n > u32::MAX as usize {
        return Err(Error::TooLarge {
            kernel,
            bytes: (n as u64).saturating_mul(size_of::<T>() as u64),
            limit: u64::from(u32::MAX) * size_of::<T>() as u64,
            what: "u32 element indices",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- CPU

/// Addition as a scan uses it: wrapping for integers.
pub(crate) trait ScanAdd: Element + Copy + Send + Sync {
    /// Whether a block is best scanned as one left-to-right chain. True for
    /// integers: their add has a one-cycle latency and is exact, so the
    /// interleaved chains (which need a second, offset-adding pass over the
    /// block and so two stores per element) only cost time.
    const SEQUENTIAL: bool;
    /// `a + b` (wrapping for integers).
    fn add(a: Self, b: Self) -> Self;
    /// Sum of a slice, with a small error for floats.
    fn total(x: &[Self]) -> Self;
}

impl ScanAdd for f32 {
    const SEQUENTIAL: bool = false;
    #[inline(always)]
    fn add(a: f32, b: f32) -> f32 {
        a + b
    }
    fn total(x: &[f32]) -> f32 {
        simd::pairwise_sum(x, x, &|v, _, acc| acc + v, &|v, _, acc| acc + v)
    }
}

impl ScanAdd for f64 {
    const SEQUENTIAL: bool = false;
    #[inline(always)]
    fn add(a: f64, b: f64) -> f64 {
        a + b
    }
    fn total(x: &[f64]) -> f64 {
        simd::pairwise_sum(x, x, &|v, _, acc| acc + v, &|v, _, acc| acc + v)
    }
}

macro_rules! int_scan_add {
    ($t:ty) => {
        impl ScanAdd for $t {
            const SEQUENTIAL: bool = true;
            #[inline(always)]
            fn add(a: $t, b: $t) -> $t {
                a.wrapping_add(b)
            }
            fn total(x: &[$t]) -> $t {
                simd::wrapping_sum(x, |p, q| p + q, <$t>::wrapping_add)
            }
        }
    };
}
int_scan_add!(i32);
int_scan_add!(u32);

/// Scans `src` into a new vector (see the [module docs](self)).
fn scan_cpu<S: ScanAdd>(cpu: &Cpu, src: &[S], exclusive: bool) -> Vec<S> {
    let n = src.len();
    let mut out = cpu::pool::take::<S>(n);
    if n < cpu::PARALLEL_THRESHOLD {
        scan_chunk(src, &mut out, None, exclusive);
        return out;
    }
    let mut carry: Option<S> = None;
    for (s, d) in src.chunks(SUPER_BLOCK).zip(out.chunks_mut(SUPER_BLOCK)) {
        // Pass 1: chunk totals.
        let totals: Vec<S> = cpu.map_parts(s.len().div_ceil(TASK), |i| {
            S::total(&s[i * TASK..(i * TASK + TASK).min(s.len())])
        });
        // Serial scan of the totals: each chunk's carry.
        let carries: Vec<Option<S>> = totals
            .iter()
            .map(|&t| {
                let c = carry;
                carry = Some(carry.map_or(t, |c| S::add(c, t)));
                c
            })
            .collect();
        // Pass 2: each chunk from its carry (input still in cache).
        cpu.for_each_out_chunk(d, TASK, |i, d| {
            scan_chunk(&s[i * TASK..i * TASK + d.len()], d, carries[i], exclusive);
        });
    }
    out
}

/// Scans `src` into `dst` block by block, starting from `carry` (`None`:
/// nothing before, so the first value is not touched by an add of zero and
/// `-0.0` survives). Returns the running total.
fn scan_chunk<S: ScanAdd>(
    src: &[S],
    dst: &mut [S],
    carry: Option<S>,
    exclusive: bool,
) -> Option<S> {
    let mut carry = carry;
    for (s, d) in src.chunks(BLOCK).zip(dst.chunks_mut(BLOCK)) {
        carry = scan_block(s, d, carry, exclusive);
    }
    carry
}

/// One block: 8 interleaved chains over 8 sub-blocks, then each sub-block
/// shifted by the sum of those before it (a vectorized add), then the
/// scalar tail.
#[inline]
fn scan_block<S: ScanAdd>(
    src: &[S],
    dst: &mut [S],
    carry: Option<S>,
    exclusive: bool,
) -> Option<S> {
    const WAYS: usize = 8;
    if S::SEQUENTIAL {
        let mut running = carry;
        for (s, d) in src.iter().zip(dst.iter_mut()) {
            let next = running.map_or(*s, |r| S::add(r, *s));
            *d = if exclusive {
                running.unwrap_or(S::zeroed())
            } else {
                next
            };
            running = Some(next);
        }
        return running;
    }
    let m = src.len() / WAYS;
    let (body, tail) = src.split_at(m * WAYS);
    let (dbody, dtail) = dst.split_at_mut(m * WAYS);
    let mut running = carry;
    if m > 0 {
        let s: [&[S]; WAYS] = std::array::from_fn(|j| &body[j * m..(j + 1) * m]);
        let mut it = dbody.chunks_exact_mut(m);
        let d: [&mut [S]; WAYS] = std::array::from_fn(|_| it.next().expect("8 sub-blocks"));
        let mut acc = [S::zeroed(); WAYS];
        if exclusive {
            for k in 0..m {
                for j in 0..WAYS {
                    d[j][k] = acc[j];
                    acc[j] = S::add(acc[j], s[j][k]);
                }
            }
        } else {
            for k in 0..m {
                for j in 0..WAYS {
                    acc[j] = S::add(acc[j], s[j][k]);
                    d[j][k] = acc[j];
                }
            }
        }
        for j in 0..WAYS {
            if let Some(off) = running {
                for v in d[j].iter_mut() {
                    *v = S::add(off, *v);
                }
            }
            running = Some(running.map_or(acc[j], |r| S::add(r, acc[j])));
        }
    }
    for (s, d) in tail.iter().zip(dtail) {
        let r = running.unwrap_or(S::zeroed());
        let next = running.map_or(*s, |r| S::add(r, *s));
        *d = if exclusive { r } else { next };
        running = Some(next);
    }
    running
}

// ---------------------------------------------------------------- GPU

/// Whether the subgroup path scans in one pass (decoupled look-back) and
/// the look-back's reads of a predecessor before it reduces the
/// predecessor's input itself: `default` and 1024 unless
/// `TANDEM_SCAN_PASSES` (`1` or `2`) or `TANDEM_SCAN_SPIN` say otherwise.
/// Both variables exist so tests on any adapter can run both paths and the
/// fallback (`TANDEM_SCAN_SPIN=0` always falls back, quadratic in tiles).
fn single_pass_choice(default: bool) -> (bool, u32) {
    let var = |name| std::env::var(name).ok();
    let single = match var("TANDEM_SCAN_PASSES").as_deref() {
        Some("1") => true,
        Some("2") => false,
        _ => default,
    };
    let spin = var("TANDEM_SCAN_SPIN")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    (single, spin)
}

/// Elements one [`TileScan`] dispatch scans at most.
pub(crate) const TILE_SCAN_MAX: usize = TILE;

/// One dispatch that scans up to [`TILE_SCAN_MAX`] elements, for callers
/// that put it in a submission with their own dispatches.
pub(crate) struct TileScan {
    pub(crate) pipeline: wgpu::ComputePipeline,
    params: Params,
}

impl TileScan {
    /// The scan of `n` (≤ [`TILE_SCAN_MAX`]) elements of `T` on `gpu`.
    pub(crate) fn of<T: Element>(gpu: &Gpu, n: usize, exclusive: bool) -> Result<TileScan> {
        debug_assert!(n <= TILE_SCAN_MAX);
        let entry = if scan_sg_path::<T>(gpu) {
            "scan_sg"
        } else {
            "scan"
        };
        let p = gpu.pipeline(&scan_spec::<T>(entry, &[]))?;
        Ok(TileScan::new(p, n, exclusive))
    }

    fn new(pipeline: wgpu::ComputePipeline, n: usize, exclusive: bool) -> TileScan {
        let params = Params {
            n: n as u32,
            tile_offset: 0,
            groups: 1,
            flags: if exclusive { EXCLUSIVE } else { 0 },
            ..Params::default()
        };
        TileScan { pipeline, params }
    }

    /// Its bindings: the first `n` elements (of `size` bytes) of `input`
    /// scanned into `out`.
    pub(crate) fn bindings<'a>(
        &'a self,
        input: &'a DeviceCopy,
        out: &'a DeviceCopy,
        size: u64,
    ) -> [(u32, Bind<'a>); 4] {
        let range = 0..u64::from(self.params.n) * size;
        [
            (0, Bind::Uniform(self.params.bytes())),
            (1, Bind::storage(input, range.clone())),
            (2, Bind::storage(input, range.clone())),
            (3, Bind::storage(out, range)),
        ]
    }
}

/// scan.wgsl's entry `entry` for `T`, with override `constants`.
fn scan_spec<'a, T: Element>(
    entry: &'static str,
    constants: &'a [(&'static str, f64)],
) -> ShaderSpec<'a> {
    ShaderSpec {
        label: "scan",
        source: SHADER,
        entry,
        element: Some(T::TYPE),
        constants,
    }
}

/// Whether `T`'s scans take the subgroup entry points on `gpu`: where the
/// device has subgroups of at least PER_THREAD invocations (`scan_sg`'s
/// lane `k` holds segment `k`'s prefix). Not for f64: 64-bit subgroup
/// arithmetic is a device extension of its own.
fn scan_sg_path<T: Element>(gpu: &Gpu) -> bool {
    let info = gpu.info();
    info.features.subgroups && info.subgroup_sizes.0 >= PER_THREAD && T::TYPE != ElementType::F64
}

/// Scans the first `n` elements of `input` on the GPU into a new device
/// copy of `n` elements. Call inside [`Gpu::scoped`]; `0 < n ≤ u32::MAX`.
pub(crate) fn scan_device<T: Element>(
    gpu: &Gpu,
    kernel: &'static str,
    input: &DeviceCopy,
    n: usize,
    exclusive: bool,
) -> Result<DeviceCopy> {
    let spec = |entry| scan_spec::<T>(entry, &[]);
    // Subgroup entry points where the device has them (the shader's
    // `subgroups` section).
    let info = gpu.info();
    let sg = scan_sg_path::<T>(gpu);
    let p_reduce = gpu.pipeline(&spec(if sg { "reduce_sg" } else { "reduce" }))?;
    let p_scan = gpu.pipeline(&spec(if sg { "scan_sg" } else { "scan" }))?;
    let size = size_of::<T>() as u64;
    let out = gpu.alloc::<T>(kernel, n)?;
    // Element ranges that each fit one binding; tiles never straddle them.
    let chunks: Vec<Range<usize>> = gpu.chunks::<T>(n);
    let groups: Vec<usize> = chunks.iter().map(|c| c.len().div_ceil(TILE)).collect();
    let tiles: usize = groups.iter().sum();
    let flags = if exclusive { EXCLUSIVE } else { 0 };

    if tiles == 1 {
        let one = TileScan::new(p_scan, n, exclusive);
        let bindings = one.bindings(input, &out, size);
        gpu.submit(kernel, &[Dispatch::new(&one.pipeline, &bindings, 1)])?;
        return Ok(out);
    }

    // One pass with decoupled look-back (`scan_lb`) where the subgroup path
    // runs, the adapter is hardware (on lavapipe, two passes in one
    // submission measured faster: see BENCHMARKS.md) and the tiles' state
    // fits one binding: a tile counter per chunk, then four words per tile,
    // zero to start.
    let states = chunks.len();
    let words = states + 4 * tiles;
    let (single, spin) = single_pass_choice(!info.is_software);
    if sg && single && (words as u64) * 4 <= info.chunk_bytes {
        let spin_constant = [("SPIN", f64::from(spin))];
        let p_lb = gpu.pipeline(&scan_spec::<T>("scan_lb", &spin_constant))?;
        let state = gpu.upload::<u32>(kernel, &vec![0u32; words])?;
        let mut first = 0usize;
        let params: Vec<Params> = chunks
            .iter()
            .zip(&groups)
            .enumerate()
            .map(|(i, (c, g))| {
                let p = Params {
                    n: c.len() as u32,
                    tile_offset: first as u32,
                    groups: *g as u32,
                    flags,
                    counter: i as u32,
                    states: states as u32,
                    ..Params::default()
                };
                first += g;
                p
            })
            .collect();
        let state_range = 0..words as u64 * 4;
        let bindings: Vec<[(u32, Bind<'_>); 4]> = chunks
            .iter()
            .zip(&params)
            .map(|(c, p)| {
                let range = c.start as u64 * size..c.end as u64 * size;
                [
                    (0, Bind::Uniform(p.bytes())),
                    (1, Bind::storage(input, range.clone())),
                    (3, Bind::storage(&out, range)),
                    (4, Bind::storage(&state, state_range.clone())),
                ]
            })
            .collect();
        let dispatches = Dispatch::each(&p_lb, &bindings, groups.iter().map(|&g| g as u32));
        gpu.submit(kernel, &dispatches)?;
        return Ok(out);
    }

    // Level 0 sums, then their exclusive scan (recursively): each tile's carry.
    let sums = gpu.alloc::<T>(kernel, tiles)?;
    // Each chunk's uniforms, its first tile counted over all chunks.
    let chunk_params = |flags| -> Vec<Params> {
        let mut offset = 0usize;
        let mut params = Vec::with_capacity(chunks.len());
        for (c, g) in chunks.iter().zip(&groups) {
            params.push(Params {
                n: c.len() as u32,
                tile_offset: offset as u32,
                groups: *g as u32,
                flags,
                ..Params::default()
            });
            offset += g;
        }
        params
    };
    let reduce_params = chunk_params(0);
    let scan_params = chunk_params(flags | HAS_CARRY);
    let sums_range = 0..tiles as u64 * size;
    let reduce_bindings: Vec<[(u32, Bind<'_>); 3]> = chunks
        .iter()
        .zip(&reduce_params)
        .map(|(c, p)| {
            [
                (0, Bind::Uniform(p.bytes())),
                (
                    1,
                    Bind::storage(input, c.start as u64 * size..c.end as u64 * size),
                ),
                (3, Bind::storage(&sums, sums_range.clone())),
            ]
        })
        .collect();
    let reduce = Dispatch::each(
        &p_reduce,
        &reduce_bindings,
        groups.iter().map(|&g| g as u32),
    );
    // The tiles' carries: with one tile of sums (up to TILE² elements),
    // scanned in the same submission as the two passes around it (wgpu
    // orders the dispatches); otherwise recursively, in submissions of
    // their own.
    let one_level = tiles <= TILE;
    let carries = if one_level {
        gpu.alloc::<T>(kernel, tiles)?
    } else {
        gpu.submit(kernel, &reduce)?;
        scan_device::<T>(gpu, kernel, &sums, tiles, true)?
    };
    let top = TileScan::new(p_scan.clone(), tiles, true);
    let top_bindings = top.bindings(&sums, &carries, size);
    let bindings: Vec<[(u32, Bind<'_>); 4]> = chunks
        .iter()
        .zip(&scan_params)
        .map(|(c, p)| {
            let range = c.start as u64 * size..c.end as u64 * size;
            [
                (0, Bind::Uniform(p.bytes())),
                (1, Bind::storage(input, range.clone())),
                (2, Bind::storage(&carries, sums_range.clone())),
                (3, Bind::storage(&out, range)),
            ]
        })
        .collect();
    let scan = Dispatch::each(&p_scan, &bindings, groups.iter().map(|&g| g as u32));
    if one_level {
        let mut all = reduce;
        all.push(Dispatch::new(&top.pipeline, &top_bindings, 1));
        all.extend(scan);
        gpu.submit(kernel, &all)?;
    } else {
        gpu.submit(kernel, &scan)?;
    }
    Ok(out)
}
