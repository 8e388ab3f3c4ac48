//! Stream compaction: [`Compact`] (by a mask) and [`CompactIf`] (by a
//! comparison with a threshold). GPU twin: `shaders/compact.wgsl`.
//!
//! # Semantics (both backends)
//! - The output holds the kept elements in their input order; its length is
//!   the number kept. On the GPU it stays resident (the count is read back to
//!   size it: four bytes, or one `u32` per 2048-element tile when the input
//!   spans several storage bindings).
//! - A mask element keeps its input element when it is nonzero.
//! - Comparisons follow IEEE: a NaN (in the input or as the threshold)
//!   compares false, so [`Compare::Ne`] keeps it and every other comparison
//!   drops it; `-0.0 == +0.0`. The GPU tests NaN by bits. GPUs may flush
//!   subnormals to zero in comparisons, so results on subnormal values may
//!   differ between backends.
//! - Results are identical, bit for bit, on both backends otherwise.
//!
//! # Algorithms
//! - CPU: per-chunk counts (parallel), their prefix sum (the chunks' output
//!   offsets), then a parallel copy of each chunk into its own output slice.
//! - GPU: count per tile → inclusive scan of the counts (`scan.wgsl`) →
//!   scatter, recomputing the flags instead of storing them.

use std::ops::Range;

use crate::buffer::{Buffer, Element, ElementType};
use crate::cpu::{self, Cpu};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DeviceCopy, Dispatch, Gpu, ShaderSpec, shader};
use crate::kernel::{Kernel, Work, typed_name};
use crate::kernels::scan::{TILE_SCAN_MAX, TileScan, check_u32_indices, scan_device};

shader! {
    "compact.wgsl",
    /// `compact.wgsl`'s uniform block: `n` elements in this dispatch's
    /// range, `tile_offset` the global index of its first tile, `groups` the
    /// workgroups that hold real tiles, the threshold's bits
    /// (`threshold_hi`: an f64's high word), `out_base` the output index of
    /// the first element the `out` binding holds, `junk` the binding's index
    /// of the slot just past the dispatch's output (`scatter_sg` writes
    /// dropped elements there, so that no store depends on the data), and
    /// `pad` to a multiple of 16 bytes. The mode (0 for a mask, 1..6 for
    /// <, <=, >, >=, ==, !=) is the pipeline constant `MODE`.
    struct Params {
        n: u32, tile_offset: u32, groups: u32, threshold: u32,
        out_base: u32, threshold_hi: u32, junk: u32, pad: u32,
    }
    /// Elements one invocation flags.
    const PER_THREAD: u32 = 8;
    /// Elements of one tile, one workgroup each: `WG * PER_THREAD`.
    const TILE: usize = 2048;
}

/// Bytes a storage binding offset is aligned to (WebGPU's largest
/// `min_storage_buffer_offset_alignment`).
const BIND_ALIGN: u64 = 256;

/// Keeps `x[i]` where `mask[i] != 0`, in order: `Kernel<(&Buffer<T>,
/// &Buffer<u32>)>`. The mask must have the input's length.
///
/// ```
/// use tandem::{Buffer, Engine};
/// use tandem::kernels::Compact;
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let x = Buffer::from(vec![1.0f32, 2.0, 3.0, 4.0]);
/// let m = Buffer::from(vec![1u32, 0, 7, 0]);
/// assert_eq!(engine.run(&Compact, (&x, &m))?.to_vec()?, [1.0, 3.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compact;

/// A comparison `x ⋄ threshold` for [`CompactIf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compare {
    /// `x < threshold`.
    Lt,
    /// `x <= threshold`.
    Le,
    /// `x > threshold`.
    Gt,
    /// `x >= threshold`.
    Ge,
    /// `x == threshold`.
    Eq,
    /// `x != threshold` (keeps NaN).
    Ne,
}

impl Compare {
    /// Every comparison, in declaration order.
    pub const ALL: [Compare; 6] = [
        Compare::Lt,
        Compare::Le,
        Compare::Gt,
        Compare::Ge,
        Compare::Eq,
        Compare::Ne,
    ];

