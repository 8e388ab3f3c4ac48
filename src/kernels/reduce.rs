//! Reductions: [`Sum`], [`Dot`], [`Min`], [`Max`], [`ArgMin`], [`ArgMax`].
//! GPU twin: `shaders/reduce.wgsl`.
//!
//! # Semantics (both backends)
//! - Float sums are pairwise (CPU) or tiled trees (GPU): the rounding error
//!   is at most about `c·ε·log2(n)·Σ|x|`, not `n·ε`. The two backends add in
//!   different orders, so their float results may differ in the last bits.
//!   Integer sums and dot products wrap, and are exact and identical.
//! - An empty input sums to zero; `Min`/`Max`/`ArgMin`/`ArgMax` return `None`.
//! - `Min`/`Max`/`ArgMin`/`ArgMax` ignore NaNs and order `-0.0` below `+0.0`;
//!   when every element is NaN they return a NaN (and index 0). `ArgMin`
//!   and `ArgMax` return the first index of the extreme value.
//! - Results are identical on both backends for everything but float sums.

use crate::buffer::{Buffer, Element, ElementType};
use crate::cpu::Cpu;
use crate::cpu::simd::{self, Lanes, Real};
use crate::error::{Error, Result};
use crate::gpu::{Bind, DeviceCopy, Dispatch, Gpu, ShaderSpec, shader};
use crate::kernel::{Kernel, Work, typed_name};

shader! {
    "reduce.wgsl",
    /// `reduce.wgsl`'s uniform block: `n` elements (or partials) in this
    /// pass's input, `out_offset` where its first partial goes, `base` the
    /// global index of its first element (arg-reductions), `groups` the
    /// workgroups that hold real tiles (folded dispatches launch a few more).
    struct Params { n: u32, out_offset: u32, base: u32, groups: u32 }
    /// Elements one invocation adds before the workgroup tree.
    const PER_THREAD: u32 = 8;
    /// Elements one workgroup reduces: `WG * PER_THREAD`.
    const TILE: usize = 2048;
}

/// Sum of all elements (`T::default()` when empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sum;

/// Dot product `Σ x[i]·y[i]` of two equal-length inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dot;

/// Smallest element, NaNs ignored; `None` when empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Min;

/// Largest element, NaNs ignored; `None` when empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Max;

/// `(index, value)` of the first smallest element, NaNs ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgMin;

/// `(index, value)` of the first largest element, NaNs ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgMax;

impl<T: Element> Kernel<&Buffer<T>> for Sum {
    type Out = T;

    fn name(&self) -> &'static str {
        typed_name::<T>("sum", "sum_f64")
    }

    fn work(&self, x: &&Buffer<T>) -> Work {
        Work::reduction::<T>(x.len(), 1, 1, size_of::<T>() as u64)
    }

    fn run_cpu(&self, cpu: &Cpu, x: &Buffer<T>) -> Result<T> {
        Ok(sum_cpu(cpu, &cpu.host(x)?, None))
    }

    fn run_gpu(&self, gpu: &Gpu, x: &Buffer<T>) -> Result<T> {
        if x.is_empty() {
            return Ok(T::default());
        }
        let out = gpu_reduce::<T>(
            gpu,
            Kernel::<&Buffer<T>>::name(self),
            &[x],
            Family::Sum,
            false,
        )?;
        Ok(bytemuck::pod_read_unaligned(&out[..size_of::<T>()]))
    }
}

/// `Σ x` (or `Σ x·y`) on the CPU in `T`'s own arithmetic: pairwise in
/// floats, wrapping in integers.
fn sum_cpu<T: Element>(cpu: &Cpu, x: &[T], y: Option<&[T]>) -> T {
    macro_rules! sum {
        ($f:ident, $t:ty) => {
            bytemuck::cast($f::<$t>(
                cpu,
                bytemuck::cast_slice(x),
                y.map(bytemuck::cast_slice),
            ))
        };
    }
    match T::TYPE {
        ElementType::F32 => sum!(sum_float, f32),
        ElementType::I32 => sum!(int_sum, i32),
        ElementType::U32 => sum!(int_sum, u32),
        ElementType::F64 => sum!(sum_float, f64),
    }
}

impl<T: Element> Kernel<(&Buffer<T>, &Buffer<T>)> for Dot {
    type Out = T;

