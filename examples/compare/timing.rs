//! Timing: cells, medians, alternated pairs and one row of every column.

use std::time::{Duration, Instant};

use tandem::gpu::Gpu;
use tandem::{Backend, Engine, Work};

use crate::BoxResult;
use crate::cases::{Axis, Case, Finish, Instance, Kept};
use crate::cli::Options;
use crate::roofline::Roofline;

/// Each cell runs for about this long when `--reps` is not given...
pub(crate) const TARGET_CELL_S: f64 = 0.020;
/// ...with at least this many timed calls...
pub(crate) const MIN_REPS: usize = 3;
/// ...and at most this many.
pub(crate) const MAX_REPS: usize = 50;
/// Timed calls per cell at most under `--quick`.
pub(crate) const QUICK_MAX_REPS: usize = 10;
/// Fewest alternated `cpu`/`auto` pairs (unless `--reps` or `--quick`
/// asks for fewer): the regret is a ratio of two close times, and three
/// samples on a shared 2-core machine do not pin it to 10%.
pub(crate) const MIN_PAIRS: usize = 9;
/// Data elements per case at most under `--quick`.
pub(crate) const QUICK_MAX_ELEMENTS: usize = 1 << 20;
/// A GPU call slower than this (a software driver at the largest sizes) gets
/// only [`SLOW_GPU_REPS`] timed calls, to keep the default sweep short.
pub(crate) const SLOW_GPU_CALL_S: f64 = 0.050;
/// Timed calls for a slow GPU cell.
pub(crate) const SLOW_GPU_REPS: usize = 2;
/// A GPU call slower than this is timed once (after its warm-up).
pub(crate) const VERY_SLOW_GPU_CALL_S: f64 = 0.250;

/// The columns, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Column {
    Serial,
    Cpu,
    GpuHost,
    GpuRes,
    Auto,
}

impl Column {
    pub(crate) const ALL: [Column; 5] = [
        Column::Serial,
        Column::Cpu,
        Column::GpuHost,
        Column::GpuRes,
        Column::Auto,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Column::Serial => "serial",
            Column::Cpu => "cpu",
            Column::GpuHost => "gpu(host)",
            Column::GpuRes => "gpu(res)",
            Column::Auto => "auto",
        }
    }

    /// The key in CSV and JSON.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Column::Serial => "serial",
            Column::Cpu => "cpu",
            Column::GpuHost => "gpu_host",
            Column::GpuRes => "gpu_res",
            Column::Auto => "auto",
        }
    }

    pub(crate) fn is_gpu(self) -> bool {
        matches!(self, Column::GpuHost | Column::GpuRes)
    }
}

/// One timed cell.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cell {
    /// Median of the timed calls, seconds.
    pub(crate) median: f64,
    pub(crate) reps: usize,
    /// Fewer than [`MIN_REPS`] calls because the GPU call was slow.
    pub(crate) capped: bool,
    /// GPU cells, where the device has timestamps: the median of the same
    /// calls' time on the device (their compute passes, summed per call),
    /// seconds.
    pub(crate) device: Option<f64>,
}

/// One size of one kernel: a cell per column (`None`: not run), or the
/// error a column stopped with.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) kernel: &'static str,
    pub(crate) family: &'static str,
    pub(crate) element: String,
    pub(crate) axis: Axis,
    pub(crate) n: usize,
    pub(crate) work: Work,
    pub(crate) cells: [Option<Cell>; 5],
    /// Columns not run at this size because of the case's caps.
    pub(crate) capped: Vec<Column>,
    pub(crate) errors: Vec<(Column, String)>,
    pub(crate) auto_choice: Backend,
    /// numpy's median for the same operation and size, seconds.
    pub(crate) numpy: Option<f64>,
    /// The Rust peer's name and cell, where the case has one.
    pub(crate) peer: Option<(&'static str, Cell)>,
    /// The median over alternated pairs of `auto`'s time over `cpu`'s
    /// (each pair a few microseconds to milliseconds apart, so a burst of
    /// load from elsewhere cancels out of it).
    pub(crate) auto_over_cpu: Option<f64>,
}

impl Row {
    pub(crate) fn get(&self, c: Column) -> Option<f64> {
        self.cells[c as usize].map(|c| c.median)
    }

    /// The column's median device time (GPU columns with timestamps).
    pub(crate) fn device(&self, c: Column) -> Option<f64> {
        self.cells[c as usize].and_then(|c| c.device)
    }

    pub(crate) fn cpu_bytes_per_s(&self) -> Option<f64> {
        self.get(Column::Cpu).map(|t| self.work.bytes() as f64 / t)
    }