    fn code(self) -> u32 {
        match self {
            Compare::Lt => 1,
            Compare::Le => 2,
            Compare::Gt => 3,
            Compare::Ge => 4,
            Compare::Eq => 5,
            Compare::Ne => 6,
        }
    }

    /// `x ⋄ t` with IEEE semantics.
    #[inline(always)]
    pub fn holds<T: PartialOrd>(self, x: T, t: T) -> bool {
        match self {
            Compare::Lt => x < t,
            Compare::Le => x <= t,
            Compare::Gt => x > t,
            Compare::Ge => x >= t,
            Compare::Eq => x == t,
            Compare::Ne => x != t,
        }
    }
}

/// Keeps the elements `x` of a buffer where `x ⋄ threshold` holds, in
/// order: `Kernel<&Buffer<T>>`.
///
/// ```
/// use tandem::{Buffer, Engine};
/// use tandem::kernels::{CompactIf, Compare};
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let x = Buffer::from(vec![5i32, -1, 3, 8]);
/// let big = CompactIf { cmp: Compare::Ge, threshold: 4 };
/// assert_eq!(engine.run(&big, &x)?.to_vec()?, [5, 8]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompactIf<T> {
    /// The comparison.
    pub cmp: Compare,
    /// The value compared with.
    pub threshold: T,
}

/// Work of a compaction: the input (and mask) read twice (count, then
/// copy), half the input written (the count is unknown beforehand), the
/// count brought to the host.
fn compact_work<T: Element>(n: usize, mask: bool) -> Work {
    let n = n as u64;
    let size = size_of::<T>() as u64;
    let per = size + if mask { 4 } else { 0 };
    Work {
        elements: n,
        bytes_read: 2 * n * per,
        bytes_written: n * size / 2,
        flops: 2 * n,
        host_result_bytes: 4,
    }
}

impl<T: Element> Kernel<(&Buffer<T>, &Buffer<u32>)> for Compact {
    type Out = Buffer<T>;

    fn name(&self) -> &'static str {
        typed_name::<T>("compact", "compact_f64")
    }

    fn work(&self, (x, _): &(&Buffer<T>, &Buffer<u32>)) -> Work {
        compact_work::<T>(x.len(), true)
    }

    fn run_cpu(&self, cpu: &Cpu, (x, mask): (&Buffer<T>, &Buffer<u32>)) -> Result<Buffer<T>> {
        Error::check_same_len("compact", x.len(), mask.len())?;
        let (xs, ms) = (cpu.host(x)?, cpu.host(mask)?);
        Ok(Buffer::from(compact_cpu(cpu, &xs, &ms, |_, m| m != 0)))
    }

    fn run_gpu(&self, gpu: &Gpu, (x, mask): (&Buffer<T>, &Buffer<u32>)) -> Result<Buffer<T>> {
        Error::check_same_len("compact", x.len(), mask.len())?;
        let name = Kernel::<(&Buffer<T>, &Buffer<u32>)>::name(self);
        gpu.check_element(name, T::TYPE)?;
        compact_gpu(gpu, name, x, Some(mask), 0, [0, 0])
    }
}

impl<T: Element + PartialOrd> Kernel<&Buffer<T>> for CompactIf<T> {
    type Out = Buffer<T>;

    fn name(&self) -> &'static str {
        typed_name::<T>("compact_if", "compact_if_f64")
    }

    fn work(&self, x: &&Buffer<T>) -> Work {
        compact_work::<T>(x.len(), false)
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        let xs = cpu.host(x)?;
        let (cmp, t) = (self.cmp, self.threshold);
        // Concrete types so the comparison compiles to one instruction.
        macro_rules! keep_if {
            ($t:ty) => {{
                let t: $t = bytemuck::cast(t);
                let v: &[$t] = bytemuck::cast_slice(&xs);
                bytemuck::allocation::cast_vec(compact_cpu(cpu, v, v, move |v, _| cmp.holds(v, t)))
            }};
        }
        let out = match T::TYPE {
            ElementType::F32 => keep_if!(f32),
            ElementType::I32 => keep_if!(i32),
            ElementType::U32 => keep_if!(u32),
            ElementType::F64 => keep_if!(f64),
        };
        Ok(Buffer::from(out))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        let name = Kernel::<&Buffer<T>>::name(self);
        gpu.check_element(name, T::TYPE)?;
        // The threshold's bits, low word first (one word for 32-bit types).
        let mut bits = [0u32; 2];
        bytemuck::cast_slice_mut::<u32, u8>(&mut bits)[..size_of::<T>()]
            .copy_from_slice(bytemuck::bytes_of(&self.threshold));
        compact_gpu(gpu, name, x, None, self.cmp.code(), bits)
    }
}

