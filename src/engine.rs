//! [`Engine`]: owns the CPU and GPU backends and decides, call by call,
//! where each kernel runs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::cpu::{self, Cpu};
use crate::dispatch::{CostModel, Explanation, Transfers};
use crate::error::{Error, Result};
use crate::gpu::{self, Gpu, GpuConfig, GpuInfo};
use crate::kernel::{Inputs, Kernel};

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

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// Counters shared by an engine's backends.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) cpu_runs: AtomicU64,
    pub(crate) gpu_runs: AtomicU64,
    pub(crate) gpu_dispatches: AtomicU64,
    pub(crate) uploads: AtomicU64,
    pub(crate) bytes_uploaded: AtomicU64,
    pub(crate) downloads: AtomicU64,
    pub(crate) bytes_downloaded: AtomicU64,
    pub(crate) pipelines_compiled: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
}

/// A snapshot of an engine's counters (see [`Engine::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Kernel calls run on the CPU backend.
    pub cpu_runs: u64,
    /// Kernel calls run on the GPU backend.
    pub gpu_runs: u64,
    /// Compute dispatches submitted to the GPU (a call may need several).
    pub gpu_dispatches: u64,
    /// Host-to-device copies.
    pub uploads: u64,
    /// Bytes copied host to device.
    pub bytes_uploaded: u64,
    /// Device-to-host copies.
    pub downloads: u64,
    /// Bytes copied device to host.
    pub bytes_downloaded: u64,
    /// Shader pipelines compiled (each once per engine).
    pub pipelines_compiled: u64,
    /// Calls that `Auto` retried on the other backend.
    pub fallbacks: u64,
    /// Bytes of device memory held by live buffers (a gauge, not a count).
    pub device_bytes_live: u64,
    /// Bytes of device memory kept in the pool for reuse (a gauge).
    pub device_bytes_pooled: u64,
}

impl Stats {
    /// Counts since `earlier` (gauges keep their current value).
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            cpu_runs: self.cpu_runs - earlier.cpu_runs,
            gpu_runs: self.gpu_runs - earlier.gpu_runs,
            gpu_dispatches: self.gpu_dispatches - earlier.gpu_dispatches,
            uploads: self.uploads - earlier.uploads,
            bytes_uploaded: self.bytes_uploaded - earlier.bytes_uploaded,
            downloads: self.downloads - earlier.downloads,
            bytes_downloaded: self.bytes_downloaded - earlier.bytes_downloaded,
            pipelines_compiled: self.pipelines_compiled - earlier.pipelines_compiled,
            fallbacks: self.fallbacks - earlier.fallbacks,
            device_bytes_live: self.device_bytes_live,
            device_bytes_pooled: self.device_bytes_pooled,
        }
    }
}

/// What an engine runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineInfo {
    /// CPU worker threads.
    pub cpu_threads: usize,
    /// SIMD instruction set compiled in.
    pub simd: &'static str,
    /// The GPU, if one was opened.
    pub gpu: Option<GpuInfo>,
    /// Why there is no GPU, if there is none.
    pub gpu_unavailable: Option<String>,
    /// Why the GPU stopped working, if its device was lost after opening.
    pub gpu_lost: Option<String>,
    /// The engine's default backend.
    pub backend: Backend,
    /// Where the dispatcher's constants came from.
    pub cost_model: String,
}

impl fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cpu: {} threads, SIMD {}", self.cpu_threads, self.simd)?;
        match (&self.gpu, &self.gpu_unavailable, &self.gpu_lost) {
            (Some(g), _, Some(lost)) => writeln!(f, "gpu: lost ({lost}); was {g}")?,
            (Some(g), _, None) => writeln!(f, "gpu: {g}")?,
            (None, Some(why), _) => writeln!(f, "gpu: none ({why})")?,
            (None, None, _) => writeln!(f, "gpu: none")?,
        }
        write!(
            f,
            "backend: {}; cost model: {}",
            self.backend, self.cost_model
        )
    }
}

