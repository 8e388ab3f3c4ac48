//! Elementwise kernels: [`Unary`] ops, [`Binary`] ops and [`Axpy`].
//! GPU twin: `shaders/map.wgsl`.
//!
//! # Semantics (both backends)
//! - Integers wrap (`neg`, `abs`, `add`, `sub`, `mul`); integer division by
//!   zero and `i32::MIN / -1` return the dividend, as WGSL defines.
//! - `minimum`/`maximum` ignore a NaN operand (NaN only if both are NaN) and
//!   order `-0.0` below `+0.0`.
//! - `sqrt` of a negative and `ln` of a negative give NaN; `ln(±0) = -inf`;
//!   `exp` overflows to `+inf`. NaN inputs give NaN. The sign and payload of
//!   a NaN an operation creates are unspecified (x86 and GPUs differ).
//! - Accuracy of `exp`/`ln`/`div` follows the device: a few ULP (see the
//!   conformance tests for the bounds checked). Results below
//!   `f32::MIN_POSITIVE` may be flushed to zero on a GPU.

use crate::buffer::{Buffer, Element, ElementType};
use crate::cpu::Cpu;
use crate::cpu::simd::{self, F32, F64, I32, I64, Lanes, f64_key};
use crate::error::{Error, Result};
use crate::gpu::{DeviceCopy, Gpu, ShaderSpec, shader};
use crate::kernel::Backend;
use crate::kernel::{Kernel, Work, typed_name};

shader! {
    "map.wgsl",
    /// `map.wgsl`'s uniform block: `n` elements in this dispatch's range,
    /// `Scale`'s factor and `Axpy`'s `a`.
    struct Params { n: u32, scale: f32, a: f32, _pad: u32 }
}

/// A one-input elementwise operation.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Unary {
    /// `-x` (f32, i32 wrapping).
    Neg,
    /// `|x|` (f32; i32 wrapping; u32 is the identity).
    Abs,
    /// Square root (f32).
    Sqrt,
    /// `e^x` (f32).
    Exp,
    /// Natural logarithm (f32).
    Ln,
    /// `s * x` (f32).
    Scale(f32),
    /// `x * x` (f32).
    Square,
}

impl Unary {
    fn op_code(self) -> u32 {
        match self {
            Unary::Neg => 0,
            Unary::Abs => 1,
            Unary::Sqrt => 2,
            Unary::Exp => 3,
            Unary::Ln => 4,
            Unary::Scale(_) => 5,
            Unary::Square => 6,
        }
    }

    fn supports(self, t: ElementType) -> bool {
        match self {
            Unary::Neg => t != ElementType::U32,
            Unary::Abs => true,
            _ => t.is_float(),
        }
    }

    fn check<T: Element>(self, backend: Backend) -> Result<()> {
        if self.supports(T::TYPE) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                kernel: Kernel::<&Buffer<T>>::name(&self),
                backend,
                reason: format!(
                    "{} is not defined for {}",
                    Kernel::<&Buffer<T>>::name(&self),
                    T::TYPE
                ),
            })
        }
    }
}

impl<T: Element> Kernel<&Buffer<T>> for Unary {
    type Out = Buffer<T>;

    fn name(&self) -> &'static str {
        let (a, b) = match self {
            Unary::Neg => ("neg", "neg_f64"),
            Unary::Abs => ("abs", "abs_f64"),
            Unary::Sqrt => ("sqrt", "sqrt_f64"),
            Unary::Exp => ("exp", "exp_f64"),
            Unary::Ln => ("ln", "ln_f64"),
            Unary::Scale(_) => ("scale", "scale_f64"),
            Unary::Square => ("square", "square_f64"),
        };
        typed_name::<T>(a, b)
    }

    fn work(&self, x: &&Buffer<T>) -> Work {
        let flops = match self {
            Unary::Exp | Unary::Ln => 20,
            _ => 1,
        };
        Work::elementwise::<T>(x.len(), 1, flops)
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        self.check::<T>(Backend::Cpu)?;
        let src = cpu.host(x)?;
        let op = *self;
        let weight = match op {
            Unary::Exp | Unary::Ln => 16,
            Unary::Sqrt => 2,
            _ => 1,
        };
        let out = cpu.map_chunks(&src, weight, move |s: &[T], d: &mut [T]| {
            unary_cpu(op, s, d)
        });
        Ok(Buffer::from(out))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<T>) -> Result<Buffer<T>> {
        self.check::<T>(Backend::Gpu)?;
        let scale = match self {
            Unary::Scale(s) => *s,
            _ => 1.0,
        };
        launch::<T>(
            gpu,
            Kernel::<&Buffer<T>>::name(self),
            "unary",
            self.op_code(),
            &[x],
            scale,
            0.0,
        )
    }
}

