//! 2-D convolution of an f32 (or f64) image with an odd-sized filter of
//! the same type: [`Conv2d`].
//! GPU twin: `shaders/conv.wgsl`.
//!
//! # Semantics (both backends)
//! - [`Conv2d`] computes the **correlation** (the filter is not flipped), as
//!   image libraries and deep-learning "convolution" layers do:
//!
//!   `out[y][x] = Σ_{i<fh, j<fw} filter[i][j] · img[y + i - fh/2][x + j - fw/2]`
//!
//!   For the textbook convolution (NumPy/ArrayFire `convolve`), pass the
//!   filter reversed in both dimensions.
//! - Pixels outside the image are given by the [`Border`]: `Zero` extends the
//!   image with `+0.0`, `Clamp` repeats the nearest edge pixel. Every output
//!   is the sum of all `fh·fw` products, border pixels included, so a NaN or
//!   infinite weight makes every output NaN or infinite even over the zero
//!   border (`0 · inf = NaN`).
//! - NaN and ±inf follow IEEE arithmetic: a NaN anywhere in an output's
//!   window (or in the filter) gives NaN; an infinity gives ±inf, or NaN
//!   where infinities of both signs (or `0 · inf`) meet.
//! - Each output is accumulated tap by tap, in row-major filter order, with
//!   fused multiply-adds on both backends. Results may still differ in the
//!   last bits between backends (a device may not fuse); the error against
//!   the exact result is at most about `fh·fw·ε·Σ|w·x|`.

use crate::buffer::Buffer;
use crate::cpu::simd::Real;
use crate::cpu::{Cpu, PARALLEL_THRESHOLD, pool};
use crate::error::{Error, Result};
use crate::gpu::{Bind, Dispatch, Gpu, OFFSET_ALIGN, ShaderSpec, aligned_window, shader};
use crate::kernel::{Kernel, Work, typed_name};

shader! {
    "conv.wgsl",
    /// `conv.wgsl`'s uniform block: the image's and the filter's (`fh`,
    /// `fw`) sizes, [`Border::code`], output tiles per row of tiles, and
    /// the band of output rows one dispatch computes (`y0`, `rows`) with
    /// its input window's first row and both windows' offsets.
    struct Params {
        height: u32, width: u32, fh: u32, fw: u32,
        border: u32, tiles_x: u32, y0: u32, rows: u32,
        in_row0: u32, in_off: u32, out_off: u32, _pad0: u32,
    }
    /// Output tile edge of one workgroup: 16×16 pixels.
    const TILE: usize = 16;
    /// Largest filter radius (`fh/2`, `fw/2`) whose tile and halo fit the
    /// shader's workgroup memory; larger filters read global memory.
    const MAX_R: usize = 8;
}

/// Vector accumulators per output row in one CPU inner-loop step.
const ACCS: usize = 4;

/// Output columns one CPU inner-loop step computes: [`ACCS`] vectors.
const fn cpu_block<R: Real>() -> usize {
    ACCS * R::N
}

/// Bands of output rows per CPU thread, for load balance.
const BANDS_PER_THREAD: usize = 4;

/// Bytes of padded input rows one CPU band stages (256 KiB, about an L2):
/// wide images get shorter bands so the rows stay in cache across taps.
const BAND_BYTES: usize = 1 << 18;

/// What a [`Conv2d`] reads for pixels outside the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Border {
    /// Outside pixels are `+0.0`.
    #[default]
    Zero,
    /// Outside pixels repeat the nearest edge pixel (coordinates clamped).
    Clamp,
}

impl Border {
    fn code(self) -> u32 {
        match self {
            Border::Zero => 0,
            Border::Clamp => 1,
        }
    }
}

/// 2-D correlation of a `height × width` row-major f32 image with a
/// `filter_height × filter_width` row-major f32 filter (both sizes odd),
/// centred on each output pixel; the output has the image's shape. See the
/// [module docs](self) for the exact formula, borders and NaN behaviour.
///
/// Input: `(&image, &filter)`. Errors: [`Error::InvalidArgument`] when a
/// filter size is even or zero, or a buffer length does not match its shape.
/// An image with no pixels gives an empty output without any dispatch.
///
/// ```
/// use tandem::{Backend, Buffer, Engine};
/// use tandem::kernels::{Border, Conv2d};
/// # fn main() -> tandem::Result<()> {
/// let engine = Engine::new()?;
/// let image = Buffer::from(vec![1.0f32; 4 * 5]);
/// let blur = Buffer::from(vec![1.0f32 / 9.0; 9]);
/// let conv = Conv2d { height: 4, width: 5, filter_height: 3, filter_width: 3, border: Border::Clamp };
/// let out = engine.on(Backend::Cpu).run(&conv, (&image, &blur))?;
/// assert!(out.to_vec()?.iter().all(|&v| (v - 1.0).abs() < 1e-6));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2d {
    /// Image rows.
    pub height: usize,
    /// Image columns.
    pub width: usize,
    /// Filter rows (odd).
    pub filter_height: usize,
    /// Filter columns (odd).
    pub filter_width: usize,
    /// What pixels outside the image read as.
    pub border: Border,
}