/// Configures an [`Engine`]. Starts from the environment: `TANDEM_THREADS`,
/// `TANDEM_BACKEND` (`auto`, `cpu`, `gpu`), `TANDEM_ADAPTER` (substring of
/// the adapter name) and `TANDEM_NO_GPU=1`; the methods override them.
#[derive(Clone, Debug)]
pub struct EngineBuilder {
    threads: usize,
    backend: Backend,
    adapter: Option<String>,
    gpu: bool,
    chunk_bytes: Option<u64>,
    timeout: Duration,
    pool_bytes: u64,
    cost_model: Option<CostModel>,
    env_error: Option<String>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        let mut env_error = None;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let threads = match var("TANDEM_THREADS").map(|v| v.trim().parse::<usize>()) {
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                env_error = Some("TANDEM_THREADS is not a number".to_string());
                0
            }
            None => 0,
        };
        let backend = match var("TANDEM_BACKEND").map(|v| v.parse::<Backend>()) {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                env_error = Some(format!("TANDEM_BACKEND: {e}"));
                Backend::Auto
            }
            None => Backend::Auto,
        };
        EngineBuilder {
            threads,
            backend,
            adapter: var("TANDEM_ADAPTER"),
            gpu: var("TANDEM_NO_GPU").is_none_or(|v| v == "0"),
            chunk_bytes: None,
            timeout: gpu::DEFAULT_TIMEOUT,
            pool_bytes: gpu::DEFAULT_POOL_BYTES,
            cost_model: None,
            env_error,
        }
    }
}

impl EngineBuilder {
    /// CPU worker threads (0: one per core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// The backend calls use unless forced with [`Engine::on`].
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Use the adapter whose name contains `name` (case-insensitive).
    pub fn adapter(mut self, name: impl Into<String>) -> Self {
        self.adapter = Some(name.into());
        self
    }

    /// Whether to look for a GPU at all (default: yes).
    pub fn gpu(mut self, enabled: bool) -> Self {
        self.gpu = enabled;
        self
    }

    /// Bind at most this many bytes of an input at once (rounded down to
    /// 64 KiB, and never above the device's binding limit). Lowering it
    /// exercises the chunked paths with small data, as tests do.
    pub fn gpu_chunk_bytes(mut self, bytes: u64) -> Self {
        self.chunk_bytes = Some(bytes);
        self
    }

    /// Longest wait on the GPU before [`Error::Timeout`] (default 60 s).
    pub fn gpu_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Most device memory the buffer pool keeps for reuse (default 512 MiB).
    pub fn pool_bytes(mut self, bytes: u64) -> Self {
        self.pool_bytes = bytes;
        self
    }

    /// Replace the dispatcher's default cost model.
    pub fn cost_model(mut self, model: CostModel) -> Self {
        self.cost_model = Some(model);
        self
    }

    /// Builds the engine. Never fails for lack of a GPU: the CPU backend
    /// always exists, and [`Engine::info`] says why there is no GPU.
    pub fn build(self) -> Result<Engine> {
        if let Some(e) = self.env_error {
            return Err(Error::InvalidArgument {
                kernel: "engine",
                message: e,
            });
        }
        let counters = Arc::new(Counters::default());
        let cpu = Cpu::new(self.threads)?;
        let (gpu, gpu_error) = if self.gpu {
            let config = GpuConfig {
                adapter: self.adapter.clone(),
                chunk_bytes: self.chunk_bytes,
                timeout: self.timeout,
                pool_bytes: self.pool_bytes,
            };
            match Gpu::create(&config, Arc::clone(&counters)) {
                Ok(g) => (Some(g), None),
                Err(why) => (None, Some(why)),
            }
        } else {
            (
                None,
                Some("GPU disabled (TANDEM_NO_GPU or EngineBuilder::gpu(false))".to_string()),
            )
        };
        let model = self
            .cost_model
            .unwrap_or_else(|| CostModel::defaults(cpu.threads(), gpu.as_ref().map(|g| g.info())));
        Ok(Engine {
            inner: Arc::new(Inner {
                cpu,
                gpu,
                gpu_error,
                model,
                counters,
            }),
            backend: self.backend,
        })
    }
}