/// A two-input elementwise operation on equal-length inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Binary {
    /// `x + y`.
    Add,
    /// `x - y`.
    Sub,
    /// `x * y`.
    Mul,
    /// `x / y`.
    Div,
    /// Elementwise minimum (NaN ignored).
    Min,
    /// Elementwise maximum (NaN ignored).
    Max,
}

impl Binary {
    /// Every binary operation, in declaration order.
    pub const ALL: [Binary; 6] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Min,
        Binary::Max,
    ];

    fn op_code(self) -> u32 {
        match self {
            Binary::Add => 0,
            Binary::Sub => 1,
            Binary::Mul => 2,
            Binary::Div => 3,
            Binary::Min => 4,
            Binary::Max => 5,
        }
    }
}

impl<T: Element> Kernel<(&Buffer<T>, &Buffer<T>)> for Binary {
    type Out = Buffer<T>;

    fn name(&self) -> &'static str {
        let (a, b) = match self {
            Binary::Add => ("add", "add_f64"),
            Binary::Sub => ("sub", "sub_f64"),
            Binary::Mul => ("mul", "mul_f64"),
            Binary::Div => ("div", "div_f64"),
            Binary::Min => ("minimum", "minimum_f64"),
            Binary::Max => ("maximum", "maximum_f64"),
        };
        typed_name::<T>(a, b)
    }

    fn work(&self, (x, _): &(&Buffer<T>, &Buffer<T>)) -> Work {
        Work::elementwise::<T>(x.len(), 2, 1)
    }

    fn run_cpu(&self, cpu: &Cpu, (x, y): (&Buffer<T>, &Buffer<T>)) -> Result<Buffer<T>> {
        let name = Kernel::<(&Buffer<T>, &Buffer<T>)>::name(self);
        Error::check_same_len(name, x.len(), y.len())?;
        let (a, b) = (cpu.host(x)?, cpu.host(y)?);
        let op = *self;
        // Integer division has no SIMD instruction.
        let weight = match (op, T::TYPE.is_float()) {
            (Binary::Div, false) => 8,
            (Binary::Div, true) => 2,
            _ => 1,
        };
        let out = cpu.zip_chunks(&a, &b, weight, move |a: &[T], b: &[T], d: &mut [T]| {
            binary_cpu(op, a, b, d)
        });
        Ok(Buffer::from(out))
    }

    fn run_gpu(&self, gpu: &Gpu, (x, y): (&Buffer<T>, &Buffer<T>)) -> Result<Buffer<T>> {
        let name = Kernel::<(&Buffer<T>, &Buffer<T>)>::name(self);
        Error::check_same_len(name, x.len(), y.len())?;
        launch::<T>(gpu, name, "binary", self.op_code(), &[x, y], 1.0, 0.0)
    }
}

/// `a * x + y` on f32. On the CPU it is one fused multiply-add (one
/// rounding) where the build has FMA (AVX2+FMA, AVX-512, NEON); the x86-64
/// baseline build has no FMA instruction and rounds twice. On the GPU it is
/// WGSL's `fma()`, which a Vulkan driver may evaluate unfused (lavapipe
/// does): each GPU element is then the fused or the unfused result, so the
/// backends can differ in the last bit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axpy {
    /// The scalar `a`.
    pub a: f32,
}

impl Kernel<(&Buffer<f32>, &Buffer<f32>)> for Axpy {
    type Out = Buffer<f32>;