impl Conv2d {
    /// A `height × width` image by a `filter_height × filter_width` filter.
    pub const fn new(
        (height, width): (usize, usize),
        (filter_height, filter_width): (usize, usize),
        border: Border,
    ) -> Conv2d {
        Conv2d {
            height,
            width,
            filter_height,
            filter_width,
            border,
        }
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidArgument {
            kernel: "conv2d",
            message: format!(
                "{message} (image {}x{}, filter {}x{})",
                self.height, self.width, self.filter_height, self.filter_width
            ),
        }
    }

    /// Checks the shape against the inputs; returns the pixel count.
    fn check(&self, image: usize, filter: usize) -> Result<usize> {
        let (fh, fw) = (self.filter_height, self.filter_width);
        if fh % 2 == 0 || fw % 2 == 0 {
            return Err(self.invalid(format!(
                "filter sizes must be odd and non-zero, got {fh}x{fw}"
            )));
        }
        let pixels = self
            .height
            .checked_mul(self.width)
            .ok_or_else(|| self.invalid("height x width overflows usize".into()))?;
        let taps = fh
            .checked_mul(fw)
            .ok_or_else(|| self.invalid("filter height x width overflows usize".into()))?;
        if image != pixels {
            return Err(self.invalid(format!(
                "image has {image} elements, height x width is {pixels}"
            )));
        }
        if filter != taps {
            return Err(self.invalid(format!(
                "filter has {filter} elements, filter height x width is {taps}"
            )));
        }
        Ok(pixels)
    }
}

impl<R: Real> Kernel<(&Buffer<R>, &Buffer<R>)> for Conv2d {
    type Out = Buffer<R>;

    fn name(&self) -> &'static str {
        typed_name::<R>("conv2d", "conv2d_f64")
    }

    fn work(&self, (image, filter): &(&Buffer<R>, &Buffer<R>)) -> Work {
        let pixels = (self.height as u64).saturating_mul(self.width as u64);
        let taps = (self.filter_height as u64).saturating_mul(self.filter_width as u64);
        Work {
            elements: pixels,
            bytes_read: image.byte_len() + filter.byte_len(),
            bytes_written: pixels.saturating_mul(size_of::<R>() as u64),
            flops: pixels.saturating_mul(taps).saturating_mul(2),
            host_result_bytes: 0,
        }
    }

    fn run_cpu(&self, cpu: &Cpu, (image, filter): (&Buffer<R>, &Buffer<R>)) -> Result<Buffer<R>> {
        let n = self.check(image.len(), filter.len())?;
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        let (img, f) = (cpu.host(image)?, cpu.host(filter)?);
        Ok(Buffer::from(conv_cpu(cpu, self, &img, &f)))
    }

    fn run_gpu(&self, gpu: &Gpu, (image, filter): (&Buffer<R>, &Buffer<R>)) -> Result<Buffer<R>> {
        let n = self.check(image.len(), filter.len())?;
        if n == 0 {
            return Ok(Buffer::from(Vec::new()));
        }
        conv_gpu(gpu, self, image, filter, n)
    }
}

// ---------------------------------------------------------------- CPU ----

/// One band of output rows at a time (in parallel): the band's input rows
/// plus halo are copied once into padded rows (border applied), so the
/// inner loop is branch-free: for each block of 32 output columns, four
/// 8-lane accumulators take one FMA per filter tap with the tap's weight
/// broadcast and the input row shifted by the tap's column.
fn conv_cpu<R: Real>(cpu: &Cpu, k: &Conv2d, img: &[R], filter: &[R]) -> Vec<R> {
    let block = cpu_block::<R>();
    let (h, w) = (k.height, k.width);
    let (fh, fw) = (k.filter_height, k.filter_width);
    let mut out = pool::take::<R>(h * w);
    let flops = h.saturating_mul(w).saturating_mul(fh * fw);
    let stride = w.div_ceil(block) * block + fw - 1;
    let band = if flops < PARALLEL_THRESHOLD {
        h
    } else {
        let cached = (BAND_BYTES / size_of::<R>() / stride)
            .saturating_sub(fh - 1)
            .max(1);
        h.div_ceil(cpu.threads() * BANDS_PER_THREAD)
            .clamp(1, cached)
    };
    let run = |scratch: &mut Vec<R>, (b, out): (usize, &mut [R])| {
        conv_band(k, img, filter, b * band, out, scratch)
    };
    if band >= h {
        run(&mut Vec::new(), (0, &mut out));
    } else {
        cpu.for_each_out_chunk_init(&mut out, band * w, &Vec::new, |scratch, b, o| {
            run(scratch, (b, o))
        });
    }
    out
}

