//! Matrix transpose: [`Transpose`]. GPU twin: `shaders/transpose.wgsl`.
//!
//! Elements are moved, never computed on: results are bit-exact on both
//! backends for every element type (NaN payloads and `-0.0` included).

use crate::cpu::simd::{
    F32, F64, F64_LANES, LANES, Simd, load_f32, load_f64, store_f32, store_f64,
};

use crate::buffer::{Buffer, Element, ElementType};
use crate::cpu::{Cpu, pool};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Gpu, OFFSET_ALIGN, ShaderSpec, aligned_window, shader};
use crate::kernel::{Kernel, Work, typed_name};

shader! {
    "transpose.wgsl",
    /// `transpose.wgsl`'s uniform block: the input's shape, and the block
    /// of it one dispatch moves: input rows `r0..r0 + br`, columns
    /// `c0..c0 + bc`, `tiles_x` tiles per row of tiles, the block's first
    /// input row at element `in_off` of the input binding and its first
    /// output row (input column `c0`) at `out_off` of the output binding.
    struct Params {
        rows: u32, cols: u32, tiles_x: u32, r0: u32,
        c0: u32, br: u32, bc: u32, in_off: u32,
        out_off: u32, _pad0: u32, _pad1: u32, _pad2: u32,
    }
    /// Tile edge of one GPU workgroup.
    const TILE: usize = 32;
}

/// Input columns one CPU sweep down the rows moves: 16 four-byte
/// elements are one 64-byte cache line of each input row, read whole.
/// A sweep keeps 16 output lines open, few enough not to evict each other
/// when a power-of-two row length maps them to one cache set.
const CPU_STRIP: usize = 16;

/// Edge of the square tiles the CPU walks strip by strip: 128×128 elements
/// (64 KiB in, 64 KiB out) stay in L2, and their 256 pages in the TLB. At
/// 4096² this measured 1.3x faster than strips running down every row, and
/// faster than 32-, 64- or 1024-element tiles (2-core development machine).
const CPU_TILE: usize = 128;

/// Below this many elements the CPU transposes on the calling thread.
const CPU_PARALLEL_ELEMENTS: usize = 1 << 16;

/// Transpose of a `rows × cols` row-major matrix into a `cols × rows` one:
/// `out[c * rows + r] = x[r * cols + c]`. For `f32`, `i32`, `u32` and `f64`.
///
/// Errors: [`Error::InvalidArgument`] when the input length is not
/// `rows × cols` (or that product overflows).
///
/// ```
/// use tandem::{Backend, Buffer, Engine};
/// use tandem::kernels::Transpose;
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let m = Buffer::from(vec![1u32, 2, 3, 4, 5, 6]); // 2 x 3
/// let t = engine.on(Backend::Cpu).run(&Transpose { rows: 2, cols: 3 }, &m)?;
/// assert_eq!(t.to_vec()?, vec![1, 4, 2, 5, 3, 6]); // 3 x 2
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transpose {
    /// Rows of the input (columns of the output).
    pub rows: usize,
    /// Columns of the input (rows of the output).
    pub cols: usize,
}

impl Transpose {
    fn check(&self, len: usize) -> Result<usize> {
        let invalid = |message: String| Error::InvalidArgument {
            kernel: "transpose",
            message,
        };
        let n = self.rows.checked_mul(self.cols).ok_or_else(|| {
            invalid(format!(
                "rows x cols ({} x {}) overflows usize",
                self.rows, self.cols
            ))
        })?;
        if n != len {
            return Err(invalid(format!(
                "input has {len} elements, rows x cols is {} x {} = {n}",
                self.rows, self.cols
            )));
        }
        Ok(n)
    }
}

impl<T: Element> Kernel<&Buffer<T>> for Transpose {
    type Out = Buffer<T>;

