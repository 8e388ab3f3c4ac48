//! Times every kernel on every backend over a range of sizes, next to the
//! serial loop a user would write instead, and measures the machine's limits
//! (host memory bandwidth, FMA peak, GPU copy bandwidth and FMA peak) so each
//! result can be read as a fraction of its roofline.
//!
//! ```text
//! cargo run --release --example compare
//! cargo run --release --example compare -- --kernels sum,axpy --max-log2 20 --out report
//! cargo run --release --example compare -- --kernels reduce --sizes 1000,2^20 --csv out.csv
//! ```
//!
//! # Options
//! - `--max-log2 N`: sizes 2^10, 2^12, ... up to 2^N data elements (default
//!   24; some cases stop lower unless this or `--max` is given: gemm at
//!   1024², transpose and conv2d at 2048²).
//! - `--max N`: the same cap as a count (`2^20`, `1<<20`, `1000000`).
//! - `--quick`: cap every case at 2^20 data elements and 10 timed calls.
//! - `--sizes a,b,c`: explicit sizes, in each case's own axis (elements for
//!   the vector kernels; a matrix or image side for the `n×n` cases); a
//!   size over the `--max` cap in data elements (default 2^24) is skipped.
//! - `--no-caps`: run every column at every size. Without it some columns
//!   stop early, and each table says where: the serial gemm loop (O(n³))
//!   at 512², and, on a software GPU driver only, the GPU columns at 2^20
//!   data elements (2^18 for scans and compactions, 256² for gemm and
//!   conv2d), where lavapipe takes 0.1 to 1 s a call; sum and axpy run on
//!   the GPU to 2^24.
//! - `--kernels k1,k2`: a subset: kernel names (as printed) or family names
//!   (`map`, `reduce`, `scan`, `compact`, `histogram`, `transpose`, `gemm`,
//!   `conv`).
//! - `--reps K`: timed calls per cell. Default: enough for about 20 ms, at
//!   least 3 and at most 50, except GPU cells whose calls take over 50 ms
//!   (2 calls) or 250 ms (1 call), marked `*`: a software driver at the
//!   largest sizes, which would otherwise dominate the run time.
//! - `--csv PATH`: also write every row as CSV.
//! - `--out DIR`: write `compare.txt` (the printed report), `compare.csv`,
//!   `compare.json` and one `<kernel>.svg` chart per kernel into `DIR`.
//!
//! A progress bar runs on stderr while the sweep runs (hidden when stderr is
//! not a terminal).
//!
//! # Cases
//! A case is one kernel at one element type over one size axis: its name
//! and family, a `setup(size)` that makes the host inputs, the kernel value
//! and the serial scalar reference (see [`bench`]). Adding a kernel to the
//! report is adding one small function to [`catalogue`]; the engine's
//! `Kernel::work` gives the bytes and flops the roofline uses. Vector
//! kernels sweep `n` elements (2^10 to 2^24); matrix and image kernels
//! (transpose, gemm with `m = n = k`, conv2d with a 5×5 filter) sweep an
//! `n×n` square, printed `1024²`, sides 32 to the cap.
//!
//! # Columns
//! Every cell is the **median** of its timed calls, after one untimed
//! warm-up call of the same cell. Inputs come from a xorshift generator
//! (f32 in `[0.5, 2.0)`). A result is dropped after the clock stops.
//! - `serial`: the plain scalar loop a user would write: for maps, an
//!   indexed loop into an output vector allocated once and reused across
//!   calls (the loop's best case); `x.iter().sum()` and the like for
//!   reductions, an index-tracking loop for arg-reductions; a running sum
//!   for scans; a filter loop pushing into a reused vector for
//!   compactions; a counting loop for histograms; the naive double loop for
//!   transpose; the naive i-k-j triple loop for gemm; the direct loop over
//!   the taps inside the image for conv2d. LLVM may auto-vectorize the
//!   simplest maps and gemm's inner loop; it cannot reorder a float sum, so
//!   serial reductions and scans run at scalar speed.
//! - `cpu`: `engine.on(Backend::Cpu).run(..)` on host-resident inputs.
//! - `gpu(host)`: `engine.on(Backend::Gpu).run(..)` on inputs that start on the
//!   host: host-only `Buffer`s are rebuilt (untimed) whenever a call left a
//!   device copy on them, the upload happens inside the call (timed), and a
//!   buffer result is brought back with `Buffer::host()` (timed). This is what
//!   a user pays for one call on host data.
//! - `gpu(res)`: the same call on inputs already uploaded (untimed, before the
//!   warm-up); a buffer result stays on the device, but the timed region ends
//!   with `Gpu::wait`, so the work itself is finished. Scalar results always
//!   come back to the host.
//! - `auto`: `engine.run(..)` (`Backend::Auto`) on host-resident inputs, a
//!   buffer result brought to the host as in `gpu(host)`; `auto→` is the
//!   backend the dispatcher chose (`Engine::explain`, asked before timing).
//! - `cpu GB/s`: `Work::bytes()` (bytes read + written, each once) / `cpu`.
//! - `cpu %roof`, `gpu(r) %roof`: the roofline time of the call's `Work`
//!   (`max(bytes / bandwidth, flops / FMA peak)`) over the measured time,
//!   with the limit that binds (`bw` or `fma`, whichever time is larger:
//!   typically the FMA peak for gemm and conv2d, bandwidth for the other
//!   kernels). Host limits: read-only
//!   kernels (reductions) against a read pass (an XOR fold), kernels that
//!   write against the STREAM triad. GPU limits: a resident copy kernel's
//!   bandwidth and an FMA loop's peak. Over 100% means the data fit in cache;
//!   neither bandwidth counts write-allocate traffic.
//! - `cpu×ser`, `gpu(h)×ser`, `gpu(r)×ser`: `serial` time / that column's time.
//! - `numpy`, `cpu×np`: numpy's median for the same operation
//!   (`benches/numpy_peer.py`, run once before the sweep), and numpy's time
//!   over `cpu`'s (above 1: tandem is faster).
//! - `rust peer`, `cpu×peer`: the best Rust crate for the job, named in the
//!   table's first line, timed in the same row at every size: matrixmultiply
//!   (threaded) for gemm, `voracious_mt_sort` for sort, the `transpose`
//!   crate, and otherwise the rayon idiom a Rust user would write
//!   (`par_iter().map(..).collect_into_vec`, `par_iter().sum()`,
//!   `par_sort_by_key`, a `par_chunks` fold for histograms). Scans and
//!   conv2d have none.
//!
//! tandem's calls allocate their output, and that is timed: it comes from
//! tandem's pool of dropped buffers' memory (each result here is dropped
//! before the next call), so neither side pays page faults for fresh memory
//! in a warm loop.
//!
//! # Cold start
//! Warm timings leave out what the first call pays. For each kernel the
//! report also times, on a **fresh engine** (its creation timed apart), the
//! first GPU call at the smallest size: pipeline compilation, device
//! allocations and the upload, against the warm median of the same cell.
//!
//! # Summary
//! The CPU figures for `sum` and `axpy` (against bandwidth), `gemm` and
//! `conv2d` (against the FMA peak) at their largest size, each kernel's
//! worst `auto` regret (`auto` / min(`cpu`, `gpu(host)`); where `cpu` is
//! the faster, the median over the alternated `cpu`/`auto` pairs of their
//! ratio, at least 9 pairs) and the crossover
//! sizes: the smallest size from which the GPU beats the CPU backend at
//! every larger size of the sweep where both ran, for data on the host and
//! resident data.
//!
//! Without a GPU (no adapter, or `TANDEM_NO_GPU=1`) only the CPU columns are
//! printed, with one line saying why.

use std::any::Any;
use std::error::Error;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Value, json};
use tandem::dispatch::seconds;
use tandem::gpu::{Bind, Dispatch, ShaderSpec};
use tandem::kernels::{
    ArgMax, ArgMin, Argsort, Axpy, Binary, Border, Compact, CompactIf, Compare, Conv2d, Dot, Gemm,
    Histogram, HistogramCounts, HistogramRange, Max, Min, Scan, Sort, SortPairs, Sum, Transpose,
    Unary,
};
use tandem::{
    Backend, Buffer, Element, Engine, Explanation, Gpu, HostData, Kernel, Residency, Work,
};

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Each cell runs for about this long when `--reps` is not given...
const TARGET_CELL_S: f64 = 0.020;
/// ...with at least this many timed calls...
const MIN_REPS: usize = 3;
/// ...and at most this many.
const MAX_REPS: usize = 50;
/// Timed calls per cell at most under `--quick`.
const QUICK_MAX_REPS: usize = 10;
/// Fewest alternated `cpu`/`auto` pairs (unless `--reps` or `--quick`
/// asks for fewer): the regret is a ratio of two close times, and three
/// samples on a shared 2-core machine do not pin it to 10%.
const MIN_PAIRS: usize = 9;
/// Data elements per case at most under `--quick`.
const QUICK_MAX_ELEMENTS: usize = 1 << 20;
/// A GPU call slower than this (a software driver at the largest sizes) gets
/// only [`SLOW_GPU_REPS`] timed calls, to keep the default sweep short.
const SLOW_GPU_CALL_S: f64 = 0.050;
/// Timed calls for a slow GPU cell.
const SLOW_GPU_REPS: usize = 2;
/// A GPU call slower than this is timed once (after its warm-up).
const VERY_SLOW_GPU_CALL_S: f64 = 0.250;
/// Elements of each STREAM-triad array: 64 MiB of f32, beyond any cache.
const TRIAD_LEN: usize = 1 << 24;
/// Seeds of the first and second input arrays.
const SEED_X: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED_Y: u64 = 0xD1B5_4A32_D192_ED03;

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

/// What the run prints, kept for `compare.txt`; printed lines go around the
/// progress bar.
struct Log {
    text: String,
    bar: ProgressBar,
}

impl Log {
    fn say(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        self.bar.suspend(|| println!("{s}"));
        self.text.push_str(s);
        self.text.push('\n');
    }
}

