//! The printed report: a table per case and the summary.
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
//! - `gpu(h) dev`, `gpu(r) dev`: where the GPU has timestamps
//!   (`TIMESTAMP_QUERY`), the median over the same timed calls of the time
//!   their compute passes took on the device (`Gpu::set_timing`,
//!   `Gpu::take_device_time`): the kernels alone. The wall time less this
//!   is launch, upload, readback and waiting. With timestamps the GPU
//!   cells' wall times include each call's two timestamp writes and their
//!   resolve, which timing needs.
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

use std::fmt::Write as _;

use indicatif::ProgressBar;
use tandem::Backend;
use tandem::dispatch::seconds;

use crate::cases::{Axis, Case};
use crate::roofline::Roofline;
use crate::timing::{Cell, ColdStart, Column, MIN_REPS, Row};

/// What the run prints, kept for `compare.txt`; printed lines go around the
/// progress bar.
pub(crate) struct Log {
    pub(crate) text: String,
    pub(crate) bar: ProgressBar,
}

impl Log {
    pub(crate) fn say(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        self.bar.suspend(|| println!("{s}"));
        self.text.push_str(s);
        self.text.push('\n');
    }
}

/// The CPU's model name, its hardware threads and the architecture.
pub(crate) fn cpu_model() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{}, {cores} hardware threads, {}",
        tandem::dispatch::profile::cpu_model(),
        std::env::consts::ARCH
    )
}

/// `2^k` for powers of two, else the number.
pub(crate) fn size_label(n: usize) -> String {
    if n.is_power_of_two() && n >= 1024 {
        format!("2^{}", n.trailing_zeros())
    } else {
        n.to_string()
    }
}

/// A cell's median, marked `*` when a slow GPU call cut its timed calls
/// below [`MIN_REPS`].
pub(crate) fn time_label(cell: Option<Cell>) -> String {
    match cell {
        Some(c) if c.capped => format!("{}*", seconds(c.median)),
        Some(c) => seconds(c.median),
        None => "-".into(),
    }
}

pub(crate) fn ratio_label(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
        None => "-".into(),
    }
}

pub(crate) fn roof_label(r: Option<(f64, &str)>) -> String {
    match r {
        Some((f, bound)) if f >= 0.1 => format!("{:.0}% {bound}", 100.0 * f),
        Some((f, bound)) => format!("{:.1}% {bound}", 100.0 * f),
        None => "-".into(),
    }
}

/// One table line of right-aligned cells under `widths`.
pub(crate) fn line(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::new();
    for (c, w) in cells.iter().zip(widths) {
        let _ = write!(s, "{c:>w$} ");
    }
    s.trim_end().to_string()
}

pub(crate) fn print_table(
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
    if let Some(note) = case.note {
        log.say(format!("  ({note})"));
    }
    let mut header = vec![case.axis.label, "serial", "cpu"];
    if gpu {
        header.extend(["gpu(host)", "gpu(res)"]);
    }
    let device = rows.iter().any(|r| {
        r.device(Column::GpuHost)
            .or(r.device(Column::GpuRes))
            .is_some()
    });
    if device {
        header.extend(["gpu(h) dev", "gpu(r) dev"]);
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
        if device {
            for c in [Column::GpuHost, Column::GpuRes] {
                cells.push(r.device(c).map_or("-".into(), seconds));
            }
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
pub(crate) struct KernelSummary {
    pub(crate) name: &'static str,
    pub(crate) family: &'static str,
    pub(crate) element: String,
    pub(crate) axis: Axis,
    pub(crate) cold: Option<ColdStart>,
    /// Smallest size from which `gpu(host)` beats `cpu` at every larger size.
    pub(crate) crossover_host: Option<usize>,
    /// The same for `gpu(res)`.
    pub(crate) crossover_resident: Option<usize>,
    /// Worst `auto` regret and the size it was at.
    pub(crate) worst_regret: Option<(f64, usize)>,
}

impl KernelSummary {
    pub(crate) fn of(case: &Case, cold: Option<ColdStart>, rows: &[Row]) -> KernelSummary {
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
pub(crate) fn crossover(rows: &[&Row], column: Column) -> Option<usize> {
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

pub(crate) fn crossover_label(k: &KernelSummary, c: Option<usize>) -> String {
    c.map_or("none in the sweep".into(), |n| {
        format!("{} = {}", k.axis.label, (k.axis.show)(n))
    })
}

/// A row's peer: its name, its time and tandem's speedup over it.
type PeerOf = dyn Fn(&Row) -> Option<(&'static str, f64, f64)>;

pub(crate) fn print_summary(
    log: &mut Log,
    rows: &[Row],
    kernels: &[KernelSummary],
    roof: &Roofline,
    gpu: bool,
) {
    log.say("summary");
    let w = kernels.iter().map(|k| k.name.len()).max().unwrap_or(8);
    // Against numpy, then the best Rust peer: each kernel at its largest
    // size where both ran.
    let numpy = |r: &Row| Some(("numpy", r.numpy?, r.vs_numpy()?));
    let peer = |r: &Row| Some((r.peer?.0, r.peer?.1.median, r.vs_peer()?));
    let peers: [(&str, &str, &PeerOf); 2] = [
        ("numpy", "np", &numpy),
        ("the best Rust peer", "peer", &peer),
    ];
    for (whom, short, of) in peers {
        let vs: Vec<(&Row, (&str, f64, f64))> = kernels
            .iter()
            .filter_map(|k| {
                rows.iter()
                    .filter(|r| r.kernel == k.name)
                    .filter_map(|r| Some((r, of(r)?)))
                    .max_by_key(|(r, _)| r.n)
            })
            .collect();
        if vs.is_empty() {
            continue;
        }
        log.say(format!(
            "  tandem cpu against {whom}, each kernel at its largest size (cpu×{short} > 1: tandem faster):"
        ));
        for (r, (name, t, x)) in vs {
            log.say(format!(
                "    {:w$} {} = {:>7}: cpu {:>9}, {name} {:>9}, cpu×{short} {}",
                r.kernel,
                r.axis.label,
                (r.axis.show)(r.n),
                r.get(Column::Cpu).map_or("-".into(), seconds),
                seconds(t),
                ratio_label(Some(x)),
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
