//! Single-precision matrix multiply: [`Gemm`], `C = α·op(A)·op(B) + β·C`.
//! GPU twin: `shaders/gemm.wgsl`.
//!
//! Matrices are row-major `f32`. `op(A)` is `m × k` and `op(B)` is `k × n`:
//! with [`Gemm::transpose_a`] the buffer `A` holds the `k × m` matrix whose
//! transpose is used (likewise `B`, `n × k`, with [`Gemm::transpose_b`]).
//! The result is a new `m × n` buffer.
//!
//! # Semantics (both backends)
//! - `β = 0` ignores `C` (the BLAS convention): NaN or infinity in `C` does
//!   not reach the result. With `β ≠ 0`, `β·C` is added and NaN propagates.
//! - `α` multiplies the product `op(A)·op(B)`; NaN or infinity in `A` or `B`
//!   propagates even when `α = 0` (no shortcut skips the product).
//! - `m`, `n` or `k` = 0 dispatches nothing: an empty result, or for
//!   `k = 0` the `m × n` matrix `β·C` (zeros without `C` or with `β = 0`).
//! - Accuracy: each element is a sum of `k` products accumulated in f32
//!   (with FMA on the CPU and usually on the GPU), in blocks of 256 along `k`
//!   on the CPU and of 16 on the GPU. The error is within the usual
//!   `k·ε·Σ|a·b|` bound; the two backends add in different orders, so their
//!   results may differ in the last bits.
//!
//! # CPU
//! GotoBLAS/BLIS blocking: `op(B)` is packed in `KC × NC` blocks of
//! `NR`-wide column panels, `op(A)` in `MC × KC` blocks of `MR`-tall row
//! panels (both in thread-local, cache-line-aligned buffers), and a
//! `MR × NR` micro-kernel keeps its `MR·2` vector accumulators in registers:
//! two vector loads of `B` and `MR` broadcasts of `A` per step of `k`, `2·MR`
//! FMAs. The tile follows the build's lane width and register count
//! ([`crate::cpu::simd`]): `14 × 32` with AVX-512, `6 × 16` with AVX2 (half
//! as many columns in f64). Each `C` tile is prefetched before its
//! micro-kernel runs.
//! Edge panels are zero-padded when packed and only the valid part of a tile
//! is written back. In parallel, the rows of `C` are split into one range
//! per thread; each block of `B` is packed once, its panels spread over the
//! threads, and then shared while every thread packs its own rows of `A`
//! and runs the macro-kernel over them.
//!
//! # GPU
//! Each workgroup of 256 invocations computes a `64 × 64` tile of `C`,
//! walking `k` in steps of 16 through workgroup-shared tiles of `A` and `B`;
//! each invocation keeps a `4 × 4` register tile in four named `vec4`
//! accumulators. Tiles are numbered linearly, so more than 65,535 of them
//! fold into a 2-D dispatch.
//!
//! A product whose matrices do not fit one storage binding
//! ([`GpuInfo::chunk_bytes`](crate::gpu::GpuInfo::chunk_bytes)) runs in
//! blocks, one dispatch each: rows and columns of `C`, and depth along `k`.
//! A block of a row-major matrix is one contiguous window, bound at an
//! aligned offset; the shader takes the leading dimensions and the block's
//! offset in its window. Blocks along `k` after the first add to the output
//! (the first applies `β·C`), so the sum is taken in up to a few partial
//! sums per element, within the same error bound. Splitting follows the
//! layout: `A` splits by rows of `C` (by `k` when transposed), `B` by `k`
//! (by columns of `C` when transposed), `C` by rows.

use std::cell::Cell;
use std::ops::Range;
use std::thread::LocalKey;

use rayon::prelude::*;

use crate::buffer::Buffer;
use crate::cpu::Cpu;
use crate::cpu::simd::{LANES, Real, VECTOR_REGISTERS};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Gpu, OFFSET_ALIGN, ShaderSpec, aligned_window, shader};
use crate::kernel::{Kernel, Work, typed_name};

shader! {
    "gemm.wgsl",
    /// `gemm.wgsl`'s uniform block: one block's sizes, `flags` (bit 0: A
    /// is transposed, bit 1: B is, bit 2: read C, bit 3: add to the output),
    /// α and β (an f32's bits in the low word, or an f64's low and high
    /// words), result tiles per row of tiles, the matrices' leading
    /// dimensions and the block's offsets in its bound windows.
    struct Params {
        m: u32, n: u32, k: u32, flags: u32,
        alpha_lo: u32, alpha_hi: u32, beta_lo: u32, beta_hi: u32,
        tiles_n: u32, lda: u32, ldb: u32, ldc: u32,
        a_off: u32, b_off: u32, c_off: u32, _pad0: u32,
    }
    /// Side of the square tile of `C` one workgroup computes.
    const TS: usize = 64;
    /// Steps of `k` one pass through the shared tiles takes.
    const BK: usize = 16;
}
const NAME: &str = "gemm";
const NAME_F64: &str = "gemm_f64";

/// Most steps of `k` one GPU dispatch walks on a software adapter: about
/// 10,000 of llvmpipe's 65,535 loop iterations a shader (see `gpu`).
/// Longer products run in depth blocks that add to the output.
const SOFTWARE_DEPTH: usize = 1 << 15;

