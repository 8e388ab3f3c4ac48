//! The GPU backend: one wgpu device, its limits, a pipeline cache, a pool of
//! device buffers, dispatch with 2-D folding, and readback with timeouts.
//!
//! Every piece of GPU work a kernel does goes through [`Gpu::scoped`], which
//! wraps it in wgpu error scopes so validation, out-of-memory and internal
//! errors come back as [`Error`] values from the call that caused them. The
//! device's uncaptured-error handler is replaced by one that records instead
//! of panicking, and a lost device is remembered (wgpu reports nothing for
//! later calls).
//!
#![doc = include_str!("README.md")]

mod pool;

/// The WGSL spelling of a `Params` field's Rust type, for [`shader!`].
macro_rules! wgsl_type {
    (u32) => {
        "u32"
    };
    (i32) => {
        "i32"
    };
    (f32) => {
        "f32"
    };
    ([u32; 2]) => {
        "vec2<u32>"
    };
    ([[u32; 4]; $n:literal]) => {
        concat!("array<vec4<u32>, ", $n, ">")
    };
}

/// Declares a kernel's shader once, host and device together:
/// - `Params`, the shader's uniform block as a `#[repr(C)]`, `Pod` Rust
///   struct with named fields (fields are `u32`, `i32`, `f32`, `[u32; 2]`
///   (`vec2<u32>`) or `[[u32; 4]; N]` (`array<vec4<u32>, N>`));
/// - after it, constants shared by both sides (`const TILE: usize = 2048;`):
///   a `pub(crate)` Rust constant of the given type and a WGSL `u32` one;
/// - `SHADER`, the WGSL file `shaders/<file>`, then `src/gpu/prelude.wgsl`
///   (`alias T`, `KIND`, `WG`, the `params` binding, `group_index`), then
///   the constants and `Params` written in WGSL.
///
/// So the sizes and the layout the host assumes and the ones the shader
/// uses come from one declaration and cannot drift apart.
macro_rules! shader {
    (
        $file:literal,
        $(#[$meta:meta])*
        struct Params { $($(#[$fmeta:meta])* $field:ident : $ty:tt),* $(,)? }
        $($(#[$cmeta:meta])* const $const:ident : $cty:ty = $value:literal;)*
    ) => {
        $(
            $(#[$cmeta])*
            #[allow(dead_code, reason = "some are read by the shader only")]
            pub(crate) const $const: $cty = $value;
        )*

        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        #[allow(dead_code, reason = "the shader reads the fields")]
        pub(crate) struct Params { $($(#[$fmeta])* pub(crate) $field: $ty),* }

        impl Params {
            /// The bytes of the uniform binding.
            #[allow(dead_code, reason = "not every kernel binds by reference")]
            pub(crate) fn bytes(&self) -> &[u8] {
                bytemuck::bytes_of(self)
            }
        }

        /// The shader's source: its file, the prelude, the shared
        /// constants and `Params` in WGSL.
        pub(crate) const SHADER: &str = concat!(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/gpu/prelude.wgsl")),
            $("const ", stringify!($const), ": u32 = ", $value, "u;\n",)*
            "struct Params {\n",
            $("    ", stringify!($field), ": ", $crate::gpu::wgsl_type!($ty), ",\n",)*
            "}\n",
        );
    };
}
pub(crate) use {shader, wgsl_type};

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use crate::buffer::{Buffer, Element, ElementType};
use crate::error::{Error, Result};
use crate::stats::Counters;
use pool::{Pool, size_class};

/// Invocations per workgroup used by tandem's shaders (`WG` in the WGSL).
pub const WORKGROUP_SIZE: u32 = 256;

/// Storage binding offsets are multiples of this many bytes
/// (`min_storage_buffer_offset_alignment` is at most 256 on every device).
pub const OFFSET_ALIGN: usize = 256;

/// The binding of elements `start..end` of an array of `size`-byte
/// elements, for a kernel that moves in blocks: the byte range from `start`
/// aligned down to [`OFFSET_ALIGN`], and `start`'s offset in elements from
/// the range's first element, which the shader adds back. The range is at
/// most `OFFSET_ALIGN / size - 1` elements longer than the block.
pub fn aligned_window(start: usize, end: usize, size: usize) -> (Range<u64>, u32) {
    let align = OFFSET_ALIGN / size;
    let first = start - start % align;
    let bytes = |e: usize| (e * size) as u64;
    (bytes(first)..bytes(end), (start - first) as u32)
}

/// Chunks of an input are a multiple of this many bytes, which keeps binding
/// offsets aligned on every device (`min_storage_buffer_offset_alignment` is
/// at most 256) and whole reduction tiles inside one chunk.
const CHUNK_ALIGN_BYTES: u64 = 64 * 1024;

/// Default bound on bytes kept in the buffer pool's free lists.
pub(crate) const DEFAULT_POOL_BYTES: u64 = 512 << 20;

/// Default time any wait on the GPU may take before [`Error::Timeout`].
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

static NEXT_CONTEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Pause between non-blocking polls while a rayon worker waits on the GPU.
const WORKER_POLL_INTERVAL: Duration = Duration::from_micros(20);

/// Whether this thread is a rayon worker, which must never block inside
/// wgpu (`poll(Wait)`, `block_on`): work stealing can deadlock through it.
fn on_rayon_worker() -> bool {
    rayon::current_thread_index().is_some()
}

/// The value of a future that native wgpu resolves at once (error scopes),
/// without `block_on` where that is avoidable.
fn resolve<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => pollster::block_on(f),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent, so a panic on
    // another thread does not make the data unusable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Description of the GPU an engine uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuInfo {
    /// Adapter name, e.g. `NVIDIA H100` or `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Graphics API wgpu drives it through (`Vulkan`, `Metal`, ...).
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `Cpu` (a software driver), ...
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Whether this is a software rasterizer (timings say nothing about GPUs).
    pub is_software: bool,
    /// Largest single buffer, bytes.
    pub max_buffer_bytes: u64,
    /// Largest storage-buffer binding, bytes.
    pub max_binding_bytes: u64,
    /// Bytes tandem binds at once: inputs larger than this are chunked.
    pub chunk_bytes: u64,
    /// Workgroups per dispatch dimension.
    pub max_workgroups_per_dimension: u32,
    /// Invocations per workgroup.
    pub max_invocations_per_workgroup: u32,
    /// Storage buffers one shader may bind (an expression kernel binds one
    /// per array input and output).
    pub max_storage_buffers_per_stage: u32,
    /// The optional adapter features tandem uses on this device: what the
    /// adapter has, less what [`EngineBuilder::gpu_features`] masked.
    ///
    /// [`EngineBuilder::gpu_features`]: crate::EngineBuilder::gpu_features
    pub features: GpuFeatures,
    /// Smallest and largest subgroup size the adapter reports (lavapipe 8,
    /// NVIDIA 32, AMD 32 or 64); shaders never assume one.
    pub subgroup_sizes: (u32, u32),
}

/// Optional GPU features: which of them the adapter has, or (as a mask
/// given to [`EngineBuilder::gpu_features`]) which tandem may use. Kernels
/// have a path without each, so masking one exercises the fallback on a
/// GPU that has it.
///
/// ```
/// use tandem::{Engine, GpuFeatures};
/// // Run the workgroup-memory fallbacks even where subgroups exist.
/// let engine = Engine::builder()
///     .gpu_features(GpuFeatures::ALL.with_subgroups(false))
///     .build()?;
/// # Ok::<(), tandem::Error>(())
/// ```
///
/// [`EngineBuilder::gpu_features`]: crate::EngineBuilder::gpu_features
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct GpuFeatures {
    /// Subgroup operations (wgpu `Features::SUBGROUP`): the reductions'
    /// workgroup trees become `subgroupAdd`/`subgroupMin`/`subgroupMax`.
    pub subgroups: bool,
    /// f64 in shaders: wgpu `Features::SHADER_F64` with `SHADER_INT64`
    /// (the shaders read an f64's bits as a `u64`). Vulkan drivers that
    /// report `shaderFloat64` and `shaderInt64` have both: NVIDIA's, AMD's,
    /// Intel's discrete GPUs and lavapipe; Metal and most mobile GPUs do
    /// not. Without it every f64 call on the GPU
    /// returns [`Error::Unsupported`] naming the feature, and
    /// [`Backend::Auto`](crate::Backend::Auto) runs it on the CPU.
    pub f64: bool,
    /// Device-side timestamps (wgpu `Features::TIMESTAMP_QUERY`): with it,
    /// [`Gpu::set_timing`] times every compute pass on the device. lavapipe
    /// has it; [`GpuInfo`]'s display says whether an adapter does.
    pub timestamps: bool,
}

impl GpuFeatures {
    /// Every feature (the default mask).
    pub const ALL: GpuFeatures = GpuFeatures {
        subgroups: true,
        f64: true,
        timestamps: true,
    };
    /// None: every kernel takes its fallback path.
    pub const NONE: GpuFeatures = GpuFeatures {
        subgroups: false,
        f64: false,
        timestamps: false,
    };

    /// This set with subgroups on or off.
    pub const fn with_subgroups(mut self, on: bool) -> GpuFeatures {
        self.subgroups = on;
        self
    }

    /// This set with f64 shaders on or off.
    pub const fn with_f64(mut self, on: bool) -> GpuFeatures {
        self.f64 = on;
        self
    }

    /// This set with device-side timestamps on or off.
    pub const fn with_timestamps(mut self, on: bool) -> GpuFeatures {
        self.timestamps = on;
        self
    }

    fn wgpu(self) -> wgpu::Features {
        let mut f = wgpu::Features::empty();
        if self.subgroups {
            f |= wgpu::Features::SUBGROUP;
        }
        if self.f64 {
            f |= wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64;
        }
        if self.timestamps {
            f |= wgpu::Features::TIMESTAMP_QUERY;
        }
        f
    }

    fn from_wgpu(f: wgpu::Features) -> GpuFeatures {
        GpuFeatures {
            subgroups: f.contains(wgpu::Features::SUBGROUP),
            f64: f.contains(wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64),
            timestamps: f.contains(wgpu::Features::TIMESTAMP_QUERY),
        }
    }
}

impl Default for GpuFeatures {
    fn default() -> GpuFeatures {
        GpuFeatures::ALL
    }
}

impl fmt::Display for GpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.subgroups {
            "subgroups"
        } else {
            "no subgroups"
        })?;
        f.write_str(if self.f64 { ", f64" } else { ", no f64" })
    }
}

impl fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}{}, driver {}); max buffer {} MiB, max binding {} MiB, chunk {} MiB, \
             {} workgroups/dim, {} invocations/workgroup, {}",
            self.name,
            self.backend,
            self.device_type,
            if self.is_software { ", software" } else { "" },
            if self.driver.is_empty() {
                "?"
            } else {
                &self.driver
            },
            self.max_buffer_bytes >> 20,
            self.max_binding_bytes >> 20,
            self.chunk_bytes >> 20,
            self.max_workgroups_per_dimension,
            self.max_invocations_per_workgroup,
            if self.features.subgroups {
                format!(
                    "subgroups of {}-{}",
                    self.subgroup_sizes.0, self.subgroup_sizes.1
                )
            } else {
                "no subgroups".to_string()
            },
        )?;
        f.write_str(if self.features.f64 {
            ", f64"
        } else {
            ", no f64"
        })?;
        f.write_str(if self.features.timestamps {
            ", timestamps"
        } else {
            ", no timestamps"
        })
    }
}

/// Live wgpu resources of a device (see [`Gpu::resource_counts`]). Zero on
/// backends that do not count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceCounts {
    /// Buffers.
    pub buffers: isize,
    /// Bytes of buffer memory.
    pub buffer_memory: isize,
    /// Bind groups.
    pub bind_groups: isize,
    /// Compute pipelines.
    pub compute_pipelines: isize,
    /// Shader modules.
    pub shader_modules: isize,
    /// Command encoders.
    pub command_encoders: isize,
    /// Buffers tandem has created on this device since it was made (device
    /// copies the pool could not supply, readback staging, uniform ring
    /// growth): a count that stops rising once allocations are reused.
    pub buffers_created: u64,
}

