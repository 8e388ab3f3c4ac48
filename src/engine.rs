//! [`Engine`]: owns the CPU and GPU backends and decides, call by call,
//! where each kernel runs.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cpu::Cpu;
use crate::cpu::simd::{self, SimdLevel};
use crate::dispatch::profile::{self, PROFILE_ENV, ProfileRejection};
use crate::dispatch::{
    CostModel, Explanation, LIGHT_BYTES_PER_ELEMENT, LIGHT_FLOPS_PER_ELEMENT, Profile, ProfileKey,
    TIE_RATIO, Transfers,
};
use crate::error::{Error, Result};
use crate::gpu::{self, Gpu, GpuConfig, GpuFeatures, GpuInfo};
pub use crate::kernel::Backend;
use crate::kernel::{Inputs, Kernel};
pub(crate) use crate::stats::Counters;

/// Where the caller will read a kernel's buffer result, which decides
/// whether `Auto` charges a GPU run for bringing it back
/// (see [`Engine::result_use`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResultUse {
    /// Guess from the inputs: when none of them is on the GPU the data lives
    /// on the host and the result is assumed to go there too; when one is
    /// (a chain of GPU kernels), the result is assumed to stay on the device.
    #[default]
    Infer,
    /// The result will be read on the host: a GPU run pays its download.
    Host,
    /// The result feeds further kernels: it stays where it is produced.
    Device,
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
    /// SIMD level compiled in: what the CPU kernels run at.
    pub simd: SimdLevel,
    /// Widest SIMD level the running CPU has (runtime detection).
    pub cpu_simd: SimdLevel,
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
        writeln!(
            f,
            "cpu: {} threads, SIMD compiled {}; CPU has {}",
            self.cpu_threads, self.simd, self.cpu_simd
        )?;
        if let Some(notice) = simd::width_notice() {
            writeln!(f, "notice: {notice}")?;
        }
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
/// the adapter name), `TANDEM_NO_GPU=1`, `TANDEM_NO_SUBGROUPS=1` (mask
/// [`GpuFeatures::subgroups`]), `TANDEM_NO_F64=1` (mask [`GpuFeatures::f64`]) and `TANDEM_PROFILE` (the calibration
/// profile's path, or `off`); the methods override them.
#[derive(Clone, Debug)]
pub struct EngineBuilder {
    threads: usize,
    backend: Backend,
    adapter: Option<String>,
    gpu: bool,
    chunk_bytes: Option<u64>,
    features: GpuFeatures,
    timeout: Duration,
    pool_bytes: u64,
    cost_model: Option<CostModel>,
    profile: Option<Profile>,
    profile_path: Option<PathBuf>,
    load_profile: bool,
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
            features: GpuFeatures::ALL
                .with_subgroups(var("TANDEM_NO_SUBGROUPS").is_none_or(|v| v == "0"))
                .with_f64(var("TANDEM_NO_F64").is_none_or(|v| v == "0")),
            timeout: gpu::DEFAULT_TIMEOUT,
            pool_bytes: gpu::DEFAULT_POOL_BYTES,
            cost_model: None,
            profile: None,
            profile_path: None,
            load_profile: !var(PROFILE_ENV).is_some_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "none" | "0")
            }),
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

    /// The optional adapter features tandem may use (default
    /// [`GpuFeatures::ALL`]: whatever the adapter has). Masking one makes
    /// every kernel take its path without it, on a GPU that has it: this is
    /// how CI tests both paths on one driver.
    pub fn gpu_features(mut self, mask: GpuFeatures) -> Self {
        self.features = mask;
        self
    }

    /// Longest wait on the GPU before [`Error::Timeout`] (default 60 s).
    /// It must be positive: [`EngineBuilder::build`] rejects a zero timeout
    /// with [`Error::InvalidArgument`] (no GPU work finishes in no time, so
    /// every wait would fail).
    pub fn gpu_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Most device memory the buffer pool keeps for reuse (default 512 MiB).
    pub fn pool_bytes(mut self, bytes: u64) -> Self {
        self.pool_bytes = bytes;
        self
    }

    /// Replace the dispatcher's cost model outright (no profile is loaded).
    pub fn cost_model(mut self, model: CostModel) -> Self {
        self.cost_model = Some(model);
        self
    }

    /// Use this calibration profile instead of loading one from disk (it is
    /// used whatever machine its key names: the caller chose it).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Load and save the calibration profile at `path` instead of the
    /// default (`$TANDEM_PROFILE`, else a file named after the machine in
    /// `$XDG_CACHE_HOME/tandem/` or `$HOME/.cache/tandem/`).
    pub fn profile_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.profile_path = Some(path.into());
        self.load_profile = true;
        self
    }

    /// Whether to load a saved calibration profile at build (default: yes,
    /// unless `TANDEM_PROFILE=off`). Without one the dispatcher uses
    /// defaults by device type.
    pub fn load_profile(mut self, enabled: bool) -> Self {
        self.load_profile = enabled;
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
        if self.timeout.is_zero() {
            return Err(Error::InvalidArgument {
                kernel: "engine",
                message: "gpu_timeout must be positive, got 0 s".into(),
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
                features: self.features,
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
        let gpu_info = gpu.as_ref().map(|g| g.info());
        let key = ProfileKey::new(cpu.threads(), gpu_info);
        let profile_path = if self.load_profile {
            self.profile_path.or_else(|| profile::default_path(&key))
        } else {
            self.profile_path
        };
        let model = if let Some(m) = self.cost_model {
            m
        } else if let Some(p) = &self.profile {
            CostModel::from_profile(p, p.describe(None))
        } else {
            let loaded = match (&profile_path, self.load_profile) {
                (Some(path), true) => load_model(path, &key),
                _ => None,
            };
            loaded.unwrap_or_else(|| CostModel::defaults(cpu.threads(), gpu_info))
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                cpu,
                gpu,
                gpu_error,
                cpu_floor: AtomicU64::new(model.cpu_floor()),
                model: RwLock::new(Arc::new(model)),
                key,
                profile_path,
                counters,
            }),
            backend: self.backend,
            result: ResultUse::Infer,
        })
    }
}