/// Vectors across one row of the CPU micro-kernel's register tile.
const NV: usize = 2;
/// Columns of the CPU micro-kernel's register tile for `R`: `NV` vectors
/// (32 f32 or 16 f64 with AVX-512).
const fn nr<R: Real>() -> usize {
    NV * R::N
}
/// The widest `nr` (f32's), for buffers sized at compile time.
const NR_MAX: usize = NV * LANES;
/// Rows of the CPU micro-kernel's register tile: as many as the vector
/// registers hold beside the `NV` loads of `B` and a broadcast of `A` (14
/// with AVX-512's 32 registers: 28 accumulators; 6 with 16 registers).
const MR: usize = (VECTOR_REGISTERS - NV - 2) / NV;
/// Depth of a packed block. Each depth block reads and writes all of `C`
/// once more, so deeper blocks cut `C`'s traffic, at the price of a
/// `KC × NR` panel of `B` (64 KiB at 16 lanes) that no longer fits a 48 KiB
/// L1 and streams from L2 instead. With AVX-512 it is 512, as measured on
/// the 2-core Zen 5 development machine (1 MiB of L2 a core), alternated
/// against 256 (2026-12-07, best of 3–12 calls of the CPU `Gemm`): DGEMM
/// 2048³ went from 79.3–79.6 ms to 76.5–76.7 ms, DGEMM 1024³ from
/// 9.45–9.62 to 9.28–9.34 ms and SGEMM 2048³ from 38.7–38.8 to 37.0–37.3
/// ms; 768 was slower again. AVX-512 cores with less L2 are not measured.
/// Narrower builds keep 256, the depth they were tuned with.
const KC: usize = if LANES >= 16 { 512 } else { 256 };
/// Most rows of a packed block of `A` (`MC × KC`, 576 KiB of f64 at depth
/// 512): fits L2. MC 96 measured within 1% of 144 at depth 512.
const MC_MAX: usize = 144;
/// Columns of a packed block of `B` (`KC × NC`, up to 12 MiB of f64): in L3.
const NC: usize = 3072;
/// Below this many flops (`2·m·n·k`) the CPU runs on the calling thread.
const PARALLEL_FLOPS: u64 = 1 << 24;

/// `C = α·op(A)·op(B) + β·C` on row-major `f32` matrices (see the
/// [module docs](self) for the semantics).
///
/// As a [`Kernel`] it takes `(&a, &b)`, computing `α·op(A)·op(B)` (then `β`
/// must be 0: there is no `C` to scale), or `(&a, &b, &c)`. Lengths must be
/// `m·k` for `A`, `k·n` for `B` and `m·n` for `C`, whatever the transposes.
///
/// ```
/// use tandem::{Buffer, Engine};
/// use tandem::kernels::Gemm;
///
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let a = Buffer::from(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]); // 2 × 3
/// let b = Buffer::from(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]); // 3 × 2
/// let c = engine.run(&Gemm::new(2, 2, 3), (&a, &b))?;
/// assert_eq!(c.to_vec()?, vec![4.0, 5.0, 10.0, 11.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm {
    /// Rows of `op(A)` and of the result.
    pub m: usize,
    /// Columns of `op(B)` and of the result.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`: the length of each dot product.
    pub k: usize,
    /// Scale of the product: an f64, so that DGEMM's is exact; an f32
    /// product rounds it to f32.
    pub alpha: f64,
    /// Scale of `C`; 0 ignores `C` entirely (NaN in it included). An f64
    /// like `alpha`.
    pub beta: f64,
    /// `A` holds the `k × m` matrix `op(A)ᵀ`.
    pub transpose_a: bool,
    /// `B` holds the `n × k` matrix `op(B)ᵀ`.
    pub transpose_b: bool,
}

impl Gemm {
    /// `C = A·B` for an `m × k` `A` and a `k × n` `B` (`α = 1`, `β = 0`, no
    /// transposes).
    pub fn new(m: usize, n: usize, k: usize) -> Gemm {
        Gemm {
            m,
            n,
            k,
            alpha: 1.0,
            beta: 0.0,
            transpose_a: false,
            transpose_b: false,
        }
    }

    /// Sets `α`.
    pub fn alpha(mut self, alpha: f64) -> Gemm {
        self.alpha = alpha;
        self
    }

    /// Sets `β` (needs a `C` input unless 0).
    pub fn beta(mut self, beta: f64) -> Gemm {
        self.beta = beta;
        self
    }

    /// Uses the transpose of `A`, which then holds a `k × m` matrix.
    pub fn transpose_a(mut self, yes: bool) -> Gemm {
        self.transpose_a = yes;
        self
    }

    /// Uses the transpose of `B`, which then holds an `n × k` matrix.
    pub fn transpose_b(mut self, yes: bool) -> Gemm {
        self.transpose_b = yes;
        self
    }

    fn shape(&self) -> String {
        let side = |t: bool, rows: usize, cols: usize| {
            if t {
                format!("transposed, {cols}×{rows}")
            } else {
                format!("{rows}×{cols}")
            }
        };
        format!(
            "m={} n={} k={} (A {}, B {})",
            self.m,
            self.n,
            self.k,
            side(self.transpose_a, self.m, self.k),
            side(self.transpose_b, self.k, self.n),
        )
    }

    fn invalid(&self, what: String) -> Error {
        Error::InvalidArgument {
            kernel: NAME,
            message: format!("{what} for {}", self.shape()),
        }
    }