fn run() -> BoxResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(opts) = Options::parse(args.iter().cloned())? else {
        println!("{}", usage());
        return Ok(());
    };
    let cases: Vec<Case> = catalogue()
        .into_iter()
        .filter(|c| {
            opts.kernels
                .as_ref()
                .is_none_or(|k| k.iter().any(|k| *k == c.name || *k == c.family))
        })
        .collect();
    if let Some(dir) = &opts.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let plan: Vec<Vec<usize>> = cases.iter().map(|c| c.sizes(&opts)).collect();
    let total: usize = plan.iter().map(Vec::len).sum();

    let started = Instant::now();
    let engine = Engine::new()?;
    let engine_start = started.elapsed().as_secs_f64();
    let gpu = engine.has_gpu();
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} cells  {msg}  [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut log = Log {
        text: String::new(),
        bar,
    };
    log.say(format!("command: compare {}", args.join(" ")));
    log.say(format!("host: {}", cpu_model()));
    log.say(engine.info().to_string());
    log.say(format!("engine created in {}", seconds(engine_start)));
    if !gpu {
        let why = engine.info().gpu_unavailable.unwrap_or_default();
        let hint = if why.contains("mesa-vulkan-drivers") {
            ""
        } else {
            "; without a hardware GPU, `apt-get install mesa-vulkan-drivers` provides \
             lavapipe, a software Vulkan driver"
        };
        log.say(format!("no GPU columns: {why}{hint}"));
    }
    let numpy = if opts.vs_numpy {
        log.bar.set_message("timing the same cases through numpy");
        match NumpyPeer::run(&cases, &plan, &opts) {
            Ok(peer) => {
                log.say(format!(
                    "numpy {} ({}): numpy and cpu×np columns (numpy's time / tandem cpu's)",
                    peer.version, peer.blas
                ));
                Some(peer)
            }
            Err(why) => {
                log.say(format!("no numpy column: {why}"));
                None
            }
        }
    } else {
        None
    };
    log.bar.set_message("measuring the roofline");
    let roof = Roofline::measure(&engine);
    log.say(roof.describe(&engine));

    let mut all = Vec::new();
    let mut colds = Vec::new();
    for (case, sizes) in cases.iter().zip(&plan) {
        if let Some(given) = &opts.sizes {
            let dropped: Vec<String> = given
                .iter()
                .filter(|n| !sizes.contains(n))
                .map(|&n| (case.axis.show)(n))
                .collect();
            if !dropped.is_empty() {
                log.say(format!(
                    "{}: {} = {} skipped: over the cap of {} data elements (`--max` to raise it)\n",
                    case.name,
                    case.axis.label,
                    dropped.join(", "),
                    size_label(opts.max_elements),
                ));
            }
            if sizes.is_empty() {
                continue;
            }
        }
        let mut rows = Vec::new();
        for &n in sizes {
            log.bar.set_message(format!(
                "{} {}={}",
                case.name,
                case.axis.label,
                (case.axis.show)(n)
            ));
            let mut row = measure_row(&engine, case, n, &opts)?;
            row.numpy = numpy.as_ref().and_then(|p| p.time(case.name, n));
            rows.push(row);
            log.bar.inc(1);
        }
        let cold = match sizes.first() {
            Some(&n) if gpu => {
                log.bar.set_message(format!("{} cold start", case.name));
                match cold_start(case, n) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        log.say(format!("{}: no cold start figure: {e}", case.name));
                        None
                    }
                }
            }
            _ => None,
        };
        print_table(&mut log, case, &rows, cold.as_ref(), &roof, gpu);
        all.extend(rows);
        colds.push((case, cold));
    }
    log.bar.finish_and_clear();
    let kernels: Vec<KernelSummary> = colds
        .into_iter()
        .map(|(case, cold)| KernelSummary::of(case, cold, &all))
        .collect();
    print_summary(&mut log, &all, &kernels, &roof, gpu);
    let took = started.elapsed().as_secs_f64();
    log.say(format!("\nsweep took {:.1} s", took));
    if let Some(path) = &opts.csv {
        std::fs::write(path, csv(&all, &roof)).map_err(|e| format!("cannot write {path}: {e}"))?;
        log.say(format!("wrote {} rows to {path}", all.len()));
    }
    if let Some(dir) = &opts.out {
        let mut written = vec!["compare.txt", "compare.csv", "compare.json"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        write(dir, "compare.csv", &csv(&all, &roof))?;
        let report = json_report(&args, &engine, engine_start, &roof, &all, &kernels, took);
        write(dir, "compare.json", &serde_json::to_string_pretty(&report)?)?;
        for k in &kernels {
            let rows: Vec<&Row> = all.iter().filter(|r| r.kernel == k.name).collect();
            let file = format!("{}.svg", file_stem(k.name));
            chart(&dir.join(&file), k, &rows, &roof)?;
            written.push(file);
        }
        log.say(format!("wrote {} to {}", written.join(", "), dir.display()));
        write(dir, "compare.txt", &log.text)?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> BoxResult<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

/// A kernel name as a file name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The CPU's model name (Linux `/proc/cpuinfo`), or `unknown`.
fn cpu_model() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{model}, {cores} hardware threads, {}",
        std::env::consts::ARCH
    )
}

// ---------------------------------------------------------------------------
// The case registry

/// What a case's size counts, and the default sweep over it.
#[derive(Clone, Copy, Debug)]
struct Axis {
    /// The size column's header: `n` for vectors, `n×n` for squares.
    label: &'static str,
    /// The axis' name in CSV and JSON (ASCII): `n` or `side`.
    key: &'static str,
    /// A size as printed: `2^20` for vectors, `1024²` for squares.
    show: fn(usize) -> String,
    /// Input data elements at a size (what `--max` and `--quick` cap).
    elements: fn(usize) -> usize,
    /// The default sizes with at most `max` data elements.
    sweep: fn(usize) -> Vec<usize>,
}

/// A vector of `n` elements; sizes 2^10, 2^12, ... up to the cap.
const ELEMENTS: Axis = Axis {
    label: "n",
    key: "n",
    show: size_label,
    elements: |n| n,
    sweep: |max| pow2_sizes(max.max(1).ilog2()),
};

/// An `n×n` matrix (or image) of side `n`: `n²` elements per input; sides
/// 32, 64, ... up to the cap. For SGEMM (`m = n = k`), convolution or
/// transpose.
const SQUARE: Axis = Axis {
    label: "n×n",
    key: "side",
    show: |n| format!("{n}²"),
    elements: |n| n * n,
    sweep: |max| {
        (5..16)
            .map(|k| 1usize << k)
            .filter(|n| n * n <= max)
            .collect()
    },
};

/// On a software GPU driver (lavapipe) the GPU columns run only up to this
/// many data elements unless a case asks for more
/// ([`Case::software_gpu_max`]): its calls take up to a second at 2^24, and
/// would take most of the default run's time. `--no-caps` lifts it.
const SOFTWARE_GPU_MAX_ELEMENTS: usize = 1 << 20;

/// One kernel at one element type over one size axis.
struct Case {
    name: &'static str,
    family: &'static str,
    /// Element types of the inputs, e.g. `f32` or `u32,f32`.
    element: String,
    axis: Axis,
    /// The default sweep's cap in data elements, when this case needs a
    /// lower one than `--max` (a slow serial reference, say).
    default_max: Option<usize>,
    /// The serial column runs only up to this many data elements, and why
    /// (an O(n³) loop, say); `--no-caps` lifts it.
    serial_max: Option<(usize, &'static str)>,
    /// The GPU columns' cap on a software driver.
    software_gpu_max: usize,
    setup: Box<dyn Fn(usize) -> Box<dyn Instance>>,
}

impl Case {
    fn new<D: HostArgs>(
        name: &'static str,
        family: &'static str,
        axis: Axis,
        setup: impl Fn(usize) -> Bench<D> + 'static,
    ) -> Case {
        Case {
            name,
            family,
            element: D::types(),
            axis,
            default_max: None,
            serial_max: None,
            software_gpu_max: SOFTWARE_GPU_MAX_ELEMENTS,
            setup: Box::new(move |n| Box::new(setup(n))),
        }
    }

    /// Caps this case's default sweep at `elements` data elements (for a
    /// slow serial reference, say); `--max`, `--max-log2` and `--quick`
    /// override it.
    fn max_elements(mut self, elements: usize) -> Case {
        self.default_max = Some(elements);
        self
    }

    /// Runs the serial column only up to `elements` data elements, for the
    /// reason given; `--no-caps` lifts it.
    fn serial_max(mut self, elements: usize, why: &'static str) -> Case {
        self.serial_max = Some((elements, why));
        self
    }

    /// Runs the GPU columns up to `elements` data elements on a software
    /// driver (default [`SOFTWARE_GPU_MAX_ELEMENTS`]).
    fn software_gpu_max(mut self, elements: usize) -> Case {
        self.software_gpu_max = elements;
        self
    }

    /// The largest size `column` runs at, in data elements, and why; `None`
    /// when it runs at every size.
    fn column_cap(&self, column: Column, software_gpu: bool) -> Option<(usize, &'static str)> {
        match column {
            Column::Serial => self.serial_max,
            Column::GpuHost | Column::GpuRes if software_gpu => Some((
                self.software_gpu_max,
                "a software GPU driver is slow at large sizes",
            )),
            _ => None,
        }
    }

    /// The sizes to run: `--sizes` as given up to `--max` data elements
    /// (a side of 2^20 is 2^40 elements), else the axis' sweep under the
    /// caps.
    fn sizes(&self, opts: &Options) -> Vec<usize> {
        if let Some(s) = &opts.sizes {
            let mut s = s.clone();
            s.retain(|&n| (self.axis.elements)(n) <= opts.max_elements);
            return s;
        }
        let mut max = opts.max_elements;
        if let Some(m) = self.default_max.filter(|_| !opts.max_given) {
            max = max.min(m);
        }
        let mut sizes = (self.axis.sweep)(max);
        sizes.retain(|&n| (self.axis.elements)(n) <= max);
        sizes
    }
}

/// Host data a case starts from: a `Vec<T>` or a tuple of them. Each call of
/// [`HostArgs::buffers`] makes new host-only `Buffer`s holding a copy.
trait HostArgs: 'static {
    type Bufs: DevArgs;
    fn buffers(&self) -> Self::Bufs;
    fn types() -> String;
}

/// The buffers a kernel takes, as owned values.
trait DevArgs: 'static {
    /// The kernel's input type borrowed from them: `&Buffer<T>` or a tuple.
    type In<'a>: tandem::Inputs + Clone;
    fn input(&self) -> Self::In<'_>;
    /// Whether a call left a device copy on any of them.
    fn touched(&self) -> bool;
    /// Uploads them (a resident copy on `gpu`).
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()>;
}

impl<T: Element> HostArgs for Vec<T> {
    type Bufs = Buffer<T>;
    fn buffers(&self) -> Buffer<T> {
        Buffer::from(self.clone())
    }
    fn types() -> String {
        T::TYPE.wgsl().to_string()
    }
}

impl<T: Element> DevArgs for Buffer<T> {
    type In<'a> = &'a Buffer<T>;
    fn input(&self) -> &Buffer<T> {
        self
    }
    fn touched(&self) -> bool {
        self.residency() != Residency::Host
    }
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()> {
        gpu.resident("compare", self).map(drop)
    }
}

impl<A: HostArgs, B: HostArgs> HostArgs for (A, B) {
    type Bufs = (A::Bufs, B::Bufs);
    fn buffers(&self) -> Self::Bufs {
        (self.0.buffers(), self.1.buffers())
    }
    fn types() -> String {
        let (a, b) = (A::types(), B::types());
        if a == b { a } else { format!("{a},{b}") }
    }
}

