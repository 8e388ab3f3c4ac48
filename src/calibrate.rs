//! Calibration: measure every kernel on both backends over a sweep of sizes,
//! and the host↔device link, then fit the curves a [`Profile`] holds.
//!
//! Kernels are measured through the kernel catalogue's per-family probes
//! ([`FAMILIES`]): a new kernel family is covered by adding one entry there.
//! This module sits above the engine and the dispatcher: it drives the
//! engine's backends and fits the dispatcher's [`Profile`]; neither of them
//! imports it.
//!
//! Each kernel's curves are keyed on an [`Axis`] of its [`Work`]: elements
//! for kernels linear in them, flops for gemm and conv2d, whose time grows
//! with `m·n·k` and with the filter's taps, not with their output's
//! elements. A probe builds square shapes from an element count `n`
//! (`side = √n`) and caps its sweep ([`Probe::max_n`]) where calls grow
//! faster than `n`, so one size list serves every family.
//!
//! What is timed (lower quartiles of several calls after one warm-up call):
//! - CPU: `engine.on(Cpu).run(..)` on host inputs, result on the host.
//! - GPU: `engine.on(Gpu).run(..)` on inputs already on the device, then
//!   [`Gpu::wait`](crate::Gpu::wait): the work finished, the result left on
//!   the device (a reduction's scalar is read back, as every call does).
//! - Upload: a fresh host buffer made resident, waited for.
//! - Download: a fresh device-only kernel output read to the host.
//!
//! The dispatcher then composes a call on host data as upload + GPU curve
//! (+ download when the result is read on the host), so one measurement per
//! kernel serves every residency.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::buffer::Buffer;
use crate::cpu::PARALLEL_THRESHOLD;
use crate::dispatch::profile::{
    Axis, Curve, KernelProfile, LinkCost, PROFILE_FORMAT, PROFILE_VERSION, Profile, ProfileKey,
    TransferProfile,
};
use crate::dispatch::{BackendCost, CostModel};
use crate::engine::{Backend, Engine};
use crate::error::{Error, Result};
use crate::kernel::Work;
use crate::kernels::Unary;
use crate::kernels::catalogue::{Call, CallInput, CallKernel, FAMILIES, Probe, probe_data};

/// How thoroughly to calibrate.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrateOptions {
    /// Element counts to measure each kernel at.
    pub sizes: Vec<usize>,
    /// Time spent timing one kernel at one size on one backend; calls
    /// repeat until it is used (between `min_reps` and `max_reps`).
    pub cell_budget: Duration,
    /// Fewest timed calls per cell.
    pub min_reps: usize,
    /// Most timed calls per cell.
    pub max_reps: usize,
    /// Only these kernels (by name); empty: every registered kernel.
    pub kernels: Vec<String>,
    /// Save the profile to the engine's profile path (see
    /// [`EngineBuilder::profile_path`](crate::EngineBuilder::profile_path)).
    pub save: bool,
}

impl Default for CalibrateOptions {
    /// Sizes 2^10, 2^12, ..., 2^22 (gemm up to 512², conv2d up to 1024²);
    /// about 30 s on a 2-core machine with a software GPU (27 s measured
    /// with lavapipe).
    fn default() -> Self {
        CalibrateOptions {
            sizes: (10..=22).step_by(2).map(|k| 1usize << k).collect(),
            cell_budget: Duration::from_millis(25),
            min_reps: 3,
            max_reps: 25,
            kernels: Vec::new(),
            save: true,
        }
    }
}

impl CalibrateOptions {
    /// A few seconds: three sizes, few repetitions, nothing saved. For tests;
    /// its numbers are rough.
    pub fn quick() -> Self {
        CalibrateOptions {
            sizes: vec![1 << 10, 1 << 14, 1 << 18],
            cell_budget: Duration::from_millis(2),
            min_reps: 1,
            max_reps: 5,
            kernels: Vec::new(),
            save: false,
        }
    }
}