    /// Checks the buffer lengths against the shape; `c` is `None` for the
    /// two-input form.
    fn check(&self, a: usize, b: usize, c: Option<usize>) -> Result<()> {
        let (m, n, k) = (self.m, self.n, self.k);
        let too_big = |product: &str| self.invalid(format!("{product} overflows usize"));
        let mk = m.checked_mul(k).ok_or_else(|| too_big("m·k"))?;
        let kn = k.checked_mul(n).ok_or_else(|| too_big("k·n"))?;
        let mn = m.checked_mul(n).ok_or_else(|| too_big("m·n"))?;
        mn.checked_mul(k).ok_or_else(|| too_big("m·n·k"))?;
        if a != mk {
            return Err(self.invalid(format!("A has {a} elements, expected m·k = {mk}")));
        }
        if b != kn {
            return Err(self.invalid(format!("B has {b} elements, expected k·n = {kn}")));
        }
        match c {
            Some(c) if c != mn => {
                Err(self.invalid(format!("C has {c} elements, expected m·n = {mn}")))
            }
            None if self.beta != 0.0 => Err(self.invalid(format!(
                "beta = {} needs a C input: run on (&a, &b, &c)",
                self.beta
            ))),
            _ => Ok(()),
        }
    }

    fn work_of(&self, with_c: bool, size: u64) -> Work {
        let (m, n, k) = (self.m as u64, self.n as u64, self.k as u64);
        let mn = m.saturating_mul(n);
        let use_c = with_c && self.beta != 0.0;
        Work {
            elements: mn,
            bytes_read: (m.saturating_mul(k))
                .saturating_add(k.saturating_mul(n))
                .saturating_add(if use_c { mn } else { 0 })
                .saturating_mul(size),
            bytes_written: mn.saturating_mul(size),
            flops: mn
                .saturating_mul(k)
                .saturating_mul(2)
                .saturating_add(if use_c { 2 * mn } else { mn }),
            host_result_bytes: 0,
        }
    }

    /// `β·C`, or zeros when there is no `C` or `β = 0`: the result of a
    /// `k = 0` product, and the CPU's starting value of the output.
    ///
    /// With `k = 0` the inputs are empty and `m·n` comes from the parameters
    /// alone, so the allocation is fallible ([`Error::HostOutOfMemory`]).
    fn scaled_c<R: Real>(&self, c: Option<&[R]>) -> Result<Vec<R>> {
        let mn = self.m * self.n;
        // From the host pool: a fresh 16 MiB `vec!` is a fresh mapping whose
        // page faults, taken inside the micro-kernel, cost 2048³ calls about
        // 40% (measured: 185 ms back to back, 120 ms on recycled memory).
        let mut out = crate::cpu::pool::try_take_zeroed::<R>(NAME, "the m×n output", mn)?;
        if let Some(c) = c.filter(|_| self.beta != 0.0) {
            let beta = R::from_f64(self.beta);
            for (o, &x) in out.iter_mut().zip(c) {
                *o = beta * x;
            }
        }
        Ok(out)
    }

    fn cpu<R: GemmReal>(
        &self,
        cpu: &Cpu,
        a: &Buffer<R>,
        b: &Buffer<R>,
        c: Option<&Buffer<R>>,
    ) -> Result<Buffer<R>> {
        self.check(a.len(), b.len(), c.map(Buffer::len))?;
        let c_host = match c {
            Some(c) if self.beta != 0.0 && self.m * self.n > 0 => Some(cpu.host(c)?),
            _ => None,
        };
        if self.m == 0 || self.n == 0 || self.k == 0 {
            return Ok(Buffer::from(self.scaled_c(c_host.as_deref())?));
        }
        // Without β·C to start from, the first depth block assigns each
        // element of the output instead of adding to it, so the output needs
        // no zeroing pass: a single-threaded 8 MiB fill at 1024² f64. Two-
        // thread DGEMM on the Zen 5 development machine (alternated runs,
        // 2026-12-07): 1024³ 9.55–9.82 → 9.31–9.44 ms, 2048³ 78.8–79.9 →
        // 76.6–77.3 ms.
        let assign = c_host.is_none();
        let mut out = if assign {
            crate::cpu::pool::try_take::<R>(NAME, "the m×n output", self.m * self.n)?
        } else {
            self.scaled_c(c_host.as_deref())?
        };
        let (a, b) = (cpu.host(a)?, cpu.host(b)?);
        let shape = Shape::of(self);
        let flops = self.work_of(false, 4).flops;
        if flops < PARALLEL_FLOPS || cpu.threads() == 1 {
            gemm_cpu(&shape, &a, &b, &mut out, 1, assign);
        } else {
            cpu.install(|| gemm_cpu(&shape, &a, &b, &mut out, cpu.threads(), assign));
        }
        Ok(Buffer::from(out))
    }

