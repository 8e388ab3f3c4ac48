//! The one trait every kernel implements, and the work estimate the
//! dispatcher reads.

use crate::buffer::{Buffer, Element};
use crate::cpu::Cpu;
use crate::error::Result;
use crate::gpu::Gpu;

/// A data-parallel kernel with a CPU and a GPU implementation.
///
/// `In` is what the kernel takes: usually `&Buffer<T>` or a tuple of them.
/// The [`Engine`](crate::Engine) calls [`work`](Kernel::work) to estimate the
/// cost on each backend, then one of [`run_cpu`](Kernel::run_cpu) or
/// [`run_gpu`](Kernel::run_gpu). A kernel that cannot run on a backend (an
/// element type it does not handle, say) returns
/// [`Error::Unsupported`](crate::Error::Unsupported), and under
/// [`Backend::Auto`] the engine uses the other one.
///
/// `examples/custom_kernel.rs` implements this trait for a user kernel with
/// its own WGSL shader.
pub trait Kernel<In> {
    /// What the kernel returns: a [`Buffer`] (resident where it was
    /// computed) or a host value such as a scalar.
    type Out;
    /// A stable name: the cost-model key and the context of errors.
    fn name(&self) -> &'static str;
    /// How much work a call on `input` does.
    fn work(&self, input: &In) -> Work;
    /// Runs on the CPU backend.
    fn run_cpu(&self, cpu: &Cpu, input: In) -> Result<Self::Out>;
    /// Runs on the GPU backend.
    fn run_gpu(&self, gpu: &Gpu, input: In) -> Result<Self::Out>;
    /// Whether a call on `input` computes in f64 although none of its input
    /// buffers is f64 (an expression that widens 32-bit inputs, say). The
    /// dispatcher keeps such calls, and calls with f64 inputs, off a GPU
    /// without f64 shaders. The default: no.
    fn computes_f64(&self, input: &In) -> bool {
        let _ = input;
        false
    }
}

/// A kernel's name for element type `T`: `name` for the 32-bit types,
/// `name_f64` for f64, so f64 calls get cost curves of their own (a GPU's
/// f64 throughput is 1/2 to 1/64 of its f32 one).
pub fn typed_name<T: crate::Element>(name: &'static str, name_f64: &'static str) -> &'static str {
    if T::TYPE == crate::ElementType::F64 {
        name_f64
    } else {
        name
    }
}

/// The size of a kernel call, in the terms the cost model uses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    /// Elements processed.
    pub elements: u64,
    /// Bytes read from inputs (one pass over memory counts each byte once).
    pub bytes_read: u64,
    /// Bytes written to outputs.
    pub bytes_written: u64,
    /// Arithmetic operations (a fused multiply-add counts as two).
    pub flops: u64,
    /// Bytes the call always brings back to the host (a reduction's scalar),
    /// whichever backend runs it.
    pub host_result_bytes: u64,
}

impl Work {
    /// Work of an elementwise pass over `n` elements of `T` reading `inputs`
    /// arrays, writing one, with `flops_per_element` operations each.
    pub fn elementwise<T: Element>(n: usize, inputs: u64, flops_per_element: u64) -> Work {
        let n = n as u64;
        let size = size_of::<T>() as u64;
        Work {
            elements: n,
            bytes_read: n * size * inputs,
            bytes_written: n * size,
            flops: n * flops_per_element,
            host_result_bytes: 0,
        }
    }

    /// Work of a reduction over `n` elements of `T` from `inputs` arrays to
    /// `result_bytes` on the host.
    pub fn reduction<T: Element>(
        n: usize,
        inputs: u64,
        flops_per_element: u64,
        result_bytes: u64,
    ) -> Work {
        let n = n as u64;
        Work {
            elements: n,
            bytes_read: n * size_of::<T>() as u64 * inputs,
            bytes_written: 0,
            flops: n * flops_per_element,
            host_result_bytes: result_bytes,
        }
    }

    /// Total bytes moved through memory.
    pub fn bytes(&self) -> u64 {
        self.bytes_read + self.bytes_written
    }
}