struct Inner {
    cpu: Cpu,
    gpu: Option<Gpu>,
    gpu_error: Option<String>,
    model: CostModel,
    counters: Arc<Counters>,
}

/// Runs kernels on the CPU or the GPU. Cheap to clone; clones share the
/// backends, the pipeline cache and the counters.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    backend: Backend,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("info", &self.info())
            .finish()
    }
}

impl Engine {
    /// An engine with the CPU backend and, when an adapter is found, the GPU
    /// backend. Configured from the environment (see [`EngineBuilder`]).
    pub fn new() -> Result<Engine> {
        EngineBuilder::default().build()
    }

    /// A builder for an engine with non-default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// This engine with calls forced onto `backend` (or back to `Auto`).
    pub fn on(&self, backend: Backend) -> Engine {
        Engine {
            inner: Arc::clone(&self.inner),
            backend,
        }
    }

    /// The backend calls through this handle use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The CPU backend.
    pub fn cpu(&self) -> &Cpu {
        &self.inner.cpu
    }

    /// The GPU backend, if there is one.
    pub fn gpu(&self) -> Option<&Gpu> {
        self.inner.gpu.as_ref()
    }

    /// The GPU, or [`Error::NoGpu`] saying why there is none.
    fn gpu_for(&self, kernel: &'static str) -> Result<&Gpu> {
        match &self.inner.gpu {
            Some(g) => match g.lost_reason() {
                Some(reason) => Err(Error::DeviceLost { kernel, reason }),
                None => Ok(g),
            },
            None => Err(Error::NoGpu {
                kernel,
                reason: self
                    .inner
                    .gpu_error
                    .clone()
                    .unwrap_or_else(|| "no adapter".into()),
            }),
        }
    }

    /// Whether a usable GPU backend exists.
    pub fn has_gpu(&self) -> bool {
        self.inner
            .gpu
            .as_ref()
            .is_some_and(|g| g.lost_reason().is_none())
    }

    /// The dispatcher's cost model.
    pub fn cost_model(&self) -> &CostModel {
        &self.inner.model
    }

    /// Runs `kernel` on `input` on this handle's backend: the dispatcher's
    /// choice under [`Backend::Auto`] (retrying on the other backend when the
    /// first cannot run it), or the forced one.
    pub fn run<In, K>(&self, kernel: &K, input: In) -> Result<K::Out>
    where
        In: Inputs + Clone,
        K: Kernel<In> + ?Sized,
    {
        match self.backend {
            Backend::Cpu => self.run_cpu(kernel, input),
            Backend::Gpu => self.run_gpu(kernel, input),
            Backend::Auto => {
                let first = self.decide(kernel, &input);
                let result = match first {
                    Backend::Gpu => self.run_gpu(kernel, input.clone()),
                    _ => self.run_cpu(kernel, input.clone()),
                };
                match result {
                    Err(e) if e.is_fallback() => {
                        let other = if first == Backend::Gpu {
                            Backend::Cpu
                        } else {
                            Backend::Gpu
                        };
                        if other == Backend::Gpu && !self.has_gpu() {
                            return Err(e);
                        }
                        self.inner
                            .counters
                            .fallbacks
                            .fetch_add(1, Ordering::Relaxed);
                        match other {
                            Backend::Gpu => self.run_gpu(kernel, input),
                            _ => self.run_cpu(kernel, input),
                        }
                    }
                    r => r,
                }
            }
        }
    }

    fn run_cpu<In, K: Kernel<In> + ?Sized>(&self, kernel: &K, input: In) -> Result<K::Out> {
        self.inner.counters.cpu_runs.fetch_add(1, Ordering::Relaxed);
        kernel.run_cpu(&self.inner.cpu, input)
    }

    fn run_gpu<In, K: Kernel<In> + ?Sized>(&self, kernel: &K, input: In) -> Result<K::Out> {
        let gpu = self.gpu_for(kernel.name())?;
        self.inner.counters.gpu_runs.fetch_add(1, Ordering::Relaxed);
        kernel.run_gpu(gpu, input)
    }

