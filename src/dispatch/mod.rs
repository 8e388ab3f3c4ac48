//! The dispatcher's cost model: for each backend, launch latency + transfers
//! of stale inputs + work / throughput; `Backend::Auto` picks the cheaper.
//!
//! The constants here are defaults chosen by device type (a software
//! rasterizer is modelled as the slow CPU it is). Measured calibration saved
//! per machine replaces them in a later stage (see DESIGN.md).

use std::fmt;

use crate::cpu::PARALLEL_THRESHOLD;
use crate::engine::Backend;
use crate::gpu::GpuInfo;
use crate::kernel::{Inputs, Work};

/// Within this ratio the two estimates count as a tie, and the backend that
/// moves fewer bytes (where the data already is) wins.
pub const TIE_RATIO: f64 = 1.10;

/// Throughput and latency of one backend.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// Where the numbers came from, e.g. `defaults for DiscreteGpu`.
    pub source: String,
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
        }
    }

    /// Estimated time of `work` on `backend`, given what must move.
    pub fn estimate(&self, backend: Backend, work: &Work, moves: &Transfers) -> Estimate {
        match backend {
            Backend::Gpu => {
                let compute = compute_time(&self.gpu, work);
                let mut transfer = 0.0;
                if moves.to_gpu > 0 {
                    transfer +=
                        self.transfer_latency_s + moves.to_gpu as f64 / self.upload_bytes_per_s;
                }
                if work.host_result_bytes > 0 {
                    transfer += self.transfer_latency_s
                        + work.host_result_bytes as f64 / self.download_bytes_per_s;
                }
                Estimate {
                    backend,
                    launch_s: self.gpu.latency_s,
                    transfer_s: transfer,
                    transfer_bytes: moves.to_gpu + work.host_result_bytes,
                    compute_s: compute,
                }
            }
            _ => {
                let model = if work.elements < PARALLEL_THRESHOLD as u64 {
                    &self.cpu_serial
                } else {
                    &self.cpu
                };
                let compute = compute_time(model, work);
                let transfer = if moves.to_cpu > 0 {
                    self.transfer_latency_s + moves.to_cpu as f64 / self.download_bytes_per_s
                } else {
                    0.0
                };
                Estimate {
                    backend: Backend::Cpu,
                    launch_s: model.latency_s,
                    transfer_s: transfer,
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
    /// Where the model's constants came from.
    pub model_source: String,
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
            (Some(g), _) => writeln!(f, "  {g}")?,
            (None, Some(why)) => writeln!(f, "   gpu: unavailable ({why})")?,
            (None, None) => writeln!(f, "   gpu: unavailable")?,
        }
        match self.forced {
            Some(b) => write!(f, "  -> {} (forced; cost model: {})", b, self.model_source),
            None => write!(
                f,
                "  -> {} (cost model: {})",
                self.chosen, self.model_source
            ),
        }
    }
}
