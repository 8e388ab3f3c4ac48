//! Kernels made from expressions ([`crate::expr`]): [`Map`] (one pass, one
//! or more outputs) and [`MapReduce`] (a fused reduction of an expression).
//! GPU twin: `shaders/expr.wgsl`, the prelude of the shader generated per
//! expression structure.
//!
//! Both take [`Args`]: the arrays and scalars the expression names, by name.
//! Missing, extra or mistyped arguments and arrays of different lengths are
//! errors naming the argument.

use std::sync::{Arc, OnceLock};

use crate::buffer::{Buffer, Element, ElementType};
use crate::cpu::Cpu;
use crate::error::{Error, Result};
use crate::expr::cpu::{Column, How, Partial, Plan, from_key, words};
use crate::expr::wgsl::{self, MAX_SCALARS, TILE, params};
use crate::expr::{Expr, Program, Ty};
use crate::gpu::{Bind, DeviceCopy, Dispatch, Gpu, ShaderSpec};
use crate::kernel::{Backend, InputState, Inputs, Kernel, Work};

/// [`Kernel::name`] of every [`Map`]: one set of cost curves for all
/// expressions, keyed on their weighted operation count (see [`Work`] of
/// an expression kernel in the module docs of [`crate::expr`]).
pub const MAP_NAME: &str = "map_expr";
/// [`Kernel::name`] of every [`MapReduce`].
pub const REDUCE_NAME: &str = "reduce_expr";
/// [`Kernel::name`] of a [`Map`] with an f64 value: f64 runs at its own
/// rate (on many GPUs a small fraction of f32's), so it has its own curves.
pub const MAP_F64_NAME: &str = "map_expr_f64";
/// [`Kernel::name`] of a [`MapReduce`] with an f64 value.
pub const REDUCE_F64_NAME: &str = "reduce_expr_f64";

/// A value of one of the element types: a scalar argument or a reduction's
/// result.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Scalar {
    /// An f32.
    F32(f32),
    /// An i32.
    I32(i32),
    /// A u32.
    U32(u32),
    /// An f64.
    F64(f64),
}

impl Scalar {
    /// The value as f64 (exact for every type).
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::F32(v) => f64::from(v),
            Scalar::I32(v) => f64::from(v),
            Scalar::U32(v) => f64::from(v),
            Scalar::F64(v) => v,
        }
    }

    /// Its element type.
    pub fn element_type(self) -> ElementType {
        match self {
            Scalar::F32(_) => ElementType::F32,
            Scalar::I32(_) => ElementType::I32,
            Scalar::U32(_) => ElementType::U32,
            Scalar::F64(_) => ElementType::F64,
        }
    }

    /// Its bits (a 32-bit type's in the low word).
    fn bits(self) -> u64 {
        match self {
            Scalar::F32(v) => u64::from(v.to_bits()),
            Scalar::I32(v) => u64::from(v as u32),
            Scalar::U32(v) => u64::from(v),
            Scalar::F64(v) => v.to_bits(),
        }
    }

    fn from_bits(t: Ty, bits: u64) -> Scalar {
        match t {
            Ty::F32 => Scalar::F32(f32::from_bits(bits as u32)),
            Ty::I32 => Scalar::I32(bits as u32 as i32),
            Ty::U32 | Ty::Bool => Scalar::U32(bits as u32),
            Ty::F64 => Scalar::F64(f64::from_bits(bits)),
        }
    }
}

