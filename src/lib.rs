//! # tandem
//!
//! Data-parallel kernels that run on the CPU (SIMD lanes from `wide` across
//! cores with `rayon`) or on the GPU (WGSL compute shaders through `wgpu`),
//! with a dispatcher that picks, call by call, where each one runs: by its
//! size, a cost model of each backend, and where its inputs already live.
//!
//! Write a loop once, as an [expression](expr): it is compiled to SIMD code
//! for the CPU and a WGSL shader for the GPU, fused into one pass, and run
//! where it is faster.
//!
//! ```
//! use tandem::expr::{Expr, Vars};
//! use tandem::kernels::{Args, Map, MapReduce};
//! use tandem::{Buffer, Engine};
//!
//! # fn main() -> tandem::Result<()> {
//! let engine = Engine::new()?;
//! let x = Buffer::from(vec![1.0f32; 1 << 16]);
//! let y = Buffer::from(vec![4.0f32; 1 << 16]);
//! let vars = Vars::new().scalar::<f32>("a").array::<f32>("x").array::<f32>("y");
//! let e = Expr::parse("a * x + sqrt(y)", &vars)?; // or 3.0 * &x + y.sqrt() in Rust
//! let args = Args::new().array("x", &x).array("y", &y).scalar("a", 3.0f32);
//! let z = engine.run(&Map::new(e.clone())?, &args)?.into_f32()?; // one pass
//! assert_eq!(z.to_vec()?[0], 5.0);
//! let s = engine.run(&MapReduce::sum(e)?, &args)?.expect("a sum"); // no temporary
//! assert_eq!(s.value.as_f64(), 5.0 * (1 << 16) as f64);
//! # Ok(())
//! # }
//! ```
//!
//! The fixed kernels (sort, scan, gemm, ...) run the same way:
//!
//! ```
//! use tandem::{Backend, Buffer, Engine};
//! use tandem::kernels::{Axpy, Sum, Unary};
//!
//! # fn main() -> tandem::Result<()> {
//! let engine = Engine::new()?; // CPU always; GPU when an adapter exists
//! let x = Buffer::from(vec![1.0f32; 1 << 16]);
//! let y = Buffer::from(vec![2.0f32; 1 << 16]);
//! let z = engine.run(&Axpy { a: 3.0 }, (&x, &y))?; // stays where it ran
//! let r = engine.run(&Unary::Sqrt, &z)?;
//! let s: f32 = engine.run(&tandem::kernels::Sum, &r)?;
//! let exact = (1 << 16) as f32 * 5f32.sqrt();
//! assert!((s - exact).abs() <= 1e-6 * exact); // pairwise: within 2ε·log2(n)·Σ|x|
//! let forced: f32 = engine.on(Backend::Cpu).run(&Sum, &r)?; // override the dispatcher
//! assert_eq!(forced, s);
//! println!("{}", engine.explain(&Sum, &r)); // chosen backend and both estimates
//! println!("{:?}", engine.stats()); // calls per backend, bytes moved each way
//! # Ok(())
//! # }
//! ```
//!
//! The pieces, as data flows: a [`Buffer`] mirrors a host copy and a device
//! copy; [`Engine::run`] asks the [`dispatch`] cost model which backend is
//! cheaper and calls the [`Kernel`]'s [`run_cpu`](Kernel::run_cpu) (on
//! [`Cpu`]) or [`run_gpu`](Kernel::run_gpu) (on [`Gpu`]); outputs stay
//! where they were computed until read. Every fallible call returns
//! [`Error`], never panics on user input.
//!
//! Each tricky layer has a design note in its module docs: [`dispatch`]
//! (the cost model and calibration), [`gpu`] (errors as values, binding
//! limits, pipelines, buffers) and [`cpu`] (threads, the lane type,
//! pooled outputs).
//!
//! Build with `-C target-cpu=native` (this repository's
//! `.cargo/config.toml` does): `wide` picks its SIMD width at compile time.

pub mod buffer;
pub mod calibrate;
pub mod cpu;
pub mod dispatch;
pub mod engine;
pub mod error;
pub mod expr;
pub mod gpu;
pub mod kernel;
pub mod kernels;
#[cfg(feature = "ndarray")]
mod ndarray_interop;
mod stats;

pub use buffer::{Buffer, Element, ElementType, HostData, HostMemory, Residency};
pub use calibrate::{CalibrateOptions, Progress};
pub use cpu::Cpu;
pub use dispatch::{CostModel, Explanation, Profile};
pub use engine::{Backend, Engine, EngineBuilder, EngineInfo, ResultUse, Stats};
pub use error::{Error, Result};
pub use gpu::{Gpu, GpuFeatures, GpuInfo};
pub use kernel::{Inputs, Kernel, Work};