    fn name(&self) -> &'static str {
        typed_name::<T>("dot", "dot_f64")
    }

    fn work(&self, (x, _): &(&Buffer<T>, &Buffer<T>)) -> Work {
        Work::reduction::<T>(x.len(), 2, 2, size_of::<T>() as u64)
    }

    fn run_cpu(&self, cpu: &Cpu, (x, y): (&Buffer<T>, &Buffer<T>)) -> Result<T> {
        Error::check_same_len("dot", x.len(), y.len())?;
        let (a, b) = (cpu.host(x)?, cpu.host(y)?);
        Ok(sum_cpu(cpu, &a, Some(&b)))
    }

    fn run_gpu(&self, gpu: &Gpu, (x, y): (&Buffer<T>, &Buffer<T>)) -> Result<T> {
        Error::check_same_len("dot", x.len(), y.len())?;
        if x.is_empty() {
            return Ok(T::default());
        }
        let name = Kernel::<(&Buffer<T>, &Buffer<T>)>::name(self);
        let out = gpu_reduce::<T>(gpu, name, &[x, y], Family::Dot, false)?;
        Ok(bytemuck::pod_read_unaligned(&out[..size_of::<T>()]))
    }
}

macro_rules! extreme_kernel {
    ($ty:ident, $name:literal, $max:literal) => {
        impl<T: Element> Kernel<&Buffer<T>> for $ty {
            type Out = Option<T>;

            fn name(&self) -> &'static str {
                typed_name::<T>($name, concat!($name, "_f64"))
            }

            fn work(&self, x: &&Buffer<T>) -> Work {
                Work::reduction::<T>(x.len(), 1, 1, 4)
            }

            fn run_cpu(&self, cpu: &Cpu, x: &Buffer<T>) -> Result<Option<T>> {
                let data = cpu.host(x)?;
                if data.is_empty() {
                    return Ok(None);
                }
                let key = match T::TYPE {
                    ElementType::F32 => extreme_cpu::<f32>(cpu, bytemuck::cast_slice(&data), $max),
                    ElementType::I32 => extreme_cpu::<i32>(cpu, bytemuck::cast_slice(&data), $max),
                    ElementType::U32 => extreme_cpu::<u32>(cpu, bytemuck::cast_slice(&data), $max),
                    ElementType::F64 => {
                        let k = extreme_f64(cpu, bytemuck::cast_slice(&data), $max);
                        return Ok(Some(bytemuck::cast(simd::f64_from_key(k))));
                    }
                };
                Ok(Some(from_key::<T>(key)))
            }

            fn run_gpu(&self, gpu: &Gpu, x: &Buffer<T>) -> Result<Option<T>> {
                if x.is_empty() {
                    return Ok(None);
                }
                let name = Kernel::<&Buffer<T>>::name(self);
                let out = gpu_reduce::<T>(gpu, name, &[x], Family::Extreme, $max)?;
                if T::TYPE == ElementType::F64 {
                    let key: u64 = bytemuck::pod_read_unaligned(&out[..8]);
                    return Ok(Some(bytemuck::cast(simd::f64_from_key(key))));
                }
                let key: u32 = bytemuck::pod_read_unaligned(&out[..4]);
                Ok(Some(from_key::<T>(key)))
            }
        }
    };
}

extreme_kernel!(Min, "min", false);
extreme_kernel!(Max, "max", true);