    fn name(&self) -> &'static str {
        "axpy"
    }

    fn work(&self, (x, _): &(&Buffer<f32>, &Buffer<f32>)) -> Work {
        Work::elementwise::<f32>(x.len(), 2, 2)
    }

    fn run_cpu(&self, cpu: &Cpu, (x, y): (&Buffer<f32>, &Buffer<f32>)) -> Result<Buffer<f32>> {
        Error::check_same_len("axpy", x.len(), y.len())?;
        let (xs, ys) = (cpu.host(x)?, cpu.host(y)?);
        let a = self.a;
        let av = F32::splat(a);
        // The tail goes through the same vector operation as the body, so
        // every element rounds the same way: once where the build has FMA,
        // twice on a build without it (the x86-64 baseline).
        let one = move |x: f32, y: f32| F32::splat(x).mul_add(av, F32::splat(y)).to_array()[0];
        let out = cpu.zip_chunks(&xs, &ys, 1, move |x: &[f32], y: &[f32], d: &mut [f32]| {
            simd::zip(x, y, d, |x, y| x.mul_add(av, y), one);
        });
        Ok(Buffer::from(out))
    }

    fn run_gpu(&self, gpu: &Gpu, (x, y): (&Buffer<f32>, &Buffer<f32>)) -> Result<Buffer<f32>> {
        Error::check_same_len("axpy", x.len(), y.len())?;
        launch::<f32>(gpu, "axpy", "axpy", 0, &[x, y], 1.0, self.a)
    }
}

/// Runs one elementwise entry point of `map.wgsl` over `inputs`, chunked to
/// the binding limit, into a new device-resident buffer.
fn launch<T: Element>(
    gpu: &Gpu,
    kernel: &'static str,
    entry: &'static str,
    op: u32,
    inputs: &[&Buffer<T>],
    scale: f32,
    a: f32,
) -> Result<Buffer<T>> {
    gpu.check_element(kernel, T::TYPE)?;
    let n = inputs[0].len();
    if n == 0 {
        return Ok(Buffer::from(Vec::new()));
    }
    if n > u32::MAX as usize {
        return Err(Error::TooLarge {
            kernel,
            bytes: (n * size_of::<T>()) as u64,
            limit: u64::from(u32::MAX) * size_of::<T>() as u64,
            what: "u32 element indices",
        });
    }
    gpu.scoped(kernel, || {
        let pipeline = gpu.pipeline(&ShaderSpec {
            label: "map",
            source: SHADER,
            entry,
            element: Some(T::TYPE),
            constants: &[
                ("KIND", f64::from(T::TYPE.kind_code())),
                ("OP", f64::from(op)),
            ],
        })?;
        let copies = inputs
            .iter()
            .map(|b| gpu.resident(kernel, b))
            .collect::<Result<Vec<_>>>()?;
        let out = gpu.alloc::<T>(kernel, n)?;
        // Inputs at bindings 1 and 2, the output always at 3.
        let mut arrays: Vec<(u32, &DeviceCopy)> =
            (1u32..).zip(copies.iter().map(|c| &**c)).collect();
        arrays.push((3, &out));
        gpu.submit_elementwise::<T, _>(kernel, &pipeline, n, &arrays, |c| Params {
            n: c.len() as u32,
            scale,
            a,
            ..Params::default()
        })?;
        Ok(gpu.into_buffer(out, n))
    })
}

fn unary_cpu<T: Element>(op: Unary, src: &[T], dst: &mut [T]) {
    match T::TYPE {
        ElementType::F32 => unary_f32(op, bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst)),
        ElementType::I32 => {
            let (s, d): (&[i32], &mut [i32]) =
                (bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst));
            match op {
                Unary::Neg => simd::map(s, d, |v| I32::ZERO - v, |x| x.wrapping_neg()),
                _ => simd::map(s, d, |v| v.abs(), |x| x.wrapping_abs()),
            }
        }
        ElementType::U32 => dst.copy_from_slice(src),
        ElementType::F64 => unary_f64(op, bytemuck::cast_slice(src), bytemuck::cast_slice_mut(dst)),
    }
}

/// Largest x whose exp is finite in f64, and the x below which it underflows to 0.
const EXP_OVERFLOW_F64: f64 = 709.782_712_893_384;
const EXP_UNDERFLOW_F64: f64 = -745.133_219_101_941_1;

#[inline(always)]
pub(crate) fn exp_lanes_f64(v: F64) -> F64 {
    let r = v.exp();
    let r = v
        .simd_gt(F64::splat(EXP_OVERFLOW_F64))
        .select(F64::splat(f64::INFINITY), r);
    let r = v
        .simd_lt(F64::splat(EXP_UNDERFLOW_F64))
        .select(F64::ZERO, r);
    v.is_nan().select(v, r)
}

/// 1074·ln 2: ln of the smallest f64 subnormal's scale, 2^-1074.
const LN2_1074: f64 = 744.440_071_921_381_2;