/// Elements of `x` where `keep(x[i], m[i])`, in order (`m` has `x`'s length).
fn compact_cpu<T: Element, M: Element>(
    cpu: &Cpu,
    x: &[T],
    m: &[M],
    keep: impl Fn(T, M) -> bool + Sync + Send,
) -> Vec<T> {
    let count = |x: &[T], m: &[M]| x.iter().zip(m).filter(|&(&v, &m)| keep(v, m)).count();
    // Branch-free on the data (a kept/dropped branch mispredicts half the
    // time on random data): every element is written to the next free slot,
    // which only advances past kept ones.
    let copy = |x: &[T], m: &[M], dst: &mut [T]| {
        let mut j = 0;
        for (&v, &m) in x.iter().zip(m) {
            let k = keep(v, m);
            if let Some(slot) = dst.get_mut(j) {
                *slot = v;
            }
            j += usize::from(k);
        }
    };
    let n = x.len();
    if n < cpu::PARALLEL_THRESHOLD {
        let mut out = vec![T::zeroed(); count(x, m)];
        copy(x, m, &mut out);
        return out;
    }
    let chunk = cpu.chunk_len(n, 8192);
    let part = |i: usize| i * chunk..(i * chunk + chunk).min(n);
    let parts = n.div_ceil(chunk);
    let counts: Vec<usize> = cpu.map_parts(parts, |i| count(&x[part(i)], &m[part(i)]));
    let total: usize = counts.iter().sum();
    let mut out = cpu::pool::take::<T>(total);
    let mut slices: Vec<std::sync::Mutex<&mut [T]>> = Vec::with_capacity(parts);
    let mut rest = out.as_mut_slice();
    for &c in &counts {
        let (head, tail) = rest.split_at_mut(c);
        slices.push(std::sync::Mutex::new(head));
        rest = tail;
    }
    cpu.for_each_chunk(parts, &|i| {
        let mut dst = slices[i].lock().unwrap_or_else(|e| e.into_inner());
        copy(&x[part(i)], &m[part(i)], &mut dst);
    });
    drop(slices);
    out
}