impl<A: DevArgs, B: DevArgs> DevArgs for (A, B) {
    type In<'a> = (A::In<'a>, B::In<'a>);
    fn input(&self) -> Self::In<'_> {
        (self.0.input(), self.1.input())
    }
    fn touched(&self) -> bool {
        self.0.touched() || self.1.touched()
    }
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()> {
        self.0.upload(gpu)?;
        self.1.upload(gpu)
    }
}

/// One case at one size, ready to time.
trait Instance {
    fn explain(&self, engine: &Engine) -> Explanation;
    /// The serial scalar reference, once.
    fn serial(&mut self) -> Kept;
    /// The Rust peer's name, when the case has one.
    fn peer_name(&self) -> Option<&'static str>;
    /// The Rust peer, once (`None` when the case has none).
    fn peer(&mut self) -> Option<Kept>;
    /// Makes the inputs host-only again if a call left device copies
    /// (untimed: a user's data starts on the host).
    fn reset(&mut self);
    /// One call on the inputs as they are.
    fn call(&self, engine: &Engine, how: Finish) -> tandem::Result<Kept>;
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()>;
}

/// A kernel, its inputs and its serial reference: what [`Case::new`]'s
/// setup returns, built with [`bench`].
struct Bench<D: HostArgs> {
    data: D,
    bufs: D::Bufs,
    call: CallFn<D::Bufs>,
    explain: ExplainFn<D::Bufs>,
    serial: RefFn<D>,
    /// The best Rust crate (or rayon idiom) for the same job, and its call.
    peer: Option<(&'static str, RefFn<D>)>,
}

/// A timed call on a case's host data.
type RefFn<D> = Box<dyn FnMut(&D) -> Kept>;
type CallFn<B> = Box<dyn Fn(&Engine, &B, Finish) -> tandem::Result<Kept>>;
type ExplainFn<B> = Box<dyn Fn(&Engine, &B) -> Explanation>;

/// Times `kernel` on `data` against `serial`, the plain loop a user would
/// write (its result is passed to `black_box`).
fn bench<D, K, O, R>(data: D, kernel: K, mut serial: impl FnMut(&D) -> R + 'static) -> Bench<D>
where
    D: HostArgs,
    K: for<'a> Kernel<<D::Bufs as DevArgs>::In<'a>, Out = O> + Clone + 'static,
    O: Output,
{
    let k = kernel.clone();
    Bench {
        bufs: data.buffers(),
        data,
        call: Box::new(move |e, b, how| e.run(&kernel, b.input())?.finish(e, how)),
        explain: Box::new(move |e, b| e.explain(&k, b.input())),
        serial: Box::new(move |d| {
            black_box(serial(d));
            Box::new(())
        }),
        peer: None,
    }
}

impl<D: HostArgs> Bench<D> {
    /// Times `call` as the `rust peer` column: the best Rust crate for the
    /// job, or the rayon idiom a Rust user would write where no crate does
    /// better. Its result is passed to `black_box` and dropped untimed.
    fn peer<R: 'static>(
        mut self,
        name: &'static str,
        mut call: impl FnMut(&D) -> R + 'static,
    ) -> Self {
        self.peer = Some((name, Box::new(move |d| Box::new(black_box(call(d))))));
        self
    }
}

impl<D: HostArgs> Instance for Bench<D> {
    fn explain(&self, engine: &Engine) -> Explanation {
        (self.explain)(engine, &self.bufs)
    }
    fn serial(&mut self) -> Kept {
        (self.serial)(&self.data)
    }
    fn peer_name(&self) -> Option<&'static str> {
        self.peer.as_ref().map(|p| p.0)
    }
    fn peer(&mut self) -> Option<Kept> {
        let (_, call) = self.peer.as_mut()?;
        Some(call(&self.data))
    }
    fn reset(&mut self) {
        if self.bufs.touched() {
            self.bufs = self.data.buffers();
        }
    }
    fn call(&self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        (self.call)(engine, &self.bufs, how)
    }
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()> {
        self.bufs.upload(gpu)
    }
}

/// A result kept alive until the clock has stopped, so freeing it is not timed.
type Kept = Box<dyn Any>;

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

impl<T: Element> Output for Buffer<T> {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        match how {
            // The host view first: tuple fields drop in order, and a `Buffer`
            // whose host copy is no longer shared gives that memory back to
            // tandem's host pool (as in user code, where the view goes first).
            Finish::Host => {
                let host: HostData<T> = self.host()?;
                Ok(Box::new((host, self)))
            }
            Finish::Device => {
                if let Some(g) = engine.gpu() {
                    g.wait("compare")?;
                }
                Ok(Box::new(self))
            }
        }
    }
}

impl<A: Output, B: Output> Output for (A, B) {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        let a = self.0.finish(engine, how)?;
        Ok(Box::new((a, self.1.finish(engine, how)?)))
    }
}

macro_rules! scalar_output {
    ($($t:ty),*) => {$(
        impl Output for $t {
            fn finish(self, _: &Engine, _: Finish) -> tandem::Result<Kept> {
                Ok(Box::new(black_box(self)))
            }
        }
    )*};
}
scalar_output!(
    f32,
    u32,
    i32,
    u64,
    usize,
    Option<f32>,
    Option<u32>,
    Option<(usize, f32)>,
    Option<(usize, u32)>,
    HistogramCounts
);

// ---------------------------------------------------------------------------
// Kernels under test

/// A map over one f32 vector; the serial loop writes into one output vector
/// reused across calls (its best case: no allocation or page faults timed),
/// as a user's loop over a preallocated `out` would.
fn unary(op: Unary, f: fn(f32) -> f32) -> Case {
    let name = Kernel::<&Buffer<f32>>::name(&op);
    Case::new(name, "map", ELEMENTS, move |n| {
        let (mut out, mut peer) = (Vec::new(), Vec::new());
        bench(random_f32(n, SEED_X), op, move |x: &Vec<f32>| {
            out.resize(x.len(), 0.0);
            for (o, &v) in out.iter_mut().zip(x) {
                *o = f(v);
            }
            out.last().copied()
        })
        .peer("rayon", move |x: &Vec<f32>| {
            x.par_iter().map(|&v| f(v)).collect_into_vec(&mut peer);
            peer.last().copied()
        })
    })
}

/// A map over two f32 vectors, serial loop as in [`unary`].
fn binary<K>(kernel: K, f: fn(f32, f32) -> f32) -> Case
where
    K: for<'a> Kernel<(&'a Buffer<f32>, &'a Buffer<f32>), Out = Buffer<f32>> + Clone + 'static,
{
    let name = Kernel::<(&Buffer<f32>, &Buffer<f32>)>::name(&kernel);
    Case::new(name, "map", ELEMENTS, move |n| {
        let (mut out, mut peer) = (Vec::new(), Vec::new());
        let data = (random_f32(n, SEED_X), random_f32(n, SEED_Y));
        bench(
            data,
            kernel.clone(),
            move |(x, y): &(Vec<f32>, Vec<f32>)| {
                out.resize(x.len(), 0.0);
                for ((o, &a), &b) in out.iter_mut().zip(x).zip(y) {
                    *o = f(a, b);
                }
                out.last().copied()
            },
        )
        .peer("rayon", move |(x, y): &(Vec<f32>, Vec<f32>)| {
            x.par_iter()
                .zip(y)
                .map(|(&a, &b)| f(a, b))
                .collect_into_vec(&mut peer);
            peer.last().copied()
        })
    })
}

/// A reduction of one f32 vector to a host value, against a serial loop
/// and rayon's parallel reduction.
fn reduce1<K, O, R>(kernel: K, serial: fn(&[f32]) -> R, rayon: fn(&[f32]) -> R) -> Case
where
    K: for<'a> Kernel<&'a Buffer<f32>, Out = O> + Clone + 'static,
    O: Output,
    R: 'static,
{
    let name = Kernel::<&Buffer<f32>>::name(&kernel);
    Case::new(name, "reduce", ELEMENTS, move |n| {
        bench(
            random_f32(n, SEED_X),
            kernel.clone(),
            move |x: &Vec<f32>| serial(x),
        )
        .peer("rayon", move |x: &Vec<f32>| rayon(x))
    })
}

/// Index and value of the first element `better` prefers, with rayon.
fn arg_rayon(x: &[f32], better: fn(f32, f32) -> bool) -> Option<(usize, f32)> {
    x.par_iter()
        .copied()
        .enumerate()
        .reduce_with(|a, b| if better(b.1, a.1) { b } else { a })
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

/// Every case of the sweep, in table order. A new kernel family adds its
/// cases here: one function each, built with [`Case::new`] and [`bench`]
/// (the kernel's `work` gives the roofline its bytes and flops; see
/// [`gemm`] for a 2-D case with a capped serial loop).
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
        // Issue 2 asks for the sum and axpy figures at 2^24 on every column.
        binary(Axpy { a: A }, |x, y| A * x + y).software_gpu_max(1 << 24),
        reduce1(
            Sum,
            |x| x.iter().sum::<f32>(),
            |x| x.par_iter().sum::<f32>(),
        )
        .software_gpu_max(1 << 24),
        Case::new("dot", "reduce", ELEMENTS, |n| {
            let data = (random_f32(n, SEED_X), random_f32(n, SEED_Y));
            bench(data, Dot, |(x, y): &(Vec<f32>, Vec<f32>)| {
                x.iter().zip(y).map(|(a, b)| a * b).sum::<f32>()
            })
            .peer("rayon", |(x, y): &(Vec<f32>, Vec<f32>)| {
                x.par_iter().zip(y).map(|(a, b)| a * b).sum::<f32>()
            })
        }),
        reduce1(
            Min,
            |x| x.iter().copied().reduce(f32::min),
            |x| x.par_iter().copied().reduce_with(f32::min),
        ),
        reduce1(
            Max,
            |x| x.iter().copied().reduce(f32::max),
            |x| x.par_iter().copied().reduce_with(f32::max),
        ),
        reduce1(
            ArgMin,
            |x| arg_loop(x, |v, b| v < b),
            |x| arg_rayon(x, |v, b| v < b),
        ),
        reduce1(
            ArgMax,
            |x| arg_loop(x, |v, b| v > b),
            |x| arg_rayon(x, |v, b| v > b),
        ),
        // Multi-pass GPU kernels: ~150 ms a call at 2^20 on lavapipe.
        inclusive_scan().software_gpu_max(1 << 18),
        exclusive_scan().software_gpu_max(1 << 18),
        compact().software_gpu_max(1 << 18),
        compact_if().software_gpu_max(1 << 18),
        // Sorts: ~0.3 s a call at 10^5 keys on lavapipe; serial columns are
        // O(n log n), so the sweep stops at 2^22 keys.
        sort_u32().software_gpu_max(1 << 16).max_elements(1 << 22),
        sort_pairs().software_gpu_max(1 << 16).max_elements(1 << 22),
        argsort_f32()
            .software_gpu_max(1 << 16)
            .max_elements(1 << 22),
        histogram(),
        histogram_range(),
        transpose(),
        gemm(),
        conv2d(),
    ]
}