impl From<f32> for Scalar {
    fn from(v: f32) -> Scalar {
        Scalar::F32(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Scalar {
        Scalar::I32(v)
    }
}
impl From<u32> for Scalar {
    fn from(v: u32) -> Scalar {
        Scalar::U32(v)
    }
}
impl From<f64> for Scalar {
    fn from(v: f64) -> Scalar {
        Scalar::F64(v)
    }
}

/// An output array of an expression kernel, of the expression's type.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Array {
    /// f32 elements.
    F32(Buffer<f32>),
    /// i32 elements.
    I32(Buffer<i32>),
    /// u32 elements (also a bool expression's 0/1).
    U32(Buffer<u32>),
    /// f64 elements.
    F64(Buffer<f64>),
}

macro_rules! array_into {
    ($($name:ident $variant:ident $t:ty),*) => {
        impl Array {$(
            #[doc = concat!("The buffer, if the array is ", stringify!($t), "; else an error naming its type.")]
            pub fn $name(self) -> Result<Buffer<$t>> {
                match self {
                    Array::$variant(b) => Ok(b),
                    other => Err(Error::InvalidArgument {
                        kernel: MAP_NAME,
                        message: format!(
                            "output is {}, not {}",
                            other.element_type(),
                            stringify!($t)
                        ),
                    }),
                }
            }
        )*}
    };
}
array_into!(into_f32 F32 f32, into_i32 I32 i32, into_u32 U32 u32, into_f64 F64 f64);

impl Array {
    /// Its element type.
    pub fn element_type(&self) -> ElementType {
        match self {
            Array::F32(_) => ElementType::F32,
            Array::I32(_) => ElementType::I32,
            Array::U32(_) => ElementType::U32,
            Array::F64(_) => ElementType::F64,
        }
    }

    /// Elements.
    pub fn len(&self) -> usize {
        match self {
            Array::F32(b) => b.len(),
            Array::I32(b) => b.len(),
            Array::U32(b) => b.len(),
            Array::F64(b) => b.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn from_column(t: Ty, c: Column) -> Array {
        match (t, c) {
            (_, Column::F64(v)) => Array::F64(Buffer::from(v)),
            (Ty::F32, Column::W32(v)) => {
                Array::F32(Buffer::from(bytemuck::allocation::cast_vec::<u32, f32>(v)))
            }
            (Ty::I32, Column::W32(v)) => {
                Array::I32(Buffer::from(bytemuck::allocation::cast_vec::<u32, i32>(v)))
            }
            (_, Column::W32(v)) => Array::U32(Buffer::from(v)),
        }
    }

    fn empty(t: Ty) -> Array {
        match t {
            Ty::F64 => Array::from_column(t, Column::F64(Vec::new())),
            _ => Array::from_column(t, Column::W32(Vec::new())),
        }
    }

    fn from_device(gpu: &Gpu, t: Ty, copy: DeviceCopy, n: usize) -> Array {
        match t {
            Ty::F32 => Array::F32(gpu.into_buffer(copy, n)),
            Ty::I32 => Array::I32(gpu.into_buffer(copy, n)),
            Ty::U32 | Ty::Bool => Array::U32(gpu.into_buffer(copy, n)),
            Ty::F64 => Array::F64(gpu.into_buffer(copy, n)),
        }
    }
}

/// A [`Map`]'s results, one array per expression, in order.
#[derive(Clone, Debug)]
pub struct Outputs(pub Vec<Array>);

impl Outputs {
    /// The only output as f32 (an error if there are several, or it is not f32).
    pub fn into_f32(self) -> Result<Buffer<f32>> {
        self.only()?.into_f32()
    }
    /// The only output as i32.
    pub fn into_i32(self) -> Result<Buffer<i32>> {
        self.only()?.into_i32()
    }
    /// The only output as u32.
    pub fn into_u32(self) -> Result<Buffer<u32>> {
        self.only()?.into_u32()
    }
    /// The only output as f64.
    pub fn into_f64(self) -> Result<Buffer<f64>> {
        self.only()?.into_f64()
    }
    /// The only output.
    pub fn only(mut self) -> Result<Array> {
        if self.0.len() != 1 {
            return Err(Error::InvalidArgument {
                kernel: MAP_NAME,
                message: format!("{} outputs, not one", self.0.len()),
            });
        }
        Ok(self.0.remove(0))
    }
}

/// A buffer of any element type, as an argument.
trait AnyBuffer: Sync {
    fn len(&self) -> usize;
    fn ty(&self) -> ElementType;
    fn state(&self) -> InputState;
    fn host_bits(&self) -> Result<Box<dyn std::ops::Deref<Target = [u32]> + '_>>;
    fn resident(&self, gpu: &Gpu, kernel: &'static str) -> Result<Arc<DeviceCopy>>;
}

struct Bits<T: 'static>(crate::buffer::HostData<T>);

impl<T: Element> std::ops::Deref for Bits<T> {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        bytemuck::cast_slice(&self.0)
    }
}

impl<T: Element> AnyBuffer for Buffer<T> {
    fn len(&self) -> usize {
        Buffer::len(self)
    }
    fn ty(&self) -> ElementType {
        T::TYPE
    }
    fn state(&self) -> InputState {
        self.input_state()
    }
    fn host_bits(&self) -> Result<Box<dyn std::ops::Deref<Target = [u32]> + '_>> {
        Ok(Box::new(Bits(self.host()?)))
    }
    fn resident(&self, gpu: &Gpu, kernel: &'static str) -> Result<Arc<DeviceCopy>> {
        gpu.resident(kernel, self)
    }
}

/// The named arrays and scalars an expression kernel reads.
///
/// ```
/// # use tandem::{Buffer, kernels::Args};
/// let (x, y) = (Buffer::from(vec![1.0f32, 2.0]), Buffer::from(vec![3.0f32, 4.0]));
/// let args = Args::new().array("x", &x).array("y", &y).scalar("a", 2.5f32);
/// ```
#[derive(Default)]
pub struct Args<'a> {
    arrays: Vec<(String, &'a dyn AnyBuffer)>,
    scalars: Vec<(String, Scalar)>,
}

impl<'a> Args<'a> {
    /// No arguments.
    pub fn new() -> Args<'a> {
        Args::default()
    }