/// Options for creating the GPU context.
#[derive(Clone, Debug)]
pub(crate) struct GpuConfig {
    pub(crate) adapter: Option<String>,
    pub(crate) chunk_bytes: Option<u64>,
    pub(crate) timeout: Duration,
    pub(crate) pool_bytes: u64,
    pub(crate) features: GpuFeatures,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct PipelineKey {
    label: &'static str,
    entry: &'static str,
    element: Option<ElementType>,
    constants: Vec<(&'static str, u64)>,
    source_hash: u64,
}

struct Shared {
    id: u64,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: GpuInfo,
    /// The adapter has SHADER_F64 but the features mask turned it off.
    masked_f64: bool,
    timeout: Duration,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    pool: Mutex<Pool>,
    /// One buffer every dispatch's uniforms go into; held locked from the
    /// first write of a submission to its `queue.submit`.
    uniforms: Mutex<UniformRing>,
    /// Buffers created on this device so far (device copies, readback
    /// staging, uniform ring growth).
    buffers_created: AtomicU64,
    /// Readback staging buffers kept for reuse, by size class.
    staging: Mutex<Vec<(u64, wgpu::Buffer)>>,
    /// Device-side pass timings, while [`Gpu::set_timing`] has them on;
    /// held locked from a pass's encoding to its `queue.submit`.
    timer: Mutex<Timer>,
    counters: Arc<Counters>,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Vec<String>>>,
}

/// Device-side timestamps of [`Gpu::submit`]'s compute passes: pass `i`
/// since the last [`Gpu::take_device_time`] writes its begin and end
/// timestamps into queries `2i`, `2i + 1` and resolves them into the
/// buffer at `i · QUERY_RESOLVE_BUFFER_ALIGNMENT`.
#[derive(Default)]
struct Timer {
    on: bool,
    /// The query set and its resolve buffer, made when timing is first
    /// turned on.
    queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
    /// Passes recorded since the last take.
    used: u32,
    /// Passes not recorded since the last take: the set was full.
    missed: u32,
}

/// Passes [`Timer`] records between two takes.
const TIMER_PASSES: u32 = 256;

/// Readback staging buffers kept for reuse: at most this many...
const STAGING_KEPT: usize = 16;
/// ...and this many bytes.
const STAGING_KEPT_BYTES: u64 = 64 << 20;

/// The uniform buffer of [`Gpu::submit`]: each submission writes its
/// dispatches' parameters from offset 0, one aligned slot each, and binds
/// slices of it. Reusing it is safe because `queue.write_buffer` is ordered
/// after the work already submitted that reads it; it grows (a new, larger
/// buffer) only when one submission needs more slots than it has, so in
/// steady state a dispatch allocates no buffer.
#[derive(Default)]
struct UniformRing {
    buffer: Option<wgpu::Buffer>,
    capacity: u64,
}

impl Shared {
    fn check_lost(&self, kernel: &'static str) -> Result<()> {
        match &*lock(&self.lost) {
            Some(reason) => Err(Error::DeviceLost {
                kernel,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn mark_lost(&self, reason: String) {
        let mut lost = lock(&self.lost);
        if lost.is_none() {
            *lost = Some(reason);
        }
    }

    /// Polls without blocking until `done` says so, the device is lost, or
    /// the timeout passes: how a rayon worker waits.
    fn spin(
        &self,
        kernel: &'static str,
        mut done: impl FnMut(wgpu::PollStatus) -> bool,
    ) -> Result<()> {
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.device.poll(wgpu::PollType::Poll))) {
                Ok(Ok(status)) => {
                    if done(status) {
                        return self.check_lost(kernel);
                    }
                }
                Ok(Err(e)) => {
                    return Err(Error::Gpu {
                        kernel,
                        message: e.to_string(),
                    });
                }
                Err(_) => self.mark_lost("wgpu panicked while polling the device".into()),
            }
            self.check_lost(kernel)?;
            if std::time::Instant::now() > deadline {
                return Err(Error::Timeout {
                    kernel,
                    seconds: self.timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(WORKER_POLL_INTERVAL);
        }
    }

    /// `Device::poll` can panic inside wgpu-core on a lost device: contain it.
    /// On a rayon worker, spins on non-blocking polls instead of waiting.
    fn poll(&self, kernel: &'static str, submission: Option<wgpu::SubmissionIndex>) -> Result<()> {
        if on_rayon_worker() {
            return self.spin(kernel, |status| status.is_queue_empty());
        }
        let wait = wgpu::PollType::Wait {
            submission_index: submission,
            timeout: Some(self.timeout),
        };
        let result = catch_unwind(AssertUnwindSafe(|| self.device.poll(wait)));
        match result {
            Ok(Ok(_)) => self.check_lost(kernel),
            Ok(Err(wgpu::PollError::Timeout)) => {
                self.check_lost(kernel)?;
                Err(Error::Timeout {
                    kernel,
                    seconds: self.timeout.as_secs_f64(),
                })
            }
            Ok(Err(e)) => Err(Error::Gpu {
                kernel,
                message: e.to_string(),
            }),
            Err(_) => {
                self.mark_lost("wgpu panicked while polling the device".into());
                self.check_lost(kernel)
            }
        }
    }

    fn alloc(self: &Arc<Self>, kernel: &'static str, bytes: u64) -> Result<DeviceCopy> {
        self.check_lost(kernel)?;
        if bytes > self.info.max_buffer_bytes {
            return Err(Error::TooLarge {
                kernel,
                bytes,
                limit: self.info.max_buffer_bytes,
                what: "max_buffer_size",
            });
        }
        let class = size_class(bytes).min(self.info.max_buffer_bytes.max(bytes));
        let pooled = lock(&self.pool).take(class);
        let buf = match pooled {
            Some(buf) => buf,
            None => {
                let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
                self.buffers_created.fetch_add(1, Ordering::Relaxed);
                let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tandem"),
                    size: class,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                if resolve(scope.pop()).is_some() {
                    // The pool may hold memory the allocation needs.
                    lock(&self.pool).clear();
                    return Err(Error::OutOfMemory { kernel, bytes });
                }
                lock(&self.pool).note_new(class);
                buf
            }
        };
        Ok(DeviceCopy {
            buf: Some(buf),
            class,
            bytes,
            shared: Arc::clone(self),
        })
    }

    fn read_bytes(
        &self,
        kernel: &'static str,
        src: &wgpu::Buffer,
        range: Range<u64>,
    ) -> Result<Vec<u8>> {
        self.check_lost(kernel)?;
        let len = range.end - range.start;
        if len == 0 {
            return Ok(Vec::new());
        }
        let class = size_class(len).min(self.info.max_buffer_bytes.max(len));
        let reused = {
            let mut kept = lock(&self.staging);
            kept.iter()
                .position(|(c, _)| *c == class)
                .map(|i| kept.swap_remove(i).1)
        };
        let staging = reused.unwrap_or_else(|| {
            self.buffers_created.fetch_add(1, Ordering::Relaxed);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tandem readback"),
                size: class,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.copy_buffer_to_buffer(src, range.start, &staging, 0, len);
        let index = self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging
            .slice(..len)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        let mapped = if on_rayon_worker() {
            // Other threads may keep the queue busy: wait for our own callback.
            let mut got = None;
            self.spin(kernel, |_| {
                got = rx.try_recv().ok();
                got.is_some()
            })?;
            got.expect("spin returns Ok only once the callback ran")
        } else {
            self.poll(kernel, Some(index))?;
            rx.recv_timeout(self.timeout).map_err(|_| Error::Timeout {
                kernel,
                seconds: self.timeout.as_secs_f64(),
            })?
        };
        mapped.map_err(|e| Error::Gpu {
            kernel,
            message: format!("mapping the readback buffer failed: {e}"),
        })?;
        let out = {
            let view = staging
                .slice(..len)
                .get_mapped_range()
                .map_err(|e| Error::Gpu {
                    kernel,
                    message: format!("reading the mapped buffer failed: {e}"),
                })?;
            view.to_vec()
        };
        staging.unmap();
        // Kept for the next readback of this size class, within a bound
        // (a buffer dropped on an error path above may still be mapping).
        let mut kept = lock(&self.staging);
        let bytes: u64 = kept.iter().map(|(c, _)| c).sum();
        if kept.len() < STAGING_KEPT && bytes + class <= STAGING_KEPT_BYTES {
            kept.push((class, staging));
        }
        drop(kept);
        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_downloaded
            .fetch_add(len, Ordering::Relaxed);
        Ok(out)
    }
}

/// A device-resident array: one pooled wgpu buffer holding a [`Buffer`]'s
/// device copy. Returned to the pool when the last reference goes.
pub struct DeviceCopy {
    buf: Option<wgpu::Buffer>,
    class: u64,
    bytes: u64,
    shared: Arc<Shared>,
}

impl DeviceCopy {
    /// The wgpu buffer (its size may exceed [`DeviceCopy::bytes`]: bind
    /// ranges, not the whole buffer).
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buf.as_ref().expect("present until drop")
    }

    /// Bytes of data held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Which GPU context (engine) holds this copy.
    pub(crate) fn context_id(&self) -> u64 {
        self.shared.id
    }

    pub(crate) fn download<T: Element>(&self, len: usize) -> Result<Vec<T>> {
        let bytes = (len * size_of::<T>()) as u64;
        let raw = self
            .shared
            .read_bytes("download", self.buffer(), 0..bytes)?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }
}

impl Drop for DeviceCopy {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            lock(&self.shared.pool).give_back(self.class, buf);
        }
    }
}

impl fmt::Debug for DeviceCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCopy")
            .field("bytes", &self.bytes)
            .field("context", &self.shared.id)
            .finish()
    }
}

/// A compute shader to build (or fetch from the cache).
#[derive(Clone, Copy, Debug)]
pub struct ShaderSpec<'a> {
    /// Cache key and debug label: the shader's file stem, e.g. `"map"`.
    pub label: &'static str,
    /// WGSL source.
    pub source: &'a str,
    /// Entry point.
    pub entry: &'static str,
    /// When set, the line `alias T = f32;` in the source is rewritten to this
    /// type, so one shader serves every element type.
    pub element: Option<ElementType>,
    /// Values for the shader's `override` constants.
    pub constants: &'a [(&'static str, f64)],
}