/// `n` u32 keys with all 32 bits random (a radix sort cannot skip a pass).
fn random_keys(n: usize, seed: u64) -> Vec<u32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u32
        })
        .collect()
}

/// Sort of random u32 keys against `sort_unstable` (the fastest standard
/// sort) into a reused vector.
fn sort_u32() -> Case {
    Case::new("sort", "sort", ELEMENTS, |n| {
        let (mut out, mut peer) = (Vec::new(), Vec::new());
        bench(random_keys(n, SEED_X), Sort, move |x: &Vec<u32>| {
            out.clear();
            out.extend_from_slice(x);
            out.sort_unstable();
            out.last().copied()
        })
        .peer("voracious_mt_sort", move |x: &Vec<u32>| {
            use voracious_radix_sort::RadixSort as _;
            peer.clear();
            peer.extend_from_slice(x);
            peer.voracious_mt_sort(rayon::current_num_threads());
            peer.last().copied()
        })
    })
}

/// Stable key-value sort (u32 keys, u32 values) against a stable
/// `sort_by_key` of zipped pairs, as a user would write it.
fn sort_pairs() -> Case {
    Case::new("sort_pairs", "sort", ELEMENTS, |n| {
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let data = (random_keys(n, SEED_X), random_keys(n, SEED_Y));
        let mut peer: Vec<(u32, u32)> = Vec::new();
        bench(data, SortPairs, move |(k, v): &(Vec<u32>, Vec<u32>)| {
            pairs.clear();
            pairs.extend(k.iter().copied().zip(v.iter().copied()));
            pairs.sort_by_key(|p| p.0);
            pairs.last().copied()
        })
        // voracious sorts no tuples and its parallel sort is not stable.
        .peer(
            "rayon par_sort_by_key",
            move |(k, v): &(Vec<u32>, Vec<u32>)| {
                peer.clear();
                peer.par_extend(k.par_iter().copied().zip(v.par_iter().copied()));
                peer.par_sort_by_key(|p| p.0);
                peer.last().copied()
            },
        )
    })
}

/// Argsort of f32 keys against sorting indices by `total_cmp`.
fn argsort_f32() -> Case {
    Case::new("argsort", "sort", ELEMENTS, |n| {
        let mut idx: Vec<u32> = Vec::new();
        let mut peer: Vec<u32> = Vec::new();
        bench(random_f32(n, SEED_X), Argsort, move |x: &Vec<f32>| {
            idx.clear();
            idx.extend(0..x.len() as u32);
            idx.sort_by(|&a, &b| x[a as usize].total_cmp(&x[b as usize]));
            idx.last().copied()
        })
        .peer("rayon par_sort_by", move |x: &Vec<f32>| {
            peer.clear();
            peer.par_extend(0..x.len() as u32);
            peer.par_sort_by(|&a, &b| x[a as usize].total_cmp(&x[b as usize]));
            peer.last().copied()
        })
    })
}

/// Inclusive prefix sum of f32 against a running-sum loop.
fn inclusive_scan() -> Case {
    Case::new("inclusive_scan", "scan", ELEMENTS, |n| {
        let mut out = Vec::new();
        bench(
            random_f32(n, SEED_X),
            Scan::inclusive(),
            move |x: &Vec<f32>| {
                out.resize(x.len(), 0.0);
                let mut acc = 0.0f32;
                for (o, &v) in out.iter_mut().zip(x) {
                    acc += v;
                    *o = acc;
                }
                out.last().copied()
            },
        )
    })
}

/// Exclusive prefix sum of u32 (wrapping) against a running-sum loop.
fn exclusive_scan() -> Case {
    Case::new("exclusive_scan", "scan", ELEMENTS, |n| {
        let mut out = Vec::new();
        bench(
            random_u32(n, SEED_X, 1 << 24),
            Scan::exclusive(),
            move |x: &Vec<u32>| {
                out.resize(x.len(), 0);
                let mut acc = 0u32;
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = acc;
                    acc = acc.wrapping_add(v);
                }
                out.last().copied()
            },
        )
    })
}

/// Stream compaction of f32 by a random 0/1 mask (about half kept), against
/// a filter loop pushing into a reused vector.
fn compact() -> Case {
    Case::new("compact", "compact", ELEMENTS, |n| {
        let (mut out, mut peer) = (Vec::new(), Vec::new());
        let data = (random_f32(n, SEED_X), random_u32(n, SEED_Y, 2));
        bench(data, Compact, move |(x, mask): &(Vec<f32>, Vec<u32>)| {
            out.clear();
            for (&v, &m) in x.iter().zip(mask) {
                if m != 0 {
                    out.push(v);
                }
            }
            out.len()
        })
        .peer("rayon", move |(x, mask): &(Vec<f32>, Vec<u32>)| {
            peer.clear();
            peer.par_extend(x.par_iter().zip(mask).filter(|p| *p.1 != 0).map(|p| *p.0));
            peer.len()
        })
    })
}

/// Stream compaction of f32 by `x < 1.25` (about half of `[0.5, 2.0)`
/// kept), against a filter loop pushing into a reused vector.
fn compact_if() -> Case {
    const T: f32 = 1.25;
    let keep = CompactIf {
        cmp: Compare::Lt,
        threshold: T,
    };
    Case::new("compact_if", "compact", ELEMENTS, move |n| {
        let (mut out, mut peer) = (Vec::new(), Vec::new());
        bench(random_f32(n, SEED_X), keep, move |x: &Vec<f32>| {
            out.clear();
            for &v in x {
                if v < T {
                    out.push(v);
                }
            }
            out.len()
        })
        .peer("rayon", move |x: &Vec<f32>| {
            peer.clear();
            peer.par_extend(x.par_iter().copied().filter(|&v| v < T));
            peer.len()
        })
    })
}

/// 256 buckets of u32 values in `[0, 256)` against a counting loop.
fn histogram() -> Case {
    const BINS: u32 = 256;
    Case::new("histogram", "histogram", ELEMENTS, |n| {
        bench(
            random_u32(n, SEED_X, BINS),
            Histogram { bins: BINS },
            |x: &Vec<u32>| {
                let mut counts = vec![0u32; BINS as usize];
                let mut above = 0u32;
                for &v in x {
                    match counts.get_mut(v as usize) {
                        Some(c) => *c += 1,
                        None => above += 1,
                    }
                }
                (counts, above)
            },
        )
        .peer("rayon fold", |x: &Vec<u32>| {
            x.par_chunks(1 << 16)
                .map(|chunk| {
                    let mut counts = vec![0u32; BINS as usize + 1];
                    for &v in chunk {
                        counts[(v as usize).min(BINS as usize)] += 1;
                    }
                    counts
                })
                .reduce_with(|mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                })
        })
    })
}

/// 256 equal buckets over `[0.5, 2.0)` of f32 against a counting loop with
/// the same bucket formula.
fn histogram_range() -> Case {
    const BINS: u32 = 256;
    const LO: f32 = 0.5;
    const HI: f32 = 2.0;
    let kernel = HistogramRange {
        lo: LO,
        hi: HI,
        bins: BINS,
    };
    Case::new("histogram_range", "histogram", ELEMENTS, move |n| {
        bench(random_f32(n, SEED_X), kernel, |x: &Vec<f32>| {
            let scale = BINS as f32 / (HI - LO);
            let mut counts = vec![0u32; BINS as usize];
            let (mut below, mut above, mut nan) = (0u32, 0u32, 0u32);
            for &v in x {
                if (LO..HI).contains(&v) {
                    let bin = (((v - LO) * scale) as usize).min(BINS as usize - 1);
                    counts[bin] += 1;
                } else if v.is_nan() {
                    nan += 1;
                } else if v < LO {
                    below += 1;
                } else {
                    above += 1;
                }
            }
            (counts, below, above, nan)
        })
        .peer("rayon fold", |x: &Vec<f32>| {
            let scale = BINS as f32 / (HI - LO);
            // Bins, then below, above and NaN.
            let slot = |v: f32| {
                if (LO..HI).contains(&v) {
                    (((v - LO) * scale) as usize).min(BINS as usize - 1)
                } else if v.is_nan() {
                    BINS as usize + 2
                } else if v < LO {
                    BINS as usize
                } else {
                    BINS as usize + 1
                }
            };
            x.par_chunks(1 << 16)
                .map(|chunk| {
                    let mut counts = vec![0u32; BINS as usize + 3];
                    for &v in chunk {
                        counts[slot(v)] += 1;
                    }
                    counts
                })
                .reduce_with(|mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                })
        })
    })
}

/// An `n×n` f32 transpose against the naive double loop into a reused
/// output.
fn transpose() -> Case {
    Case::new("transpose", "transpose", SQUARE, |n| {
        let (mut out, mut peer) = (Vec::new(), Vec::new());
        bench(
            random_f32(n * n, SEED_X),
            Transpose { rows: n, cols: n },
            move |x: &Vec<f32>| {
                out.resize(n * n, 0.0);
                for i in 0..n {
                    for j in 0..n {
                        out[j * n + i] = x[i * n + j];
                    }
                }
                out.last().copied()
            },
        )
        // The `transpose` crate: cache-blocked and recursive, one thread.
        .peer("transpose", move |x: &Vec<f32>| {
            peer.resize(n * n, 0.0);
            transpose::transpose(x, &mut peer, n, n);
            peer.last().copied()
        })
    })
    // The naive loop takes ~0.2 s at 4096² (cache-missing column writes).
    .max_elements(2048 * 2048)
}