/// Output rows `y0..y0 + out.len() / w` of the correlation.
/// `padded` is scratch space, reused across bands.
fn conv_band<R: Real>(
    k: &Conv2d,
    img: &[R],
    filter: &[R],
    y0: usize,
    out: &mut [R],
    padded: &mut Vec<R>,
) {
    let (block, lanes) = (cpu_block::<R>(), R::N);
    let zero = R::default();
    let (h, w) = (k.height, k.width);
    let (fh, fw) = (k.filter_height, k.filter_width);
    let (rh, rw) = (fh / 2, fw / 2);
    let rows = out.len() / w;
    // Padded rows hold columns -rw .. wr + rw of the image, where the output
    // width wr is rounded up to whole blocks (extra columns are discarded).
    let wr = w.div_ceil(block) * block;
    let stride = wr + fw - 1;
    padded.resize((rows + fh - 1) * stride, zero);
    for (r, dst) in padded.chunks_exact_mut(stride).enumerate() {
        let y = (y0 + r) as isize - rh as isize;
        let src_y = match k.border {
            Border::Zero if y < 0 || y >= h as isize => {
                dst.fill(zero);
                continue;
            }
            Border::Zero => y as usize,
            Border::Clamp => y.clamp(0, h as isize - 1) as usize,
        };
        let src = &img[src_y * w..(src_y + 1) * w];
        dst[rw..rw + w].copy_from_slice(src);
        let (left, right) = match k.border {
            Border::Zero => (zero, zero),
            Border::Clamp => (src[0], src[w - 1]),
        };
        dst[..rw].fill(left);
        dst[rw + w..].fill(right);
    }
    let weights: Vec<R::V> = filter.iter().map(|&v| R::splat(v)).collect();
    let mut row_out = vec![zero; 2 * wr];
    // Pairs of output rows share fh - 1 input rows: each loaded vector
    // feeds both rows' accumulators, halving loads per FMA. Each output
    // still sums its taps in row-major order, as the single-row path does.
    let mut r = 0;
    while r + 2 <= rows {
        let window = &padded[r * stride..(r + fh + 1) * stride];
        for x0 in (0..wr).step_by(block) {
            let mut acc0 = [R::vzero(); ACCS];
            let mut acc1 = [R::vzero(); ACCS];
            for i in 0..=fh {
                let row = &window[i * stride..(i + 1) * stride];
                for j in 0..fw {
                    let p = &row[x0 + j..x0 + j + block];
                    let v: [R::V; ACCS] = std::array::from_fn(|l| R::load(&p[l * lanes..]));
                    if i < fh {
                        let wv = weights[i * fw + j];
                        for (a, v) in acc0.iter_mut().zip(&v) {
                            *a = R::vmul_add(*v, wv, *a);
                        }
                    }
                    if i > 0 {
                        let wv = weights[(i - 1) * fw + j];
                        for (a, v) in acc1.iter_mut().zip(&v) {
                            *a = R::vmul_add(*v, wv, *a);
                        }
                    }
                }
            }
            for l in 0..ACCS {
                let at = x0 + l * lanes;
                R::store(acc0[l], &mut row_out[at..]);
                R::store(acc1[l], &mut row_out[wr + at..]);
            }
        }
        out[r * w..(r + 1) * w].copy_from_slice(&row_out[..w]);
        out[(r + 1) * w..(r + 2) * w].copy_from_slice(&row_out[wr..wr + w]);
        r += 2;
    }
    if r < rows {
        let window = &padded[r * stride..(r + fh) * stride];
        for x0 in (0..wr).step_by(block) {
            let mut acc = [R::vzero(); ACCS];
            for i in 0..fh {
                let row = &window[i * stride..(i + 1) * stride];
                for (j, wv) in weights[i * fw..(i + 1) * fw].iter().enumerate() {
                    let p = &row[x0 + j..x0 + j + block];
                    for (l, a) in acc.iter_mut().enumerate() {
                        let v = R::load(&p[l * lanes..]);
                        *a = R::vmul_add(v, *wv, *a);
                    }
                }
            }
            for (l, a) in acc.iter().enumerate() {
                R::store(*a, &mut row_out[x0 + l * lanes..]);
            }
        }
        out[r * w..(r + 1) * w].copy_from_slice(&row_out[..w]);
    }
}

// ---------------------------------------------------------------- GPU ----