    pub(crate) fn speedup(&self, c: Column) -> Option<f64> {
        Some(self.get(Column::Serial)? / self.get(c)?)
    }

    /// numpy's time over tandem's CPU time: above 1, tandem is faster.
    pub(crate) fn vs_numpy(&self) -> Option<f64> {
        Some(self.numpy? / self.get(Column::Cpu)?)
    }

    /// The faster of `cpu` and `gpu(host)`.
    pub(crate) fn faster(&self) -> Backend {
        match (self.get(Column::Cpu), self.get(Column::GpuHost)) {
            (Some(c), Some(g)) if g < c => Backend::Gpu,
            _ => Backend::Cpu,
        }
    }

    /// The Rust peer's time over tandem's CPU time: above 1, tandem is faster.
    pub(crate) fn vs_peer(&self) -> Option<f64> {
        Some(self.peer?.1.median / self.get(Column::Cpu)?)
    }

    /// `auto` / the best of `cpu` and `gpu(host)`. Where `cpu` is the
    /// best, the median of the paired ratios (see [`Row::auto_over_cpu`]).
    pub(crate) fn regret(&self) -> Option<f64> {
        let auto = self.get(Column::Auto)?;
        let cpu = self.get(Column::Cpu)?;
        match self.get(Column::GpuHost) {
            Some(g) if g < cpu => Some(auto / g),
            _ => Some(self.auto_over_cpu.unwrap_or(auto / cpu)),
        }
    }

    /// The column's roofline fraction and the limit that binds.
    pub(crate) fn roof(&self, roof: &Roofline, c: Column) -> Option<(f64, &'static str)> {
        let t = self.get(c)?;
        let (bw, peak) = match c {
            // f64 kernels against the f64 FMA peak (half the lanes).
            Column::Cpu if self.kernel.ends_with("_f64") => {
                (roof.host_bandwidth(&self.work), roof.fma64)
            }
            Column::Cpu => (roof.host_bandwidth(&self.work), roof.fma),
            Column::GpuRes => (roof.gpu_copy?, roof.gpu_fma?),
            _ => return None,
        };
        let (mem, flops) = (self.work.bytes() as f64 / bw, self.work.flops as f64 / peak);
        Some(if mem >= flops {
            (mem / t, "bw")
        } else {
            (flops / t, "fma")
        })
    }
}

/// Times `call` (which returns the seconds of its own timed region): one
/// warm-up, then `reps` calls (or as many as [`TARGET_CELL_S`] asks for, at
/// most `max_reps`).
pub(crate) fn time_cell(
    column: Column,
    reps: Option<usize>,
    max_reps: usize,
    mut call: impl FnMut() -> tandem::Result<(Duration, Kept)>,
) -> tandem::Result<Cell> {
    drop(call()?);
    // The first timed call (warm) sets how many more to take.
    let (probe, kept) = call()?;
    drop(kept);
    let probe = probe.as_secs_f64();
    let reps_asked = reps;
    let reps = reps.unwrap_or_else(|| {
        let want = ((TARGET_CELL_S / probe.max(1e-9)).ceil() as usize).clamp(MIN_REPS, max_reps);
        if column.is_gpu() && probe > VERY_SLOW_GPU_CALL_S {
            1
        } else if column.is_gpu() && probe > SLOW_GPU_CALL_S {
            want.min(SLOW_GPU_REPS)
        } else {
            want
        }
    });
    let mut times = Vec::with_capacity(reps);
    times.push(probe);
    for _ in 1..reps {
        let (t, kept) = call()?;
        drop(kept);
        times.push(t.as_secs_f64());
    }
    Ok(Cell {
        median: median(&mut times),
        reps,
        capped: reps < MIN_REPS && reps < reps_asked.unwrap_or(MIN_REPS),
        device: None,
    })
}

