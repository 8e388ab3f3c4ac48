//! Times every kernel on every backend over a range of sizes, next to the
//! serial loop a user would write instead, and measures the machine's memory
//! bandwidth so the CPU numbers can be read against it.
//!
//! ```text
//! cargo run --release --example compare
//! cargo run --release --example compare -- --kernels sum,axpy --max-log2 20 --reps 5 --csv out.csv
//! ```
//!
//! # Options
//! - `--max-log2 N`: sizes 2^10, 2^12, ... up to 2^N (default 24).
//! - `--sizes a,b,c`: explicit element counts (`1000`, `2^20`, `1<<20`).
//! - `--kernels k1,k2`: a subset of the kernels (names as printed).
//! - `--reps K`: timed calls per cell. Default: enough for about 20 ms, at
//!   least 3 and at most 50, except GPU cells whose calls take over 50 ms
//!   (2 calls) or 250 ms (1 call), marked `*`: a software driver at the
//!   largest sizes, which would otherwise dominate the run time.
//! - `--csv PATH`: also write every row as CSV.
//!
//! # Columns
//! Every cell is the **median** of its timed calls, after one untimed
//! warm-up call of the same cell. Inputs are f32 in `[0.5, 2.0)` from a
//! xorshift generator. A result is dropped after the clock stops.
//! - `serial`: the plain scalar loop a user would write: for maps, an
//!   indexed loop into an output vector allocated once and reused across
//!   calls (the loop's best case); `x.iter().sum()` and the like for
//!   reductions, an index-tracking loop for arg-reductions. LLVM may
//!   auto-vectorize the simplest maps; it cannot reorder a float sum, so
//!   serial reductions run at scalar speed.
//! - `cpu`: `engine.on(Backend::Cpu).run(..)` on host-resident inputs.
//! - `gpu(host)`: `engine.on(Backend::Gpu).run(..)` on inputs that start on the
//!   host: new `Buffer`s are built from a copy of the data before each call
//!   (untimed), the upload happens inside the call (timed), and a buffer
//!   result is brought back with `Buffer::host()` (timed). This is what a user
//!   pays for one call on host data.
//! - `gpu(res)`: the same call on inputs already uploaded (untimed, before the
//!   warm-up); a buffer result stays on the device, but the timed region ends
//!   with `Gpu::wait`, so the work itself is finished. Scalar results always
//!   come back to the host.
//! - `auto`: `engine.run(..)` (`Backend::Auto`) on host-resident inputs, a
//!   buffer result brought to the host as in `gpu(host)`; `auto→` is the
//!   backend the dispatcher chose (`Engine::explain`, asked before timing).
//! - `cpu GB/s`: `Work::bytes()` (bytes read + written, each once) / `cpu`.
//! - `cpu %bw`: that as a share of the host memory bandwidth measured at the
//!   start of the same run, for kernels whose work is memory-bound (at most
//!   one operation per byte; `-` otherwise): read-only kernels (reductions)
//!   against a read pass (an XOR fold), kernels that write against the STREAM
//!   triad. Over 100% means the data fit in cache; neither figure counts
//!   write-allocate traffic.
//!
//! tandem's calls allocate their output, and that is timed: it comes from
//! tandem's pool of dropped buffers' memory (each result here is dropped
//! before the next call), so neither side pays page faults for fresh memory
//! in a warm loop.
//! - `cpu×ser`, `gpu(h)×ser`, `gpu(r)×ser`: `serial` time / that column's time.
//!
//! Each kernel's table is followed by its **cold start**: the first GPU call
//! of the run for that kernel (compiling its pipelines, allocating its device
//! buffers) against the warm median of the same cell. The summary gives the
//! CPU figures for `sum` and `axpy` at the largest size and each kernel's
//! worst `auto` regret: `auto` / min(`cpu`, `gpu(host)`) over the sweep.
//!
//! Without a GPU (no adapter, or `TANDEM_NO_GPU=1`) only the CPU columns are
//! printed, with one line saying why.