/// One binding of a dispatch, in bind group 0.
#[derive(Clone, Debug)]
pub enum Bind<'a> {
    /// A uniform buffer with these bytes (created per dispatch; keep it small).
    Uniform(&'a [u8]),
    /// A byte range of a device copy as a storage buffer.
    Storage {
        /// The device copy.
        copy: &'a DeviceCopy,
        /// Byte range to bind (non-empty, 4-byte multiple, offset aligned).
        range: Range<u64>,
    },
}

impl<'a> Bind<'a> {
    /// [`Bind::Storage`]: the byte range `range` of `copy`.
    pub fn storage(copy: &'a DeviceCopy, range: Range<u64>) -> Self {
        Bind::Storage { copy, range }
    }
}

/// One compute dispatch: a pipeline, its bindings and a workgroup count.
#[derive(Clone, Copy, Debug)]
pub struct Dispatch<'a> {
    /// The pipeline, from [`Gpu::pipeline`].
    pub pipeline: &'a wgpu::ComputePipeline,
    /// `(binding, resource)` pairs of bind group 0.
    pub bindings: &'a [(u32, Bind<'a>)],
    /// Workgroups to launch. Counts above the per-dimension limit are folded
    /// into 2-D: the shader computes its linear workgroup index as
    /// `wid.x + wid.y * num_workgroups.x` and must ignore indices past the end.
    pub workgroups: u32,
}