    /// Array `name` (replacing an earlier one of that name).
    pub fn array<T: Element>(mut self, name: &str, buf: &'a Buffer<T>) -> Args<'a> {
        self.arrays.retain(|(n, _)| n != name);
        self.arrays.push((name.to_string(), buf));
        self
    }

    /// Scalar `name` (replacing an earlier one of that name).
    pub fn scalar(mut self, name: &str, value: impl Into<Scalar>) -> Args<'a> {
        self.scalars.retain(|(n, _)| n != name);
        self.scalars.push((name.to_string(), value.into()));
        self
    }

    /// Elements of the arrays (0 with none).
    pub fn len(&self) -> usize {
        self.arrays.first().map_or(0, |a| a.1.len())
    }

    /// Whether the arrays are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inputs for &Args<'_> {
    fn visit(&self, f: &mut dyn FnMut(&InputState)) {
        for (_, a) in &self.arrays {
            f(&a.state());
        }
    }
}

/// What both expression kernels share: the program, its CPU plan, its
/// shader (validated once, on first GPU use).
#[derive(Debug)]
struct Compiled {
    /// The kernel's name: map or reduce, 32-bit or f64.
    name: &'static str,
    program: Program,
    plan: Plan,
    wgsl: String,
    valid: OnceLock<std::result::Result<(), String>>,
}

impl Compiled {
    fn new(exprs: &[Expr], how: Option<How>) -> Result<Compiled> {
        let program = Program::new(exprs)?;
        let wgsl = match how {
            None => wgsl::map(&program),
            Some(h) => wgsl::reduce(&program, h),
        };
        Ok(Compiled {
            name: match (how.is_none(), program.has_f64()) {
                (true, false) => MAP_NAME,
                (true, true) => MAP_F64_NAME,
                (false, false) => REDUCE_NAME,
                (false, true) => REDUCE_F64_NAME,
            },
            plan: Plan::new(&program, how.is_none()),
            program,
            wgsl,
            valid: OnceLock::new(),
        })
    }