use std::cell::RefCell;
use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tandem::dispatch::seconds;
use tandem::kernels::{ArgMax, ArgMin, Axpy, Binary, Dot, Max, Min, Sum, Unary};
use tandem::{Backend, Buffer, Engine, Explanation, HostData, Kernel, Residency, Work};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Each cell runs for about this long when `--reps` is not given...
const TARGET_CELL_S: f64 = 0.020;
/// ...with at least this many timed calls...
const MIN_REPS: usize = 3;
/// ...and at most this many.
const MAX_REPS: usize = 50;
/// A GPU call slower than this (a software driver at the largest sizes) gets
/// only [`SLOW_GPU_REPS`] timed calls, to keep the default sweep short.
const SLOW_GPU_CALL_S: f64 = 0.050;
/// Timed calls for a slow GPU cell.
const SLOW_GPU_REPS: usize = 2;
/// A GPU call slower than this is timed once (after its warm-up).
const VERY_SLOW_GPU_CALL_S: f64 = 0.250;
/// Elements of each STREAM-triad array: 64 MiB of f32, beyond any cache.
const TRIAD_LEN: usize = 1 << 24;

fn main() -> BoxResult<()> {
    // `main` prints an error with `{:?}`: hand it one that reads as a message.
    run().map_err(|e| Report(e.to_string()).into())
}

/// An error printed as its message.
struct Report(String);

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Report {}

fn run() -> BoxResult<()> {
    let opts = Options::parse(std::env::args().skip(1))?;
    let Some(opts) = opts else {
        println!("{USAGE}");
        return Ok(());
    };
    let cases: Vec<Case> = catalogue()
        .into_iter()
        .filter(|c| opts.kernels.as_ref().is_none_or(|k| k.contains(&c.name)))
        .collect();

    let engine = Engine::new()?;
    let gpu = engine.has_gpu();
    println!("{}", engine.info());
    if !gpu {
        let why = engine.info().gpu_unavailable.unwrap_or_default();
        let hint = if why.contains("mesa-vulkan-drivers") {
            ""
        } else {
            "; without a hardware GPU, `apt-get install mesa-vulkan-drivers` provides \
             lavapipe, a software Vulkan driver"
        };
        println!("no GPU columns: {why}{hint}");
    }
    let bandwidth = Roofline {
        triad: triad_bandwidth(&engine),
        read: read_bandwidth(&engine),
    };
    println!(
        "host memory bandwidth: triad {:.1} GB/s, read {:.1} GB/s ({} threads, {} MiB arrays, best of 5; \
         triad counts 12 B/element, write-allocate traffic not)\n",
        bandwidth.triad / 1e9,
        bandwidth.read / 1e9,
        engine.cpu().threads(),
        (TRIAD_LEN * 4) >> 20,
    );

    let max_n = opts.sizes.iter().copied().max().unwrap_or(0);
    let xs = random_f32(max_n, 0x9E37_79B9_7F4A_7C15);
    let ys = random_f32(max_n, 0xD1B5_4A32_D192_ED03);
    let started = Instant::now();
    let mut all = Vec::new();
    for case in &cases {
        let mut rows = Vec::new();
        for &n in &opts.sizes {
            let row = measure_row(&engine, case, &xs[..n], &ys[..n], opts.reps)?;
            rows.push(row);
        }
        print_table(case, &rows, bandwidth, gpu);
        all.extend(rows);
    }
    print_summary(&all, bandwidth, gpu);
    println!("\nsweep took {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &opts.csv {
        std::fs::write(path, csv(&all, bandwidth))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("wrote {} rows to {path}", all.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Kernels under test

/// A result kept alive until the clock has stopped, so freeing it is not timed.
#[allow(dead_code, reason = "the fields are only held, never read")]
enum Kept {
    /// The host view first: fields drop in order, and a `Buffer` whose host
    /// copy is no longer shared gives that memory back to tandem's host pool
    /// (as it does in user code, where the view goes out of scope first).
    Buffer(Option<HostData<f32>>, Buffer<f32>),
    Scalar,
}

/// How a timed call ends for a buffer result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// Bring it to host memory (`Buffer::host`: a download when it is on
    /// the device, nothing when it is already on the host).
    Host,
    /// Leave it where it is, but wait until the GPU has finished.
    Device,
}

/// A kernel result the harness knows how to finish.
trait Output {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept>;
}

impl Output for Buffer<f32> {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        match how {
            Finish::Host => {
                let host = self.host()?;
                Ok(Kept::Buffer(Some(host), self))
            }
            Finish::Device => {
                if let Some(g) = engine.gpu() {
                    g.wait("compare")?;
                }
                Ok(Kept::Buffer(None, self))
            }
        }
    }
}

macro_rules! scalar_output {
    ($($t:ty),*) => {$(
        impl Output for $t {
            fn finish(self, _: &Engine, _: Finish) -> tandem::Result<Kept> {
                black_box(self);
                Ok(Kept::Scalar)
            }
        }
    )*};
}
scalar_output!(f32, Option<f32>, Option<(usize, f32)>);

type SerialFn = Box<dyn Fn(&[f32], &[f32]) -> Kept>;
type RunFn = Box<dyn Fn(&Engine, &[Buffer<f32>], Finish) -> tandem::Result<Kept>>;
type ExplainFn = Box<dyn Fn(&Engine, &[Buffer<f32>]) -> Explanation>;

/// One kernel of the sweep: its serial loop, and how to call and explain it
/// on one or two f32 buffers.
struct Case {
    name: &'static str,
    inputs: usize,
    serial: SerialFn,
    run: RunFn,
    explain: ExplainFn,
}

/// A case for a one-input kernel.
fn one<K, O>(kernel: K, serial: impl Fn(&[f32]) -> Kept + 'static) -> Case
where
    K: for<'a> Kernel<&'a Buffer<f32>, Out = O> + Clone + 'static,
    O: Output,
{
    let k = kernel.clone();
    Case {
        name: Kernel::<&Buffer<f32>>::name(&kernel),
        inputs: 1,
        serial: Box::new(move |x, _| serial(x)),
        run: Box::new(move |e, b, how| e.run(&kernel, &b[0])?.finish(e, how)),
        explain: Box::new(move |e, b| e.explain(&k, &b[0])),
    }
}

/// A case for a two-input kernel.
fn two<K, O>(kernel: K, serial: impl Fn(&[f32], &[f32]) -> Kept + 'static) -> Case
where
    K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>), Out = O> + Clone + 'static,
    O: Output,
{
    let k = kernel.clone();
    Case {
        name: Kernel::<(&Buffer<f32>, &Buffer<f32>)>::name(&kernel),
        inputs: 2,
        serial: Box::new(serial),
        run: Box::new(move |e, b, how| e.run(&kernel, (&b[0], &b[1]))?.finish(e, how)),
        explain: Box::new(move |e, b| e.explain(&k, (&b[0], &b[1]))),
    }
}

/// The serial map loop writes into one output vector reused across calls
/// (its best case: no allocation or page faults timed), as a user's loop
/// over a preallocated `out` would.
fn unary(op: Unary, f: impl Fn(f32) -> f32 + 'static) -> Case {
    let out = RefCell::new(Vec::new());
    one(op, move |x| {
        let mut out = out.borrow_mut();
        out.resize(x.len(), 0.0);
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f(v);
        }
        scalar(out.last().copied())
    })
}

fn binary(op: Binary, f: impl Fn(f32, f32) -> f32 + 'static) -> Case {
    let out = RefCell::new(Vec::new());
    two(op, move |x, y| {
        let mut out = out.borrow_mut();
        out.resize(x.len(), 0.0);
        for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
            *o = f(a, b);
        }
        scalar(out.last().copied())
    })
}