impl<'a> Dispatch<'a> {
    /// One dispatch of `pipeline` over `bindings` with `workgroups`.
    pub const fn new(
        pipeline: &'a wgpu::ComputePipeline,
        bindings: &'a [(u32, Bind<'a>)],
        workgroups: u32,
    ) -> Dispatch<'a> {
        Dispatch {
            pipeline,
            bindings,
            workgroups,
        }
    }

    /// One dispatch of `pipeline` per binding list of `bindings`, each with
    /// the matching count of `workgroups`.
    pub fn each<B: AsRef<[(u32, Bind<'a>)]>>(
        pipeline: &'a wgpu::ComputePipeline,
        bindings: &'a [B],
        workgroups: impl IntoIterator<Item = u32>,
    ) -> Vec<Dispatch<'a>> {
        bindings
            .iter()
            .zip(workgroups)
            .map(|(b, workgroups)| Dispatch {
                pipeline,
                bindings: b.as_ref(),
                workgroups,
            })
            .collect()
    }
}

/// The GPU backend handle a kernel's [`run_gpu`](crate::Kernel::run_gpu)
/// receives. Cheap to clone.
#[derive(Clone)]
pub struct Gpu {
    shared: Arc<Shared>,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu")
            .field("info", &self.shared.info)
            .finish()
    }
}

fn device_type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

impl Gpu {
    /// Finds an adapter and opens a device. On failure returns why, in words.
    pub(crate) fn create(
        config: &GpuConfig,
        counters: Arc<Counters>,
    ) -> std::result::Result<Gpu, String> {
        match catch_unwind(AssertUnwindSafe(|| Gpu::create_inner(config, counters))) {
            Ok(r) => r,
            Err(_) => Err("the GPU driver panicked while opening a device".into()),
        }
    }

    fn create_inner(
        config: &GpuConfig,
        counters: Arc<Counters>,
    ) -> std::result::Result<Gpu, String> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = desc.backends;
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        if adapters.is_empty() {
            return Err(
                "no GPU adapter found: install your GPU's Vulkan driver, or \
                        `apt-get install mesa-vulkan-drivers` for a software one (lavapipe)"
                    .into(),
            );
        }
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        let mut candidates: Vec<&wgpu::Adapter> = match &config.adapter {
            Some(want) => {
                let want = want.to_lowercase();
                adapters
                    .iter()
                    .filter(|a| a.get_info().name.to_lowercase().contains(&want))
                    .collect()
            }
            None => adapters.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(format!(
                "no adapter name contains {:?}; found: {}",
                config.adapter.as_deref().unwrap_or(""),
                names.join(", ")
            ));
        }
        candidates.sort_by_key(|a| {
            let i = a.get_info();
            (device_type_rank(i.device_type), backend_rank(i.backend))
        });
        let adapter = candidates[0];
        let limits = adapter.limits();
        // The optional features the adapter has and the mask allows.
        let features = adapter.features() & config.features.wgpu();
        let f64_features = wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64;
        let masked_f64 =
            adapter.features().contains(f64_features) && !features.contains(f64_features);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tandem"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| format!("adapter {} refused a device: {e}", adapter.get_info().name))?;

        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut v = lock(&sink);
            if v.len() < 64 {
                v.push(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            let mut l = lock(&lost_flag);
            if l.is_none() {
                let what = match reason {
                    wgpu::DeviceLostReason::Destroyed => "the device was destroyed",
                    _ => "the driver lost the device",
                };
                *l = Some(if message.is_empty() {
                    what.to_string()
                } else {
                    format!("{what}: {message}")
                });
            }
        });

