//! The dispatcher's cost model: for each backend, launch latency + transfers
//! of stale inputs + work / throughput; `Backend::Auto` picks the cheaper.
//!
//! Two sources of numbers:
//! - [`calibrate`](crate::calibrate): measured curves per kernel and backend, and the
//!   host↔device link, saved as a [`profile`] per machine and adapter and
//!   loaded by [`Engine::new`](crate::Engine::new);
//! - defaults by device type (a software rasterizer is modelled as the slow
//!   CPU it is), for an uncalibrated machine and for kernels a profile lacks.
//!
#![doc = include_str!("README.md")]

pub mod profile;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use profile::{Axis, KernelProfile, Profile, ProfileKey};

use crate::cpu::PARALLEL_THRESHOLD;
use crate::gpu::GpuInfo;
use crate::kernel::Backend;
use crate::kernel::{Inputs, Work};

/// Bytes per element (read + written) of the heaviest kernel the
/// [`CostModel::cpu_floor`] shortcut covers.
pub const LIGHT_BYTES_PER_ELEMENT: u64 = 16;

/// Operations per element of the heaviest kernel the
/// [`CostModel::cpu_floor`] shortcut covers.
pub const LIGHT_FLOPS_PER_ELEMENT: u64 = 32;

/// Within this ratio the two estimates count as a tie, and the backend that
/// moves fewer bytes (where the data already is) wins.
pub const TIE_RATIO: f64 = 1.10;

/// Throughput and latency of one backend.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendCost {
    /// Fixed cost of one call, seconds.
    pub latency_s: f64,
    /// Memory throughput the kernels reach, bytes per second.
    pub bytes_per_s: f64,
    /// Arithmetic throughput, operations per second.
    pub flops_per_s: f64,
}

/// The model `Backend::Auto` decides with.
#[derive(Clone, Debug, PartialEq)]
pub struct CostModel {
    /// The CPU backend (all threads).
    pub cpu: BackendCost,
    /// The CPU backend on one thread (calls below [`PARALLEL_THRESHOLD`]).
    pub cpu_serial: BackendCost,
    /// The GPU backend, data already on the device.
    pub gpu: BackendCost,
    /// Host to device bandwidth, bytes per second.
    pub upload_bytes_per_s: f64,
    /// Device to host bandwidth, bytes per second.
    pub download_bytes_per_s: f64,
    /// Fixed cost of one transfer (submit, wait, map), seconds.
    pub transfer_latency_s: f64,
    /// Where the numbers came from, e.g. `defaults for DiscreteGpu` or
    /// `profile <path> (calibrated <date>)`.
    pub source: String,
    /// Measured curves per kernel name (empty: the constants above decide
    /// for every kernel).
    pub kernels: BTreeMap<String, KernelProfile>,
}

impl CostModel {
    /// Sound defaults for `threads` CPU threads and the given GPU.
    pub fn defaults(threads: usize, gpu: Option<&GpuInfo>) -> CostModel {
        let threads = threads.max(1) as f64;
        let cpu = BackendCost {
            latency_s: 20e-6,
            bytes_per_s: (8e9 * threads).min(40e9),
            flops_per_s: 16e9 * threads,
        };
        let cpu_serial = BackendCost {
            latency_s: 0.5e-6,
            bytes_per_s: 10e9,
            flops_per_s: 16e9,
        };
        let (gpu, up, down, tlat, kind) = match gpu.map(|g| g.device_type.as_str()) {
            Some("DiscreteGpu") => (
                BackendCost {
                    latency_s: 40e-6,
                    bytes_per_s: 400e9,
                    flops_per_s: 10e12,
                },
                12e9,
                12e9,
                30e-6,
                "DiscreteGpu",
            ),
            Some("Cpu") => (
                // A software driver (lavapipe, WARP, SwiftShader): a CPU with
                // extra overhead. It should lose to the CPU backend.
                BackendCost {
                    latency_s: 300e-6,
                    bytes_per_s: 2e9,
                    flops_per_s: 8e9,
                },
                4e9,
                4e9,
                150e-6,
                "a software GPU",
            ),
            Some(other) => (
                BackendCost {
                    latency_s: 80e-6,
                    bytes_per_s: 60e9,
                    flops_per_s: 2e12,
                },
                10e9,
                10e9,
                50e-6,
                if other == "IntegratedGpu" {
                    "IntegratedGpu"
                } else {
                    "an unknown GPU type"
                },
            ),
            None => (
                BackendCost {
                    latency_s: f64::INFINITY,
                    bytes_per_s: 1.0,
                    flops_per_s: 1.0,
                },
                1.0,
                1.0,
                f64::INFINITY,
                "no GPU",
            ),
        };
        CostModel {
            cpu,
            cpu_serial,
            gpu,
            upload_bytes_per_s: up,
            download_bytes_per_s: down,
            transfer_latency_s: tlat,
            source: format!("defaults for {kind}"),
            kernels: BTreeMap::new(),
        }
    }