    /// The arrays in program order and the scalars' bits, after checking
    /// `args` against the program.
    fn bind<'b>(
        &self,
        kernel: &'static str,
        args: &'b Args<'_>,
    ) -> Result<(Vec<&'b dyn AnyBuffer>, Vec<u64>, usize)> {
        let bad = |message: String| Error::InvalidArgument { kernel, message };
        let p = &self.program;
        unread(kernel, "array", &args.arrays, &p.arrays)?;
        unread(kernel, "scalar", &args.scalars, &p.scalars)?;
        let mut arrays: Vec<&dyn AnyBuffer> = Vec::new();
        for (name, ty) in &p.arrays {
            let a = *find(kernel, "array", &args.arrays, name, *ty, |a| a.ty())?;
            if let Some(first) = arrays.first().map(|f| f.len())
                && first != a.len()
            {
                return Err(Error::LengthMismatch {
                    kernel,
                    left: first,
                    right: a.len(),
                });
            }
            arrays.push(a);
        }
        let scalars = p
            .scalars
            .iter()
            .map(|(name, ty)| {
                Ok(find(kernel, "scalar", &args.scalars, name, *ty, |s| {
                    s.element_type()
                })?
                .bits())
            })
            .collect::<Result<Vec<u64>>>()?;
        let n = arrays
            .first()
            .map(|a| a.len())
            .ok_or_else(|| bad("an expression kernel needs at least one array input".into()))?;
        Ok((arrays, scalars, n))
    }

    fn work(&self, n: usize, outputs: usize, host_result_bytes: u64) -> Work {
        let n = n as u64;
        let p = &self.program;
        let arrays = p.arrays.len() as u64;
        let bytes = |t: Ty| 4 * words(t) as u64;
        let read: u64 = p.arrays.iter().map(|&(_, t)| bytes(t)).sum();
        let written: u64 = p.outputs[..outputs].iter().map(|&o| bytes(p.ty(o))).sum();
        Work {
            elements: n,
            bytes_read: n * read,
            bytes_written: n * written,
            flops: n * (p.weight() + 2 * (arrays + outputs as u64)),
            host_result_bytes,
        }
    }

    /// The dispatch chunks of `n` elements: counted in the widest element
    /// in or out (an f64 array's chunk is twice a 32-bit one's bytes), so
    /// no array's binding passes the limit.
    fn chunks(&self, gpu: &Gpu, n: usize) -> Vec<std::ops::Range<usize>> {
        if self.program.has_f64() {
            gpu.chunks::<f64>(n)
        } else {
            gpu.chunks::<u32>(n)
        }
    }

    /// One dispatch's bindings: its uniform at 0, then each array from
    /// binding 1 over its own bytes of `chunk` (`(copy, element type)`).
    fn bind_chunk<'c>(
        chunk: &std::ops::Range<usize>,
        uniform: &'c wgsl::Params,
        arrays: &[(&'c DeviceCopy, Ty)],
    ) -> Vec<(u32, Bind<'c>)> {
        let mut b = vec![(0, Bind::Uniform(uniform.bytes()))];
        for (slot, &(copy, t)) in (1u32..).zip(arrays) {
            let size = 4 * words(t) as u64;
            let range = chunk.start as u64 * size..chunk.end as u64 * size;
            b.push((slot, Bind::storage(copy, range)));
        }
        b
    }

    fn host<'b>(
        arrays: &[&'b dyn AnyBuffer],
    ) -> Result<Vec<Box<dyn std::ops::Deref<Target = [u32]> + 'b>>> {
        arrays.iter().map(|a| a.host_bits()).collect()
    }