macro_rules! arg_kernel {
    ($ty:ident, $name:literal, $max:literal) => {
        impl<T: Element> Kernel<&Buffer<T>> for $ty {
            type Out = Option<(usize, T)>;

            fn name(&self) -> &'static str {
                typed_name::<T>($name, concat!($name, "_f64"))
            }

            fn work(&self, x: &&Buffer<T>) -> Work {
                Work::reduction::<T>(x.len(), 1, 2, 8)
            }

            fn run_cpu(&self, cpu: &Cpu, x: &Buffer<T>) -> Result<Option<(usize, T)>> {
                let data = cpu.host(x)?;
                if data.is_empty() {
                    return Ok(None);
                }
                let (key, index) = match T::TYPE {
                    ElementType::F32 => arg_cpu::<f32>(cpu, bytemuck::cast_slice(&data), $max),
                    ElementType::I32 => arg_cpu::<i32>(cpu, bytemuck::cast_slice(&data), $max),
                    ElementType::U32 => arg_cpu::<u32>(cpu, bytemuck::cast_slice(&data), $max),
                    ElementType::F64 => {
                        let (k, i) = arg_f64(cpu, bytemuck::cast_slice(&data), $max);
                        let v: T = bytemuck::cast(simd::f64_from_key(k));
                        return Ok(Some((if i == usize::MAX { 0 } else { i }, v)));
                    }
                };
                Ok(Some(arg_result::<T>(key, index)))
            }

            fn run_gpu(&self, gpu: &Gpu, x: &Buffer<T>) -> Result<Option<(usize, T)>> {
                if x.is_empty() {
                    return Ok(None);
                }
                if x.len() >= u32::MAX as usize {
                    return Err(Error::TooLarge {
                        kernel: $name,
                        bytes: x.byte_len(),
                        limit: u64::from(u32::MAX - 1) * size_of::<T>() as u64,
                        what: "u32 element indices",
                    });
                }
                let name = Kernel::<&Buffer<T>>::name(self);
                let out = gpu_reduce::<T>(gpu, name, &[x], Family::Arg, $max)?;
                let wide = T::TYPE == ElementType::F64;
                let at = if wide { 8 } else { 4 };
                let index: u32 = bytemuck::pod_read_unaligned(&out[at..at + 4]);
                let index = if index == u32::MAX {
                    usize::MAX
                } else {
                    index as usize
                };
                if wide {
                    let key: u64 = bytemuck::pod_read_unaligned(&out[..8]);
                    let v: T = bytemuck::cast(simd::f64_from_key(key));
                    return Ok(Some((if index == usize::MAX { 0 } else { index }, v)));
                }
                let key: u32 = bytemuck::pod_read_unaligned(&out[..4]);
                Ok(Some(arg_result::<T>(key, index)))
            }
        }
    };
}

arg_kernel!(ArgMin, "argmin", false);
arg_kernel!(ArgMax, "argmax", true);

fn from_key<T: Element>(key: u32) -> T {
    match T::TYPE {
        ElementType::F32 => bytemuck::cast(f32::from_key(key)),
        ElementType::I32 => bytemuck::cast(i32::from_key(key)),
        ElementType::U32 => bytemuck::cast(u32::from_key(key)),
        ElementType::F64 => unreachable!("f64 keys are u64 (extreme_f64, arg_f64)"),
    }
}

/// `(index, value)`; an index of `usize::MAX` means every element was NaN.
fn arg_result<T: Element>(key: u32, index: usize) -> (usize, T) {
    if index == usize::MAX {
        (0, from_key::<T>(key))
    } else {
        (index, from_key::<T>(key))
    }
}

/// Pairwise float sum (or dot product, fused multiply-adds) of f32 or f64.
fn sum_float<R: Real>(cpu: &Cpu, a: &[R], b: Option<&[R]>) -> R {
    match b {
        None => cpu.reduce_chunks(
            a,
            |c, _| simd::pairwise_sum(c, c, &|x, _, acc| R::vadd(acc, x), &|x, _, acc| acc + x),
            |l, r| l + r,
        ),
        Some(b) => cpu.reduce_zip_chunks(
            a,
            b,
            |x, y, _| simd::pairwise_sum(x, y, &R::vmul_add, &R::mul_add),
            |l, r| l + r,
        ),
    }
}

/// Integer sum (or dot product) with wrapping arithmetic.
fn int_sum<T: Lanes + WrappingInt>(cpu: &Cpu, a: &[T], b: Option<&[T]>) -> T
where
    T::V: std::ops::Add<Output = T::V> + std::ops::Mul<Output = T::V>,
{
    match b {
        None => cpu.reduce_chunks(
            a,
            |c, _| simd::wrapping_sum(c, |p, q| p + q, T::wadd),
            T::wadd,
        ),
        Some(b) => cpu.reduce_zip_chunks(
            a,
            b,
            |x, y, _| {
                let mut acc = T::splat(T::zeroed());
                let body = x.len() - x.len() % simd::LANES;
                for (p, q) in x[..body]
                    .chunks_exact(simd::LANES)
                    .zip(y[..body].chunks_exact(simd::LANES))
                {
                    acc = acc + T::load(p) * T::load(q);
                }
                let mut lanes = [T::zeroed(); simd::LANES];
                T::store(acc, &mut lanes);
                let mut total = lanes.into_iter().fold(T::zeroed(), T::wadd);
                for (p, q) in x[body..].iter().zip(&y[body..]) {
                    total = T::wadd(total, T::wmul(*p, *q));
                }
                total
            },
            T::wadd,
        ),
    }
}