        let info = adapter.get_info();
        let device_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let chunk = config.chunk_bytes.unwrap_or(device_limit).min(device_limit);
        let chunk = (chunk / CHUNK_ALIGN_BYTES).max(1) * CHUNK_ALIGN_BYTES;
        let info = GpuInfo {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: [info.driver.as_str(), info.driver_info.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            is_software: info.device_type == wgpu::DeviceType::Cpu,
            max_buffer_bytes: limits.max_buffer_size,
            max_binding_bytes: limits.max_storage_buffer_binding_size,
            chunk_bytes: chunk,
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
            features: GpuFeatures::from_wgpu(features),
            subgroup_sizes: {
                let i = adapter.get_info();
                (i.subgroup_min_size, i.subgroup_max_size)
            },
        };
        Ok(Gpu {
            shared: Arc::new(Shared {
                id: NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed),
                device,
                queue,
                info,
                masked_f64,
                timeout: config.timeout,
                pipelines: Mutex::new(HashMap::new()),
                pool: Mutex::new(Pool::new(config.pool_bytes)),
                uniforms: Mutex::new(UniformRing::default()),
                buffers_created: AtomicU64::new(0),
                staging: Mutex::new(Vec::new()),
                timer: Mutex::new(Timer::default()),
                counters,
                lost,
                uncaptured,
            }),
        })
    }

    /// The adapter and its limits.
    pub fn info(&self) -> &GpuInfo {
        &self.shared.info
    }

    /// The wgpu device, for kernels that need more than these helpers.
    pub fn device(&self) -> &wgpu::Device {
        &self.shared.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.shared.queue
    }

    /// Identity of this GPU context (device copies record it).
    pub(crate) fn context_id(&self) -> u64 {
        self.shared.id
    }

    /// Whether the device is lost.
    pub fn is_lost(&self) -> bool {
        lock(&self.shared.lost).is_some()
    }

    /// Why the device is lost, if it is.
    pub fn lost_reason(&self) -> Option<String> {
        lock(&self.shared.lost).clone()
    }

    /// Live wgpu resources of this device, from wgpu's internal counters:
    /// what a long run must keep bounded.
    pub fn resource_counts(&self) -> ResourceCounts {
        let c = self.shared.device.get_internal_counters().hal;
        ResourceCounts {
            buffers: c.buffers.read(),
            buffer_memory: c.buffer_memory.read(),
            bind_groups: c.bind_groups.read(),
            compute_pipelines: c.compute_pipelines.read(),
            shader_modules: c.shader_modules.read(),
            command_encoders: c.command_encoders.read(),
            buffers_created: self.shared.buffers_created.load(Ordering::Relaxed),
        }
    }

    /// Bytes held by live device copies and by the pool's free lists.
    pub fn pool_bytes(&self) -> (u64, u64) {
        let p = lock(&self.shared.pool);
        (p.live, p.retained)
    }

    /// Runs `f` inside wgpu error scopes for out-of-memory, validation and
    /// internal errors, and turns what they catch into an [`Error`] naming
    /// `kernel`. Errors that escaped any scope (recorded by the engine's
    /// uncaptured-error handler) are reported too. Fails at once with
    /// [`Error::DeviceLost`] on a lost device.
    pub fn scoped<R>(&self, kernel: &'static str, f: impl FnOnce() -> Result<R>) -> Result<R> {
        self.shared.check_lost(kernel)?;
        let device = &self.shared.device;
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        // wgpu panics in a few paths on a lost device; contain them.
        let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(Error::Gpu {
                kernel,
                message: format!("panicked inside the GPU call: {what}"),
            })
        });
        let internal = resolve(internal.pop());
        let validation = resolve(validation.pop());
        let oom = resolve(oom.pop());
        let escaped: Vec<String> = std::mem::take(&mut *lock(&self.shared.uncaptured));
        let failed = result.is_err()
            || oom.is_some()
            || validation.is_some()
            || internal.is_some()
            || !escaped.is_empty();
        if failed {
            // A lost device reports itself in a callback run by `poll`: run
            // one, so the error names the loss rather than its symptoms.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                self.shared.device.poll(wgpu::PollType::Poll)
            }));
        }
        self.shared.check_lost(kernel)?;
        if oom.is_some() {
            // The pool may hold memory a retry needs.
            lock(&self.shared.pool).clear();
            return Err(Error::OutOfMemory { kernel, bytes: 0 });
        }
        if let Some(e) = validation.or(internal) {
            return Err(Error::Gpu {
                kernel,
                message: e.to_string(),
            });
        }
        if !escaped.is_empty() {
            return Err(Error::Gpu {
                kernel,
                message: escaped.join("; "),
            });
        }
        result
    }

    /// `Ok` when this device runs shaders on element type `t`; for f64
    /// without [`GpuFeatures::f64`], [`Error::Unsupported`] naming the
    /// feature (so [`Backend::Auto`](crate::Backend::Auto) runs the call on
    /// the CPU).
    pub fn check_element(&self, kernel: &'static str, t: ElementType) -> Result<()> {
        if t == ElementType::F64 && !self.shared.info.features.f64 {
            return Err(Error::Unsupported {
                kernel,
                backend: crate::kernel::Backend::Gpu,
                reason: format!(
                    "f64 needs the SHADER_F64 and SHADER_INT64 adapter features, which {} {}",
                    self.shared.info.name,
                    if self.shared.masked_f64 {
                        "has but the engine's gpu_features mask turned off"
                    } else {
                        "lacks (run on the CPU, or on Backend::Auto)"
                    }
                ),
            });
        }
        Ok(())
    }

    /// The compute pipeline for `spec`, compiled once per engine and cached.
    pub fn pipeline(&self, spec: &ShaderSpec<'_>) -> Result<wgpu::ComputePipeline> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        spec.source.hash(&mut h);
        let key = PipelineKey {
            label: spec.label,
            entry: spec.entry,
            element: spec.element,
            constants: spec
                .constants
                .iter()
                .map(|&(k, v)| (k, v.to_bits()))
                .collect(),
            source_hash: h.finish(),
        };
        if let Some(p) = lock(&self.shared.pipelines).get(&key) {
            return Ok(p.clone());
        }
        if let Some(t) = spec.element {
            self.check_element(spec.label, t)?;
        }
        let source = prepare_with(spec.source, spec.element, self.shared.info.features).map_err(
            |message| Error::Gpu {
                kernel: spec.label,
                message,
            },
        )?;
        let device = &self.shared.device;
        let pipeline = self.scoped(spec.label, || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(spec.label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            Ok(
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(spec.label),
                    layout: None,
                    module: &module,
                    entry_point: Some(spec.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: spec.constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                }),
            )
        })?;
        self.shared
            .counters
            .pipelines_compiled
            .fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.pipelines).insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// The current device copy of `buf` on this GPU, uploading the host copy
    /// first if there is none (once: the buffer keeps it).
    pub fn resident<T: Element>(
        &self,
        kernel: &'static str,
        buf: &Buffer<T>,
    ) -> Result<Arc<DeviceCopy>> {
        if let Some(d) = buf.device_copy()
            && d.context_id() == self.shared.id
        {
            return Ok(d);
        }
        let host = buf.host()?;
        let copy = Arc::new(self.upload(kernel, &host)?);
        buf.attach_device_copy(Arc::clone(&copy), &host);
        Ok(copy)
    }

    /// Uploads `data` into a new device copy.
    pub fn upload<T: Element>(&self, kernel: &'static str, data: &[T]) -> Result<DeviceCopy> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let copy = self.shared.alloc(kernel, bytes.len() as u64)?;
        if !bytes.is_empty() {
            self.shared.queue.write_buffer(copy.buffer(), 0, bytes);
            self.shared.counters.uploads.fetch_add(1, Ordering::Relaxed);
            self.shared
                .counters
                .bytes_uploaded
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        Ok(copy)
    }

    /// A device allocation for `len` elements of `T` (contents unspecified).
    pub fn alloc<T: Element>(&self, kernel: &'static str, len: usize) -> Result<DeviceCopy> {
        let bytes = (len as u64)
            .checked_mul(size_of::<T>() as u64)
            .ok_or(Error::TooLarge {
                kernel,
                bytes: u64::MAX,
                limit: self.shared.info.max_buffer_bytes,
                what: "max_buffer_size",
            })?;
        self.shared.alloc(kernel, bytes)
    }

    /// A device allocation of `bytes` bytes (contents unspecified): scratch
    /// space such as a reduction's partials.
    pub fn alloc_bytes(&self, kernel: &'static str, bytes: u64) -> Result<DeviceCopy> {
        self.shared.alloc(kernel, bytes)
    }

    /// Copies a byte range of a device copy to the host.
    pub fn read_bytes(
        &self,
        kernel: &'static str,
        copy: &DeviceCopy,
        range: Range<u64>,
    ) -> Result<Vec<u8>> {
        self.shared.read_bytes(kernel, copy.buffer(), range)
    }

    /// Wraps a device copy holding `len` elements as a device-resident
    /// [`Buffer`] (a kernel's output).
    pub fn into_buffer<T: Element>(&self, copy: DeviceCopy, len: usize) -> Buffer<T> {
        Buffer::from_device(Arc::new(copy), len)
    }

    /// Splits `0..len` elements of `T` into ranges that each fit one storage
    /// binding (see [`GpuInfo::chunk_bytes`]). Empty for `len == 0`.
    pub fn chunks<T: Element>(&self, len: usize) -> Vec<Range<usize>> {
        let per = (self.shared.info.chunk_bytes / size_of::<T>() as u64) as usize;
        (0..len)
            .step_by(per.max(1))
            .map(|s| s..(s + per).min(len))
            .collect()
    }

    /// Runs an elementwise `pipeline` over `n` elements of `T`, one dispatch
    /// per [`chunks`](Self::chunks) chunk: binding 0 is that chunk's
    /// uniform from `uniform(chunk)`, each `(binding, copy)` of `arrays` is
    /// bound over the chunk's bytes, and the chunk gets
    /// one thread per element in workgroups of [`WORKGROUP_SIZE`].
    pub fn submit_elementwise<T: Element, U: bytemuck::Pod>(
        &self,
        kernel: &'static str,
        pipeline: &wgpu::ComputePipeline,
        n: usize,
        arrays: &[(u32, &DeviceCopy)],
        uniform: impl Fn(Range<usize>) -> U,
    ) -> Result<()> {
        let size = size_of::<T>() as u64;
        let chunks = self.chunks::<T>(n);
        let uniforms: Vec<U> = chunks.iter().cloned().map(uniform).collect();
        let bindings: Vec<Vec<(u32, Bind<'_>)>> = chunks
            .iter()
            .zip(&uniforms)
            .map(|(c, u)| {
                let range = c.start as u64 * size..c.end as u64 * size;
                let mut b = vec![(0, Bind::Uniform(bytemuck::bytes_of(u)))];
                for &(slot, copy) in arrays {
                    b.push((slot, Bind::storage(copy, range.clone())));
                }
                b
            })
            .collect();
        let groups = chunks
            .iter()
            .map(|c| (c.len() as u32).div_ceil(WORKGROUP_SIZE));
        self.submit(kernel, &Dispatch::each(pipeline, &bindings, groups))
    }

    /// Encodes `dispatches` in order into one compute pass and submits it.
    /// Does not wait: later submissions and readbacks see the results.
    /// Zero-workgroup dispatches are skipped. Call inside [`Gpu::scoped`].
    pub fn submit(&self, kernel: &'static str, dispatches: &[Dispatch<'_>]) -> Result<()> {
        let device = &self.shared.device;
        let max = self.shared.info.max_workgroups_per_dimension.max(1);
        let mut folded = Vec::with_capacity(dispatches.len());
        for d in dispatches.iter().filter(|d| d.workgroups > 0) {
            let (x, y) = fold_workgroups(d.workgroups, max);
            if y > max {
                return Err(Error::TooLarge {
                    kernel,
                    bytes: u64::from(d.workgroups) * u64::from(WORKGROUP_SIZE),
                    limit: u64::from(max) * u64::from(max) * u64::from(WORKGROUP_SIZE),
                    what: "workgroups per dispatch",
                });
            }
            folded.push((d, x, y));
        }
        if folded.is_empty() {
            return Ok(());
        }
        // Every uniform of the submission, one aligned slot each, written
        // into the ring in one call.
        let align = u64::from(device.limits().min_uniform_buffer_offset_alignment).max(16);
        let mut params: Vec<u8> = Vec::new();
        let mut slots: Vec<Vec<(u32, u64, u64)>> = Vec::with_capacity(folded.len());
        for (d, _, _) in &folded {
            let mut mine = Vec::new();
            for (slot, b) in d.bindings.iter() {
                if let Bind::Uniform(bytes) = b {
                    let size = (bytes.len() as u64).div_ceil(16).max(1) * 16;
                    let offset = (params.len() as u64).div_ceil(align) * align;
                    params.resize(offset as usize, 0);
                    params.extend_from_slice(bytes);
                    params.resize((offset + size) as usize, 0);
                    mine.push((*slot, offset, size));
                }
            }
            slots.push(mine);
        }
        let mut ring = lock(&self.shared.uniforms);
        if !params.is_empty() && ring.capacity < params.len() as u64 {
            // Not `create_buffer_init`: it maps at creation and panics when
            // the device is lost. A plain buffer filled by the queue fails.
            let capacity = (params.len() as u64).next_power_of_two().max(64 * 1024);
            self.shared.buffers_created.fetch_add(1, Ordering::Relaxed);
            ring.buffer = Some(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tandem params"),
                size: capacity,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            ring.capacity = capacity;
        }
        if let (false, Some(buf)) = (params.is_empty(), &ring.buffer) {
            self.shared.queue.write_buffer(buf, 0, &params);
        }
        let mut groups = Vec::with_capacity(folded.len());
        for ((d, x, y), mine) in folded.iter().zip(&slots) {
            let entries: Vec<wgpu::BindGroupEntry<'_>> = d
                .bindings
                .iter()
                .map(|(slot, b)| wgpu::BindGroupEntry {
                    binding: *slot,
                    resource: match b {
                        Bind::Uniform(_) => {
                            let &(_, offset, size) = mine
                                .iter()
                                .find(|(s, _, _)| s == slot)
                                .expect("a slot for every uniform, made above");
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: ring.buffer.as_ref().expect("made above"),
                                offset,
                                size: std::num::NonZeroU64::new(size),
                            })
                        }
                        Bind::Storage { copy, range } => {
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: copy.buffer(),
                                offset: range.start,
                                size: std::num::NonZeroU64::new(range.end - range.start),
                            })
                        }
                    },
                })
                .collect();
            let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel),
                layout: &d.pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            groups.push((d.pipeline, group, *x, *y));
        }
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some(kernel),
        });
        // With timing on, the pass's timestamps go into the next free pair
        // of queries, resolved in the same command buffer.
        let mut timer = lock(&self.shared.timer);
        let timed = match (timer.on, &timer.queries) {
            (true, Some((set, resolve))) if timer.used < TIMER_PASSES => {
                Some((set.clone(), resolve.clone(), timer.used))
            }
            _ => None,
        };
        if timer.on {
            match timed {
                Some(_) => timer.used += 1,
                None => timer.missed += 1,
            }
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel),
                timestamp_writes: timed.as_ref().map(|(set, _, i)| {
                    wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(2 * i),
                        end_of_pass_write_index: Some(2 * i + 1),
                    }
                }),
            });
            for (pipeline, group, x, y) in &groups {
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(*x, *y, 1);
            }
        }
        if let Some((set, resolve, i)) = &timed {
            let at = u64::from(*i) * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;
            encoder.resolve_query_set(set, 2 * i..2 * i + 2, resolve, at);
        }
        self.shared.queue.submit([encoder.finish()]);
        drop(timer);
        drop(ring);
        self.shared
            .counters
            .gpu_dispatches
            .fetch_add(groups.len() as u64, Ordering::Relaxed);
        // Let wgpu free resources of finished work without blocking.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.shared.device.poll(wgpu::PollType::Poll)
        }));
        Ok(())
    }

    /// Copies `range` (in elements of `T`) of a device copy to the host,
    /// waiting at most the engine's timeout.
    pub fn read<T: Element>(
        &self,
        kernel: &'static str,
        copy: &DeviceCopy,
        range: Range<usize>,
    ) -> Result<Vec<T>> {
        let size = size_of::<T>() as u64;
        let raw = self.shared.read_bytes(
            kernel,
            copy.buffer(),
            range.start as u64 * size..range.end as u64 * size,
        )?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }

    /// Waits for all submitted work to finish (at most the engine's timeout).
    pub fn wait(&self, kernel: &'static str) -> Result<()> {
        self.shared.poll(kernel, None)
    }

    /// Turns device-side timing of every kernel's compute pass on or off
    /// (off by default). While on, each submission records when its pass
    /// began and ended on the device, and [`take_device_time`] sums them:
    /// the kernels' own time, without the launch, upload and readback that
    /// a wall clock around the call also sees. [`Error::Unsupported`] when
    /// the device lacks [`GpuFeatures::timestamps`]. Turning it on the
    /// first time makes one query set and one small buffer.
    ///
    /// [`take_device_time`]: Gpu::take_device_time
    pub fn set_timing(&self, on: bool) -> Result<()> {
        if on && !self.shared.info.features.timestamps {
            return Err(Error::Unsupported {
                kernel: "timing",
                backend: crate::kernel::Backend::Gpu,
                reason: format!(
                    "device-side timings need the TIMESTAMP_QUERY adapter feature, which {} \
                     lacks or the engine's gpu_features mask turned off",
                    self.shared.info.name
                ),
            });
        }
        let mut timer = lock(&self.shared.timer);
        if on && timer.queries.is_none() {
            let device = &self.shared.device;
            let set = device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("tandem timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * TIMER_PASSES,
            });
            self.shared.buffers_created.fetch_add(1, Ordering::Relaxed);
            let resolve = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tandem timestamps"),
                size: u64::from(TIMER_PASSES) * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            timer.queries = Some((set, resolve));
        }
        timer.on = on;
        timer.used = 0;
        timer.missed = 0;
        Ok(())
    }

    /// The device time of the compute passes submitted since timing was
    /// turned on or last taken (waiting for them to finish), and starts
    /// over. `None` while timing is off, or when more than 256 passes ran
    /// since the last take (their sum would be incomplete). Each pass's
    /// time is its end timestamp less its begin, in the queue's timestamp
    /// period; work between passes (copies, waits) is not counted.
    pub fn take_device_time(&self, kernel: &'static str) -> Result<Option<Duration>> {
        // Held across the readback so no pass resolves into the buffer
        // before it is copied.
        let mut timer = lock(&self.shared.timer);
        let (used, missed) = (timer.used, timer.missed);
        timer.used = 0;
        timer.missed = 0;
        let resolve = match (&timer.queries, timer.on, missed) {
            (Some((_, resolve)), true, 0) => resolve,
            _ => return Ok(None),
        };
        if used == 0 {
            return Ok(Some(Duration::ZERO));
        }
        let stride = wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;
        let bytes = self
            .shared
            .read_bytes(kernel, resolve, 0..u64::from(used) * stride)?;
        let period = f64::from(self.shared.queue.get_timestamp_period());
        let ticks: u64 = bytes
            .chunks(stride as usize)
            .map(|pair| {
                let stamps: [u64; 2] = bytemuck::pod_read_unaligned(&pair[..16]);
                stamps[1].saturating_sub(stamps[0])
            })
            .sum();
        Ok(Some(Duration::from_secs_f64(ticks as f64 * period * 1e-9)))
    }
}