    /// The model a calibration [`Profile`] describes; `source` says where it
    /// came from (shown by `explain`).
    pub fn from_profile(profile: &Profile, source: String) -> CostModel {
        let mut m = CostModel::defaults(profile.key.threads, None);
        m.cpu = profile.cpu;
        m.cpu_serial = profile.cpu_serial;
        if let (Some(gpu), Some(t)) = (profile.gpu, profile.transfer) {
            m.gpu = gpu;
            m.upload_bytes_per_s = t.upload.bytes_per_s;
            m.download_bytes_per_s = t.download.bytes_per_s;
            // One latency for both directions: the cost of a synchronisation.
            m.transfer_latency_s = t.upload.latency_s.max(t.download.latency_s);
        }
        m.kernels = profile.kernels.clone();
        m.source = source;
        m
    }

    /// Below this many elements the CPU wins every call of a light kernel
    /// (at most [`LIGHT_BYTES_PER_ELEMENT`] and [`LIGHT_FLOPS_PER_ELEMENT`])
    /// whose inputs are on the host, whatever the kernel: even the slowest
    /// measured CPU curve (or the generic CPU constants) finishes before the
    /// fastest GPU call could start. `Auto` checks this first, so a tiny call
    /// pays a few nanoseconds for its decision, not a model evaluation.
    pub fn cpu_floor(&self) -> u64 {
        let gpu_floor = self
            .kernels
            .values()
            .filter(|k| k.gpu.is_valid())
            .map(|k| k.gpu.latency_s())
            .fold(self.gpu.latency_s, f64::min);
        if !gpu_floor.is_finite() {
            return u64::MAX;
        }
        let cpu_wins = |n: u64| {
            let light = Work {
                elements: n,
                bytes_read: n * (LIGHT_BYTES_PER_ELEMENT - 4),
                bytes_written: n * 4,
                flops: n * LIGHT_FLOPS_PER_ELEMENT,
                host_result_bytes: 0,
            };
            // A light call of a kernel keyed on bytes or flops sits at most
            // at `light`'s bytes or flops on its curve.
            let generic = self.estimate(Backend::Cpu, &light, &Transfers::default());
            generic.total_s() * TIE_RATIO < gpu_floor
                && self
                    .kernels
                    .values()
                    .all(|k| k.cpu.eval(k.x(&light)) * TIE_RATIO < gpu_floor)
        };
        let mut floor = 0;
        for k in 0..40 {
            if !cpu_wins(1 << k) {
                break;
            }
            floor = 1 << k;
        }
        floor
    }

    /// The size from which this model sends `kernel` to the GPU for good
    /// (searched over quarter powers of two up to 2^30 elements), given its
    /// work at each size: with inputs on the host and the result read there
    /// (`data_on_host`), or with inputs resident and the result left on the
    /// device. `None`: the CPU wins at every size up to 2^30.
    pub fn crossover(
        &self,
        kernel: &str,
        work_at: impl Fn(u64) -> Work,
        data_on_host: bool,
    ) -> Option<u64> {
        let curves = self.kernels.get(kernel);
        let mut first = None;
        for q in 0..=120u32 {
            let n = 2f64.powf(f64::from(q) / 4.0).round() as u64;
            let w = work_at(n);
            let moves = Transfers {
                to_gpu: if data_on_host { w.bytes_read } else { 0 },
                to_cpu: if data_on_host { 0 } else { w.bytes_read },
            };
            let cpu = self.estimate_with(curves, Backend::Cpu, &w, &moves, data_on_host);
            let gpu = self.estimate_with(curves, Backend::Gpu, &w, &moves, data_on_host);
            if CostModel::choose(&cpu, Some(&gpu)) == Backend::Gpu {
                first = first.or(Some(n));
            } else {
                first = None;
            }
        }
        first
    }