    /// The cost model's choice, without building an [`Explanation`]: this
    /// runs on every `Auto` call, so it allocates nothing.
    fn decide<In, K>(&self, kernel: &K, input: &In) -> Backend
    where
        In: Inputs,
        K: Kernel<In> + ?Sized,
    {
        let Some(gpu) = self.inner.gpu.as_ref().filter(|g| !g.is_lost()) else {
            return Backend::Cpu;
        };
        let work = kernel.work(input);
        let moves = Transfers::of(input, Some(gpu.context_id()));
        let model = &self.inner.model;
        let cpu = model.estimate(Backend::Cpu, &work, &moves);
        let gpu = model.estimate(Backend::Gpu, &work, &moves);
        CostModel::choose(&cpu, Some(&gpu))
    }

    /// The backend [`Backend::Auto`] would pick for this call.
    pub fn choose<In, K>(&self, kernel: &K, input: In) -> Backend
    where
        In: Inputs,
        K: Kernel<In> + ?Sized,
    {
        self.explain(kernel, input).chosen
    }

    /// The dispatcher's account of a call: both estimates and the choice.
    /// Takes the input as [`Engine::run`] does (`&x`, `(&x, &y)`); nothing runs.
    pub fn explain<In, K>(&self, kernel: &K, input: In) -> Explanation
    where
        In: Inputs,
        K: Kernel<In> + ?Sized,
    {
        let work = kernel.work(&input);
        let gpu = self.has_gpu().then(|| self.inner.gpu.as_ref()).flatten();
        let moves = Transfers::of(&input, gpu.map(|g| g.context_id()));
        let model = &self.inner.model;
        let cpu_est = model.estimate(Backend::Cpu, &work, &moves);
        let gpu_est = gpu.map(|_| model.estimate(Backend::Gpu, &work, &moves));
        let auto = CostModel::choose(&cpu_est, gpu_est.as_ref());
        let (chosen, forced) = match self.backend {
            Backend::Auto => (auto, None),
            b => (b, Some(b)),
        };
        Explanation {
            kernel: kernel.name(),
            work,
            chosen,
            forced,
            cpu: cpu_est,
            gpu: gpu_est,
            gpu_unavailable: if gpu.is_none() {
                Some(
                    self.inner
                        .gpu
                        .as_ref()
                        .and_then(|g| g.lost_reason())
                        .or_else(|| self.inner.gpu_error.clone())
                        .unwrap_or_else(|| "no adapter".into()),
                )
            } else {
                None
            },
            model_source: model.source.clone(),
        }
    }

    /// Counters: calls and dispatches per backend, bytes moved each way.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let (live, pooled) = self.gpu().map(|g| g.pool_bytes()).unwrap_or((0, 0));
        Stats {
            cpu_runs: c.cpu_runs.load(Ordering::Relaxed),
            gpu_runs: c.gpu_runs.load(Ordering::Relaxed),
            gpu_dispatches: c.gpu_dispatches.load(Ordering::Relaxed),
            uploads: c.uploads.load(Ordering::Relaxed),
            bytes_uploaded: c.bytes_uploaded.load(Ordering::Relaxed),
            downloads: c.downloads.load(Ordering::Relaxed),
            bytes_downloaded: c.bytes_downloaded.load(Ordering::Relaxed),
            pipelines_compiled: c.pipelines_compiled.load(Ordering::Relaxed),
            fallbacks: c.fallbacks.load(Ordering::Relaxed),
            device_bytes_live: live,
            device_bytes_pooled: pooled,
        }
    }

    /// What the engine runs on: CPU threads and SIMD level, the GPU adapter
    /// and its limits, or why there is no GPU.
    pub fn info(&self) -> EngineInfo {
        EngineInfo {
            cpu_threads: self.inner.cpu.threads(),
            simd: cpu::simd_level(),
            gpu: self.inner.gpu.as_ref().map(|g| g.info().clone()),
            gpu_unavailable: self.inner.gpu_error.clone(),
            gpu_lost: self.inner.gpu.as_ref().and_then(|g| g.lost_reason()),
            backend: self.backend,
            cost_model: self.inner.model.source.clone(),
        }
    }
}