    /// Checks what the GPU path needs: bindings, scalars, indices, a valid
    /// shader; then the pipeline.
    fn pipeline(
        &self,
        gpu: &Gpu,
        kernel: &'static str,
        n: usize,
        outputs: usize,
    ) -> Result<wgpu::ComputePipeline> {
        let p = &self.program;
        if self.program.has_f64() {
            gpu.check_element(kernel, ElementType::F64)?;
        }
        let storage = p.arrays.len() + outputs;
        let limit = gpu.info().max_storage_buffers_per_stage as usize;
        if storage > limit {
            return Err(Error::Unsupported {
                kernel,
                backend: Backend::Gpu,
                reason: format!("{storage} arrays in and out, this GPU binds at most {limit}"),
            });
        }
        let scalar_words: usize = p.scalars.iter().map(|&(_, t)| words(t)).sum();
        if scalar_words > MAX_SCALARS {
            return Err(Error::Unsupported {
                kernel,
                backend: Backend::Gpu,
                reason: format!(
                    "{} scalars in {scalar_words} words, the GPU path takes at most \
                     {MAX_SCALARS} words (an f64 takes two)",
                    p.scalars.len()
                ),
            });
        }
        if n >= u32::MAX as usize {
            return Err(Error::TooLarge {
                kernel,
                bytes: 4 * n as u64,
                limit: 4 * u64::from(u32::MAX - 1),
                what: "u32 element indices",
            });
        }
        self.valid
            .get_or_init(|| wgsl::validate(&self.wgsl))
            .clone()
            .map_err(|e| Error::Gpu {
                kernel,
                message: format!("generated WGSL does not validate (a tandem bug): {e}"),
            })?;
        gpu.pipeline(&ShaderSpec {
            label: "expr",
            source: &self.wgsl,
            entry: "main",
            element: None,
            constants: &[],
        })
    }
}

/// An error for the first argument in `given` the expression does not read.
fn unread<V>(
    kernel: &'static str,
    kind: &str,
    given: &[(String, V)],
    read: &[(Arc<str>, Ty)],
) -> Result<()> {
    match given
        .iter()
        .find(|(n, _)| !read.iter().any(|(r, _)| &**r == n))
    {
        Some((name, _)) => Err(Error::InvalidArgument {
            kernel,
            message: format!("{kind} `{name}` is not read by the expression"),
        }),
        None => Ok(()),
    }
}

/// The argument `name` of `given`, which must have type `ty`.
fn find<'v, V>(
    kernel: &'static str,
    kind: &str,
    given: &'v [(String, V)],
    name: &str,
    ty: Ty,
    of: impl Fn(&V) -> ElementType,
) -> Result<&'v V> {
    let bad = |message: String| Error::InvalidArgument { kernel, message };
    let v = &given
        .iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| {
            bad(format!(
                "the expression reads {kind} `{name}`, which was not given"
            ))
        })?
        .1;
    if Ty::of(of(v)) != ty {
        return Err(bad(format!(
            "{kind} `{name}` is {}, the expression reads it as {}",
            of(v),
            ty.name()
        )));
    }
    Ok(v)
}

/// An elementwise kernel from one or more expressions: one pass over the
/// inputs, one output array per expression, no intermediate arrays.
/// `Kernel<&Args>`; see [`crate::expr`] for an example.
#[derive(Clone, Debug)]
pub struct Map {
    c: Arc<Compiled>,
}

impl Map {
    /// A map computing `expr`; type errors (mismatched operands, unknown
    /// functions of a type) are reported here.
    pub fn new(expr: Expr) -> Result<Map> {
        Map::with_outputs(vec![expr])
    }

    /// A map computing every expression of `exprs` in the same pass (shared
    /// subexpressions computed once).
    pub fn with_outputs(exprs: Vec<Expr>) -> Result<Map> {
        if exprs.is_empty() {
            return Err(crate::expr::invalid("a map needs at least one expression"));
        }
        Ok(Map {
            c: Arc::new(Compiled::new(&exprs, None)?),
        })
    }

    /// Operations per element, after merging common subexpressions.
    pub fn operations(&self) -> usize {
        self.c.program.insts.len()
    }

    /// The names of the arrays the expressions read, sorted.
    pub fn arrays(&self) -> Vec<&str> {
        self.c.program.arrays.iter().map(|(n, _)| &**n).collect()
    }

    /// The names of the scalars the expressions read, sorted.
    pub fn scalars(&self) -> Vec<&str> {
        self.c.program.scalars.iter().map(|(n, _)| &**n).collect()
    }
}