    fn gpu<R: GemmReal>(
        &self,
        gpu: &Gpu,
        a: &Buffer<R>,
        b: &Buffer<R>,
        c: Option<&Buffer<R>>,
    ) -> Result<Buffer<R>> {
        self.check(a.len(), b.len(), c.map(Buffer::len))?;
        let name = typed_name::<R>(NAME, NAME_F64);
        gpu.check_element(name, R::TYPE)?;
        let size = size_of::<R>() as u64;
        let (m, n, k) = (self.m, self.n, self.k);
        if m == 0 || n == 0 || k == 0 {
            let c_host = match c {
                Some(c) if self.beta != 0.0 && m * n > 0 => Some(c.host()?),
                _ => None,
            };
            return Ok(Buffer::from(self.scaled_c(c_host.as_deref())?));
        }
        let use_c = c.filter(|_| self.beta != 0.0);
        let per_binding = usize::try_from(gpu.info().chunk_bytes / size).unwrap_or(usize::MAX);
        // llvmpipe ends a shader's loops once they have run 65535
        // iterations between them (five per BK steps of k here), and
        // carries on with a partial sum: on a software adapter a dispatch
        // walks at most SOFTWARE_DEPTH of k.
        let max_depth = if gpu.info().is_software {
            SOFTWARE_DEPTH
        } else {
            usize::MAX
        };
        let plan = self
            .gpu_blocks(per_binding, OFFSET_ALIGN / size as usize, max_depth)
            .ok_or_else(|| Error::TooLarge {
                kernel: name,
                bytes: (m.max(n).max(k) as u64).saturating_mul(size),
                limit: gpu.info().chunk_bytes,
                what: "one storage binding (gemm needs at least one element of each matrix in one)",
            })?;
        let blocks = self.gpu_dispatches(&plan, size as usize);
        // Each block's tiles must fit one (folded) dispatch.
        let max = u64::from(gpu.info().max_workgroups_per_dimension);
        let tiles = |b: &GpuBlock| (b.rows.div_ceil(TS) * b.cols.div_ceil(TS)) as u64;
        if blocks.iter().any(|b| tiles(b) > max * max) {
            return Err(Error::TooLarge {
                kernel: name,
                bytes: (m * n) as u64 * size,
                limit: gpu.info().chunk_bytes,
                what: "workgroups per dispatch",
            });
        }
        gpu.scoped(name, || {
            let pipeline = gpu.pipeline(&ShaderSpec {
                label: NAME,
                source: SHADER,
                entry: "gemm",
                element: Some(R::TYPE),
                constants: &[],
            })?;
            let a = gpu.resident(name, a)?;
            let b = gpu.resident(name, b)?;
            let c = use_c.map(|c| gpu.resident(name, c)).transpose()?;
            let out = gpu.alloc::<R>(name, m * n)?;
            let params: Vec<Params> = blocks
                .iter()
                .map(|blk| Params {
                    m: blk.rows as u32,
                    n: blk.cols as u32,
                    k: blk.depth as u32,
                    flags: u32::from(self.transpose_a)
                        | (u32::from(self.transpose_b) << 1)
                        | (u32::from(blk.first && c.is_some()) << 2)
                        | (u32::from(!blk.first) << 3),
                    alpha_lo: scalar_words::<R>(self.alpha)[0],
                    alpha_hi: scalar_words::<R>(self.alpha)[1],
                    beta_lo: scalar_words::<R>(self.beta)[0],
                    beta_hi: scalar_words::<R>(self.beta)[1],
                    tiles_n: blk.cols.div_ceil(TS) as u32,
                    // A leading dimension is multiplied only in a block of
                    // two rows or more, whose window (within one binding)
                    // is longer than it: so it fits u32 where it is used.
                    lda: if self.transpose_a { m } else { k } as u32,
                    ldb: if self.transpose_b { k } else { n } as u32,
                    ldc: n as u32,
                    a_off: blk.a.1,
                    b_off: blk.b.1,
                    c_off: blk.c.1,
                    ..Params::default()
                })
                .collect();
            // Without C, slot 3 (never read: flag bit 2 is clear) gets A's window.
            let c_copy = c.as_deref().unwrap_or(&a);
            let bindings: Vec<[(u32, Bind<'_>); 5]> = blocks
                .iter()
                .zip(&params)
                .map(|(blk, p)| {
                    let c_window = if c.is_some() { &blk.c.0 } else { &blk.a.0 };
                    [
                        (0, Bind::Uniform(p.bytes())),
                        (1, Bind::storage(&a, blk.a.0.clone())),
                        (2, Bind::storage(&b, blk.b.0.clone())),
                        (3, Bind::storage(c_copy, c_window.clone())),
                        (4, Bind::storage(&out, blk.c.0.clone())),
                    ]
                })
                .collect();
            let groups = blocks.iter().map(|b| tiles(b) as u32);
            gpu.submit(name, &Dispatch::each(&pipeline, &bindings, groups))?;
            Ok(gpu.into_buffer(out, m * n))
        })
    }

    /// Block sizes `(mb, nb, kb)` of a GPU product whose every binding fits
    /// `per_binding` elements: rows of `C`, columns of `C`, and depth.
    ///
    /// Each matrix is row-major, so a block of it is one contiguous window
    /// from its first to its last element, bound at an offset aligned down
    /// to `align` elements: `align - 1` elements of room, unless every
    /// block's start is aligned (the leading dimension and the block's
    /// width are multiples of `align`) or the matrix is bound whole. A
    /// window that does not fit shrinks the block dimension that counts its
    /// rows (`m` for `A` and `C`, `k` for a transposed `A` and for `B`, `n`
    /// for a transposed `B`) to the most rows that fit, in whole tiles where
    /// that is at least one tile, or its columns once one row does not fit.
    /// Depth blocks hold at most `max_depth` steps of `k` (a multiple of
    /// `BK`). `None` only when a single element of each matrix does not
    /// fit.
    fn gpu_blocks(&self, per_binding: usize, align: usize, max_depth: usize) -> Option<[usize; 3]> {
        const M: usize = 0;
        const N: usize = 1;
        const K: usize = 2;
        let (m, n, k) = (self.m, self.n, self.k);
        // (rows dimension, columns dimension, leading dimension) of A, B, C.
        let a = if self.transpose_a {
            (K, M, m)
        } else {
            (M, K, k)
        };
        let b = if self.transpose_b {
            (N, K, k)
        } else {
            (K, N, n)
        };
        let whole = [m, n, k];
        let step = |d: usize| if d == K { BK } else { TS };
        let mut dims = [m, n, k.min(max_depth)];
        loop {
            let room = |dims: &[usize; 3], r: usize, c: usize, ld: usize| {
                let is_whole = dims[r] == whole[r] && dims[c] == whole[c];
                let aligned = ld.is_multiple_of(align)
                    && (dims[c] == whole[c] || dims[c].is_multiple_of(align));
                per_binding.saturating_sub(if is_whole || aligned { 0 } else { align - 1 })
            };
            let over = [a, b, (M, N, n)]
                .into_iter()
                .find(|&(r, c, ld)| (dims[r] - 1) * ld + dims[c] > room(&dims, r, c, ld));
            let Some((r, c, ld)) = over else {
                return Some(dims);
            };
            let room = room(&dims, r, c, ld);
            // The most rows whose window fits, in whole tiles if possible.
            let rows = match room.checked_sub(dims[c]) {
                Some(spare) => (spare / ld + 1).min(dims[r] - 1),
                None => 0,
            };
            if rows >= 1 {
                dims[r] = if rows >= step(r) {
                    rows - rows % step(r)
                } else {
                    rows
                };
            } else if dims[r] > 1 {
                dims[r] = 1;
            } else if dims[c] > 1 {
                // One row is too long: as many columns as fit, whole tiles
                // where possible.
                let cols = room.min(dims[c] - 1).max(1);
                dims[c] = if cols >= step(c) {
                    cols - cols % step(c)
                } else {
                    cols
                };
            } else {
                return None;
            }
        }
    }

    /// The dispatches of a GPU product blocked by `gpu_blocks`, with
    /// windows of `size`-byte elements; blocks along `k` come last, so each
    /// block of `C` accumulates in order.
    fn gpu_dispatches(&self, &[mb, nb, kb]: &[usize; 3], size: usize) -> Vec<GpuBlock> {
        let (m, n, k) = (self.m, self.n, self.k);
        let mut blocks = Vec::new();
        for i0 in (0..m).step_by(mb) {
            for j0 in (0..n).step_by(nb) {
                for p0 in (0..k).step_by(kb) {
                    let (rows, cols, depth) = (mb.min(m - i0), nb.min(n - j0), kb.min(k - p0));
                    // The window from a block's first element to its last.
                    let window = |r0: usize, c0: usize, nr: usize, nc: usize, ld: usize| {
                        aligned_window(r0 * ld + c0, (r0 + nr - 1) * ld + c0 + nc, size)
                    };
                    let a = if self.transpose_a {
                        window(p0, i0, depth, rows, m)
                    } else {
                        window(i0, p0, rows, depth, k)
                    };
                    let b = if self.transpose_b {
                        window(j0, p0, cols, depth, k)
                    } else {
                        window(p0, j0, depth, cols, n)
                    };
                    blocks.push(GpuBlock {
                        rows,
                        cols,
                        depth,
                        first: p0 == 0,
                        a,
                        b,
                        c: window(i0, j0, rows, cols, n),
                    });
                }
            }
        }
        blocks
    }
}

/// One dispatch of a blocked GPU product: a `rows × cols` block of `C`
/// over `depth` steps of `k`, the first along `k` or a later one that adds
/// to `out`, with each matrix's window (bytes) and the block's offset in
/// it (elements).
struct GpuBlock {
    rows: usize,
    cols: usize,
    depth: usize,
    first: bool,
    a: (Range<u64>, u32),
    b: (Range<u64>, u32),
    c: (Range<u64>, u32),
}

impl<R: GemmReal> Kernel<(&Buffer<R>, &Buffer<R>)> for Gemm {
    type Out = Buffer<R>;

    fn name(&self) -> &'static str {
        typed_name::<R>(NAME, NAME_F64)
    }

    fn work(&self, _: &(&Buffer<R>, &Buffer<R>)) -> Work {
        self.work_of(false, size_of::<R>() as u64)
    }

    fn run_cpu(&self, cpu: &Cpu, (a, b): (&Buffer<R>, &Buffer<R>)) -> Result<Buffer<R>> {
        self.cpu(cpu, a, b, None)
    }

    fn run_gpu(&self, gpu: &Gpu, (a, b): (&Buffer<R>, &Buffer<R>)) -> Result<Buffer<R>> {
        self.gpu(gpu, a, b, None)
    }
}

impl<R: GemmReal> Kernel<(&Buffer<R>, &Buffer<R>, &Buffer<R>)> for Gemm {
    type Out = Buffer<R>;