/// Like [`binary`] for a two-input kernel that is not a [`Binary`] op.
fn binary_case<K, O>(kernel: K, f: impl Fn(f32, f32) -> f32 + 'static) -> Case
where
    K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>), Out = O> + Clone + 'static,
    O: Output,
{
    let out = RefCell::new(Vec::new());
    two(kernel, move |x, y| {
        let mut out = out.borrow_mut();
        out.resize(x.len(), 0.0);
        for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
            *o = f(a, b);
        }
        scalar(out.last().copied())
    })
}

fn scalar<T>(v: T) -> Kept {
    black_box(v);
    Kept::Scalar
}

/// Index and value of the first element `better` prefers, as a user's loop
/// would find it.
fn arg_loop(x: &[f32], better: impl Fn(f32, f32) -> bool) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in x.iter().enumerate() {
        if best.is_none_or(|(_, b)| better(v, b)) {
            best = Some((i, v));
        }
    }
    best
}

/// Every kernel of the sweep, in table order.
fn catalogue() -> Vec<Case> {
    const S: f32 = 1.5;
    const A: f32 = 2.5;
    vec![
        unary(Unary::Neg, |v| -v),
        unary(Unary::Abs, f32::abs),
        unary(Unary::Sqrt, f32::sqrt),
        unary(Unary::Exp, f32::exp),
        unary(Unary::Ln, f32::ln),
        unary(Unary::Scale(S), |v| S * v),
        binary(Binary::Add, |a, b| a + b),
        binary(Binary::Sub, |a, b| a - b),
        binary(Binary::Mul, |a, b| a * b),
        binary(Binary::Div, |a, b| a / b),
        binary(Binary::Min, f32::min),
        binary(Binary::Max, f32::max),
        binary_case(Axpy { a: A }, |x, y| A * x + y),
        one(Sum, |x| scalar(x.iter().sum::<f32>())),
        two(Dot, |x, y| {
            scalar(x.iter().zip(y).map(|(a, b)| a * b).sum::<f32>())
        }),
        one(Min, |x| scalar(x.iter().copied().reduce(f32::min))),
        one(Max, |x| scalar(x.iter().copied().reduce(f32::max))),
        one(ArgMin, |x| scalar(arg_loop(x, |v, b| v < b))),
        one(ArgMax, |x| scalar(arg_loop(x, |v, b| v > b))),
    ]
}