impl Kernel<&Args<'_>> for Map {
    type Out = Outputs;

    fn name(&self) -> &'static str {
        self.c.name
    }

    fn work(&self, args: &&Args<'_>) -> Work {
        self.c.work(args.len(), self.c.program.outputs.len(), 0)
    }

    /// Any f64 value in the program, widened inputs included.
    fn computes_f64(&self, _: &&Args<'_>) -> bool {
        self.c.program.has_f64()
    }

    fn run_cpu(&self, cpu: &Cpu, args: &Args<'_>) -> Result<Outputs> {
        let name = self.c.name;
        let (arrays, scalars, n) = self.c.bind(name, args)?;
        let host = Compiled::host(&arrays)?;
        let views: Vec<&[u32]> = host.iter().map(|h| &***h).collect();
        let outs = self.c.plan.map(cpu, &views, &scalars, n);
        let p = &self.c.program;
        Ok(Outputs(
            outs.into_iter()
                .zip(&p.outputs)
                .map(|(v, &o)| Array::from_column(p.ty(o), v))
                .collect(),
        ))
    }

    fn run_gpu(&self, gpu: &Gpu, args: &Args<'_>) -> Result<Outputs> {
        let name = self.c.name;
        let (arrays, scalars, n) = self.c.bind(name, args)?;
        let p = &self.c.program;
        let outputs = p.outputs.len();
        if n == 0 {
            return Ok(Outputs(
                p.outputs.iter().map(|&o| Array::empty(p.ty(o))).collect(),
            ));
        }
        let pipeline = self.c.pipeline(gpu, name, n, outputs)?;
        let uniform_words = wgsl::scalar_words(p, &scalars);
        gpu.scoped(name, || {
            let copies = arrays
                .iter()
                .map(|a| a.resident(gpu, name))
                .collect::<Result<Vec<_>>>()?;
            let outs = p
                .outputs
                .iter()
                .map(|&o| gpu.alloc::<u32>(name, n * words(p.ty(o))))
                .collect::<Result<Vec<_>>>()?;
            let types = p.arrays.iter().map(|&(_, t)| t);
            let types = types.chain(p.outputs.iter().map(|&o| p.ty(o)));
            let arrays: Vec<(&DeviceCopy, Ty)> = copies
                .iter()
                .map(|c| &**c)
                .chain(&outs)
                .zip(types)
                .collect();
            let chunks = self.c.chunks(gpu, n);
            let uniforms: Vec<wgsl::Params> = chunks
                .iter()
                .map(|c| params(c.len(), 0, 0, c.start, &uniform_words))
                .collect();
            let bindings: Vec<Vec<(u32, Bind<'_>)>> = chunks
                .iter()
                .zip(&uniforms)
                .map(|(c, u)| Compiled::bind_chunk(c, u, &arrays))
                .collect();
            let groups = chunks
                .iter()
                .map(|c| (c.len() as u32).div_ceil(crate::gpu::WORKGROUP_SIZE));
            gpu.submit(name, &Dispatch::each(&pipeline, &bindings, groups))?;
            Ok(Outputs(
                outs.into_iter()
                    .zip(&p.outputs)
                    .map(|(copy, &o)| Array::from_device(gpu, p.ty(o), copy, n))
                    .collect(),
            ))
        })
    }
}

/// The result of a [`MapReduce`]: the value, and for `argmin`/`argmax` the
/// first index holding it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reduced {
    /// The sum, minimum or maximum, of the expression's type.
    pub value: Scalar,
    /// Where the minimum or maximum first occurs (arg-reductions only).
    pub index: Option<usize>,
}

/// A fused reduction of an expression: `sum`, `min`, `max`, `argmin` or
/// `argmax` of its values in one pass, with no intermediate array.
///
/// - `sum`: f32 sums are blocked and pairwise on the CPU (error about
///   `log2(n)·ε` of the sum of magnitudes), a workgroup tree on the GPU;
///   integer sums wrap.
/// - `min`/`max`/`argmin`/`argmax`: NaN values are ignored, `-0.0 < +0.0`,
///   ties keep the first index; `None` when there is no non-NaN value.
///
/// The output is `Option<Reduced>`: `None` only for the extremes of an
/// empty (or all-NaN) input; the sum of nothing is zero.
#[derive(Clone, Debug)]
pub struct MapReduce {
    c: Arc<Compiled>,
    how: How,
    arg: bool,
}