/// Launches `conv.wgsl`: one 16×16 output tile per workgroup, the tile and
/// its halo staged in workgroup memory (`tiled`), or read from global memory
/// for filters wider than the staged halo allows (`direct`).
///
/// An image larger than one storage binding runs in bands of output rows,
/// one dispatch each: a band binds its own output rows and its input rows
/// with the filter's halo above and below, at offsets aligned down to
/// [`OFFSET_ALIGN`]. Only a single row that does not fit one binding with
/// its halo is [`Error::TooLarge`].
fn conv_gpu<R: Real>(
    gpu: &Gpu,
    k: &Conv2d,
    image: &Buffer<R>,
    filter: &Buffer<R>,
    n: usize,
) -> Result<Buffer<R>> {
    let kernel = typed_name::<R>("conv2d", "conv2d_f64");
    gpu.check_element(kernel, R::TYPE)?;
    let size = size_of::<R>();
    let limit = gpu.info().chunk_bytes;
    let (h, w) = (k.height, k.width);
    let (ry, fw) = (k.filter_height / 2, k.filter_width);
    let too_large = |bytes: u64, what: &'static str| Error::TooLarge {
        kernel,
        bytes,
        limit,
        what,
    };
    if filter.byte_len() > limit {
        return Err(too_large(
            filter.byte_len(),
            "one storage binding (the filter)",
        ));
    }
    if u32::try_from(h).is_err() || u32::try_from(k.filter_height.max(fw)).is_err() {
        return Err(too_large(image.byte_len(), "u32 image and filter sizes"));
    }
    let per_binding = usize::try_from(limit).unwrap_or(usize::MAX) / size;
    let align = OFFSET_ALIGN / size;
    // Rows per band: every row when the image fits; else as many as fit one
    // binding with the halo and the alignment slack, in whole tiles.
    let band = if n <= per_binding {
        h
    } else {
        match (per_binding.saturating_sub(align - 1) / w).saturating_sub(2 * ry) {
            0 => {
                let row = ((2 * ry + 1).saturating_mul(w).saturating_mul(size)) as u64;
                return Err(too_large(
                    row,
                    "one storage binding (one image row with the filter's halo)",
                ));
            }
            b if b >= TILE => b - b % TILE,
            b => b,
        }
    };
    let tiles_x = w.div_ceil(TILE);
    let max = u64::from(gpu.info().max_workgroups_per_dimension);
    let tiles = (band.div_ceil(TILE) * tiles_x) as u64;
    if tiles > max * max {
        return Err(too_large(image.byte_len(), "workgroups per dispatch"));
    }
    let tiled = k.filter_height / 2 <= MAX_R && k.filter_width / 2 <= MAX_R;
    let entry = if tiled { "tiled" } else { "direct" };
    let window = |start: usize, end: usize| aligned_window(start, end, size);
    gpu.scoped(kernel, || {
        let pipeline = gpu.pipeline(&ShaderSpec {
            label: "conv",
            source: SHADER,
            entry,
            element: Some(R::TYPE),
            constants: &[],
        })?;
        let img = gpu.resident(kernel, image)?;
        let f = gpu.resident(kernel, filter)?;
        let out = gpu.alloc::<R>(kernel, n)?;
        let mut bands = Vec::new();
        for y0 in (0..h).step_by(band) {
            let rows = band.min(h - y0);
            let (in_row0, in_end) = (y0.saturating_sub(ry), (y0 + rows + ry).min(h));
            let (in_range, in_off) = window(in_row0 * w, in_end * w);
            let (out_range, out_off) = window(y0 * w, (y0 + rows) * w);
            let params = Params {
                height: h as u32,
                width: w as u32,
                fh: k.filter_height as u32,
                fw: fw as u32,
                border: k.border.code(),
                tiles_x: tiles_x as u32,
                y0: y0 as u32,
                rows: rows as u32,
                in_row0: in_row0 as u32,
                in_off,
                out_off,
                ..Params::default()
            };
            let groups = (rows.div_ceil(TILE) * tiles_x) as u32;
            bands.push((params, in_range, out_range, groups));
        }
        let bindings: Vec<[(u32, Bind<'_>); 4]> = bands
            .iter()
            .map(|(params, in_range, out_range, _)| {
                [
                    (0, Bind::Uniform(params.bytes())),
                    (1, Bind::storage(&img, in_range.clone())),
                    (2, Bind::storage(&f, 0..filter.byte_len())),
                    (3, Bind::storage(&out, out_range.clone())),
                ]
            })
            .collect();
        let dispatches = Dispatch::each(&pipeline, &bindings, bands.iter().map(|b| b.3));
        gpu.submit(kernel, &dispatches)?;
        Ok(gpu.into_buffer(out, n))
    })
}