// ---------------------------------------------------------------------------
// Measuring

/// The columns, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Serial,
    Cpu,
    GpuHost,
    GpuRes,
    Auto,
}

impl Column {
    const ALL: [Column; 5] = [
        Column::Serial,
        Column::Cpu,
        Column::GpuHost,
        Column::GpuRes,
        Column::Auto,
    ];

    fn label(self) -> &'static str {
        match self {
            Column::Serial => "serial",
            Column::Cpu => "cpu",
            Column::GpuHost => "gpu(host)",
            Column::GpuRes => "gpu(res)",
            Column::Auto => "auto",
        }
    }

    fn is_gpu(self) -> bool {
        matches!(self, Column::GpuHost | Column::GpuRes)
    }
}

/// One timed cell.
#[derive(Clone, Copy, Debug)]
struct Cell {
    /// Median of the timed calls, seconds.
    median: f64,
    /// The untimed warm-up call, seconds.
    first: f64,
    reps: usize,
    /// Fewer than [`MIN_REPS`] calls because the GPU call was slow.
    capped: bool,
}

/// One size of one kernel: a cell per column (`None`: not run), or the
/// error a column stopped with.
#[derive(Clone, Debug)]
struct Row {
    kernel: &'static str,
    n: usize,
    work: Work,
    cells: [Option<Cell>; 5],
    errors: Vec<(Column, String)>,
    auto_choice: Backend,
    /// Pipelines compiled during the `gpu(host)` cell (its warm-up).
    gpu_pipelines: u64,
}

impl Row {
    fn get(&self, c: Column) -> Option<f64> {
        self.cells[c as usize].map(|c| c.median)
    }

    fn memory_bound(&self) -> bool {
        self.work.flops <= self.work.bytes()
    }

    fn cpu_bytes_per_s(&self) -> Option<f64> {
        self.get(Column::Cpu).map(|t| self.work.bytes() as f64 / t)
    }

    fn speedup(&self, c: Column) -> Option<f64> {
        Some(self.get(Column::Serial)? / self.get(c)?)
    }

    /// The faster of `cpu` and `gpu(host)`.
    fn faster(&self) -> Backend {
        match (self.get(Column::Cpu), self.get(Column::GpuHost)) {
            (Some(c), Some(g)) if g < c => Backend::Gpu,
            _ => Backend::Cpu,
        }
    }

    /// `auto` / the best of `cpu` and `gpu(host)`.
    fn regret(&self) -> Option<f64> {
        let auto = self.get(Column::Auto)?;
        let cpu = self.get(Column::Cpu)?;
        let best = self.get(Column::GpuHost).map_or(cpu, |g| g.min(cpu));
        Some(auto / best)
    }
}