/// Where a calibration run is, for a progress display.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Steps done (a step is one kernel at one size on both backends, or
    /// one transfer size).
    pub done: usize,
    /// Steps in all.
    pub total: usize,
    /// What the step just finished measured, e.g. `gpu axpy n=2^20`.
    pub step: String,
    /// Time since the calibration started.
    pub elapsed: Duration,
}

/// Calibration is a method of the engine, defined here so that the engine
/// does not import the calibration that drives it.
impl Engine {
    /// Measures this machine with default options (about half a minute; see
    /// [`CalibrateOptions`]), saves the profile to [`Engine::profile_path`]
    /// and makes the dispatcher use it. Prints nothing; see
    /// [`Engine::calibrate_with`] for progress.
    pub fn calibrate(&self) -> Result<Profile> {
        self.calibrate_with(&CalibrateOptions::default(), |_| {})
    }

    /// Measures every registered kernel on both backends and the host↔device
    /// link, calling `progress` after each step, then (when `opts.save`)
    /// saves the profile and makes the dispatcher use it. A failure to save
    /// is an [`Error::InvalidArgument`] naming the path; the measured
    /// profile is still installed.
    pub fn calibrate_with(
        &self,
        opts: &CalibrateOptions,
        progress: impl FnMut(Progress),
    ) -> Result<Profile> {
        let profile = run(self, opts, self.profile_key().clone(), progress)?;
        let path = self.profile_path().filter(|_| opts.save);
        self.set_cost_model(CostModel::from_profile(&profile, profile.describe(path)));
        if let Some(path) = path {
            profile.save(path).map_err(|e| Error::InvalidArgument {
                kernel: "calibrate",
                message: format!("cannot save the profile to {}: {e}", path.display()),
            })?;
        }
        Ok(profile)
    }
}

/// How calibration runs a catalogue [`Call`] through an engine whose
/// backend is forced.
trait ProbeCall {
    /// Makes every input current on the engine's GPU, and waits.
    fn upload(&self, engine: &Engine) -> Result<()>;
    /// Runs the kernel once and returns when the work is finished, the
    /// result left where it was produced.
    fn call(&self, engine: &Engine) -> Result<()>;
}

impl ProbeCall for dyn Call + '_ {
    fn upload(&self, engine: &Engine) -> Result<()> {
        if let Some(g) = engine.gpu() {
            self.make_resident(g)?;
            g.wait("calibrate")?;
        }
        Ok(())
    }

    fn call(&self, engine: &Engine) -> Result<()> {
        let input = CallInput {
            call: self,
            to_host: false,
        };
        engine.run(&CallKernel(self.name()), input)?;
        if engine.backend() == Backend::Gpu
            && let Some(g) = engine.gpu()
        {
            g.wait("calibrate")?;
        }
        Ok(())
    }
}