impl MapReduce {
    fn new(expr: Expr, how: How, arg: bool) -> Result<MapReduce> {
        Ok(MapReduce {
            c: Arc::new(Compiled::new(&[expr], Some(how))?),
            how,
            arg,
        })
    }

    /// The sum of `expr`.
    pub fn sum(expr: Expr) -> Result<MapReduce> {
        MapReduce::new(expr, How::Sum, false)
    }
    /// The smallest value of `expr`.
    pub fn min(expr: Expr) -> Result<MapReduce> {
        MapReduce::new(expr, How::Min, false)
    }
    /// The largest value of `expr`.
    pub fn max(expr: Expr) -> Result<MapReduce> {
        MapReduce::new(expr, How::Max, false)
    }
    /// The smallest value of `expr` and its first index.
    pub fn argmin(expr: Expr) -> Result<MapReduce> {
        MapReduce::new(expr, How::Min, true)
    }
    /// The largest value of `expr` and its first index.
    pub fn argmax(expr: Expr) -> Result<MapReduce> {
        MapReduce::new(expr, How::Max, true)
    }

    /// The names of the arrays the expression reads, sorted.
    pub fn arrays(&self) -> Vec<&str> {
        self.c.program.arrays.iter().map(|(n, _)| &**n).collect()
    }

    /// The names of the scalars the expression reads, sorted.
    pub fn scalars(&self) -> Vec<&str> {
        self.c.program.scalars.iter().map(|(n, _)| &**n).collect()
    }

    fn finish(&self, p: Partial) -> Option<Reduced> {
        let ty = self.c.program.ty(self.c.program.outputs[0]);
        match p {
            Partial::Float(v) => Some(Reduced {
                value: Scalar::F32(v),
                index: None,
            }),
            Partial::Double(v) => Some(Reduced {
                value: Scalar::F64(v),
                index: None,
            }),
            Partial::Int(bits) => Some(Reduced {
                value: Scalar::from_bits(ty, u64::from(bits)),
                index: None,
            }),
            Partial::Arg(best) => best.map(|(key, i)| Reduced {
                value: Scalar::from_bits(ty, from_key(ty, key)),
                index: self.arg.then_some(i),
            }),
        }
    }
}