/// Times `call` (which returns the seconds of its own timed region): one
/// warm-up, then `reps` calls (or as many as [`TARGET_CELL_S`] asks for).
fn time_cell(
    column: Column,
    reps: Option<usize>,
    mut call: impl FnMut() -> tandem::Result<(Duration, Kept)>,
) -> tandem::Result<Cell> {
    let (first, kept) = call()?;
    drop(kept);
    let first = first.as_secs_f64();
    // The first timed call (warm) sets how many more to take.
    let (probe, kept) = call()?;
    drop(kept);
    let probe = probe.as_secs_f64();
    let reps_asked = reps;
    let reps = reps.unwrap_or_else(|| {
        let want = ((TARGET_CELL_S / probe.max(1e-9)).ceil() as usize).clamp(MIN_REPS, MAX_REPS);
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
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    let median = if times.len() % 2 == 0 {
        (times[mid - 1] + times[mid]) / 2.0
    } else {
        times[mid]
    };
    Ok(Cell {
        median,
        first,
        reps,
        capped: reps < MIN_REPS && reps < reps_asked.unwrap_or(MIN_REPS),
    })
}

/// Runs `f` under the clock; the result is returned for dropping later.
fn timed(f: impl FnOnce() -> tandem::Result<Kept>) -> tandem::Result<(Duration, Kept)> {
    let start = Instant::now();
    let kept = f()?;
    Ok((start.elapsed(), kept))
}

/// New host-only buffers holding a copy of `data` (what a user starts from).
fn host_buffers(data: &[&[f32]]) -> Vec<Buffer<f32>> {
    data.iter().map(|d| Buffer::from(d.to_vec())).collect()
}

/// Rebuilds any buffer that a previous call left with a device copy, so the
/// next call again starts from host-only inputs.
fn keep_on_host(bufs: &mut [Buffer<f32>], data: &[&[f32]]) {
    for (b, d) in bufs.iter_mut().zip(data) {
        if b.residency() != Residency::Host {
            *b = Buffer::from(d.to_vec());
        }
    }
}

/// Measures every column of one kernel at one size.
///
/// Runs the columns in the order serial, cpu, auto, gpu(host), gpu(res) so
/// that one set of host buffers serves cpu and auto (a CPU call leaves them
/// on the host) and is then uploaded for gpu(res): copies of 2^24 elements
/// are not free.
fn measure_row(
    engine: &Engine,
    case: &Case,
    x: &[f32],
    y: &[f32],
    reps: Option<usize>,
) -> BoxResult<Row> {
    const ORDER: [Column; 5] = [
        Column::Serial,
        Column::Cpu,
        Column::Auto,
        Column::GpuHost,
        Column::GpuRes,
    ];
    let data: Vec<&[f32]> = [x, y][..case.inputs].to_vec();
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let mut shared = host_buffers(&data);
    let explained = (case.explain)(engine, &shared);
    let mut row = Row {
        kernel: case.name,
        n: x.len(),
        work: explained.work,
        cells: [None; 5],
        errors: Vec::new(),
        auto_choice: explained.chosen,
        gpu_pipelines: 0,
    };
    for column in ORDER {
        if column.is_gpu() && !engine.has_gpu() {
            continue;
        }
        let before = engine.stats();
        let cell = match column {
            Column::Serial => time_cell(column, reps, || {
                let start = Instant::now();
                let kept = (case.serial)(x, y);
                Ok((start.elapsed(), kept))
            }),
            Column::Cpu => time_cell(column, reps, || {
                timed(|| (case.run)(&cpu, &shared, Finish::Host))
            }),
            Column::Auto => time_cell(column, reps, || {
                keep_on_host(&mut shared, &data);
                timed(|| (case.run)(engine, &shared, Finish::Host))
            }),
            Column::GpuHost => {
                let mut bufs = host_buffers(&data);
                time_cell(column, reps, || {
                    keep_on_host(&mut bufs, &data);
                    timed(|| (case.run)(&gpu, &bufs, Finish::Host))
                })
            }
            Column::GpuRes => upload(engine, &shared).and_then(|()| {
                time_cell(column, reps, || {
                    timed(|| (case.run)(&gpu, &shared, Finish::Device))
                })
            }),
        };
        if column == Column::GpuHost {
            row.gpu_pipelines = engine.stats().since(&before).pipelines_compiled;
        }
        match cell {
            Ok(cell) => row.cells[column as usize] = Some(cell),
            // A GPU may refuse a size (binding or buffer limits): note it and go on.
            Err(e) if column.is_gpu() || column == Column::Auto => {
                row.errors.push((column, e.to_string()));
            }
            Err(e) => {
                return Err(format!("{} n={}: {}: {e}", case.name, x.len(), column.label()).into());
            }
        }
    }
    Ok(row)
}

/// Makes `bufs` resident on the GPU and waits for the uploads.
fn upload(engine: &Engine, bufs: &[Buffer<f32>]) -> tandem::Result<()> {
    if let Some(g) = engine.gpu() {
        for b in bufs {
            g.resident("compare", b)?;
        }
        g.wait("compare")?;
    }
    Ok(())
}

/// The host memory limits measured at the start of the run.
#[derive(Clone, Copy)]
struct Roofline {
    /// STREAM triad, bytes/s (two reads and a write per element).
    triad: f64,
    /// A read-only pass, bytes/s.
    read: f64,
}

impl Roofline {
    /// The limit that applies to a row: read-only kernels (reductions)
    /// against the read pass, kernels that also write against the triad.
    fn for_row(&self, r: &Row) -> f64 {
        if r.work.bytes_written == 0 {
            self.read
        } else {
            self.triad
        }
    }
}

/// Read bandwidth: an XOR fold over two arrays of [`TRIAD_LEN`] u32 on all
/// of the engine's threads (integer XOR is associative, so LLVM vectorizes
/// it: nothing of tandem's is used), best of 5, 8 bytes per element.
fn read_bandwidth(engine: &Engine) -> f64 {
    const CHUNK: usize = 1 << 16;
    let b: Vec<u32> = (0..TRIAD_LEN as u32).collect();
    let c: Vec<u32> = b.iter().map(|v| v.rotate_left(7)).collect();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let x = engine.cpu().install(|| {
            b.par_chunks(CHUNK)
                .zip(c.par_chunks(CHUNK))
                .map(|(b, c)| b.iter().zip(c).fold(0u32, |acc, (&b, &c)| acc ^ b ^ c))
                .reduce(|| 0, |p, q| p ^ q)
        });
        black_box(x);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (8 * TRIAD_LEN) as f64 / best
}

/// STREAM triad `a[i] = b[i] + s·c[i]` over three arrays of [`TRIAD_LEN`]
/// f32 on all of the engine's threads: bytes per second, best of 5, counting
/// 12 bytes per element (two reads, one write).
fn triad_bandwidth(engine: &Engine) -> f64 {
    const CHUNK: usize = 1 << 16;
    let s = black_box(3.0f32);
    let mut a = vec![0.5f32; TRIAD_LEN];
    let b = vec![1.0f32; TRIAD_LEN];
    let c = vec![2.0f32; TRIAD_LEN];
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        engine.cpu().install(|| {
            a.par_chunks_mut(CHUNK)
                .zip(b.par_chunks(CHUNK))
                .zip(c.par_chunks(CHUNK))
                .for_each(|((a, b), c)| {
                    for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                        *a = b + s * c;
                    }
                });
        });
        black_box(&mut a);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (12 * TRIAD_LEN) as f64 / best
}

/// `n` floats in `[0.5, 2.0)` from a xorshift64* generator.
fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
            0.5 + 1.5 * (bits as f32 / (1u32 << 24) as f32)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reporting

/// `2^k` for powers of two, else the number.
fn size_label(n: usize) -> String {
    if n.is_power_of_two() {
        format!("2^{}", n.trailing_zeros())
    } else {
        n.to_string()
    }
}

/// A cell's median, marked `*` when a slow GPU call cut its timed calls
/// below [`MIN_REPS`].
fn time_label(cell: Option<Cell>) -> String {
    match cell {
        Some(c) if c.capped => format!("{}*", seconds(c.median)),
        Some(c) => seconds(c.median),
        None => "-".into(),
    }
}

fn ratio_label(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
        None => "-".into(),
    }
}