    fn name(&self) -> &'static str {
        typed_name::<R>(NAME, NAME_F64)
    }

    fn work(&self, _: &(&Buffer<R>, &Buffer<R>, &Buffer<R>)) -> Work {
        self.work_of(true, size_of::<R>() as u64)
    }

    fn run_cpu(
        &self,
        cpu: &Cpu,
        (a, b, c): (&Buffer<R>, &Buffer<R>, &Buffer<R>),
    ) -> Result<Buffer<R>> {
        self.cpu(cpu, a, b, Some(c))
    }

    fn run_gpu(
        &self,
        gpu: &Gpu,
        (a, b, c): (&Buffer<R>, &Buffer<R>, &Buffer<R>),
    ) -> Result<Buffer<R>> {
        self.gpu(gpu, a, b, Some(c))
    }
}

/// The element types of [`Gemm`]: f32 (SGEMM) and f64 (DGEMM), each with
/// its thread's packed blocks.
pub trait GemmReal: Real {
    /// This thread's pack buffers: `A`'s ([`A_PACK`]) and `B`'s ([`B_PACK`]).
    #[doc(hidden)]
    fn packs() -> &'static LocalKey<[Cell<Vec<Self>>; 2]>;
}

impl GemmReal for f32 {
    fn packs() -> &'static LocalKey<[Cell<Vec<f32>>; 2]> {
        &PACKS
    }
}