    /// Whether `kernel` has measured curves in this model.
    pub fn measured(&self, kernel: &str) -> bool {
        self.kernels.contains_key(kernel)
    }

    /// Estimated time of `work` on `backend`, given what must move, from the
    /// model's constants (no kernel curve, result left where it is produced).
    pub fn estimate(&self, backend: Backend, work: &Work, moves: &Transfers) -> Estimate {
        self.estimate_call(None, backend, work, moves, false)
    }

    /// Estimated time of one call of the kernel named `kernel` (its measured
    /// curve when the model has one, the constants otherwise) on `backend`.
    /// `result_to_host`: the caller will read the (buffer) result on the
    /// host, so a GPU run pays for bringing it back.
    pub fn estimate_call(
        &self,
        kernel: Option<&str>,
        backend: Backend,
        work: &Work,
        moves: &Transfers,
        result_to_host: bool,
    ) -> Estimate {
        self.estimate_with(
            kernel.and_then(|k| self.kernels.get(k)),
            backend,
            work,
            moves,
            result_to_host,
        )
    }

    /// [`CostModel::estimate_call`] with the kernel's curves already looked up.
    pub(crate) fn estimate_with(
        &self,
        curves: Option<&KernelProfile>,
        backend: Backend,
        work: &Work,
        moves: &Transfers,
        result_to_host: bool,
    ) -> Estimate {
        let link = |bytes: u64, bytes_per_s: f64| {
            if bytes == 0 {
                0.0
            } else {
                self.transfer_latency_s + bytes as f64 / bytes_per_s
            }
        };
        match backend {
            Backend::Gpu => {
                let curve = curves.filter(|k| k.gpu.is_valid());
                let (launch, compute, scalar_back) = match curve {
                    // The measured curve already includes reading a scalar
                    // result back (every GPU reduction call does).
                    Some(k) => {
                        let c = &k.gpu;
                        let total = c.eval(k.x(work));
                        let launch = c.latency_s().min(total);
                        (launch, total - launch, 0)
                    }
                    None => (
                        self.gpu.latency_s,
                        compute_time(&self.gpu, work),
                        work.host_result_bytes,
                    ),
                };
                let back = scalar_back
                    + if result_to_host {
                        work.bytes_written
                    } else {
                        0
                    };
                let transfer = link(moves.to_gpu, self.upload_bytes_per_s)
                    + link(back, self.download_bytes_per_s);
                Estimate {
                    backend,
                    launch_s: launch,
                    transfer_s: transfer,
                    transfer_bytes: moves.to_gpu + back,
                    compute_s: compute,
                }
            }
            _ => {
                let (launch, compute) = match curves.filter(|k| k.cpu.is_valid()) {
                    Some(k) => {
                        let c = &k.cpu;
                        let total = c.eval(k.x(work));
                        let launch = c.latency_s().min(total);
                        (launch, total - launch)
                    }
                    None => {
                        let model = if work.elements < PARALLEL_THRESHOLD as u64 {
                            &self.cpu_serial
                        } else {
                            &self.cpu
                        };
                        (model.latency_s, compute_time(model, work))
                    }
                };
                Estimate {
                    backend: Backend::Cpu,
                    launch_s: launch,
                    transfer_s: link(moves.to_cpu, self.download_bytes_per_s),
                    transfer_bytes: moves.to_cpu,
                    compute_s: compute,
                }
            }
        }
    }

    /// The cheaper backend of two estimates; near-ties go to the backend
    /// that moves fewer bytes.
    pub fn choose(cpu: &Estimate, gpu: Option<&Estimate>) -> Backend {
        let Some(gpu) = gpu else {
            return Backend::Cpu;
        };
        let (c, g) = (cpu.total_s(), gpu.total_s());
        if !g.is_finite() {
            return Backend::Cpu;
        }
        let tie = c.max(g) <= c.min(g) * TIE_RATIO;
        if tie && cpu.transfer_bytes != gpu.transfer_bytes {
            if cpu.transfer_bytes < gpu.transfer_bytes {
                Backend::Cpu
            } else {
                Backend::Gpu
            }
        } else if g < c {
            Backend::Gpu
        } else {
            Backend::Cpu
        }
    }
}

fn compute_time(model: &BackendCost, work: &Work) -> f64 {
    let mem = work.bytes() as f64 / model.bytes_per_s;
    let math = work.flops as f64 / model.flops_per_s;
    mem.max(math)
}