    fn name(&self) -> &'static str {
        typed_name::<T>("transpose", "transpose_f64")
    }

    fn work(&self, x: &&Buffer<T>) -> Work {
        Work {
            elements: x.len() as u64,
            bytes_read: x.byte_len(),
            bytes_written: x.byte_len(),
            flops: 0,
            host_result_bytes: 0,
        }
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        let n = self.check(x.len())?;
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        let src = cpu.host(x)?;
        let mut out = pool::take::<T>(n);
        // Elements are Pod values only moved around: transpose their bits
        // as f32 lanes, or f64 ones for 8-byte elements (shuffles and plain
        // moves keep every bit).
        if T::TYPE == ElementType::F64 {
            transpose_cpu::<f64>(
                cpu,
                self.rows,
                self.cols,
                bytemuck::cast_slice(&src),
                bytemuck::cast_slice_mut(&mut out),
            );
        } else {
            transpose_cpu::<f32>(
                cpu,
                self.rows,
                self.cols,
                bytemuck::cast_slice(&src),
                bytemuck::cast_slice_mut(&mut out),
            );
        }
        Ok(Buffer::from(out))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        let n = self.check(x.len())?;
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        transpose_gpu(gpu, self, x, n)
    }
}

// ---------------------------------------------------------------- CPU ----

/// Parallel over bands of output rows (input columns), so each task writes
/// one contiguous region; within a band, `CPU_TILE`² tiles in input row
/// order, each swept in `CPU_STRIP`-column strips of `LANES × LANES` register
/// transposes, with scalar edges.
fn transpose_cpu<T: Square>(cpu: &Cpu, rows: usize, cols: usize, src: &[T], out: &mut [T]) {
    let band = cols
        .div_ceil(cpu.threads() * 4)
        .div_ceil(CPU_STRIP)
        .saturating_mul(CPU_STRIP)
        .clamp(CPU_STRIP, CPU_TILE);
    let task = |(b, dst): (usize, &mut [T])| {
        let c0 = b * band;
        let c1 = (c0 + band).min(cols);
        for r0 in (0..rows).step_by(CPU_TILE) {
            let r1 = (r0 + CPU_TILE).min(rows);
            for cs in (c0..c1).step_by(CPU_STRIP) {
                let ce = (cs + CPU_STRIP).min(c1);
                block(src, cols, dst, rows, c0, r0..r1, cs..ce);
            }
        }
    };
    if rows * cols < CPU_PARALLEL_ELEMENTS {
        out.chunks_mut(band * rows).enumerate().for_each(task);
    } else {
        cpu.for_each_out_chunk(out, band * rows, |i, o| task((i, o)));
    }
}

/// An element type whose [`Simd::N`] × [`Simd::N`] square transposes in
/// registers.
trait Square: Simd + Send + Sync {
    /// Transposes the square at row `r`, column `c` of `src` (row length
    /// `cols`) into `dst` at output row `c - c_base` (row length `rows`).
    fn square(
        src: &[Self],
        cols: usize,
        r: usize,
        c: usize,
        dst: &mut [Self],
        rows: usize,
        c_base: usize,
    );
}

impl Square for f32 {
    #[inline(always)]
    fn square(
        src: &[f32],
        cols: usize,
        r: usize,
        c: usize,
        dst: &mut [f32],
        rows: usize,
        c_base: usize,
    ) {
        let v: [F32; LANES] = std::array::from_fn(|k| load_f32(&src[(r + k) * cols + c..]));
        for (k, row) in F32::transpose(v).iter().enumerate() {
            store_f32(*row, &mut dst[(c + k - c_base) * rows + r..]);
        }
    }
}

impl Square for f64 {
    #[inline(always)]
    fn square(
        src: &[f64],
        cols: usize,
        r: usize,
        c: usize,
        dst: &mut [f64],
        rows: usize,
        c_base: usize,
    ) {
        let v: [F64; F64_LANES] = std::array::from_fn(|k| load_f64(&src[(r + k) * cols + c..]));
        for (k, row) in F64::transpose(v).iter().enumerate() {
            store_f64(*row, &mut dst[(c + k - c_base) * rows + r..]);
        }
    }
}

/// Transposes input rows `rs`, columns `cs` into `dst`, which holds output
/// rows `c_base..` (each `rows` long).
#[inline]
fn block<T: Square>(
    src: &[T],
    cols: usize,
    dst: &mut [T],
    rows: usize,
    c_base: usize,
    rs: std::ops::Range<usize>,
    cs: std::ops::Range<usize>,
) {
    let lanes = T::N;
    let r_full = rs.start + (rs.len() / lanes) * lanes;
    let c_full = cs.start + (cs.len() / lanes) * lanes;
    for r in (rs.start..r_full).step_by(lanes) {
        for c in (cs.start..c_full).step_by(lanes) {
            T::square(src, cols, r, c, dst, rows, c_base);
        }
        for c in c_full..cs.end {
            for k in 0..lanes {
                dst[(c - c_base) * rows + r + k] = src[(r + k) * cols + c];
            }
        }
    }
    for r in r_full..rs.end {
        for c in cs.clone() {
            dst[(c - c_base) * rows + r] = src[r * cols + c];
        }
    }
}