#[inline(always)]
pub(crate) fn ln_lanes_f64(v: F64) -> F64 {
    // A positive subnormal is bits·2^-1074 exactly, and `bits as f64` is
    // exact (bits < 2^52): take the log of a normal number instead.
    let bits: I64 = bytemuck::cast(v);
    let subnormal = bits.simd_gt(I64::ZERO) & bits.simd_lt(I64::splat(1 << 52));
    let as_float: F64 = bits.round_float();
    // One log for both: subtracting 0 leaves a normal input's log as is.
    let subnormal: F64 = bytemuck::cast(subnormal);
    let r = subnormal.select(as_float, v).ln() - subnormal.select(F64::splat(LN2_1074), F64::ZERO);
    let r = v
        .simd_eq(F64::ZERO)
        .select(F64::splat(f64::NEG_INFINITY), r);
    let r = v.simd_eq(F64::splat(f64::INFINITY)).select(v, r);
    let r = v.simd_lt(F64::ZERO).select(F64::splat(f64::NAN), r);
    v.is_nan().select(v, r)
}

/// The float unary ops for one float type, with its `exp` and `ln` lanes.
macro_rules! float_unary {
    ($unary:ident, $t:ty, $v:ty, $exp:ident, $ln:ident) => {
        fn $unary(op: Unary, s: &[$t], d: &mut [$t]) {
            let sign = <$v>::splat(-0.0);
            // The tail goes through the lanes too, so every element rounds alike.
            let one = |f: fn($v) -> $v, x: $t| f(<$v>::splat(x)).to_array()[0];
            match op {
                Unary::Neg => simd::map(s, d, |v| v ^ sign, |x| -x),
                Unary::Abs => simd::map(s, d, |v| v.abs(), <$t>::abs),
                Unary::Sqrt => simd::map(s, d, |v| v.sqrt(), <$t>::sqrt),
                Unary::Exp => simd::map(s, d, $exp, |x| one($exp, x)),
                Unary::Ln => simd::map(s, d, $ln, |x| one($ln, x)),
                Unary::Scale(k) => {
                    let k = <$t>::from(k);
                    let kv = <$v>::splat(k);
                    simd::map(s, d, |v| v * kv, |x| x * k)
                }
                Unary::Square => simd::map(s, d, |v| v * v, |x| x * x),
            }
        }
    };
}

float_unary!(unary_f32, f32, F32, exp_lanes, ln_lanes);
float_unary!(unary_f64, f64, F64, exp_lanes_f64, ln_lanes_f64);

/// Largest x whose exp is finite in f32, and the x below which it underflows to 0.
const EXP_OVERFLOW: f32 = 88.72283;
const EXP_UNDERFLOW: f32 = -103.97208;

#[inline(always)]
pub(crate) fn exp_lanes(v: F32) -> F32 {
    let r = v.exp();
    let r = v
        .simd_gt(F32::splat(EXP_OVERFLOW))
        .select(F32::splat(f32::INFINITY), r);
    let r = v.simd_lt(F32::splat(EXP_UNDERFLOW)).select(F32::ZERO, r);
    v.is_nan().select(v, r)
}

/// 149·ln 2: ln of the smallest subnormal's scale, 2^-149.
const LN2_149: f32 = 103.278_93;

#[inline(always)]
pub(crate) fn ln_lanes(v: F32) -> F32 {
    // `wide`'s ln maps subnormals to -inf. A positive subnormal is
    // bits·2^-149 exactly (and `bits as f32` is exact), so take the log of a
    // normal number instead; `map.wgsl` does the same.
    let bits: I32 = bytemuck::cast(v);
    let subnormal = bits.simd_gt(I32::ZERO) & bits.simd_lt(I32::splat(0x0080_0000));
    // One log for both: subtracting 0 leaves a normal input's log as is
    // (computing both and selecting: 1.93 against 1.46 us for 2^12 values
    // on one thread).
    let subnormal: F32 = bytemuck::cast(subnormal);
    let r = subnormal.select(simd::i32_to_f32(bits), v).ln()
        - subnormal.select(F32::splat(LN2_149), F32::ZERO);
    let r = v
        .simd_eq(F32::ZERO)
        .select(F32::splat(f32::NEG_INFINITY), r);
    let r = v.simd_eq(F32::splat(f32::INFINITY)).select(v, r);
    let r = v.simd_lt(F32::ZERO).select(F32::splat(f32::NAN), r);
    v.is_nan().select(v, r)
}