impl GemmReal for f64 {
    fn packs() -> &'static LocalKey<[Cell<Vec<f64>>; 2]> {
        &PACKS_F64
    }
}

const A_PACK: usize = 0;
const B_PACK: usize = 1;

/// Runs `f` on this thread's pack buffer `which`, taken out of the thread
/// for the call and put back after. Nothing stays borrowed while `f` runs:
/// the thread packing `B` for the pool waits in rayon's joins, where it may
/// run other tasks, another call's gemm among them, that want the same
/// buffer (such a call finds it empty and grows its own).
fn with_pack<R: GemmReal, O>(which: usize, f: impl FnOnce(&mut Vec<R>) -> O) -> O {
    let mut buf = R::packs().with(|p| p[which].take());
    let out = f(&mut buf);
    R::packs().with(|p| p[which].set(buf));
    out
}

/// `x` as the GPU's uniform words for `R`: an f32's bits and 0, or an
/// f64's low and high words.
fn scalar_words<R: Real>(x: f64) -> [u32; 2] {
    if size_of::<R>() == 4 {
        [(x as f32).to_bits(), 0]
    } else {
        let bits = x.to_bits();
        [bits as u32, (bits >> 32) as u32]
    }
}

/// The validated shape and scalars the CPU path needs.
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    trans_a: bool,
    trans_b: bool,
}

impl Shape {
    fn of(g: &Gemm) -> Shape {
        Shape {
            m: g.m,
            n: g.n,
            k: g.k,
            alpha: g.alpha,
            trans_a: g.transpose_a,
            trans_b: g.transpose_b,
        }
    }
}

thread_local! {
    /// Each thread's packed blocks of `A` and `B`, reused across calls (see
    /// [`with_pack`]).
    static PACKS: [Cell<Vec<f32>>; 2] = const { [Cell::new(Vec::new()), Cell::new(Vec::new())] };
    /// The same for f64.
    static PACKS_F64: [Cell<Vec<f64>>; 2] =
        const { [Cell::new(Vec::new()), Cell::new(Vec::new())] };
}

/// `out += α·op(A)·op(B)`, serially (`threads` = 1) or over the engine's
/// pool (called inside it), one row range of `C` per thread.
///
/// In parallel each block of `op(B)` is packed once, by all threads, and
/// shared. Packing it per task instead repeats `k·n` copies per thread: on
/// the 2-core Zen 5 development machine (2026-12-06) that took DGEMM from
/// 10.4–10.9 ms to 11.1–11.4 ms at 1024³ and from 86–94 ms to 91–97 ms at
/// 2048³ (alternated runs of `compare --kernels gemm_f64`); SGEMM was even.
/// On an earlier development machine sharing measured slower for SGEMM
/// at 1024³ (7.6–7.8 ms against 7.0 ms), so this is worth re-measuring on
/// each new machine.
///
/// With `assign`, the first depth block stores `α·op(A)·op(B)` over `out`
/// instead of adding to it: `out`'s contents on entry are never read.
fn gemm_cpu<R: GemmReal>(s: &Shape, a: &[R], b: &[R], out: &mut [R], threads: usize, assign: bool) {
    let nr = nr::<R>();
    let n = s.n;
    let rows = s.m.div_ceil(threads.max(1)).div_ceil(MR) * MR;
    with_pack::<R, _>(B_PACK, |b_pack| {
        let b_pack = aligned(b_pack, KC * NC.min(n.div_ceil(nr) * nr));
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..s.k).step_by(KC) {
                let kc = KC.min(s.k - pc);
                let b_block = &mut b_pack[..nc.div_ceil(nr) * kc * nr];
                let pack = |(jp, dst): (usize, &mut [R])| {
                    pack_b(s, b, dst, pc, kc, jc + jp * nr, nc - jp * nr);
                };
                let assign = assign && pc == 0;
                let block = Block {
                    jc,
                    nc,
                    pc,
                    kc,
                    assign,
                };
                if threads <= 1 {
                    b_block.chunks_mut(kc * nr).enumerate().for_each(pack);
                    row_blocks(s, a, b_block, block, 0, out);
                } else {
                    b_block.par_chunks_mut(kc * nr).enumerate().for_each(pack);
                    let b_block = &*b_block;
                    out.par_chunks_mut(rows * n)
                        .enumerate()
                        .for_each(|(t, c_rows)| row_blocks(s, a, b_block, block, t * rows, c_rows));
                }
            }
        }
    });
}

/// One packed block of `op(B)`: columns `jc..jc + nc`, depths `pc..pc + kc`.
#[derive(Clone, Copy)]
struct Block {
    jc: usize,
    nc: usize,
    pc: usize,
    kc: usize,
    /// Store into `C` rather than add: the first depth block of a product
    /// without `β·C`.
    assign: bool,
}