/// Lower-quartile seconds of `f`: one warm-up call, then calls until
/// `budget` is spent (at least `min`, at most `max` of them). A quartile,
/// not the median: on a busy machine other processes only ever add time,
/// and one preempted cell would otherwise bend a curve.
fn time_quartile(
    budget: Duration,
    min: usize,
    max: usize,
    mut f: impl FnMut() -> Result<Duration>,
) -> Result<f64> {
    f()?;
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < max.max(1) && (times.len() < min.max(1) || start.elapsed() < budget) {
        times.push(f()?.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[(times.len() - 1) / 4])
}

/// `latency + bytes / bandwidth` through `(bytes, seconds)`: the latency is
/// the time of the smallest transfer (a few bytes: all fixed cost), the
/// bandwidth that of the largest once the latency is taken off. Two
/// anchors, not least squares: on a noisy machine a regression's intercept
/// swings negative and its slope with it.
fn fit_link(points: &[(u64, f64)]) -> LinkCost {
    let &(_, small) = points.iter().min_by_key(|p| p.0).expect("points");
    let &(bx, by) = points.iter().max_by_key(|p| p.0).expect("points");
    let latency = small.max(0.0);
    let bw = bx as f64 / (by - latency).max(by * 0.1).max(1e-9);
    LinkCost {
        latency_s: latency,
        bytes_per_s: bw,
    }
}

/// Seconds since the epoch (0 if the clock is before it).
fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One kernel at one size: its work, CPU seconds, GPU seconds (NaN: none).
type Sample = (Work, f64, f64);

/// Runs the calibration on `engine`'s backends; see the module docs.
fn run(
    engine: &Engine,
    opts: &CalibrateOptions,
    key: ProfileKey,
    mut progress: impl FnMut(Progress),
) -> Result<Profile> {
    let start = Instant::now();
    let probes: Vec<(&'static str, Probe)> = FAMILIES
        .iter()
        .flat_map(|f| f.probes.iter().map(move |p| (f.name, *p)))
        .filter(|(_, p)| opts.kernels.is_empty() || opts.kernels.iter().any(|k| k == p.kernel))
        .collect();
    let mut sizes: Vec<usize> = opts.sizes.iter().copied().filter(|&n| n > 0).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let gpu = engine.has_gpu();
    let link_sizes: Vec<usize> = if gpu {
        // Bytes: 4 B .. 4 × the largest size (f32s).
        let top = sizes.last().copied().unwrap_or(1 << 20);
        let mut v = vec![1usize];
        v.extend(sizes.iter().copied().filter(|&n| n >= 1 << 12 && n < top));
        v.push(top);
        v.dedup();
        v
    } else {
        Vec::new()
    };
    let total = probes
        .iter()
        .map(|(_, p)| p.sizes(&sizes).len())
        .sum::<usize>()
        + link_sizes.len();
    let mut done = 0;
    let mut step = |what: String, progress: &mut dyn FnMut(Progress)| {
        done += 1;
        progress(Progress {
            done,
            total,
            step: what,
            elapsed: start.elapsed(),
        });
    };

    let (cpu_engine, gpu_engine) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let (budget, lo, hi) = (opts.cell_budget, opts.min_reps, opts.max_reps);

    // The link first: its numbers matter for every decision on host data.
    let mut up = Vec::new();
    let mut down = Vec::new();
    let mut round_trip = f64::INFINITY;
    if let Some(g) = engine.gpu().filter(|_| gpu) {
        for &n in &link_sizes {
            let data = probe_data(n, 3);
            let bytes = (n * size_of::<f32>()) as u64;
            let t_up = time_quartile(budget, lo, hi, || {
                let b = Buffer::from(data.clone());
                let t = Instant::now();
                g.resident("calibrate", &b)?;
                g.wait("calibrate")?;
                Ok(t.elapsed())
            })?;
            let src = Buffer::from(data.clone());
            g.resident("calibrate", &src)?;
            let t_down = time_quartile(budget, lo, hi, || {
                let out = gpu_engine.run(&Unary::Neg, &src)?;
                g.wait("calibrate")?;
                let t = Instant::now();
                black_box(out.host()?);
                Ok(t.elapsed())
            })?;
            if n == 1 {
                round_trip = time_quartile(budget, lo, hi, || {
                    let b = Buffer::from(data.clone());
                    let t = Instant::now();
                    let out = gpu_engine.run(&Unary::Neg, &b)?;
                    black_box(out.host()?);
                    Ok(t.elapsed())
                })?;
            }
            up.push((bytes, t_up));
            down.push((bytes, t_down));
            step(format!("link {} B", bytes), &mut progress);
        }
    }

    let mut kernels: BTreeMap<String, KernelProfile> = BTreeMap::new();
    // For the fallback costs of kernels the profile lacks.
    let mut samples: Vec<Sample> = Vec::new();
    for &(family, probe) in &probes {
        let mut cpu_pts = Vec::new();
        let mut gpu_pts = Vec::new();
        let mut largest = Work::default();
        for n in probe.sizes(&sizes) {
            let call = probe.call(n);
            let work = call.work();
            largest = work;
            let t_cpu = time_quartile(budget, lo, hi, || {
                let t = Instant::now();
                call.call(&cpu_engine)?;
                Ok(t.elapsed())
            })?;
            cpu_pts.push((work, t_cpu));
            let mut t_gpu = f64::NAN;
            if gpu {
                // A GPU that refuses a size (limits) leaves a gap, not an error.
                let measured = call.upload(engine).and_then(|()| {
                    time_quartile(budget, lo, hi, || {
                        let t = Instant::now();
                        call.call(&gpu_engine)?;
                        Ok(t.elapsed())
                    })
                });
                if let Ok(t) = measured {
                    t_gpu = t;
                    gpu_pts.push((work, t));
                }
            }
            samples.push((work, t_cpu, t_gpu));
            step(
                format!("{} n={}", probe.kernel, size_label(n)),
                &mut progress,
            );
        }
        let axis = probe.axis.unwrap_or_else(|| Axis::for_work(&largest));
        let on_axis =
            |pts: Vec<(Work, f64)>| Curve::fit(pts.iter().map(|(w, t)| (axis.of(w), *t)).collect());
        kernels.insert(
            probe.kernel.to_string(),
            KernelProfile {
                family: family.to_string(),
                axis,
                cpu: on_axis(cpu_pts),
                gpu: on_axis(gpu_pts),
            },
        );
    }

    let transfer = (!up.is_empty()).then(|| TransferProfile {
        upload: fit_link(&up),
        download: fit_link(&down),
        round_trip_s: round_trip,
    });
    let defaults = super::CostModel::defaults(engine.cpu().threads(), None);
    let fallback =
        |pick: &dyn Fn(&Sample) -> Option<f64>, parallel: Option<bool>, base: BackendCost| {
            let usable = |s: &&Sample| {
                parallel.is_none_or(|p| (s.0.elements >= PARALLEL_THRESHOLD as u64) == p)
                    && pick(s).is_some_and(f64::is_finite)
            };
            let latency = samples
                .iter()
                .filter(usable)
                .filter_map(pick)
                .fold(f64::INFINITY, f64::min);
            // Rates: the median over kernels at their largest usable size,
            // bandwidth from the memory-bound kernels, arithmetic from the
            // compute-bound ones (gemm, conv2d), which the other would misprice.
            let rate = |heavy: bool, amount: &dyn Fn(&Work) -> u64| {
                let of_kind = |s: &&Sample| (Axis::for_work(&s.0) == Axis::Flops) == heavy;
                let top = samples
                    .iter()
                    .filter(usable)
                    .filter(of_kind)
                    .map(|s| s.0.elements)
                    .max();
                let mut rates: Vec<f64> = samples
                    .iter()
                    .filter(usable)
                    .filter(of_kind)
                    .filter(|s| Some(s.0.elements) == top)
                    .filter_map(|s| Some(amount(&s.0) as f64 / (pick(s)? - latency).max(1e-9)))
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .collect();
                rates.sort_by(f64::total_cmp);
                rates.get(rates.len() / 2).copied()
            };
            match (latency.is_finite(), rate(false, &Work::bytes)) {
                (true, Some(bw)) => BackendCost {
                    latency_s: latency,
                    bytes_per_s: bw,
                    flops_per_s: rate(true, &|w| w.flops).unwrap_or(base.flops_per_s),
                },
                _ => base,
            }
        };
    let cpu = fallback(&|s| Some(s.1), Some(true), defaults.cpu);
    let cpu_serial = fallback(&|s| Some(s.1), Some(false), defaults.cpu_serial);
    let gpu_cost = gpu.then(|| {
        let base = super::CostModel::defaults(1, engine.gpu().map(|g| g.info())).gpu;
        fallback(&|s| Some(s.2).filter(|t| t.is_finite()), None, base)
    });
    Ok(Profile {
        format: PROFILE_FORMAT.to_string(),
        version: PROFILE_VERSION,
        key,
        created_unix_s: now_unix(),
        calibration_s: start.elapsed().as_secs_f64(),
        transfer,
        cpu,
        cpu_serial,
        gpu: gpu_cost,
        kernels,
    })
}

/// `2^k` for powers of two, the number otherwise.
pub(crate) fn size_label(n: usize) -> String {
    if n.is_power_of_two() {
        format!("2^{}", n.trailing_zeros())
    } else {
        n.to_string()
    }
}