/// Expands a shader's `variant` lines: where WGSL's lack of generics would
/// make near-copies of a function, the source holds one and derives the
/// others from it by textual replacement.
///
/// ```text
/// // variant dot of sum: `acc + x[i]` => `acc + x[i] * y[i]`
/// // variant extreme_first of sum: `T(0)` => `key_identity()`,
/// //     `tree_sum` => `tree_keys`, `out_t` => `out_keys`
/// ```
///
/// A directive (a comment line starting `// variant NAME of BASE:`, with
/// more pairs on following comment lines that start with a backquote)
/// copies function `BASE` (its attribute lines, the `fn BASE(` line and
/// everything up to the first line that is `}`), renames it `NAME`, applies
/// each `` `from` => `to` `` replacement in order (an empty `to` drops the
/// lines whose whole text is `from`), and appends the result to the source. `BASE` may itself be a variant defined above. The on-disk
/// file stays valid WGSL (directives are comments), so the base function
/// reads and validates like any other. Errors name the directive: an
/// unknown base, a replacement that matches nothing, a malformed pair.
pub fn expand_variants(source: &str) -> std::result::Result<String, String> {
    const TAG: &str = "// variant ";
    if !source.contains(TAG) {
        return Ok(source.to_string());
    }
    let mut out = source.to_string();
    let lines: Vec<&str> = source.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].trim_start().strip_prefix(TAG) else {
            i += 1;
            continue;
        };
        let what = format!("`{}`", lines[i].trim());
        let (head, pairs) = rest
            .split_once(':')
            .ok_or_else(|| format!("{what}: no `:` after `NAME of BASE`"))?;
        let mut pairs = pairs.to_string();
        while let Some(more) = lines
            .get(i + 1)
            .and_then(|l| l.trim_start().strip_prefix("//"))
            .filter(|l| l.trim_start().starts_with('`'))
        {
            pairs.push(' ');
            pairs.push_str(more);
            i += 1;
        }
        let (name, base) = head
            .split_once(" of ")
            .map(|(n, b)| (n.trim(), b.trim()))
            .ok_or_else(|| format!("{what}: expected `NAME of BASE`"))?;
        let mut body =
            function_text(&out, base).ok_or_else(|| format!("{what}: no function `{base}`"))?;
        body = body.replacen(&format!("fn {base}("), &format!("fn {name}("), 1);
        let mut rest = pairs.trim();
        while !rest.is_empty() {
            let pair = parse_pair(rest).ok_or_else(|| format!("{what}: bad pair at `{rest}`"))?;
            let (from, to, tail) = pair;
            if !body.contains(from) {
                return Err(format!("{what}: `{from}` does not occur in `{base}`"));
            }
            body = if to.is_empty() {
                // An empty replacement drops the whole lines that hold `from`.
                let kept: Vec<&str> = body.lines().filter(|l| l.trim() != from).collect();
                if kept.len() == body.lines().count() {
                    return Err(format!(
                        "{what}: `{from}` => `` must match whole lines of `{base}`"
                    ));
                }
                kept.join("\n")
            } else {
                body.replace(from, to)
            };
            rest = tail.trim_start().trim_start_matches(',').trim_start();
        }
        out.push('\n');
        out.push_str(&body);
        out.push('\n');
        i += 1;
    }
    Ok(out)
}