/// `c_rows += α·op(A)[rows, depths]·b_block` for the rows `i_start..` of `C`
/// held by `c_rows`, in `MC`-row blocks of `A` packed on this thread.
fn row_blocks<R: GemmReal>(
    s: &Shape,
    a: &[R],
    b_block: &[R],
    Block {
        jc,
        nc,
        pc,
        kc,
        assign,
    }: Block,
    i_start: usize,
    c_rows: &mut [R],
) {
    let n = s.n;
    let m = c_rows.len() / n;
    // Row blocks of at most MC_MAX rows, of near-equal size, MR-aligned.
    let mc = m.div_ceil(m.div_ceil(MC_MAX)).div_ceil(MR) * MR;
    with_pack::<R, _>(A_PACK, |a_pack| {
        let a_pack = aligned(a_pack, KC * mc);
        for ic in (0..m).step_by(mc) {
            let rows = mc.min(m - ic);
            let a_block = &mut a_pack[..rows.div_ceil(MR) * MR * kc];
            for (ip, dst) in a_block.chunks_mut(kc * MR).enumerate() {
                pack_a(s, a, dst, i_start + ic + ip * MR, rows - ip * MR, pc, kc);
            }
            let c = &mut c_rows[ic * n + jc..];
            let alpha = R::from_f64(s.alpha);
            macro_kernel(alpha, kc, a_block, b_block, rows, nc, c, n, assign);
        }
    });
}

/// Bytes per cache line: packed panels start on one, so no vector load
/// of a panel straddles two lines.
const LINE_BYTES: usize = 64;

/// `len` floats of `buf` starting on a cache-line boundary, growing it first
/// if needed.
fn aligned<R: Real>(buf: &mut Vec<R>, len: usize) -> &mut [R] {
    let line = LINE_BYTES / size_of::<R>();
    if buf.len() < len + line {
        buf.resize(len + line, R::default());
    }
    let off = buf.as_ptr().align_offset(LINE_BYTES).min(line);
    &mut buf[off..off + len]
}

/// Packs `op(B)[pc..pc+kc, j0..j0+min(cols, NR)]` as a `kc × NR` panel, row
/// by row, zero-padding missing columns.
fn pack_b<R: Real>(
    s: &Shape,
    b: &[R],
    dst: &mut [R],
    pc: usize,
    kc: usize,
    j0: usize,
    cols: usize,
) {
    let nr = nr::<R>();
    let cols = cols.min(nr);
    if s.trans_b {
        // B is n × k: column j of op(B) is row j of B.
        let line = |j: usize| &b[(j0 + j) * s.k + pc..][..kc];
        debug_assert!(nr == NR_MAX || nr == NR_MAX / 2);
        if nr == NR_MAX {
            pack_across::<R, NR_MAX>(dst, cols, line);
        } else {
            pack_across::<R, { NR_MAX / 2 }>(dst, cols, line);
        }
    } else {
        for (p, row) in dst.chunks_exact_mut(nr).enumerate() {
            let src = &b[(pc + p) * s.n + j0..];
            if cols == nr {
                // A constant length: two vector moves, not a memmove call.
                row.copy_from_slice(&src[..nr]);
            } else {
                row[..cols].copy_from_slice(&src[..cols]);
                row[cols..].fill(R::default());
            }
        }
    }
}

/// Packs `op(A)[i0..i0+min(rows, MR), pc..pc+kc]` as a `kc × MR` panel,
/// column by column, zero-padding missing rows.
fn pack_a<R: Real>(
    s: &Shape,
    a: &[R],
    dst: &mut [R],
    i0: usize,
    rows: usize,
    pc: usize,
    kc: usize,
) {
    let rows = rows.min(MR);
    if s.trans_a {
        // A is k × m: column i of op(A)ᵀ is contiguous in each row of A.
        for (p, col) in dst.chunks_exact_mut(MR).enumerate() {
            let src = &a[(pc + p) * s.m + i0..];
            if rows == MR {
                col.copy_from_slice(&src[..MR]);
            } else {
                col[..rows].copy_from_slice(&src[..rows]);
                col[rows..].fill(R::default());
            }
        }
    } else {
        // A is m × k: row i of op(A) is contiguous.
        pack_across::<R, MR>(dst, rows, |i| &a[(i0 + i) * s.k + pc..][..kc]);
    }
}

/// Depths that [`pack_across`] moves through its tile at a time.
const ACROSS_TILE: usize = 16;

