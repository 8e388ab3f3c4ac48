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
//! The columns, the cold-start line and the summary are described in
//! `report.rs`.
//!
//! Without a GPU (no adapter, or `TANDEM_NO_GPU=1`) only the CPU columns are
//! printed, with one line saying why.

mod cases;
mod catalogue;
mod chart;
mod cli;
mod double;
mod export;
mod fused;
mod numpy;
mod report;
mod roofline;
mod timing;

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tandem::Engine;
use tandem::dispatch::seconds;

use crate::cases::Case;
use crate::catalogue::catalogue;
use crate::chart::chart;
use crate::cli::Options;
use crate::export::{csv, json_report};
use crate::numpy::NumpyPeer;
use crate::report::{KernelSummary, Log, cpu_model, print_summary, print_table, size_label};
use crate::roofline::Roofline;
use crate::timing::{Row, cold_start, measure_row};

/// A result whose error prints as a message.
pub(crate) type BoxResult<T> = Result<T, Box<dyn Error>>;

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = Options::parse(std::iter::once("compare".to_string()).chain(args.iter().cloned()))?;
    let cases: Vec<Case> = catalogue()
        .into_iter()
        .filter(|c| opts.picks(c.name, c.family))
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
                for e in &peer.errors {
                    log.say(format!("  no numpy cell for {e}"));
                }
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