/// Square SGEMM `C = A·B` (`m = n = k`) against the naive i-k-j triple loop
/// (the row-streaming order LLVM vectorizes) into a reused `C`. Its roofline
/// is the FMA peak.
fn gemm() -> Case {
    Case::new("gemm", "gemm", SQUARE, |n| {
        let (mut c, mut peer) = (Vec::new(), Vec::new());
        let data = (random_f32(n * n, SEED_X), random_f32(n * n, SEED_Y));
        bench(
            data,
            Gemm::new(n, n, n),
            move |(a, b): &(Vec<f32>, Vec<f32>)| {
                c.clear();
                c.resize(n * n, 0.0f32);
                for i in 0..n {
                    let row = &mut c[i * n..(i + 1) * n];
                    for p in 0..n {
                        let aip = a[i * n + p];
                        for (cj, &bj) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                            *cj += aip * bj;
                        }
                    }
                }
                c.last().copied()
            },
        )
        .peer("matrixmultiply", move |(a, b): &(Vec<f32>, Vec<f32>)| {
            peer.resize(n * n, 0.0f32);
            // SAFETY: `a`, `b` and `peer` hold n·n f32 each, row-major with
            // row stride n and column stride 1, and `peer` aliases neither.
            unsafe {
                matrixmultiply::sgemm(
                    n,
                    n,
                    n,
                    1.0,
                    a.as_ptr(),
                    n as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    peer.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            peer.last().copied()
        })
    })
    .max_elements(1024 * 1024)
    .serial_max(512 * 512, "the naive loop is O(n³)")
    // Lavapipe: 0.13 s a call at 256², 1 s at 512², 6 s at 1024².
    .software_gpu_max(256 * 256)
}

/// Side of the square filter of the conv2d case.
const FILTER: usize = 5;

/// An `n×n` f32 image correlated with a 5×5 filter, zero border, against the
/// direct loop (each output pixel sums the taps that fall inside the image).
fn conv2d() -> Case {
    Case::new("conv2d", "conv", SQUARE, |n| {
        let mut out = Vec::new();
        let data = (
            random_f32(n * n, SEED_X),
            random_f32(FILTER * FILTER, SEED_Y),
        );
        let conv = Conv2d {
            height: n,
            width: n,
            filter_height: FILTER,
            filter_width: FILTER,
            border: Border::Zero,
        };
        bench(data, conv, move |(img, f): &(Vec<f32>, Vec<f32>)| {
            const R: usize = FILTER / 2;
            out.resize(n * n, 0.0);
            for y in 0..n {
                for x in 0..n {
                    let mut acc = 0.0f32;
                    // Taps i, j with y + i - R and x + j - R inside the image.
                    for i in R.saturating_sub(y)..FILTER.min(n + R - y) {
                        let row = &img[(y + i - R) * n..];
                        for j in R.saturating_sub(x)..FILTER.min(n + R - x) {
                            acc += f[i * FILTER + j] * row[x + j - R];
                        }
                    }
                    out[y * n + x] = acc;
                }
            }
            out.last().copied()
        })
    })
    // The direct loop takes ~0.75 s at 4096².
    .max_elements(2048 * 2048)
    // Lavapipe: 50 ms a call at 256², 0.18 s at 512², 0.8 s at 1024².
    .software_gpu_max(256 * 256)
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

    /// The key in CSV and JSON.
    fn key(self) -> &'static str {
        match self {
            Column::Serial => "serial",
            Column::Cpu => "cpu",
            Column::GpuHost => "gpu_host",
            Column::GpuRes => "gpu_res",
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
    reps: usize,
    /// Fewer than [`MIN_REPS`] calls because the GPU call was slow.
    capped: bool,
}

/// One size of one kernel: a cell per column (`None`: not run), or the
/// error a column stopped with.
#[derive(Clone, Debug)]
struct Row {
    kernel: &'static str,
    family: &'static str,
    element: String,
    axis: Axis,
    n: usize,
    work: Work,
    cells: [Option<Cell>; 5],
    /// Columns not run at this size because of the case's caps.
    capped: Vec<Column>,
    errors: Vec<(Column, String)>,
    auto_choice: Backend,
    /// numpy's median for the same operation and size, seconds.
    numpy: Option<f64>,
    /// The Rust peer's name and cell, where the case has one.
    peer: Option<(&'static str, Cell)>,
    /// The median over alternated pairs of `auto`'s time over `cpu`'s
    /// (each pair a few microseconds to milliseconds apart, so a burst of
    /// load from elsewhere cancels out of it).
    auto_over_cpu: Option<f64>,
}

impl Row {
    fn get(&self, c: Column) -> Option<f64> {
        self.cells[c as usize].map(|c| c.median)
    }

    fn cpu_bytes_per_s(&self) -> Option<f64> {
        self.get(Column::Cpu).map(|t| self.work.bytes() as f64 / t)
    }

    fn speedup(&self, c: Column) -> Option<f64> {
        Some(self.get(Column::Serial)? / self.get(c)?)
    }

    /// numpy's time over tandem's CPU time: above 1, tandem is faster.
    fn vs_numpy(&self) -> Option<f64> {
        Some(self.numpy? / self.get(Column::Cpu)?)
    }

    /// The faster of `cpu` and `gpu(host)`.
    fn faster(&self) -> Backend {
        match (self.get(Column::Cpu), self.get(Column::GpuHost)) {
            (Some(c), Some(g)) if g < c => Backend::Gpu,
            _ => Backend::Cpu,
        }
    }

    /// The Rust peer's time over tandem's CPU time: above 1, tandem is faster.
    fn vs_peer(&self) -> Option<f64> {
        Some(self.peer?.1.median / self.get(Column::Cpu)?)
    }

    /// `auto` / the best of `cpu` and `gpu(host)`. Where `cpu` is the
    /// best, the median of the paired ratios (see [`Row::auto_over_cpu`]).
    fn regret(&self) -> Option<f64> {
        let auto = self.get(Column::Auto)?;
        let cpu = self.get(Column::Cpu)?;
        match self.get(Column::GpuHost) {
            Some(g) if g < cpu => Some(auto / g),
            _ => Some(self.auto_over_cpu.unwrap_or(auto / cpu)),
        }
    }

    /// The column's roofline fraction and the limit that binds.
    fn roof(&self, roof: &Roofline, c: Column) -> Option<(f64, &'static str)> {
        let t = self.get(c)?;
        let (bw, peak) = match c {
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
fn time_cell(
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
    })
}

/// Times two calls on the same inputs in alternation (`a`, `b`, `a`, ...),
/// after one warm-up call each; the number of calls is set as in
/// [`time_cell`] from the slower of the first timed calls, but at least
/// [`MIN_PAIRS`]. Returns both cells and the median of the pairs' `b / a`.
fn time_pair<I>(
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
    };
    Ok((cell(&mut xs), cell(&mut ys), median(&mut ratios)))
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    if times.len().is_multiple_of(2) {
        (times[mid - 1] + times[mid]) / 2.0
    } else {
        times[mid]
    }
}

/// Runs `f` under the clock; the result is returned for dropping later.
fn timed(f: impl FnOnce() -> tandem::Result<Kept>) -> tandem::Result<(Duration, Kept)> {
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
fn measure_row(engine: &Engine, case: &Case, n: usize, opts: &Options) -> BoxResult<Row> {
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
            Column::GpuHost => time_cell(column, reps, max_reps, || {
                inst.reset();
                timed(|| inst.call(&gpu, Finish::Host))
            }),
            Column::GpuRes => upload(engine, inst.as_ref()).and_then(|()| {
                time_cell(column, reps, max_reps, || {
                    timed(|| inst.call(&gpu, Finish::Device))
                })
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

/// Makes the inputs resident on the GPU and waits for the uploads.
fn upload(engine: &Engine, inst: &dyn Instance) -> tandem::Result<()> {
    if let Some(g) = engine.gpu() {
        inst.upload(g)?;
        g.wait("compare")?;
    }
    Ok(())
}

/// What a kernel's first call costs on a fresh engine.
#[derive(Clone, Copy, Debug)]
struct ColdStart {
    n: usize,
    /// `Engine::new()` for the fresh engine (adapter, device, thread pool).
    engine_s: f64,
    /// The first `gpu(host)` call: pipelines, device buffers, upload, readback.
    first_s: f64,
    /// The second call on the same engine, for comparison.
    second_s: f64,
    pipelines: u64,
}

/// Times the first GPU call of `case` at size `n` on a new engine.
fn cold_start(case: &Case, n: usize) -> BoxResult<ColdStart> {
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

/// The machine's limits, measured at the start of the run.
#[derive(Clone, Copy, Debug)]
struct Roofline {
    /// STREAM triad, bytes/s (two reads and a write per element).
    triad: f64,
    /// A read-only pass, bytes/s.
    read: f64,
    /// f32 FMA peak of the host on all of the engine's threads, flops/s.
    fma: f64,
    /// A resident GPU copy kernel, bytes/s (read + write).
    gpu_copy: Option<f64>,
    /// f32 FMA peak of the GPU, flops/s.
    gpu_fma: Option<f64>,
}

impl Roofline {
    fn measure(engine: &Engine) -> Roofline {
        let (gpu_copy, gpu_fma) = match engine.gpu().filter(|_| engine.has_gpu()) {
            // A GPU that cannot run these leaves its roofline columns empty.
            Some(g) => (gpu_copy_bandwidth(engine).ok(), gpu_fma_peak(g).ok()),
            None => (None, None),
        };
        Roofline {
            triad: triad_bandwidth(engine),
            read: read_bandwidth(engine),
            fma: fma_peak(engine),
            gpu_copy,
            gpu_fma,
        }
    }

    /// The host bandwidth that applies to `work`: read-only kernels
    /// (reductions) against the read pass, kernels that also write against
    /// the triad.
    fn host_bandwidth(&self, work: &Work) -> f64 {
        if work.bytes_written == 0 {
            self.read
        } else {
            self.triad
        }
    }

    fn describe(&self, engine: &Engine) -> String {
        let mut s = format!(
            "host roofline: triad {:.1} GB/s, read {:.1} GB/s, f32 FMA peak {:.1} GFLOP/s \
             ({} threads; {} MiB arrays, best of 5; triad counts 12 B/element, \
             write-allocate traffic not)",
            self.triad / 1e9,
            self.read / 1e9,
            self.fma / 1e9,
            engine.cpu().threads(),
            (TRIAD_LEN * 4) >> 20,
        );
        if engine.has_gpu() {
            let rate = |v: Option<f64>, unit: &str| {
                v.map_or("failed".into(), |v| format!("{:.1} {unit}", v / 1e9))
            };
            let _ = write!(
                s,
                "\ngpu roofline: resident copy {} (scale by 1, read + write), f32 FMA peak {}",
                rate(self.gpu_copy, "GB/s"),
                rate(self.gpu_fma, "GFLOP/s"),
            );
        }
        s.push('\n');
        s
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

/// FMA rounds per thread in one burst of [`fma_peak`] (about 0.1 ms).
const FMA_ITERS: usize = 1 << 16;
/// Bursts of [`fma_peak`]: many short ones, so that one of them finds every
/// core free on a shared machine (a peak, not an average, is wanted).
const FMA_RUNS: usize = 100;

/// Host f32 FMA peak on all of the engine's threads, at the widest SIMD
/// width the CPU has (not the build's): [`tandem::cpu::peak::fma_peak`].
fn fma_peak(engine: &Engine) -> f64 {
    tandem::cpu::peak::fma_peak(engine.cpu(), FMA_ITERS, FMA_RUNS)
}

/// The GPU's bandwidth through a tandem kernel on resident data:
/// `Unary::Scale(1.0)` (a copy: one read, one write per element), timed to
/// `Gpu::wait`, no transfers, best of 3 after a warm-up.
fn gpu_copy_bandwidth(engine: &Engine) -> BoxResult<f64> {
    let software = engine.gpu().is_some_and(|g| g.info().is_software);
    let n: usize = if software { 1 << 22 } else { 1 << 26 };
    let gpu = engine.on(Backend::Gpu);
    let x = Buffer::from(vec![1.0f32; n]);
    if let Some(g) = engine.gpu() {
        g.resident("compare", &x)?;
        g.wait("compare")?;
    }
    let copy = Unary::Scale(1.0);
    let mut best = f64::INFINITY;
    for i in 0..4 {
        let (t, kept) = timed(|| gpu.run(&copy, &x)?.finish(engine, Finish::Device))?;
        drop(kept);
        if i > 0 {
            best = best.min(t.as_secs_f64());
        }
    }
    Ok((8 * n) as f64 / best)
}

/// A GPU FMA loop: each invocation runs 8 independent `vec4<f32>` FMA
/// chains and writes their sum (so nothing is optimized away).
const FMA_SHADER: &str = r#"
struct Params { iters: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(256)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = f32(gid.x) * 1e-9;
    var a0 = vec4<f32>(s, s + 0.1, s + 0.2, s + 0.3);
    var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
    var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
    let m = vec4<f32>(0.999999);
    let c = vec4<f32>(1e-7);
    for (var k = 0u; k < params.iters; k++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    out[gid.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
"#;

/// GPU f32 FMA peak from [`FMA_SHADER`] (64 flops per invocation and
/// iteration), best of 3 after a warm-up that compiles the pipeline.
fn gpu_fma_peak(gpu: &Gpu) -> BoxResult<f64> {
    let (workgroups, iters): (u32, u32) = if gpu.info().is_software {
        (64, 256)
    } else {
        (8192, 4096)
    };
    let invocations = workgroups as u64 * 256;
    let pipeline = gpu.pipeline(&ShaderSpec {
        label: "compare_fma_peak",
        source: FMA_SHADER,
        entry: "fma_peak",
        element: None,
        constants: &[],
    })?;
    let out = gpu.alloc::<f32>("compare", invocations as usize * 4)?;
    let params = [iters, 0, 0, 0];
    let bindings = [
        (0, Bind::Uniform(bytemuck::cast_slice(&params))),
        (
            1,
            Bind::Storage {
                copy: &out,
                range: 0..invocations * 16,
            },
        ),
    ];
    let dispatch = [Dispatch {
        pipeline: &pipeline,
        bindings: &bindings,
        workgroups,
    }];
    let mut best = f64::INFINITY;
    for i in 0..4 {
        let start = Instant::now();
        gpu.submit("compare", &dispatch)?;
        gpu.wait("compare")?;
        if i > 0 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    Ok((invocations * iters as u64 * 64) as f64 / best)
}

/// Values from a xorshift64* generator: the top 24 bits of each step.
fn xorshift(n: usize, seed: u64) -> impl Iterator<Item = u32> {
    let mut state = seed | 1;
    (0..n).map(move |_| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as u32
    })
}

/// `n` integers in `[0, below)` (`below` at most 2^24 for every value to be
/// reachable).
fn random_u32(n: usize, seed: u64, below: u32) -> Vec<u32> {
    xorshift(n, seed)
        .map(|bits| ((u64::from(bits) * u64::from(below)) >> 24) as u32)
        .collect()
}

/// `n` floats in `[0.5, 2.0)`.
fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    xorshift(n, seed)
        .map(|bits| 0.5 + 1.5 * (bits as f32 / (1u32 << 24) as f32))
        .collect()
}

// ---------------------------------------------------------------------------
// numpy, the peer a Python user reads first

/// numpy's medians per kernel and size, from `benches/numpy_peer.py`.
struct NumpyPeer {
    version: String,
    blas: String,
    times: std::collections::HashMap<(String, usize), f64>,
}

impl NumpyPeer {
    /// Runs the script once over the whole plan. `OPENBLAS_CORETYPE` and
    /// `OPENBLAS_L2_SIZE` are unset for it: set, they select an older
    /// OpenBLAS kernel than the CPU deserves.
    fn run(cases: &[Case], plan: &[Vec<usize>], opts: &Options) -> Result<NumpyPeer, String> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/numpy_peer.py");
        let python = std::env::var("TANDEM_PYTHON").unwrap_or_else(|_| "python3".into());
        let list: Vec<Value> = cases
            .iter()
            .zip(plan)
            .flat_map(|(c, sizes)| {
                sizes.iter().map(move |&n| {
                    let big = (c.axis.elements)(n) >= 1 << 22;
                    let reps = opts.reps.unwrap_or(if big { 5 } else { 15 });
                    json!({"kernel": c.name, "n": n, "reps": reps.min(opts.max_reps)})
                })
            })
            .collect();
        let mut child = Command::new(&python)
            .arg(&script)
            .env_remove("OPENBLAS_CORETYPE")
            .env_remove("OPENBLAS_L2_SIZE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {python} ({e}); install Python 3 with numpy"))?;
        let input = json!({ "cases": list }).to_string();
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(if err.contains("No module named 'numpy'") {
                format!("{python} has no numpy (`pip install numpy`)")
            } else {
                format!("{} failed: {}", script.display(), err.trim())
            });
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let times = v["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let key = (r["kernel"].as_str()?.to_string(), r["n"].as_u64()? as usize);
                Some((key, r["median_s"].as_f64()?))
            })
            .collect();
        Ok(NumpyPeer {
            version: v["numpy"].as_str().unwrap_or("?").to_string(),
            blas: v["blas"].as_str().unwrap_or("?").to_string(),
            times,
        })
    }

    fn time(&self, kernel: &str, n: usize) -> Option<f64> {
        self.times.get(&(kernel.to_string(), n)).copied()
    }
}

// ---------------------------------------------------------------------------
// Reporting

/// `2^k` for powers of two, else the number.
fn size_label(n: usize) -> String {
    if n.is_power_of_two() && n >= 1024 {
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

fn roof_label(r: Option<(f64, &str)>) -> String {
    match r {
        Some((f, bound)) if f >= 0.1 => format!("{:.0}% {bound}", 100.0 * f),
        Some((f, bound)) => format!("{:.1}% {bound}", 100.0 * f),
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

fn print_table(
    log: &mut Log,
    case: &Case,
    rows: &[Row],
    cold: Option<&ColdStart>,
    roof: &Roofline,
    gpu: bool,
) {
    let Some(last) = rows.last() else { return };
    let per_element = last.work.bytes() as f64 / last.work.elements.max(1) as f64;
    let flops_per_byte = last.work.flops as f64 / last.work.bytes().max(1) as f64;
    let peer_name = rows
        .iter()
        .find_map(|r| r.peer.map(|p| p.0))
        .map_or(String::new(), |p| format!("; rust peer: {p}"));
    log.say(format!(
        "{} ({} family, {}; {:.0} B/element moved, {:.2} flops/B{peer_name})",
        case.name, case.family, case.element, per_element, flops_per_byte,
    ));
    let mut header = vec![case.axis.label, "serial", "cpu"];
    if gpu {
        header.extend(["gpu(host)", "gpu(res)"]);
    }
    header.extend(["auto", "auto→", "cpu GB/s", "cpu %roof", "cpu×ser"]);
    let numpy = rows.iter().any(|r| r.numpy.is_some());
    if numpy {
        header.extend(["numpy", "cpu×np"]);
    }
    let peer = rows.iter().find_map(|r| r.peer.map(|p| p.0));
    if peer.is_some() {
        header.extend(["rust peer", "cpu×peer"]);
    }
    if gpu {
        header.extend(["gpu(r) %roof", "gpu(h)×ser", "gpu(r)×ser"]);
    }
    let widths: Vec<usize> = header.iter().map(|h| h.chars().count().max(9)).collect();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    log.say(line(&header, &widths));
    for r in rows {
        let mut cells = vec![
            (r.axis.show)(r.n),
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
        cells.push(roof_label(r.roof(roof, Column::Cpu)));
        cells.push(ratio_label(r.speedup(Column::Cpu)));
        if numpy {
            cells.push(r.numpy.map_or("-".into(), seconds));
            cells.push(ratio_label(r.vs_numpy()));
        }
        if peer.is_some() {
            cells.push(time_label(r.peer.map(|p| p.1)));
            cells.push(ratio_label(r.vs_peer()));
        }
        if gpu {
            cells.push(roof_label(r.roof(roof, Column::GpuRes)));
            cells.push(ratio_label(r.speedup(Column::GpuHost)));
            cells.push(ratio_label(r.speedup(Column::GpuRes)));
        }
        log.say(line(&cells, &widths));
    }
    if rows
        .iter()
        .any(|r| r.cells.iter().flatten().any(|c| c.capped))
    {
        log.say(format!(
            "  * fewer than {MIN_REPS} timed calls (a slow GPU cell; `--reps K` to insist)"
        ));
    }
    // One line per cap: the columns it left out, the last size they ran at.
    let mut caps: Vec<(Vec<&str>, String, &str)> = Vec::new();
    for column in Column::ALL {
        if !rows.iter().any(|r| r.capped.contains(&column)) {
            continue;
        }
        let last_run = rows
            .iter()
            .filter(|r| !r.capped.contains(&column))
            .map(|r| (case.axis.show)(r.n))
            .next_back()
            .unwrap_or_else(|| "no size".into());
        let why = case.column_cap(column, true).map_or("", |(_, why)| why);
        match caps
            .iter_mut()
            .find(|(_, l, w)| *l == last_run && *w == why)
        {
            Some((columns, _, _)) => columns.push(column.label()),
            None => caps.push((vec![column.label()], last_run, why)),
        }
    }
    for (columns, last_run, why) in caps {
        log.say(format!(
            "  {} run up to {} = {last_run} only: {why} (`--no-caps` runs every size)",
            columns.join(", "),
            case.axis.label,
        ));
    }
    for r in rows {
        for (column, e) in &r.errors {
            log.say(format!(
                "  {} at {} = {}: {e}",
                column.label(),
                case.axis.label,
                (case.axis.show)(r.n)
            ));
        }
    }
    if let Some(c) = cold {
        log.say(format!(
            "  cold start: first gpu(host) call on a fresh engine at {} = {}: {} ({} pipeline{} \
             compiled), then {}; the engine itself took {} to create",
            case.axis.label,
            (case.axis.show)(c.n),
            seconds(c.first_s),
            c.pipelines,
            if c.pipelines == 1 { "" } else { "s" },
            seconds(c.second_s),
            seconds(c.engine_s),
        ));
    }
    log.say("");
}

/// Where the GPU starts to win, for one kernel.
#[derive(Clone, Debug)]
struct KernelSummary {
    name: &'static str,
    family: &'static str,
    element: String,
    axis: Axis,
    cold: Option<ColdStart>,
    /// Smallest size from which `gpu(host)` beats `cpu` at every larger size.
    crossover_host: Option<usize>,
    /// The same for `gpu(res)`.
    crossover_resident: Option<usize>,
    /// Worst `auto` regret and the size it was at.
    worst_regret: Option<(f64, usize)>,
}

impl KernelSummary {
    fn of(case: &Case, cold: Option<ColdStart>, rows: &[Row]) -> KernelSummary {
        let rows: Vec<&Row> = rows.iter().filter(|r| r.kernel == case.name).collect();
        KernelSummary {
            name: case.name,
            family: case.family,
            element: case.element.clone(),
            axis: case.axis,
            cold,
            crossover_host: crossover(&rows, Column::GpuHost),
            crossover_resident: crossover(&rows, Column::GpuRes),
            worst_regret: rows
                .iter()
                .filter_map(|r| Some((r.regret()?, r.n)))
                .max_by(|a, b| a.0.total_cmp(&b.0)),
        }
    }
}

/// The smallest size of `rows` (sorted by size) from which `column` is
/// faster than `cpu` at that size and every larger one where both ran
/// (sizes where a cap left either out do not count).
fn crossover(rows: &[&Row], column: Column) -> Option<usize> {
    let mut from = None;
    for r in rows {
        if r.capped.contains(&column) || r.capped.contains(&Column::Cpu) {
            continue;
        }
        match (r.get(Column::Cpu), r.get(column)) {
            (Some(c), Some(g)) if g < c => {
                from.get_or_insert(r.n);
            }
            _ => from = None,
        }
    }
    from
}

fn crossover_label(k: &KernelSummary, c: Option<usize>) -> String {
    c.map_or("none in the sweep".into(), |n| {
        format!("{} = {}", k.axis.label, (k.axis.show)(n))
    })
}

fn print_summary(
    log: &mut Log,
    rows: &[Row],
    kernels: &[KernelSummary],
    roof: &Roofline,
    gpu: bool,
) {
    log.say("summary");
    let w = kernels.iter().map(|k| k.name.len()).max().unwrap_or(8);
    // Against numpy, each kernel at its largest size where both ran.
    let vs: Vec<&Row> = kernels
        .iter()
        .filter_map(|k| {
            rows.iter()
                .filter(|r| r.kernel == k.name && r.vs_numpy().is_some())
                .max_by_key(|r| r.n)
        })
        .collect();
    if !vs.is_empty() {
        log.say("  tandem cpu against numpy, each kernel at its largest size (cpu×np > 1: tandem faster):");
        for r in &vs {
            log.say(format!(
                "    {:w$} {} = {:>7}: cpu {:>9}, numpy {:>9}, cpu×np {}",
                r.kernel,
                r.axis.label,
                (r.axis.show)(r.n),
                r.get(Column::Cpu).map_or("-".into(), seconds),
                r.numpy.map_or("-".into(), seconds),
                ratio_label(r.vs_numpy()),
            ));
        }
    }
    let vs: Vec<&Row> = kernels
        .iter()
        .filter_map(|k| {
            rows.iter()
                .filter(|r| r.kernel == k.name && r.vs_peer().is_some())
                .max_by_key(|r| r.n)
        })
        .collect();
    if !vs.is_empty() {
        log.say("  tandem cpu against the best Rust peer, each kernel at its largest size (cpu×peer > 1: tandem faster):");
        for r in &vs {
            log.say(format!(
                "    {:w$} {} = {:>7}: cpu {:>9}, {} {:>9}, cpu×peer {}",
                r.kernel,
                r.axis.label,
                (r.axis.show)(r.n),
                r.get(Column::Cpu).map_or("-".into(), seconds),
                r.peer.map_or("-", |p| p.0),
                r.peer.map_or("-".into(), |p| seconds(p.1.median)),
                ratio_label(r.vs_peer()),
            ));
        }
    }
    // The memory-bound headline kernels, then the compute-bound ones, each
    // at its largest size, against the limit that binds.
    for kernel in ["sum", "axpy", "gemm", "conv2d"] {
        let Some(r) = rows
            .iter()
            .filter(|r| r.kernel == kernel)
            .max_by_key(|r| r.n)
        else {
            continue;
        };
        let (Some(t), Some((f, bound))) = (r.get(Column::Cpu), r.roof(roof, Column::Cpu)) else {
            continue;
        };
        let (rate, limit) = if bound == "fma" {
            (
                format!("{:.1} GFLOP/s", r.work.flops as f64 / t / 1e9),
                "the FMA peak",
            )
        } else if r.work.bytes_written == 0 {
            (
                format!("{:.1} GB/s", r.work.bytes() as f64 / t / 1e9),
                "read bandwidth",
            )
        } else {
            (
                format!("{:.1} GB/s", r.work.bytes() as f64 / t / 1e9),
                "triad bandwidth",
            )
        };
        let serial = match r.speedup(Column::Cpu) {
            Some(x) => format!("{} serial", ratio_label(Some(x))),
            None => "serial not run at this size".into(),
        };
        log.say(format!(
            "  {kernel:<w$} {} = {}: cpu {} = {rate} = {:.0}% of {limit}, {serial}",
            r.axis.label,
            (r.axis.show)(r.n),
            seconds(t),
            100.0 * f,
        ));
    }
    log.say(format!(
        "  worst auto regret per kernel (auto / fastest of cpu{}; 1.00× = always picked the faster):",
        if gpu { ", gpu(host)" } else { "" }
    ));
    for k in kernels {
        if let Some((regret, n)) = k.worst_regret {
            let r = rows.iter().find(|r| r.kernel == k.name && r.n == n);
            log.say(format!(
                "    {:<w$} {:>7} at {} = {:<5} (auto→{}, faster: {})",
                k.name,
                ratio_label(Some(regret)),
                k.axis.label,
                (k.axis.show)(n),
                r.map_or(Backend::Cpu, |r| r.auto_choice),
                r.map_or(Backend::Cpu, Row::faster),
            ));
        }
    }
    let timed: Vec<&Row> = rows.iter().filter(|r| r.regret().is_some()).collect();
    let right = timed.iter().filter(|r| r.auto_choice == r.faster()).count();
    log.say(format!(
        "  auto picked the faster backend in {right} of {} rows; where it did, the gap is \
         dispatch overhead plus noise",
        timed.len()
    ));
    if gpu {
        log.say("  crossover (the GPU beats the CPU backend from this size up), data on the host / resident:");
        for k in kernels {
            log.say(format!(
                "    {:<w$} {} / {}",
                k.name,
                crossover_label(k, k.crossover_host),
                crossover_label(k, k.crossover_resident),
            ));
        }
        let colds: Vec<f64> = kernels
            .iter()
            .filter_map(|k| Some(k.cold?.first_s))
            .collect();
        if let (Some(lo), Some(hi)) = (
            colds.iter().copied().reduce(f64::min),
            colds.iter().copied().reduce(f64::max),
        ) {
            log.say(format!(
                "  cold start (first GPU call on a fresh engine, smallest size): {} to {}",
                seconds(lo),
                seconds(hi)
            ));
        }
    }
}

/// Every row as CSV: times in seconds, empty where not measured; `reps` is
/// the timed calls per column, `serial/cpu/gpu_host/gpu_res/auto`.
fn csv(rows: &[Row], roof: &Roofline) -> String {
    let mut s = String::from(
        "kernel,n,bytes,flops,serial_s,cpu_s,gpu_host_s,gpu_res_s,auto_s,auto_backend,\
         cpu_gb_s,cpu_pct_bw,cpu_speedup,gpu_host_speedup,gpu_res_speedup,auto_regret,\
         triad_gb_s,read_gb_s,reps,family,element,axis,cpu_pct_roof,gpu_res_pct_roof,\
         fma_gflop_s,gpu_copy_gb_s,gpu_fma_gflop_s,numpy_s,cpu_vs_numpy,rust_peer,rust_peer_s,\
         cpu_vs_rust_peer\n",
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
            .map(|b| 100.0 * b / roof.host_bandwidth(&r.work))));
        for c in [Column::Cpu, Column::GpuHost, Column::GpuRes] {
            fields.push(num(r.speedup(c)));
        }
        fields.push(num(r.regret()));
        fields.push(num(Some(roof.triad / 1e9)));
        fields.push(num(Some(roof.read / 1e9)));
        let reps: Vec<String> = r
            .cells
            .iter()
            .map(|c| c.map_or("-".into(), |c| c.reps.to_string()))
            .collect();
        fields.push(reps.join("/"));
        fields.push(r.family.to_string());
        fields.push(format!("\"{}\"", r.element));
        fields.push(r.axis.key.to_string());
        fields.push(num(r.roof(roof, Column::Cpu).map(|(f, _)| 100.0 * f)));
        fields.push(num(r.roof(roof, Column::GpuRes).map(|(f, _)| 100.0 * f)));
        fields.push(num(Some(roof.fma / 1e9)));
        fields.push(num(roof.gpu_copy.map(|b| b / 1e9)));
        fields.push(num(roof.gpu_fma.map(|b| b / 1e9)));
        fields.push(secs(r.numpy));
        fields.push(num(r.vs_numpy()));
        fields.push(r.peer.map_or(String::new(), |p| format!("\"{}\"", p.0)));
        fields.push(secs(r.peer.map(|p| p.1.median)));
        fields.push(num(r.vs_peer()));
        let _ = writeln!(s, "{}", fields.join(","));
    }
    s
}

/// The whole run as JSON: machine, command, roofline, rows and per-kernel
/// summaries (times in seconds, rates in bytes or flops per second).
fn json_report(
    args: &[String],
    engine: &Engine,
    engine_start: f64,
    roof: &Roofline,
    rows: &[Row],
    kernels: &[KernelSummary],
    took: f64,
) -> Value {
    let info = engine.info();
    let gpu = info.gpu.as_ref().map(|g| {
        json!({
            "name": g.name, "backend": g.backend, "device_type": g.device_type,
            "driver": g.driver, "software": g.is_software,
        })
    });
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut times = serde_json::Map::new();
            let mut reps = serde_json::Map::new();
            for c in Column::ALL {
                if let Some(cell) = r.cells[c as usize] {
                    times.insert(c.key().into(), json!(cell.median));
                    reps.insert(c.key().into(), json!(cell.reps));
                }
            }
            let roof_of = |c| {
                r.roof(roof, c)
                    .map(|(f, bound)| json!({"fraction": f, "bound": bound}))
            };
            json!({
                "kernel": r.kernel, "family": r.family, "element": r.element,
                "axis": r.axis.key, "size": r.n,
                "work": {
                    "elements": r.work.elements, "bytes_read": r.work.bytes_read,
                    "bytes_written": r.work.bytes_written, "flops": r.work.flops,
                },
                "seconds": times, "reps": reps,
                "auto_backend": r.auto_choice.to_string(),
                "auto_regret": r.regret(),
                "faster": r.faster().to_string(),
                "roofline": {"cpu": roof_of(Column::Cpu), "gpu_res": roof_of(Column::GpuRes)},
                "errors": r.errors.iter().map(|(c, e)| json!({"column": c.key(), "error": e}))
                    .collect::<Vec<_>>(),
                "capped": r.capped.iter().map(|c| c.key()).collect::<Vec<_>>(),
                "numpy_s": r.numpy,
                "cpu_vs_numpy": r.vs_numpy(),
                "rust_peer": r.peer.map(|p| json!({"name": p.0, "seconds": p.1.median, "reps": p.1.reps})),
                "cpu_vs_rust_peer": r.vs_peer(),
            })
        })
        .collect();
    let kernels: Vec<Value> = kernels
        .iter()
        .map(|k| {
            json!({
                "kernel": k.name, "family": k.family, "element": k.element, "axis": k.axis.key,
                "crossover_host": k.crossover_host,
                "crossover_resident": k.crossover_resident,
                "worst_regret": k.worst_regret.map(|(r, n)| json!({"regret": r, "size": n})),
                "cold_start": k.cold.map(|c| json!({
                    "size": c.n, "engine_s": c.engine_s, "first_call_s": c.first_s,
                    "second_call_s": c.second_s, "pipelines_compiled": c.pipelines,
                })),
            })
        })
        .collect();
    json!({
        "command": format!("cargo run --release --example compare -- {}", args.join(" ")),
        "machine": {
            "cpu": cpu_model(), "threads": info.cpu_threads, "simd": info.simd.to_string(), "cpu_simd": info.cpu_simd.to_string(), "gpu": gpu,
            "gpu_unavailable": info.gpu_unavailable,
        },
        "engine_start_s": engine_start,
        "roofline": {
            "triad_bytes_per_s": roof.triad, "read_bytes_per_s": roof.read,
            "fma_flops_per_s": roof.fma, "gpu_copy_bytes_per_s": roof.gpu_copy,
            "gpu_fma_flops_per_s": roof.gpu_fma,
        },
        "rows": rows,
        "kernels": kernels,
        "sweep_s": took,
    })
}

/// Throughput against size, one line per column, with the crossovers
/// marked and the host roofline dashed: GB/s for memory-bound kernels,
/// GFLOP/s for the others.
fn chart(path: &Path, k: &KernelSummary, rows: &[&Row], roof: &Roofline) -> BoxResult<()> {
    use plotters::prelude::*;
    let Some(last) = rows.last() else {
        return Ok(());
    };
    let host_bw = roof.host_bandwidth(&last.work);
    let memory_bound = last.work.bytes() as f64 / host_bw >= last.work.flops as f64 / roof.fma;
    let (unit, limit) = if memory_bound {
        ("GB/s", host_bw / 1e9)
    } else {
        ("GFLOP/s", roof.fma / 1e9)
    };
    let rate = |r: &Row, t: f64| {
        if memory_bound {
            r.work.bytes() as f64 / t / 1e9
        } else {
            r.work.flops as f64 / t / 1e9
        }
    };
    // x: log2 of the size, so every size of a power-of-two sweep gets a tick.
    let series: Vec<(Column, Vec<(f64, f64)>)> = Column::ALL
        .iter()
        .map(|&c| {
            let pts = rows
                .iter()
                .filter_map(|r| Some(((r.n as f64).log2(), rate(r, r.get(c)?))))
                .filter(|p| p.1.is_finite() && p.1 > 0.0)
                .collect();
            (c, pts)
        })
        .filter(|(_, p): &(Column, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((limit, limit), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (x0, x1) = (
        (rows[0].n as f64).log2() - 0.25,
        (last.n as f64).log2() + 0.25,
    );

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} ({}, {}): throughput vs size",
        k.name, k.family, k.element
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, (lo / 2.0..hi * 8.0).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(((x1 - x0).ceil() as usize + 1).min(24))
        .x_desc(format!("{} (log scale)", k.axis.label))
        .y_desc(format!("{unit} (log scale)"))
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 0.01 && (0.0..63.0).contains(v) {
                (k.axis.show)(1 << v.round() as u32)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| {
            if *v >= 10.0 {
                format!("{v:.0}")
            } else if *v >= 0.1 {
                format!("{v:.2}")
            } else {
                format!("{v:.1e}")
            }
        })
        .draw()?;
    let colors = [BLACK, BLUE, RED, MAGENTA, GREEN];
    for (c, pts) in &series {
        let color = colors[*c as usize];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(c.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    let dash = |a: (f64, f64), b: (f64, f64), style: ShapeStyle| {
        DashedLineSeries::new(vec![a, b], 6, 4, style)
    };
    chart
        .draw_series(dash(
            (x0, limit),
            (x1, limit),
            BLACK.mix(0.5).stroke_width(1),
        ))?
        .label(format!(
            "host roofline ({} {unit})",
            if limit >= 10.0 {
                format!("{limit:.0}")
            } else {
                format!("{limit:.1}")
            }
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    for (c, at) in [
        (Column::GpuHost, k.crossover_host),
        (Column::GpuRes, k.crossover_resident),
    ] {
        if let Some(n) = at {
            let color = colors[c as usize];
            let x = (n as f64).log2();
            chart
                .draw_series(dash(
                    (x, lo / 2.0),
                    (x, hi * 8.0),
                    color.mix(0.6).stroke_width(2),
                ))?
                .label(format!("crossover {} at {}", c.label(), (k.axis.show)(n)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.mix(0.6)));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Options

/// The `--help` text; the kernel and family names come from [`catalogue`].
fn usage() -> String {
    let cat = catalogue();
    let mut families: Vec<&str> = Vec::new();
    for c in &cat {
        if !families.contains(&c.family) {
            families.push(c.family);
        }
    }
    let names: Vec<&str> = cat.iter().map(|c| c.name).collect();
    let kernels = wrap(&names, 20, 78);
    let families = wrap(&families, 20, 78);
    format!(
        "\
usage: cargo run --release --example compare -- [options]
  --max-log2 N      sizes 2^10, 2^12, ... up to 2^N data elements (default 24;
                    without this or --max, gemm stops at 1024², transpose
                    and conv2d at 2048²)
  --max N           the same cap as a count (1000000, 2^20 or 1<<20)
  --quick           cap every case at 2^20 elements and 10 timed calls a cell
  --sizes a,b,c     explicit sizes in each case's axis: elements for vectors,
                    the side for n×n cases (1000, 2^20 or 1<<20); sizes
                    over the --max cap in data elements are skipped
  --no-caps         run every column at every size; without it the serial
                    gemm loop (O(n³)) stops at 512², and on a software GPU
                    driver the GPU columns stop at 2^20 elements or lower
                    (each table says where)
  --kernels k1,k2   kernels or families to run (default all); kernels:
{kernels}
                    families:
{families}
  --reps K          timed calls per cell (default: ~20 ms worth, 3..=50)
  --csv PATH        also write every row as CSV
  --out DIR         write compare.txt, compare.csv, compare.json and one
                    <kernel>.svg chart per kernel into DIR
  --vs numpy|none   time each case through numpy too, in the same run
                    (default numpy: `python3` with numpy, or $TANDEM_PYTHON;
                    benches/numpy_peer.py), adding numpy and cpu×np columns
environment: TANDEM_NO_GPU=1 (CPU only), TANDEM_THREADS, TANDEM_ADAPTER"
    )
}

struct Options {
    /// `--sizes`, overriding every case's sweep.
    sizes: Option<Vec<usize>>,
    /// The cap on data elements per case.
    max_elements: usize,
    /// `--max`, `--max-log2` or `--quick` was given: it overrides a case's
    /// own default cap.
    max_given: bool,
    /// `--no-caps`: run every column at every size of the sweep (no serial
    /// or software-GPU column caps; `--max` lifts the per-case caps).
    no_caps: bool,
    kernels: Option<Vec<&'static str>>,
    reps: Option<usize>,
    max_reps: usize,
    csv: Option<String>,
    out: Option<PathBuf>,
    /// `--vs numpy` (the default) or `--vs none`.
    vs_numpy: bool,
}

impl Options {
    /// The options, or `None` for `--help`.
    fn parse(args: impl Iterator<Item = String>) -> BoxResult<Option<Options>> {
        let mut opts = Options {
            sizes: None,
            max_elements: 1 << 24,
            max_given: false,
            no_caps: false,
            kernels: None,
            reps: None,
            max_reps: MAX_REPS,
            csv: None,
            out: None,
            vs_numpy: true,
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
                    .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
            };
            match flag.as_str() {
                "--max-log2" => {
                    let v = value()?;
                    let k: u32 = v
                        .parse()
                        .ok()
                        .filter(|k| (1..=32).contains(k))
                        .ok_or_else(|| format!("--max-log2: expected 1..=32, got {v:?}"))?;
                    opts.max_elements = 1 << k;
                    opts.max_given = true;
                }
                "--max" => {
                    opts.max_elements = parse_size(&value()?)?;
                    opts.max_given = true;
                }
                "--quick" => {
                    opts.max_elements = opts.max_elements.min(QUICK_MAX_ELEMENTS);
                    opts.max_reps = QUICK_MAX_REPS;
                    opts.max_given = true;
                }
                "--no-caps" => opts.no_caps = true,
                "--sizes" => {
                    let mut sizes = value()?
                        .split(',')
                        .map(parse_size)
                        .collect::<BoxResult<Vec<_>>>()?;
                    sizes.sort_unstable();
                    sizes.dedup();
                    opts.sizes = Some(sizes);
                }
                "--kernels" => {
                    let cat = catalogue();
                    let mut known: Vec<&'static str> = cat.iter().map(|c| c.name).collect();
                    for c in &cat {
                        if !known.contains(&c.family) {
                            known.push(c.family);
                        }
                    }
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
                "--out" => opts.out = Some(PathBuf::from(value()?)),
                "--vs" => match value()?.as_str() {
                    "numpy" => opts.vs_numpy = true,
                    "none" => opts.vs_numpy = false,
                    other => return Err(format!("--vs takes numpy or none, not {other:?}").into()),
                },
                _ => return Err(format!("unknown argument {arg:?}\n{}", usage()).into()),
            }
        }
        if opts.sizes.as_ref().is_some_and(Vec::is_empty) {
            return Err("no sizes to run".into());
        }
        Ok(Some(opts))
    }
}

/// `words` separated by spaces, in lines of at most `width` characters
/// indented by `indent`.
fn wrap(words: &[&str], indent: usize, width: usize) -> String {
    let pad = " ".repeat(indent);
    let mut lines = vec![pad.clone()];
    for w in words {
        let line = lines.last_mut().expect("one line at least");
        if line.len() > indent && line.len() + 1 + w.len() > width {
            lines.push(format!("{pad}{w}"));
        } else {
            if line.len() > indent {
                line.push(' ');
            }
            line.push_str(w);
        }
    }
    lines.join("\n")
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
    let bad = || format!("cannot read size {s:?} (expected e.g. 1000, 2^20 or 1<<20)");
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
        return Err(format!("size {s:?} is empty; sizes must be at least 1").into());
    }
    Ok(n)
}