/// One table line of right-aligned cells under `widths`.
fn line(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::new();
    for (c, w) in cells.iter().zip(widths) {
        let _ = write!(s, "{c:>w$} ");
    }
    s.trim_end().to_string()
}

fn print_table(case: &Case, rows: &[Row], bandwidth: Roofline, gpu: bool) {
    let Some(first) = rows.first() else { return };
    let per_element = first.work.bytes() as f64 / first.work.elements.max(1) as f64;
    println!(
        "{} (f32, {} input{}; {:.0} B/element moved; {})",
        case.name,
        case.inputs,
        if case.inputs == 1 { "" } else { "s" },
        per_element,
        if first.memory_bound() {
            "memory-bound"
        } else {
            "compute-heavy"
        },
    );
    let mut header = vec!["n", "serial", "cpu"];
    if gpu {
        header.extend(["gpu(host)", "gpu(res)"]);
    }
    header.extend(["auto", "auto→", "cpu GB/s", "cpu %bw", "cpu×ser"]);
    if gpu {
        header.extend(["gpu(h)×ser", "gpu(r)×ser"]);
    }
    let widths: Vec<usize> = header.iter().map(|h| h.chars().count().max(9)).collect();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    println!("{}", line(&header, &widths));
    for r in rows {
        let mut cells = vec![
            size_label(r.n),
            time_label(r.cells[Column::Serial as usize]),
            time_label(r.cells[Column::Cpu as usize]),
        ];
        if gpu {
            cells.push(time_label(r.cells[Column::GpuHost as usize]));
            cells.push(time_label(r.cells[Column::GpuRes as usize]));
        }
        cells.push(time_label(r.cells[Column::Auto as usize]));
        cells.push(r.auto_choice.to_string());
        cells.push(
            r.cpu_bytes_per_s()
                .map_or("-".into(), |b| format!("{:.1}", b / 1e9)),
        );
        cells.push(match r.cpu_bytes_per_s() {
            Some(b) if r.memory_bound() => format!("{:.0}%", 100.0 * b / bandwidth.for_row(r)),
            _ => "-".into(),
        });
        cells.push(ratio_label(r.speedup(Column::Cpu)));
        if gpu {
            cells.push(ratio_label(r.speedup(Column::GpuHost)));
            cells.push(ratio_label(r.speedup(Column::GpuRes)));
        }
        println!("{}", line(&cells, &widths));
    }
    if rows
        .iter()
        .any(|r| r.cells.iter().flatten().any(|c| c.capped))
    {
        println!("  * fewer than {MIN_REPS} timed calls (a slow GPU cell; `--reps K` to insist)");
    }
    for r in rows {
        for (column, e) in &r.errors {
            println!("  {} at n = {}: {e}", column.label(), size_label(r.n));
        }
    }
    let first_gpu = rows
        .iter()
        .find_map(|r| Some((r, r.cells[Column::GpuHost as usize]?)));
    if let Some((r, cell)) = first_gpu {
        println!(
            "  cold start: first gpu(host) call at n = {}: {} ({} pipeline{} compiled), then {} warm",
            size_label(r.n),
            seconds(cell.first),
            r.gpu_pipelines,
            if r.gpu_pipelines == 1 { "" } else { "s" },
            seconds(cell.median),
        );
    }
    println!();
}