/// `` `from` => `to` `` at the start of `s`, and what follows it.
fn parse_pair(s: &str) -> Option<(&str, &str, &str)> {
    let s = s.strip_prefix('`')?;
    let (from, s) = s.split_once('`')?;
    let s = s
        .trim_start()
        .strip_prefix("=>")?
        .trim_start()
        .strip_prefix('`')?;
    let (to, s) = s.split_once('`')?;
    Some((from, to, s))
}

/// The text of WGSL function `name` in `source`: its attribute lines, the
/// `fn name(` line, up to and including the first line that is `}`.
fn function_text(source: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    let sig = format!("fn {name}(");
    let at = lines.iter().position(|l| l.starts_with(&sig))?;
    let mut start = at;
    while start > 0 && lines[start - 1].starts_with('@') {
        start -= 1;
    }
    let end = at + lines[at..].iter().position(|l| *l == "}")?;
    Some(lines[start..=end].join("\n"))
}

/// A shader's source as compiled where no optional feature is used:
/// [`prepare_with`] and [`GpuFeatures::NONE`].
pub fn prepare(source: &str, t: Option<ElementType>) -> std::result::Result<String, String> {
    prepare_with(source, t, GpuFeatures::NONE)
}

/// A shader's source as compiled for a device with `features`: the
/// sections of features it lacks dropped ([`feature_sections`]), then
/// [`expand_variants`], then, for an element type, [`specialize`].
pub fn prepare_with(
    source: &str,
    t: Option<ElementType>,
    features: GpuFeatures,
) -> std::result::Result<String, String> {
    let typed = type_sections(source, t)?;
    let expanded = expand_variants(&feature_sections(&typed, features)?)?;
    match t {
        Some(t) => specialize(&expanded, t)
            .ok_or_else(|| "shader has no `alias T = f32;` line to specialize".to_string()),
        None => Ok(expanded),
    }
}