/// Times two calls on the same inputs in alternation (`a`, `b`, `a`, ...),
/// after one warm-up call each; the number of calls is set as in
/// [`time_cell`] from the slower of the first timed calls, but at least
/// [`MIN_PAIRS`]. Returns both cells and the median of the pairs' `b / a`.
pub(crate) fn time_pair<I>(
    reps: Option<usize>,
    max_reps: usize,
    mut a: impl FnMut(&mut I) -> tandem::Result<(Duration, Kept)>,
    mut b: impl FnMut(&mut I) -> tandem::Result<(Duration, Kept)>,
    inst: &mut I,
) -> tandem::Result<(Cell, Cell, f64)> {
    drop(a(inst)?);
    drop(b(inst)?);
    let (ta, kept) = a(inst)?;
    drop(kept);
    let (tb, kept) = b(inst)?;
    drop(kept);
    let probe = ta.max(tb).as_secs_f64();
    let n = reps.unwrap_or_else(|| {
        ((TARGET_CELL_S / probe.max(1e-9)).ceil() as usize).clamp(MIN_PAIRS.min(max_reps), max_reps)
    });
    let (mut xs, mut ys) = (vec![ta.as_secs_f64()], vec![tb.as_secs_f64()]);
    for _ in 1..n {
        let (t, kept) = a(inst)?;
        drop(kept);
        xs.push(t.as_secs_f64());
        let (t, kept) = b(inst)?;
        drop(kept);
        ys.push(t.as_secs_f64());
    }
    let mut ratios: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| y / x.max(1e-12)).collect();
    let cell = |times: &mut Vec<f64>| Cell {
        median: median(times),
        reps: n,
        capped: false,
        device: None,
    };
    Ok((cell(&mut xs), cell(&mut ys), median(&mut ratios)))
}

pub(crate) fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    if times.len().is_multiple_of(2) {
        (times[mid - 1] + times[mid]) / 2.0
    } else {
        times[mid]
    }
}

/// Runs `f` under the clock; the result is returned for dropping later.
pub(crate) fn timed(f: impl FnOnce() -> tandem::Result<Kept>) -> tandem::Result<(Duration, Kept)> {
    let start = Instant::now();
    let kept = f()?;
    Ok((start.elapsed(), kept))
}

/// Measures every column of one case at one size.
///
/// Runs the columns in the order serial, cpu, auto, gpu(host), gpu(res) on
/// one set of inputs: host-only for the first four (rebuilt, untimed, after
/// any call that left a device copy), then uploaded for gpu(res). Copies of
/// 2^24 elements are not free.
pub(crate) fn measure_row(
    engine: &Engine,
    case: &Case,
    n: usize,
    opts: &Options,
) -> BoxResult<Row> {
    const ORDER: [Column; 5] = [
        Column::Serial,
        Column::Cpu,
        Column::Auto,
        Column::GpuHost,
        Column::GpuRes,
    ];
    let (reps, max_reps) = (opts.reps, opts.max_reps);
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let software_gpu = engine.gpu().is_some_and(|g| g.info().is_software);
    let mut inst = (case.setup)(n);
    let explained = inst.explain(engine);
    let mut row = Row {
        kernel: case.name,
        family: case.family,
        element: case.element.clone(),
        axis: case.axis,
        n,
        work: explained.work,
        cells: [None; 5],
        capped: Vec::new(),
        errors: Vec::new(),
        auto_choice: explained.chosen,
        numpy: None,
        peer: None,
        auto_over_cpu: None,
    };
    // The Rust peer first, at every size (the serial loop's cap is its own).
    if let Some(name) = inst.peer_name() {
        let cell = time_cell(Column::Serial, reps, max_reps, || {
            let start = Instant::now();
            let kept = inst.peer().unwrap_or_else(|| Box::new(()));
            Ok((start.elapsed(), kept))
        })?;
        row.peer = Some((name, cell));
    }
    let mut auto_cell: Option<tandem::Result<Cell>> = None;
    for column in ORDER {
        if column.is_gpu() && !engine.has_gpu() {
            continue;
        }
        let cap = case.column_cap(column, software_gpu);
        if !opts.no_caps && cap.is_some_and(|(max, _)| (case.axis.elements)(n) > max) {
            row.capped.push(column);
            continue;
        }
        let cell = match column {
            Column::Serial => time_cell(column, reps, max_reps, || {
                let start = Instant::now();
                let kept = inst.serial();
                Ok((start.elapsed(), kept))
            }),
            // `cpu` and `auto` are timed in alternation, so a burst of load
            // from elsewhere hits both alike: their ratio is the regret.
            Column::Cpu => {
                let inst = &mut inst;
                let pair = time_pair(
                    reps,
                    max_reps,
                    |inst: &mut Box<dyn Instance>| timed(|| inst.call(&cpu, Finish::Host)),
                    |inst: &mut Box<dyn Instance>| {
                        inst.reset();
                        timed(|| inst.call(engine, Finish::Host))
                    },
                    inst,
                );
                match pair {
                    Ok((c, a, ratio)) => {
                        auto_cell = Some(Ok(a));
                        row.auto_over_cpu = Some(ratio);
                        Ok(c)
                    }
                    Err(e) => Err(e),
                }
            }
            Column::Auto => match auto_cell.take() {
                Some(cell) => cell,
                None => time_cell(column, reps, max_reps, || {
                    inst.reset();
                    timed(|| inst.call(engine, Finish::Host))
                }),
            },
            Column::GpuHost => {
                let mut device = DeviceTimes::start(engine);
                let cell = time_cell(column, reps, max_reps, || {
                    inst.reset();
                    device.around(|| timed(|| inst.call(&gpu, Finish::Host)))
                });
                device.finish(cell)
            }
            Column::GpuRes => upload(engine, inst.as_ref()).and_then(|()| {
                let mut device = DeviceTimes::start(engine);
                let cell = time_cell(column, reps, max_reps, || {
                    device.around(|| timed(|| inst.call(&gpu, Finish::Device)))
                });
                device.finish(cell)
            }),
        };
        match cell {
            Ok(cell) => row.cells[column as usize] = Some(cell),
            // A GPU may refuse a size (binding or buffer limits): note it and go on.
            Err(e) if column.is_gpu() || column == Column::Auto => {
                row.errors.push((column, e.to_string()));
            }
            Err(e) => {
                return Err(format!("{} n={n}: {}: {e}", case.name, column.label()).into());
            }
        }
    }
    Ok(row)
}