/// Wrapping integer arithmetic, for [`int_sum`].
trait WrappingInt: Copy {
    fn wadd(a: Self, b: Self) -> Self;
    fn wmul(a: Self, b: Self) -> Self;
}

impl WrappingInt for i32 {
    fn wadd(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
    fn wmul(a: i32, b: i32) -> i32 {
        a.wrapping_mul(b)
    }
}

impl WrappingInt for u32 {
    fn wadd(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
    fn wmul(a: u32, b: u32) -> u32 {
        a.wrapping_mul(b)
    }
}

fn extreme_cpu<T: Lanes>(cpu: &Cpu, x: &[T], max: bool) -> u32 {
    extreme_keys(cpu, x, max, simd::extreme_key::<T>)
}

fn extreme_f64(cpu: &Cpu, x: &[f64], max: bool) -> u64 {
    extreme_keys(cpu, x, max, simd::extreme_key_f64)
}

/// The extreme key of `x` over the pool, `extreme` per chunk.
fn extreme_keys<T: Element, K: Ord + Copy + Send>(
    cpu: &Cpu,
    x: &[T],
    max: bool,
    extreme: fn(&[T], bool) -> K,
) -> K {
    cpu.reduce_chunks(
        x,
        |c, _| extreme(c, max),
        |a, b| if max { a.max(b) } else { a.min(b) },
    )
}

/// `(key, index)` of the first extreme element; index `usize::MAX` when all
/// are NaN.
fn arg_cpu<T: Lanes>(cpu: &Cpu, x: &[T], max: bool) -> (u32, usize) {
    arg_keys(cpu, x, max, simd::extreme_key::<T>, simd::find_key::<T>)
}

/// [`arg_cpu`] for f64 (u64 keys).
fn arg_f64(cpu: &Cpu, x: &[f64], max: bool) -> (u64, usize) {
    arg_keys(cpu, x, max, simd::extreme_key_f64, simd::find_key_f64)
}

/// The first extreme `(key, index)` over the pool: per chunk its extreme
/// key and where it first occurs; the better key, then the smaller index.
fn arg_keys<T: Element, K: Ord + Copy + Send>(
    cpu: &Cpu,
    x: &[T],
    max: bool,
    extreme: fn(&[T], bool) -> K,
    find: fn(&[T], K) -> Option<usize>,
) -> (K, usize) {
    // Each chunk is read twice: for its extreme key, then where it is.
    cpu.reduce_weighted(
        x,
        2 * crate::cpu::words::<T>(),
        |c, offset| {
            let k = extreme(c, max);
            match find(c, k) {
                Some(i) => (k, offset + i),
                None => (k, usize::MAX),
            }
        },
        |a, b| {
            if a.0 != b.0 {
                if (b.0 > a.0) == max { b } else { a }
            } else if b.1 < a.1 {
                b
            } else {
                a
            }
        },
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Sum,
    Dot,
    Extreme,
    Arg,
}

/// Runs a multi-pass reduction of `inputs` on the GPU and reads back the
/// final partial's bytes (a `T`, a `u32` key, or a `(key, index)` pair).
fn gpu_reduce<T: Element>(
    gpu: &Gpu,
    kernel: &'static str,
    inputs: &[&Buffer<T>],
    family: Family,
    max: bool,
) -> Result<Vec<u8>> {
    gpu.check_element(kernel, T::TYPE)?;
    let n = inputs[0].len();
    // Where the device has subgroups, the entry points whose workgroup
    // trees are subgroup operations (the shader's `subgroups` section).
    // f64 has none: 64-bit subgroup arithmetic is a device extension of
    // its own. Its keys are u64 and its pairs (u64, u32) padded to 16.
    let sg = gpu.info().features.subgroups && T::TYPE != ElementType::F64;
    let wide = T::TYPE == ElementType::F64;
    let (key_size, pair_size) = if wide { (8, 16) } else { (4, 8) };
    let (first, next, out_slot, in_slot, partial_size) = match (family, sg) {
        (Family::Sum, false) => ("sum", "sum", 3, 1, size_of::<T>() as u64),
        (Family::Sum, true) => ("sum_sg", "sum_sg", 3, 1, size_of::<T>() as u64),
        (Family::Dot, false) => ("dot", "sum", 3, 1, size_of::<T>() as u64),
        (Family::Dot, true) => ("dot_sg", "sum_sg", 3, 1, size_of::<T>() as u64),
        (Family::Extreme, false) => ("extreme_first", "extreme_next", 5, 4, key_size),
        (Family::Extreme, true) => ("extreme_first_sg", "extreme_next_sg", 5, 4, key_size),
        (Family::Arg, false) => ("arg_first", "arg_next", 7, 6, pair_size),
        (Family::Arg, true) => ("arg_first_sg", "arg_next_sg", 7, 6, pair_size),
    };
    let constants = [
        ("KIND", f64::from(T::TYPE.kind_code())),
        ("IS_MAX", if max { 1.0 } else { 0.0 }),
    ];
    // Sum and dot take no IS_MAX; naga rejects unknown override names.
    let constants: &[(&'static str, f64)] = match family {
        Family::Sum | Family::Dot => &constants[..1],
        _ => &constants,
    };
    gpu.scoped(kernel, || {
        let spec = |entry| ShaderSpec {
            label: "reduce",
            source: SHADER,
            entry,
            element: Some(T::TYPE),
            constants,
        };
        let p_first = gpu.pipeline(&spec(first))?;
        let p_next = gpu.pipeline(&spec(next))?;
        let copies = inputs
            .iter()
            .map(|b| gpu.resident(kernel, b))
            .collect::<Result<Vec<_>>>()?;

        let chunks = gpu.chunks::<T>(n);
        let groups: Vec<usize> = chunks
            .iter()
            .map(|c| (c.end - c.start).div_ceil(TILE))
            .collect();
        let partials: usize = groups.iter().sum();
        let a = gpu.alloc_bytes(kernel, partials as u64 * partial_size)?;
        let b = gpu.alloc_bytes(kernel, partials.div_ceil(TILE).max(1) as u64 * partial_size)?;

        // Uniforms first, so the dispatches can borrow them.
        let mut params: Vec<Params> = Vec::new();
        let mut offset = 0usize;
        for (c, g) in chunks.iter().zip(&groups) {
            params.push(Params {
                n: (c.end - c.start) as u32,
                out_offset: offset as u32,
                base: c.start as u32,
                groups: *g as u32,
            });
            offset += g;
        }
        let mut passes = Vec::new(); // (count, from_a)
        let mut count = partials;
        let mut from_a = true;
        while count > 1 {
            let g = count.div_ceil(TILE);
            params.push(Params {
                n: count as u32,
                groups: g as u32,
                ..Params::default()
            });
            passes.push((count, g, from_a));
            count = g;
            from_a = !from_a;
        }
        let result_in_a = from_a;
        let size = size_of::<T>() as u64;
        let whole = |copy: &DeviceCopy, items: usize| {
            (copy.bytes().max(4))
                .min(items as u64 * partial_size)
                .max(4)
        };

        let mut bindings: Vec<Vec<(u32, Bind<'_>)>> = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let range = c.start as u64 * size..c.end as u64 * size;
            let mut v = vec![(0, Bind::Uniform(params[i].bytes()))];
            for (slot, copy) in [1u32, 2].into_iter().zip(&copies) {
                v.push((slot, Bind::storage(copy, range.clone())));
            }
            v.push((out_slot, Bind::storage(&a, 0..whole(&a, partials))));
            bindings.push(v);
        }
        for (j, &(count, g, from_a)) in passes.iter().enumerate() {
            let (src, dst) = if from_a { (&a, &b) } else { (&b, &a) };
            bindings.push(vec![
                (0, Bind::Uniform(params[chunks.len() + j].bytes())),
                (in_slot, Bind::storage(src, 0..whole(src, count))),
                (out_slot, Bind::storage(dst, 0..whole(dst, g))),
            ]);
        }
        let mut dispatches = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            dispatches.push(Dispatch::new(&p_first, &bindings[i], *g as u32));
        }
        for (j, &(_, g, _)) in passes.iter().enumerate() {
            dispatches.push(Dispatch::new(
                &p_next,
                &bindings[chunks.len() + j],
                g as u32,
            ));
        }
        gpu.submit(kernel, &dispatches)?;
        let result = if result_in_a { &a } else { &b };
        gpu.read_bytes(kernel, result, 0..partial_size)
    })
}