/// Where a kernel's inputs live, so the dispatcher can charge transfers only
/// for copies that are stale. Implemented for `&Buffer<T>`, `()` and tuples.
pub trait Inputs {
    /// Calls `f` once per input buffer.
    fn visit(&self, f: &mut dyn FnMut(&InputState));
}

/// The residency of one input buffer, as [`Inputs::visit`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputState {
    /// Size in bytes.
    pub bytes: u64,
    /// A current host copy exists.
    pub on_host: bool,
    /// The id of the GPU context holding a current device copy, if any.
    pub on_device: Option<u64>,
    /// The buffer's element type (the dispatcher sends f64 to the CPU on
    /// a GPU without [`GpuFeatures::f64`](crate::GpuFeatures::f64)).
    pub element: crate::ElementType,
}

impl<T: Element> Inputs for &Buffer<T> {
    fn visit(&self, f: &mut dyn FnMut(&InputState)) {
        f(&self.input_state());
    }
}

impl Inputs for () {
    fn visit(&self, _f: &mut dyn FnMut(&InputState)) {}
}

macro_rules! tuple_inputs {
    ($($name:ident),+) => {
        impl<$($name: Inputs),+> Inputs for ($($name,)+) {
            #[allow(non_snake_case, reason = "macro-generated tuple bindings")]
            fn visit(&self, f: &mut dyn FnMut(&InputState)) {
                let ($($name,)+) = self;
                $($name.visit(f);)+
            }
        }
    };
}
tuple_inputs!(A);
tuple_inputs!(A, B);
tuple_inputs!(A, B, C);
tuple_inputs!(A, B, C, D);

/// Where a call runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The dispatcher chooses by its cost model.
    #[default]
    Auto,
    /// The CPU backend (SIMD + rayon).
    Cpu,
    /// The GPU backend (WGSL through wgpu).
    Gpu,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Auto => "auto",
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        })
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Backend::Auto),
            "cpu" => Ok(Backend::Cpu),
            "gpu" => Ok(Backend::Gpu),
            other => Err(format!(
                "unknown backend {other:?} (expected auto, cpu or gpu)"
            )),
        }
    }
}

/// The measure of a call a kernel's curves are keyed on: the quantity its
/// time grows with, read from its [`Work`].
///
/// Elements suit kernels whose cost is linear in them (maps, reductions,
/// scans). Flops suit kernels whose cost is not: a gemm's `elements` is the
/// output's `m·n` while its time grows with `m·n·k`, a convolution's with
/// the filter's taps. Keyed on flops, a curve measured on square gemms
/// prices a `1024×1024×16` product like a square one of the same flops,
/// not like a `1024²`-element map.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// [`Work::elements`].
    #[default]
    Elements,
    /// [`Work::bytes`] (read + written).
    Bytes,
    /// [`Work::flops`].
    Flops,
}

impl Axis {
    /// The rule a probe that does not name its axis follows: flops when the
    /// kernel does more than [`FLOPS_PER_BYTE_HEAVY`] operations per byte
    /// moved (it is compute-bound on every backend), elements otherwise.
    pub fn for_work(work: &Work) -> Axis {
        if work.flops > FLOPS_PER_BYTE_HEAVY * work.bytes() {
            Axis::Flops
        } else {
            Axis::Elements
        }
    }

    /// This measure of `work` (at least 1: curves start above zero).
    pub fn of(self, work: &Work) -> u64 {
        match self {
            Axis::Elements => work.elements,
            Axis::Bytes => work.bytes(),
            Axis::Flops => work.flops,
        }
        .max(1)
    }

    /// The unit, for reports: `elem`, `B`, `flop`.
    pub fn unit(self) -> &'static str {
        match self {
            Axis::Elements => "elem",
            Axis::Bytes => "B",
            Axis::Flops => "flop",
        }
    }
}

/// Operations per byte above which [`Axis::for_work`] keys a kernel on flops.
pub const FLOPS_PER_BYTE_HEAVY: u64 = 4;