/// Packs `lines` contiguous source lines (`line(i)`, each the panel's
/// depth long) across a panel `W` wide: `dst[p * W + i] = line(i)[p]`,
/// zero past `lines`.
///
/// Storing each element of a line at its place one at a time writes `W`
/// apart; this copies `ACROSS_TILE` depths of every line into a small tile
/// first and writes the tile out depth by depth, so that reads and writes
/// both run along memory. Packing DGEMM's `A` at 1024³ on one thread of
/// the Zen 5 development machine took about 2 ms the first way and 0.6 ms
/// this way, of a 20 ms product; on two threads the product went from
/// 10.05–10.46 ms to 9.77–9.97 ms (alternated runs, 2026-12-07).
#[inline(always)]
fn pack_across<'s, R: Real, const W: usize>(
    dst: &mut [R],
    lines: usize,
    line: impl Fn(usize) -> &'s [R],
) {
    let lines = lines.min(W);
    // Lines past `lines` stay zero in the tile: the padding.
    let mut tile = [[R::default(); ACROSS_TILE]; W];
    let done = dst.len() / (ACROSS_TILE * W) * ACROSS_TILE;
    let mut depths = dst.chunks_exact_mut(ACROSS_TILE * W);
    for (t, out) in (&mut depths).enumerate() {
        for (i, tl) in tile.iter_mut().enumerate().take(lines) {
            tl.copy_from_slice(&line(i)[t * ACROSS_TILE..][..ACROSS_TILE]);
        }
        for (q, across) in out.chunks_exact_mut(W).enumerate() {
            for (d, tl) in across.iter_mut().zip(&tile) {
                *d = tl[q];
            }
        }
    }
    for (q, across) in depths.into_remainder().chunks_exact_mut(W).enumerate() {
        for (i, d) in across.iter_mut().enumerate() {
            *d = if i < lines {
                line(i)[done + q]
            } else {
                R::default()
            };
        }
    }
}

/// `C[..rows, ..cols] += α·Apacked·Bpacked` (or `=`, with `assign`) over
/// one packed `A` block and one packed `B` block; `c` starts at the block's
/// first element, with row stride `ldc`.
#[allow(
    clippy::too_many_arguments,
    reason = "the BLIS macro-kernel's operands"
)]
fn macro_kernel<R: Real>(
    alpha: R,
    kc: usize,
    a_block: &[R],
    b_block: &[R],
    rows: usize,
    cols: usize,
    c: &mut [R],
    ldc: usize,
    assign: bool,
) {
    let full = nr::<R>();
    for (jp, b_panel) in b_block.chunks_exact(kc * full).enumerate() {
        let j0 = jp * full;
        let nr = full.min(cols - j0);
        for (ip, a_panel) in a_block.chunks_exact(kc * MR).enumerate() {
            let i0 = ip * MR;
            let mr = MR.min(rows - i0);
            let tile = &mut c[i0 * ldc + j0..];
            prefetch_tile(tile, ldc, mr);
            let acc = micro_kernel(a_panel, b_panel);
            if mr == MR && nr == full {
                store_full(alpha, &acc, tile, ldc, assign);
            } else {
                store_part(alpha, &acc, tile, ldc, mr, nr, assign);
            }
        }
    }
}

/// Asks for the rows of a `C` tile to be brought into cache while the
/// micro-kernel computes (its first and last float of each row: the row's
/// 64 bytes may span two lines). `C` is far larger than L2 and its rows are
/// `ldc` apart, so without this every tile update waits on memory.
#[inline(always)]
fn prefetch_tile<R: Real>(tile: &[R], ldc: usize, rows: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in 0..rows {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let row = &tile[i * ldc..];
        let last = row.len().min(nr::<R>()) - 1;
        for p in [row.as_ptr(), row[last..].as_ptr()] {
            // SAFETY: a prefetch never faults or reads into the program, and
            // the pointers are in bounds of `tile` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (tile, ldc, rows);
}

/// The `MR × NR` register tile `op(A)panel · op(B)panel` over one packed
/// depth: `MR·NV` vector accumulators, `NV` loads of `B` and `MR`
/// broadcasts of `A` per step. The loops have constant trip counts and are
/// unrolled completely, so the accumulators live in registers.
#[inline(always)]
fn micro_kernel<R: Real>(a: &[R], b: &[R]) -> [[R::V; NV]; MR] {
    let mut acc = [[R::vzero(); NV]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(nr::<R>())) {
        let bv: [R::V; NV] = std::array::from_fn(|v| R::load(&bp[v * R::N..]));
        for (row, &ai) in acc.iter_mut().zip(ap) {
            let ai = R::splat(ai);
            for (c, b) in row.iter_mut().zip(&bv) {
                *c = R::vmul_add(ai, *b, *c);
            }
        }
    }
    acc
}

/// `C += α·acc` (or `C = α·acc + 0`, with `assign`) for a whole tile.
#[inline(always)]
fn store_full<R: Real>(alpha: R, acc: &[[R::V; NV]; MR], c: &mut [R], ldc: usize, assign: bool) {
    let al = R::splat(alpha);
    for (i, row) in acc.iter().enumerate() {
        let dst = &mut c[i * ldc..i * ldc + nr::<R>()];
        for (v, part) in row.iter().zip(dst.chunks_exact_mut(R::N)) {
            // Adding zero keeps the sign rules of accumulating into zeros:
            // a product of -0 lands as +0 either way.
            let from = if assign { R::vzero() } else { R::load(part) };
            R::store(R::vmul_add(*v, al, from), part);
        }
    }
}

/// `C += α·acc` (or `=`, with `assign`) for the valid `mr × nr` corner of
/// an edge tile.
fn store_part<R: Real>(
    alpha: R,
    acc: &[[R::V; NV]; MR],
    c: &mut [R],
    ldc: usize,
    mr: usize,
    nr: usize,
    assign: bool,
) {
    for (i, row) in acc.iter().enumerate().take(mr) {
        let mut vals = [R::default(); NR_MAX];
        for (v, part) in row.iter().zip(vals.chunks_exact_mut(R::N)) {
            R::store(*v, part);
        }
        for (d, v) in c[i * ldc..][..nr].iter_mut().zip(&vals) {
            let from = if assign { R::default() } else { *d };
            *d = R::mul_add(*v, alpha, from);
        }
    }
}