/// The model of the profile at `path` if it is there and fits `key`; a
/// file that is there but unusable is reported once on stderr.
fn load_model(path: &Path, key: &ProfileKey) -> Option<CostModel> {
    match Profile::load(path, Some(key)) {
        Ok(p) => Some(CostModel::from_profile(&p, p.describe(Some(path)))),
        Err(ProfileRejection::Missing) => None,
        Err(why) => {
            profile::warn_once(&format!(
                "ignoring calibration profile {}: {why}; using defaults \
                 (run `cargo run --release --example calibrate` to recalibrate)",
                path.display()
            ));
            None
        }
    }
}

struct Inner {
    cpu: Cpu,
    gpu: Option<Gpu>,
    gpu_error: Option<String>,
    /// Swapped whole by [`Engine::calibrate`]; read on every `Auto` call.
    model: RwLock<Arc<CostModel>>,
    /// The model's [`CostModel::cpu_floor`], read without the lock.
    cpu_floor: AtomicU64,
    key: ProfileKey,
    profile_path: Option<PathBuf>,
    counters: Arc<Counters>,
}

/// Runs kernels on the CPU or the GPU. Cheap to clone; clones share the
/// backends, the pipeline cache and the counters.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    backend: Backend,
    result: ResultUse,
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
            result: self.result,
        }
    }

    /// This engine with `Auto` told where the caller will read buffer
    /// results (default [`ResultUse::Infer`]).
    pub fn result_use(&self, result: ResultUse) -> Engine {
        Engine {
            inner: Arc::clone(&self.inner),
            backend: self.backend,
            result,
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

    /// The dispatcher's cost model (a snapshot: [`Engine::calibrate`]
    /// replaces it).
    pub fn cost_model(&self) -> Arc<CostModel> {
        Arc::clone(&self.inner.model.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the dispatcher's cost model for this engine and its clones.
    pub fn set_cost_model(&self, model: CostModel) {
        let floor = model.cpu_floor();
        let mut guard = self.inner.model.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(model);
        self.inner.cpu_floor.store(floor, Ordering::Relaxed);
    }

    /// What a calibration profile of this engine is keyed by: CPU model,
    /// threads and adapter.
    pub fn profile_key(&self) -> &ProfileKey {
        &self.inner.key
    }

    /// Where this engine loads and saves its calibration profile, if anywhere.
    pub fn profile_path(&self) -> Option<&Path> {
        self.inner.profile_path.as_deref()
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
        // The shortcut first: it needs neither the GPU's state nor the model.
        let work = kernel.work(input);
        let n = work.elements;
        if n < self.inner.cpu_floor.load(Ordering::Relaxed)
            && work.bytes() <= n * LIGHT_BYTES_PER_ELEMENT
            && work.flops <= n * LIGHT_FLOPS_PER_ELEMENT
        {
            // Too small for any GPU call to win, unless an input would have
            // to come down from the device first.
            let mut on_host = true;
            input.visit(&mut |s| on_host &= s.on_host);
            if on_host {
                return Backend::Cpu;
            }
        }
        let Some(gpu) = self.inner.gpu.as_ref().filter(|g| !g.is_lost()) else {
            return Backend::Cpu;
        };
        if !gpu.info().features.f64 && needs_f64(kernel.computes_f64(input), input) {
            return Backend::Cpu;
        }
        let model = self.inner.model.read().unwrap_or_else(|p| p.into_inner());
        let curves = model.kernels.get(kernel.name());
        // The kernel's own shortcut: its measured CPU time is below the
        // fastest its GPU curve ever gets (data on the host adds transfers
        // to that, never less), so no estimate needs building. Saves about
        // 200 ns a call (two input visits and two curve evaluations),
        // which is 20% of a 2^14-element sum.
        // (An empty curve evaluates to infinity and has a NaN latency: the
        // comparison is then false.)
        if let Some(k) = curves
            && k.cpu.eval(k.x(&work)) * TIE_RATIO < k.gpu.latency_s()
        {
            let mut on_host = true;
            input.visit(&mut |s| on_host &= s.on_host);
            if on_host {
                return Backend::Cpu;
            }
        }
        let id = gpu.context_id();
        let moves = Transfers::of(input, Some(id));
        let to_host = self.result_to_host(input, Some(id));
        let cpu = model.estimate_with(curves, Backend::Cpu, &work, &moves, to_host);
        let gpu = model.estimate_with(curves, Backend::Gpu, &work, &moves, to_host);
        CostModel::choose(&cpu, Some(&gpu))
    }

    /// Whether `Auto` should charge bringing a buffer result to the host.
    fn result_to_host(&self, input: &dyn Inputs, gpu_id: Option<u64>) -> bool {
        match self.result {
            ResultUse::Host => true,
            ResultUse::Device => false,
            ResultUse::Infer => {
                let mut any_on_gpu = false;
                input.visit(&mut |s| any_on_gpu |= s.on_device.is_some() && s.on_device == gpu_id);
                !any_on_gpu
            }
        }
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
        let id = gpu.map(|g| g.context_id());
        let moves = Transfers::of(&input, id);
        let to_host = self.result_to_host(&input, id);
        let model = self.cost_model();
        let name = Some(kernel.name());
        let cpu_est = model.estimate_call(name, Backend::Cpu, &work, &moves, to_host);
        let gpu_est = gpu.map(|_| model.estimate_call(name, Backend::Gpu, &work, &moves, to_host));
        let gpu_declined = gpu
            .filter(|g| !g.info().features.f64 && needs_f64(kernel.computes_f64(&input), &input))
            .map(|g| {
                format!(
                    "f64 values, and {} runs no f64 shaders: it lacks SHADER_F64 and \
                     SHADER_INT64, or the engine's gpu_features mask turned them off",
                    g.info().name
                )
            });
        let auto = if gpu_declined.is_some() {
            Backend::Cpu
        } else {
            CostModel::choose(&cpu_est, gpu_est.as_ref())
        };
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
            gpu_declined,
            model_source: model.source.clone(),
            measured: model.measured(kernel.name()),
            result_to_host: to_host,
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
            simd: simd::compiled_level(),
            cpu_simd: simd::detected_level(),
            gpu: self.inner.gpu.as_ref().map(|g| g.info().clone()),
            gpu_unavailable: self.inner.gpu_error.clone(),
            gpu_lost: self.inner.gpu.as_ref().and_then(|g| g.lost_reason()),
            backend: self.backend,
            cost_model: self.cost_model().source.clone(),
        }
    }
}

/// Whether any input buffer holds f64.
fn has_f64(input: &dyn Inputs) -> bool {
    let mut any = false;
    input.visit(&mut |s| any |= s.element == crate::ElementType::F64);
    any
}

/// Whether a call computes in f64: an f64 input, or a kernel that says so
/// ([`Kernel::computes_f64`]).
fn needs_f64(computes_f64: bool, input: &dyn Inputs) -> bool {
    computes_f64 || has_f64(input)
}