fn print_summary(rows: &[Row], bandwidth: Roofline, gpu: bool) {
    println!("summary");
    for kernel in ["sum", "axpy"] {
        let Some(r) = rows
            .iter()
            .filter(|r| r.kernel == kernel)
            .max_by_key(|r| r.n)
        else {
            continue;
        };
        let (Some(t), Some(b)) = (r.get(Column::Cpu), r.cpu_bytes_per_s()) else {
            continue;
        };
        println!(
            "  {kernel:<5} n = {}: cpu {} = {:.1} GB/s = {:.0}% of {} bandwidth, {} serial",
            size_label(r.n),
            seconds(t),
            b / 1e9,
            100.0 * b / bandwidth.for_row(r),
            if r.work.bytes_written == 0 {
                "read"
            } else {
                "triad"
            },
            ratio_label(r.speedup(Column::Cpu)),
        );
    }
    println!(
        "  worst auto regret per kernel (auto / fastest of cpu{}; 1.00× = always picked the faster):",
        if gpu { ", gpu(host)" } else { "" }
    );
    let mut kernels: Vec<&str> = rows.iter().map(|r| r.kernel).collect();
    kernels.dedup();
    for kernel in kernels {
        let worst = rows
            .iter()
            .filter(|r| r.kernel == kernel)
            .filter_map(|r| Some((r.regret()?, r)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((regret, r)) = worst {
            println!(
                "    {kernel:<8} {:>7} at n = {:<5} (auto→{}, faster: {})",
                ratio_label(Some(regret)),
                size_label(r.n),
                r.auto_choice,
                r.faster(),
            );
        }
    }
    let timed: Vec<&Row> = rows.iter().filter(|r| r.regret().is_some()).collect();
    let right = timed.iter().filter(|r| r.auto_choice == r.faster()).count();
    println!(
        "  auto picked the faster backend in {right} of {} rows; where it did, the gap is \
         dispatch overhead plus noise",
        timed.len()
    );
}

/// Every row as CSV: times in seconds, empty where not measured; `reps` is
/// the timed calls per column, `serial/cpu/gpu_host/gpu_res/auto`.
fn csv(rows: &[Row], bandwidth: Roofline) -> String {
    let mut s = String::from(
        "kernel,n,bytes,flops,serial_s,cpu_s,gpu_host_s,gpu_res_s,auto_s,auto_backend,\
         cpu_gb_s,cpu_pct_bw,cpu_speedup,gpu_host_speedup,gpu_res_speedup,auto_regret,\
         triad_gb_s,read_gb_s,reps\n",
    );
    let secs = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4e}"));
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for r in rows {
        let mut fields = vec![
            r.kernel.to_string(),
            r.n.to_string(),
            r.work.bytes().to_string(),
            r.work.flops.to_string(),
        ];
        fields.extend(Column::ALL.iter().map(|&c| secs(r.get(c))));
        fields.push(r.auto_choice.to_string());
        fields.push(num(r.cpu_bytes_per_s().map(|b| b / 1e9)));
        fields.push(num(r
            .cpu_bytes_per_s()
            .map(|b| 100.0 * b / bandwidth.for_row(r))));
        for c in [Column::Cpu, Column::GpuHost, Column::GpuRes] {
            fields.push(num(r.speedup(c)));
        }
        fields.push(num(r.regret()));
        fields.push(num(Some(bandwidth.triad / 1e9)));
        fields.push(num(Some(bandwidth.read / 1e9)));
        let reps: Vec<String> = r
            .cells
            .iter()
            .map(|c| c.map_or("-".into(), |c| c.reps.to_string()))
            .collect();
        fields.push(reps.join("/"));
        let _ = writeln!(s, "{}", fields.join(","));
    }
    s
}

// ---------------------------------------------------------------------------
// Options

const USAGE: &str = "\
usage: cargo run --release --example compare -- [options]
  --max-log2 N      sizes 2^10, 2^12, ... up to 2^N (default 24)
  --sizes a,b,c     explicit element counts (1000, 2^20 or 1<<20)
  --kernels k1,k2   kernels to run (default all): neg abs sqrt exp ln scale
                    add sub mul div minimum maximum axpy sum dot min max
                    argmin argmax
  --reps K          timed calls per cell (default: ~20 ms worth, 3..=50)
  --csv PATH        also write every row as CSV
environment: TANDEM_NO_GPU=1 (CPU only), TANDEM_THREADS, TANDEM_ADAPTER";

struct Options {
    sizes: Vec<usize>,
    kernels: Option<Vec<&'static str>>,
    reps: Option<usize>,
    csv: Option<String>,
}

impl Options {
    /// The options, or `None` for `--help`.
    fn parse(args: impl Iterator<Item = String>) -> BoxResult<Option<Options>> {
        let mut opts = Options {
            sizes: pow2_sizes(24),
            kernels: None,
            reps: None,
            csv: None,
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "--max-log2" => {
                    let v = value()?;
                    let k: u32 = v
                        .parse()
                        .ok()
                        .filter(|k| (1..=32).contains(k))
                        .ok_or_else(|| format!("--max-log2: expected 1..=32, got {v:?}"))?;
                    opts.sizes = pow2_sizes(k);
                }
                "--sizes" => {
                    opts.sizes = value()?
                        .split(',')
                        .map(parse_size)
                        .collect::<BoxResult<Vec<_>>>()?;
                    opts.sizes.sort_unstable();
                    opts.sizes.dedup();
                }
                "--kernels" => {
                    let known: Vec<&'static str> = catalogue().iter().map(|c| c.name).collect();
                    let mut picked = Vec::new();
                    for name in value()?.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let k = known.iter().find(|k| **k == name).ok_or_else(|| {
                            format!("unknown kernel {name:?}; known: {}", known.join(", "))
                        })?;
                        picked.push(*k);
                    }
                    opts.kernels = Some(picked);
                }
                "--reps" => {
                    let v = value()?;
                    opts.reps =
                        Some(v.parse().ok().filter(|&r| r >= 1).ok_or_else(|| {
                            format!("--reps: expected a positive count, got {v:?}")
                        })?);
                }
                "--csv" => opts.csv = Some(value()?),
                _ => return Err(format!("unknown argument {arg:?}\n{USAGE}").into()),
            }
        }
        if opts.sizes.is_empty() {
            return Err("no sizes to run".into());
        }
        Ok(Some(opts))
    }
}