/// The GPU compaction of `x` by `mask` (mode 0) or by comparison `mode`
/// with the threshold `bits` (low word, then the high word of an f64).
fn compact_gpu<T: Element>(
    gpu: &Gpu,
    kernel: &'static str,
    x: &Buffer<T>,
    mask: Option<&Buffer<u32>>,
    mode: u32,
    bits: [u32; 2],
) -> Result<Buffer<T>> {
    let n = x.len();
    if n == 0 {
        return Ok(Buffer::from(Vec::new()));
    }
    check_u32_indices::<T>(kernel, n)?;
    gpu.scoped(kernel, || {
        // `MODE` is a pipeline constant: one pipeline per comparison, each
        // compiled for its own comparison only.
        let constants = [
            ("KIND", f64::from(T::TYPE.kind_code())),
            ("MODE", f64::from(mode)),
        ];
        let spec = |entry| ShaderSpec {
            label: "compact",
            source: SHADER,
            entry,
            element: Some(T::TYPE),
            constants: &constants,
        };
        // The subgroup entry points where the device has subgroups of at
        // least PER_THREAD invocations (the shader's `subgroups` section).
        let info = gpu.info();
        let sg = info.features.subgroups && info.subgroup_sizes.0 >= PER_THREAD;
        let p_count = gpu.pipeline(&spec(if sg { "count_sg" } else { "count" }))?;
        let p_scatter = gpu.pipeline(&spec(if sg { "scatter_sg" } else { "scatter" }))?;
        let xc = gpu.resident(kernel, x)?;
        let mc = match mask {
            Some(m) => gpu.resident(kernel, m)?,
            None => xc.clone(),
        };
        let size = size_of::<T>() as u64;
        // The mask is u32 whatever `T` is; without one, slot 2 (never read)
        // gets the input's range.
        let mask_size = if mask.is_some() { 4 } else { size };
        let mask_range = |c: &Range<usize>| c.start as u64 * mask_size..c.end as u64 * mask_size;
        // Half a binding per chunk, so a chunk's output range stays inside
        // one binding after aligning its start down.
        let per = ((gpu.info().chunk_bytes / 2 / size) as usize / TILE).max(1) * TILE;
        let chunks: Vec<Range<usize>> = (0..n).step_by(per).map(|s| s..(s + per).min(n)).collect();
        let groups: Vec<usize> = chunks.iter().map(|c| c.len().div_ceil(TILE)).collect();
        let first_tile: Vec<usize> = groups
            .iter()
            .scan(0, |acc, g| {
                let f = *acc;
                *acc += g;
                Some(f)
            })
            .collect();
        let tiles: usize = groups.iter().sum();
        let counts = gpu.alloc::<u32>(kernel, tiles)?;
        let tile_range = 0..tiles as u64 * 4;
        let params = |c: &Range<usize>, tile: usize, out_base: u32| Params {
            n: c.len() as u32,
            tile_offset: tile as u32,
            groups: c.len().div_ceil(TILE) as u32,
            threshold: bits[0],
            out_base,
            threshold_hi: bits[1],
            junk: 0,
            pad: 0,
        };
        if chunks.len() == 1 && tiles <= TILE_SCAN_MAX {
            return compact_one_submission(OneSubmission {
                gpu,
                kernel,
                p_count: &p_count,
                p_scatter: &p_scatter,
                x: &xc,
                mask: (&mc, mask_range(&chunks[0])),
                counts: &counts,
                params: params(&chunks[0], 0, 0),
                n,
                tiles,
            });
        }
        let count_params: Vec<Params> = chunks
            .iter()
            .zip(&first_tile)
            .map(|(c, &t)| params(c, t, 0))
            .collect();
        {
            let bindings: Vec<[(u32, Bind<'_>); 4]> = chunks
                .iter()
                .zip(&count_params)
                .map(|(c, p)| {
                    let range = c.start as u64 * size..c.end as u64 * size;
                    [
                        (0, Bind::Uniform(p.bytes())),
                        (1, Bind::storage(&xc, range.clone())),
                        (2, Bind::storage(&mc, mask_range(c))),
                        (3, Bind::storage(&counts, tile_range.clone())),
                    ]
                })
                .collect();
            let dispatches = Dispatch::each(&p_count, &bindings, groups.iter().map(|&g| g as u32));
            gpu.submit(kernel, &dispatches)?;
        }
        let offsets = scan_device::<u32>(gpu, kernel, &counts, tiles, false)?;
        // Inclusive offsets at each chunk's end: the last one is the count.
        let ends: Vec<u32> = if chunks.len() == 1 {
            gpu.read::<u32>(kernel, &offsets, tiles - 1..tiles)?
        } else {
            let all = gpu.read::<u32>(kernel, &offsets, 0..tiles)?;
            first_tile
                .iter()
                .zip(&groups)
                .map(|(f, g)| all[f + g - 1])
                .collect()
        };
        let total = *ends.last().expect("n > 0: one chunk at least") as usize;
        if total == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        // One slot past the result: the last dispatch's junk slot.
        let out = gpu.alloc::<T>(kernel, total + 1)?;
        let mut scatter_params = Vec::new();
        let mut ranges = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let start = if i == 0 {
                0
            } else {
                u64::from(ends[i - 1]) * size
            };
            let end = u64::from(ends[i]) * size;
            if end == start {
                continue;
            }
            let aligned = start / BIND_ALIGN * BIND_ALIGN;
            let mut p = params(c, first_tile[i], (aligned / size) as u32);
            // The junk slot is the next dispatch's first output slot (it
            // overwrites it later: dispatches run in order) or the spare
            // slot past the result.
            p.junk = ((end - aligned) / size) as u32;
            scatter_params.push((i, p));
            ranges.push(aligned..end + size);
        }
        let bindings: Vec<[(u32, Bind<'_>); 5]> = scatter_params
            .iter()
            .zip(&ranges)
            .map(|((i, p), out_range)| {
                let c = &chunks[*i];
                let range = c.start as u64 * size..c.end as u64 * size;
                [
                    (0, Bind::Uniform(p.bytes())),
                    (1, Bind::storage(&xc, range.clone())),
                    (2, Bind::storage(&mc, mask_range(c))),
                    (4, Bind::storage(&offsets, tile_range.clone())),
                    (5, Bind::storage(&out, out_range.clone())),
                ]
            })
            .collect();
        let workgroups = scatter_params.iter().map(|&(i, _)| groups[i] as u32);
        let dispatches = Dispatch::each(&p_scatter, &bindings, workgroups);
        gpu.submit(kernel, &dispatches)?;
        Ok(gpu.into_buffer(out, total))
    })
}

/// What [`compact_one_submission`] needs from [`compact_gpu`].
struct OneSubmission<'a> {
    gpu: &'a Gpu,
    kernel: &'static str,
    p_count: &'a wgpu::ComputePipeline,
    p_scatter: &'a wgpu::ComputePipeline,
    x: &'a DeviceCopy,
    /// The mask (or `x` again, never read) and its byte range.
    mask: (&'a DeviceCopy, Range<u64>),
    counts: &'a DeviceCopy,
    /// The count pass's uniforms (one chunk: tile 0, output base 0).
    params: Params,
    n: usize,
    tiles: usize,
}

/// Compaction of one chunk of at most [`TILE_SCAN_MAX`] tiles: count, the
/// counts' scan and the scatter in one submission, then one read of the
/// total. The output is allocated for `n + 1` elements (every element, and
/// the junk slot at `n`) before the total is known: one wait on the GPU
/// instead of two, for a device copy the input's size (plus one element)
/// however few elements are kept, held while the result lives. Inputs past
/// one chunk take the two-wait path, which sizes the output exactly.
fn compact_one_submission<T: Element>(s: OneSubmission<'_>) -> Result<Buffer<T>> {
    let OneSubmission {
        gpu,
        kernel,
        n,
        tiles,
        ..
    } = s;
    let size = size_of::<T>() as u64;
    let offsets = gpu.alloc::<u32>(kernel, tiles)?;
    let out = gpu.alloc::<T>(kernel, n + 1)?;
    let scan = TileScan::of::<u32>(gpu, tiles, false)?;
    let tile_range = 0..tiles as u64 * 4;
    let x_range = 0..n as u64 * size;
    let scatter_params = Params {
        junk: n as u32,
        ..s.params
    };
    let count = [
        (0, Bind::Uniform(s.params.bytes())),
        (1, Bind::storage(s.x, x_range.clone())),
        (2, Bind::storage(s.mask.0, s.mask.1.clone())),
        (3, Bind::storage(s.counts, tile_range.clone())),
    ];
    let scan_bindings = scan.bindings(s.counts, &offsets, 4);
    let scatter = [
        (0, Bind::Uniform(scatter_params.bytes())),
        (1, Bind::storage(s.x, x_range)),
        (2, Bind::storage(s.mask.0, s.mask.1)),
        (4, Bind::storage(&offsets, tile_range)),
        (5, Bind::storage(&out, 0..(n as u64 + 1) * size)),
    ];
    let groups = tiles as u32;
    gpu.submit(
        kernel,
        &[
            Dispatch::new(s.p_count, &count, groups),
            Dispatch::new(&scan.pipeline, &scan_bindings, 1),
            Dispatch::new(s.p_scatter, &scatter, groups),
        ],
    )?;
    let total = gpu.read::<u32>(kernel, &offsets, tiles - 1..tiles)?[0] as usize;
    if total == 0 {
        return Ok(Buffer::from(Vec::new()));
    }
    Ok(gpu.into_buffer(out, total))
}