/// `source` without the sections of features `features` lacks: lines from
/// `// begin subgroups` to `// end subgroups` are code (and variant
/// directives) that use subgroup operations, kept only with
/// [`GpuFeatures::subgroups`]. A section left open is an error.
pub fn feature_sections(
    source: &str,
    features: GpuFeatures,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(source.len());
    let mut open: Option<&str> = None;
    for line in source.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("// begin ") {
            if let Some(outer) = open {
                return Err(format!("section `{name}` opened inside `{outer}`"));
            }
            match name {
                "subgroups" => open = Some("subgroups"),
                _ => return Err(format!("unknown feature section `{name}`")),
            }
            continue;
        }
        if let Some(name) = t.strip_prefix("// end ") {
            if open != Some(name) {
                return Err(format!("`// end {name}` closes no open section"));
            }
            open = None;
            continue;
        }
        let keep = match open {
            Some("subgroups") => features.subgroups,
            _ => true,
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    match open {
        Some(name) => Err(format!("section `{name}` is not closed")),
        None => Ok(out),
    }
}

/// `source` with the element-type sections for `t`: lines from
/// `// begin f64` to `// end f64` are kept only for f64, lines from
/// `// begin not-f64` to `// end not-f64` only for the 32-bit types (and
/// for a shader compiled without an element type). They hold the helpers
/// that look at an element's bits (`bitcast<u32>` of a 32-bit value,
/// `bitcast<vec2<u32>>` of an f64), which cannot type-check for both.
pub fn type_sections(source: &str, t: Option<ElementType>) -> std::result::Result<String, String> {
    let is_f64 = t == Some(ElementType::F64);
    let mut out = String::with_capacity(source.len());
    let mut open: Option<bool> = None;
    for line in source.lines() {
        let l = line.trim();
        let section = match l {
            "// begin f64" => Some((true, true)),
            "// begin not-f64" => Some((true, false)),
            "// end f64" => Some((false, true)),
            "// end not-f64" => Some((false, false)),
            _ => None,
        };
        match (section, open) {
            (Some((true, f)), None) => open = Some(f),
            (Some((true, _)), Some(_)) => return Err(format!("`{l}` inside a type section")),
            (Some((false, f)), Some(o)) if f == o => open = None,
            (Some((false, _)), _) => return Err(format!("`{l}` closes no open type section")),
            (None, o) => {
                if o.is_none_or(|f64_only| f64_only == is_f64) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    match open {
        Some(f) => Err(format!(
            "type section `{}` is not closed",
            if f { "f64" } else { "not-f64" }
        )),
        None => Ok(out),
    }
}

/// Rewrites the `alias T = f32;` line of a shader to element type `t`.
pub fn specialize(source: &str, t: ElementType) -> Option<String> {
    const LINE: &str = "alias T = f32;";
    if !source.contains(LINE) {
        return None;
    }
    Some(source.replacen(LINE, &format!("alias T = {};", t.wgsl()), 1))
}

/// Folds a linear workgroup count into the `(x, y)` grid [`Gpu::submit`] launches.
pub fn fold_workgroups(workgroups: u32, max_per_dimension: u32) -> (u32, u32) {
    let x = workgroups.min(max_per_dimension.max(1));
    if x == 0 {
        return (0, 0);
    }
    (x, workgroups.div_ceil(x))
}