/// `op` on slices of `$t` (i32 or u32): add, sub and mul wrap, division by
/// zero (or `MIN / -1`) gives the dividend, as in WGSL.
macro_rules! int_binary {
    ($t:ty, $op:expr, $a:expr, $b:expr, $d:expr) => {{
        let (a, b, d): (&[$t], &[$t], &mut [$t]) = (
            bytemuck::cast_slice($a),
            bytemuck::cast_slice($b),
            bytemuck::cast_slice_mut($d),
        );
        match $op {
            Binary::Add => simd::zip(a, b, d, |x, y| x + y, <$t>::wrapping_add),
            Binary::Sub => simd::zip(a, b, d, |x, y| x - y, <$t>::wrapping_sub),
            Binary::Mul => simd::zip(a, b, d, |x, y| x * y, <$t>::wrapping_mul),
            Binary::Div => int_div(a, b, d, |x, y| x.checked_div(y).unwrap_or(x)),
            Binary::Min => simd::zip(a, b, d, |x, y| x.min(y), <$t>::min),
            Binary::Max => simd::zip(a, b, d, |x, y| x.max(y), <$t>::max),
        }
    }};
}

fn binary_cpu<T: Element>(op: Binary, a: &[T], b: &[T], d: &mut [T]) {
    match T::TYPE {
        ElementType::F32 => binary_f32(
            op,
            bytemuck::cast_slice(a),
            bytemuck::cast_slice(b),
            bytemuck::cast_slice_mut(d),
        ),
        ElementType::I32 => int_binary!(i32, op, a, b, d),
        ElementType::U32 => int_binary!(u32, op, a, b, d),
        ElementType::F64 => binary_f64(
            op,
            bytemuck::cast_slice(a),
            bytemuck::cast_slice(b),
            bytemuck::cast_slice_mut(d),
        ),
    }
}

/// Integer division has no SIMD instruction; the scalar loop is what LLVM
/// would emit anyway.
fn int_div<T: Copy>(a: &[T], b: &[T], d: &mut [T], f: impl Fn(T, T) -> T) {
    for ((x, y), o) in a.iter().zip(b).zip(d) {
        *o = f(*x, *y);
    }
}

/// The float binary ops, NaN-ignoring min/max with `-0.0 < +0.0` (the same
/// rule as `pick_min` and `pick_max` in `map.wgsl`), for one float type:
/// its lanes' keys (`$keys`) and one element's (`$key`).
macro_rules! float_binary {
    ($binary:ident, $pick_lanes:ident, $pick:ident, $t:ty, $v:ty, $keys:expr, $key:expr) => {
        fn $binary(op: Binary, a: &[$t], b: &[$t], d: &mut [$t]) {
            match op {
                Binary::Add => simd::zip(a, b, d, |x, y| x + y, |x, y| x + y),
                Binary::Sub => simd::zip(a, b, d, |x, y| x - y, |x, y| x - y),
                Binary::Mul => simd::zip(a, b, d, |x, y| x * y, |x, y| x * y),
                Binary::Div => simd::zip(a, b, d, |x, y| x / y, |x, y| x / y),
                Binary::Min => simd::zip(
                    a,
                    b,
                    d,
                    |x, y| $pick_lanes(x, y, false),
                    |x, y| $pick(x, y, false),
                ),
                Binary::Max => simd::zip(
                    a,
                    b,
                    d,
                    |x, y| $pick_lanes(x, y, true),
                    |x, y| $pick(x, y, true),
                ),
            }
        }

        #[inline(always)]
        pub(crate) fn $pick_lanes(a: $v, b: $v, max: bool) -> $v {
            let (ka, kb) = ($keys(a), $keys(b));
            let b_wins: $v = bytemuck::cast(if max { kb.simd_gt(ka) } else { ka.simd_gt(kb) });
            let r = b_wins.select(b, a);
            let r = a.is_nan().select(b, r);
            b.is_nan().select(a, r)
        }

        fn $pick(a: $t, b: $t, max: bool) -> $t {
            if b.is_nan() {
                return a;
            }
            if a.is_nan() {
                return b;
            }
            let (ka, kb) = ($key(a), $key(b));
            if (max && kb > ka) || (!max && kb < ka) {
                b
            } else {
                a
            }
        }
    };
}

float_binary!(
    binary_f32,
    pick_lanes,
    pick_f32,
    f32,
    F32,
    |v| f32::keys(v, 0),
    f32::key
);
float_binary!(
    binary_f64,
    pick_lanes_f64,
    pick_f64,
    f64,
    F64,
    |v| simd::f64_keys(v, 0),
    f64_key
);