/// 2^10, 2^12, ... up to 2^max (2^max itself always included).
fn pow2_sizes(max: u32) -> Vec<usize> {
    let mut v: Vec<usize> = (10..=max).step_by(2).map(|k| 1usize << k).collect();
    if v.last() != Some(&(1usize << max)) {
        v.push(1 << max);
    }
    v
}

/// `1000`, `2^20` or `1<<20`.
fn parse_size(s: &str) -> BoxResult<usize> {
    let s = s.trim();
    let bad = || format!("--sizes: cannot read {s:?} (expected e.g. 1000, 2^20 or 1<<20)");
    let n = if let Some((b, e)) = s.split_once('^') {
        let (b, e): (usize, u32) = (b.parse().map_err(|_| bad())?, e.parse().map_err(|_| bad())?);
        b.checked_pow(e).ok_or_else(bad)?
    } else if let Some((b, e)) = s.split_once("<<") {
        let (b, e): (usize, u32) = (b.parse().map_err(|_| bad())?, e.parse().map_err(|_| bad())?);
        b.checked_shl(e).filter(|v| v >> e == b).ok_or_else(bad)?
    } else {
        s.parse().map_err(|_| bad())?
    };
    if n == 0 {
        return Err(format!("--sizes: {s:?} is empty; sizes must be at least 1").into());
    }
    Ok(n)
}