// ---------------------------------------------------------------- GPU ----

/// Launches `transpose.wgsl`: one 32×32 tile per workgroup through padded
/// workgroup memory, reads and writes coalesced.
///
/// A matrix over one storage binding moves in blocks: rows of the input
/// are contiguous, and so are rows of the output (columns of the input),
/// so a block of `br` input rows by `bc` input columns binds `br` whole
/// input rows and `bc` whole output rows, each range within one binding.
/// Only a single row longer than a binding is [`Error::TooLarge`].
fn transpose_gpu<T: Element>(
    gpu: &Gpu,
    k: &Transpose,
    x: &Buffer<T>,
    n: usize,
) -> Result<Buffer<T>> {
    let kernel = typed_name::<T>("transpose", "transpose_f64");
    gpu.check_element(kernel, T::TYPE)?;
    let size = size_of::<T>();
    let limit = gpu.info().chunk_bytes;
    let per_binding = usize::try_from(limit).unwrap_or(usize::MAX) / size;
    let (br, bc) = if n <= per_binding {
        (k.rows, k.cols)
    } else {
        // Room for the rows after the aligned-down start of the range.
        let room = per_binding.saturating_sub(OFFSET_ALIGN / size);
        let block = |len: usize, line: usize| match room / line {
            0 => 0,
            b if b >= TILE => (b - b % TILE).min(len),
            b => b.min(len),
        };
        (block(k.rows, k.cols), block(k.cols, k.rows))
    };
    if br == 0 || bc == 0 {
        return Err(Error::TooLarge {
            kernel,
            bytes: (k.rows.max(k.cols) * size) as u64,
            limit,
            what: "one storage binding (one row of the input or of the output)",
        });
    }
    let too_many = || Error::TooLarge {
        kernel,
        bytes: x.byte_len(),
        limit,
        what: "u32 indices or workgroups per dispatch",
    };
    let u32_of = |v: usize| u32::try_from(v).map_err(|_| too_many());
    let range = |start: usize, end: usize| aligned_window(start, end, size);
    gpu.scoped(kernel, || {
        let pipeline = gpu.pipeline(&ShaderSpec {
            label: "transpose",
            source: SHADER,
            entry: "transpose",
            element: Some(T::TYPE),
            constants: &[("KIND", f64::from(T::TYPE.kind_code()))],
        })?;
        let input = gpu.resident(kernel, x)?;
        let out = gpu.alloc::<T>(kernel, n)?;
        let mut blocks = Vec::new();
        for r0 in (0..k.rows).step_by(br) {
            for c0 in (0..k.cols).step_by(bc) {
                let (rb, cb) = (br.min(k.rows - r0), bc.min(k.cols - c0));
                let (in_range, in_off) = range(r0 * k.cols, (r0 + rb) * k.cols);
                let (out_range, out_off) = range(c0 * k.rows, (c0 + cb) * k.rows);
                let params = Params {
                    rows: u32_of(k.rows)?,
                    cols: u32_of(k.cols)?,
                    tiles_x: u32_of(cb.div_ceil(TILE))?,
                    r0: u32_of(r0)?,
                    c0: u32_of(c0)?,
                    br: u32_of(rb)?,
                    bc: u32_of(cb)?,
                    in_off,
                    out_off,
                    ..Params::default()
                };
                let workgroups = u32_of(rb.div_ceil(TILE) * cb.div_ceil(TILE))?;
                blocks.push((params, in_range, out_range, workgroups));
            }
        }
        let bindings: Vec<[(u32, Bind<'_>); 3]> = blocks
            .iter()
            .map(|(params, in_range, out_range, _)| {
                [
                    (0, Bind::Uniform(params.bytes())),
                    (1, Bind::storage(&input, in_range.clone())),
                    (2, Bind::storage(&out, out_range.clone())),
                ]
            })
            .collect();
        let dispatches = Dispatch::each(&pipeline, &bindings, blocks.iter().map(|b| b.3));
        gpu.submit(kernel, &dispatches)?;
        Ok(gpu.into_buffer(out, n))
    })
}