/// The device time of each timed call of a GPU cell, where the GPU has
/// timestamps: [`DeviceTimes::around`] each call, then
/// [`DeviceTimes::finish`] adds the median to the cell.
struct DeviceTimes<'a> {
    gpu: Option<&'a Gpu>,
    times: Vec<f64>,
    complete: bool,
}

impl<'a> DeviceTimes<'a> {
    /// Turns timing on, where the GPU can.
    fn start(engine: &'a Engine) -> DeviceTimes<'a> {
        DeviceTimes {
            gpu: engine.gpu().filter(|g| g.set_timing(true).is_ok()),
            times: Vec::new(),
            complete: true,
        }
    }

    /// Runs `call`, discarding what was recorded before it (other columns'
    /// GPU work) and taking its device time after its timed region.
    fn around(
        &mut self,
        call: impl FnOnce() -> tandem::Result<(Duration, Kept)>,
    ) -> tandem::Result<(Duration, Kept)> {
        if let Some(g) = self.gpu {
            g.take_device_time("compare")?;
        }
        let out = call()?;
        if let Some(g) = self.gpu {
            match g.take_device_time("compare")? {
                Some(t) => self.times.push(t.as_secs_f64()),
                None => self.complete = false,
            }
        }
        Ok(out)
    }

    /// `cell` with the median device time of its calls (the warm-up, the
    /// first, left out); turns timing off.
    fn finish(mut self, cell: tandem::Result<Cell>) -> tandem::Result<Cell> {
        if let Some(g) = self.gpu {
            g.set_timing(false)?;
        }
        let mut cell = cell?;
        if self.complete && self.times.len() > 1 {
            self.times.remove(0);
            cell.device = Some(median(&mut self.times));
        }
        Ok(cell)
    }
}

/// Makes the inputs resident on the GPU and waits for the uploads.
pub(crate) fn upload(engine: &Engine, inst: &dyn Instance) -> tandem::Result<()> {
    if let Some(g) = engine.gpu() {
        inst.upload(g)?;
        g.wait("compare")?;
    }
    Ok(())
}

/// What a kernel's first call costs on a fresh engine.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColdStart {
    pub(crate) n: usize,
    /// `Engine::new()` for the fresh engine (adapter, device, thread pool).
    pub(crate) engine_s: f64,
    /// The first `gpu(host)` call: pipelines, device buffers, upload, readback.
    pub(crate) first_s: f64,
    /// The second call on the same engine, for comparison.
    pub(crate) second_s: f64,
    pub(crate) pipelines: u64,
}

/// Times the first GPU call of `case` at size `n` on a new engine.
pub(crate) fn cold_start(case: &Case, n: usize) -> BoxResult<ColdStart> {
    let start = Instant::now();
    let engine = Engine::new()?;
    let engine_s = start.elapsed().as_secs_f64();
    let gpu = engine.on(Backend::Gpu);
    let mut inst = (case.setup)(n);
    let before = engine.stats();
    let (first, kept) = timed(|| inst.call(&gpu, Finish::Host))?;
    drop(kept);
    let pipelines = engine.stats().since(&before).pipelines_compiled;
    inst.reset();
    let (second, kept) = timed(|| inst.call(&gpu, Finish::Host))?;
    drop(kept);
    Ok(ColdStart {
        n,
        engine_s,
        first_s: first.as_secs_f64(),
        second_s: second.as_secs_f64(),
        pipelines,
    })
}