/// Bytes that would have to move before a call could run on each backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    /// Bytes of inputs without a current copy on this engine's GPU.
    pub to_gpu: u64,
    /// Bytes of inputs without a current host copy.
    pub to_cpu: u64,
}

impl Transfers {
    /// What `input` would need moved, for the GPU context `gpu_id`.
    pub fn of(input: &dyn Inputs, gpu_id: Option<u64>) -> Transfers {
        let mut t = Transfers::default();
        input.visit(&mut |s| {
            if s.on_device.is_none() || s.on_device != gpu_id {
                t.to_gpu += s.bytes;
            }
            if !s.on_host {
                t.to_cpu += s.bytes;
            }
        });
        t
    }
}

/// One backend's estimated cost of one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The backend.
    pub backend: Backend,
    /// Launch latency, seconds.
    pub launch_s: f64,
    /// Transfers of stale inputs and of host results, seconds.
    pub transfer_s: f64,
    /// Bytes those transfers move.
    pub transfer_bytes: u64,
    /// The work itself, seconds.
    pub compute_s: f64,
}

impl Estimate {
    /// Total estimated seconds.
    pub fn total_s(&self) -> f64 {
        self.launch_s + self.transfer_s + self.compute_s
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>4}: {} = launch {} + transfer {} ({} B) + compute {}",
            self.backend.to_string(),
            seconds(self.total_s()),
            seconds(self.launch_s),
            seconds(self.transfer_s),
            self.transfer_bytes,
            seconds(self.compute_s)
        )
    }
}

/// Formats seconds with a unit that fits.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "inf".into()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}

/// What [`Engine::explain`](crate::Engine::explain) returns: the decision
/// and the numbers behind it. Prints as a short report.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// Kernel name.
    pub kernel: &'static str,
    /// The kernel's work estimate.
    pub work: Work,
    /// The backend the call would run on.
    pub chosen: Backend,
    /// Set when the engine was forced onto a backend with [`Engine::on`](crate::Engine::on).
    pub forced: Option<Backend>,
    /// CPU estimate.
    pub cpu: Estimate,
    /// GPU estimate, when there is a GPU.
    pub gpu: Option<Estimate>,
    /// Why there is no GPU, when there is none.
    pub gpu_unavailable: Option<String>,
    /// Why the GPU cannot run this call, when it cannot (an f64 input on a
    /// GPU without [`GpuFeatures::f64`](crate::GpuFeatures::f64)): `Auto`
    /// then runs it on the CPU without asking the cost model.
    pub gpu_declined: Option<String>,
    /// Where the model's constants came from: a profile's path and date, or
    /// `defaults for ...`.
    pub model_source: String,
    /// Whether the estimates come from this kernel's measured curves (false:
    /// from the model's generic constants).
    pub measured: bool,
    /// Whether the GPU estimate counts bringing a buffer result to the host.
    pub result_to_host: bool,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} elements, {} B read, {} B written, {} flops",
            self.kernel,
            self.work.elements,
            self.work.bytes_read,
            self.work.bytes_written,
            self.work.flops
        )?;
        writeln!(f, "  {}", self.cpu)?;
        match (&self.gpu, &self.gpu_unavailable) {
            (Some(_), _) if self.gpu_declined.is_some() => writeln!(
                f,
                "   gpu: declined ({})",
                self.gpu_declined.as_deref().unwrap_or_default()
            )?,
            (Some(g), _) => writeln!(f, "  {g}")?,
            (None, Some(why)) => writeln!(f, "   gpu: unavailable ({why})")?,
            (None, None) => writeln!(f, "   gpu: unavailable")?,
        }
        writeln!(
            f,
            "  result read on the host: {}",
            if self.result_to_host {
                "yes (gpu pays the download)"
            } else {
                "no (it stays where it is produced)"
            }
        )?;
        let source = if self.measured {
            format!("{}, measured curves for {}", self.model_source, self.kernel)
        } else if self.model_source.starts_with("profile") {
            format!(
                "{}; {} not calibrated, generic constants",
                self.model_source, self.kernel
            )
        } else {
            self.model_source.clone()
        };
        match self.forced {
            Some(b) => write!(f, "  -> {b} (forced; cost model: {source})"),
            None => write!(f, "  -> {} (cost model: {source})", self.chosen),
        }
    }
}