impl Kernel<&Args<'_>> for MapReduce {
    type Out = Option<Reduced>;

    fn name(&self) -> &'static str {
        self.c.name
    }

    fn work(&self, args: &&Args<'_>) -> Work {
        self.c.work(args.len(), 0, 16)
    }

    /// Any f64 value in the program, widened inputs included.
    fn computes_f64(&self, _: &&Args<'_>) -> bool {
        self.c.program.has_f64()
    }

    fn run_cpu(&self, cpu: &Cpu, args: &Args<'_>) -> Result<Option<Reduced>> {
        let name = self.c.name;
        let (arrays, scalars, n) = self.c.bind(name, args)?;
        let host = Compiled::host(&arrays)?;
        let views: Vec<&[u32]> = host.iter().map(|h| &***h).collect();
        Ok(self.finish(self.c.plan.reduce(cpu, &views, &scalars, n, self.how)))
    }

    fn run_gpu(&self, gpu: &Gpu, args: &Args<'_>) -> Result<Option<Reduced>> {
        let name = self.c.name;
        let (arrays, scalars, n) = self.c.bind(name, args)?;
        let ty = self.c.program.ty(self.c.program.outputs[0]);
        let identity = match (self.how, ty) {
            (How::Sum, Ty::F32) => Partial::Float(0.0),
            (How::Sum, Ty::F64) => Partial::Double(0.0),
            (How::Sum, _) => Partial::Int(0),
            _ => Partial::Arg(None),
        };
        if n == 0 {
            return Ok(self.finish(identity));
        }
        let pipeline = self.c.pipeline(gpu, name, n, 1)?;
        let uniform_words = wgsl::scalar_words(&self.c.program, &scalars);
        // A partial: a sum (f64: two words), or (key, index) (f64: a
        // 64-bit key, so `vec4<u32>`: key high, key low, index, padding).
        let partial_words = match (self.how, ty) {
            (How::Sum, Ty::F64) => 2,
            (How::Sum, _) => 1,
            (_, Ty::F64) => 4,
            _ => 2,
        };
        let raw = gpu.scoped(name, || {
            let copies = arrays
                .iter()
                .map(|a| a.resident(gpu, name))
                .collect::<Result<Vec<_>>>()?;
            let chunks = self.c.chunks(gpu, n);
            let arrays: Vec<(&DeviceCopy, Ty)> = copies
                .iter()
                .map(|c| &**c)
                .zip(self.c.program.arrays.iter().map(|&(_, t)| t))
                .collect();
            let groups: Vec<usize> = chunks.iter().map(|c| c.len().div_ceil(TILE)).collect();
            let total: usize = groups.iter().sum();
            let partials = gpu.alloc::<u32>(name, total * partial_words)?;
            let mut offset = 0;
            let uniforms: Vec<wgsl::Params> = chunks
                .iter()
                .zip(&groups)
                .map(|(c, &g)| {
                    let u = params(c.len(), g, offset, c.start, &uniform_words);
                    offset += g;
                    u
                })
                .collect();
            let whole = 0..(total * partial_words * 4) as u64;
            let bindings: Vec<Vec<(u32, Bind<'_>)>> = chunks
                .iter()
                .zip(&uniforms)
                .map(|(c, u)| {
                    let mut b = Compiled::bind_chunk(c, u, &arrays);
                    b.push((
                        copies.len() as u32 + 1,
                        Bind::storage(&partials, whole.clone()),
                    ));
                    b
                })
                .collect();
            let dispatches = Dispatch::each(&pipeline, &bindings, groups.iter().map(|&g| g as u32));
            gpu.submit(name, &dispatches)?;
            gpu.read::<u32>(name, &partials, 0..total * partial_words)
        })?;
        // The partials are in index order: combine them left to right (ties
        // keep the earlier, smaller index), f32 sums pairwise.
        let out = match identity {
            Partial::Float(_) => {
                let v: &[f32] = bytemuck::cast_slice(&raw);
                Partial::Float(pairwise(v))
            }
            Partial::Double(_) => {
                let v: Vec<f64> = raw
                    .chunks_exact(2)
                    .map(|w| f64::from_bits(u64::from(w[0]) | u64::from(w[1]) << 32))
                    .collect();
                Partial::Double(pairwise(&v))
            }
            Partial::Int(_) => Partial::Int(raw.iter().fold(0u32, |a, &b| a.wrapping_add(b))),
            Partial::Arg(_) if ty == Ty::F64 => raw.chunks_exact(4).fold(identity, |acc, p| {
                let key = u64::from(p[0]) << 32 | u64::from(p[1]);
                let part = (p[2] != u32::MAX).then_some((key, p[2] as usize));
                acc.combine(Partial::Arg(part), self.how)
            }),
            Partial::Arg(_) => raw.chunks_exact(2).fold(identity, |acc, p| {
                let part = (p[1] != u32::MAX).then_some((u64::from(p[0]), p[1] as usize));
                acc.combine(Partial::Arg(part), self.how)
            }),
        };
        Ok(self.finish(out))
    }
}

fn pairwise<T: Copy + std::iter::Sum + std::ops::Add<Output = T>>(v: &[T]) -> T {
    if v.len() <= 8 {
        return v.iter().copied().sum();
    }
    let (a, b) = v.split_at(v.len() / 2);
    pairwise(a) + pairwise(b)
}
