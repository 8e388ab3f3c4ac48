//! Calibrates the dispatcher on this machine and this adapter, saves the
//! profile, prints the fitted model and, with `--check`, measures how far
//! `Auto` is from the better forced backend (its regret).
//!
//! ```text
//! cargo run --release --example calibrate                  # measure, save, summarize
//! cargo run --release --example calibrate -- --check       # then time cpu / gpu / auto
//! cargo run --release --example calibrate -- --quick --out /tmp/p.json
//! cargo run --release --example calibrate -- --load --check   # check the saved profile
//! ```
//!
//! # Options
//! - `--quick`: a rough calibration in a few seconds (three sizes).
//! - `--out PATH`: the profile file (default: `$TANDEM_PROFILE`, else the
//!   user's cache directory, named after the machine).
//! - `--no-save`: measure, use, but do not write the profile.
//! - `--load`: skip calibrating; use the profile already saved.
//! - `--kernels a,b`: calibrate and check only these kernels.
//! - `--check`: after calibrating, for each kernel and each size 2^10,
//!   2^12, ..., 2^`--max-log2` (default 22) elements (gemm and conv2d: square
//!   shapes of that many output elements, up to their probe's largest), time `cpu`
//!   (`engine.on(Backend::Cpu)` on host inputs), `gpu` (`engine.on(Backend::Gpu)`
//!   on host inputs: upload inside the call, buffer result read back; 3
//!   calls by default) and `auto` (`engine.run` on host inputs, buffer
//!   result read back), medians of `--reps` calls (default: as many as fit
//!   in about 40 ms, 9 to 41) after one warm-up call; `cpu` and `auto` calls alternate, so both see the
//!   same load. Prints regret = auto / min(cpu, gpu) per size and the worst
//!   per kernel, and `choice` = the forced time of the backend auto chose /
//!   min(cpu, gpu), which separates a wrong decision from timing noise and
//!   the decision's own cost.
//!
//! Timings on a shared machine are noisy: a regret a little over 1 at a size
//! where both backends are within a few percent is noise, not a bad choice.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use tandem::dispatch::Profile;
use tandem::kernels::catalogue::{Call, CallInput, CallKernel, FAMILIES, Probe};
use tandem::{Backend, Engine};
use tandem::{CalibrateOptions, Progress};

type BoxResult<T> = Result<T, Box<dyn Error>>;

struct Options {
    quick: bool,
    out: Option<String>,
    save: bool,
    load: bool,
    kernels: Vec<String>,
    check: bool,
    max_log2: u32,
    reps: Option<usize>,
}

fn parse() -> BoxResult<Options> {
    let mut o = Options {
        quick: false,
        out: None,
        save: true,
        load: false,
        kernels: Vec::new(),
        check: false,
        max_log2: 22,
        reps: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => o.quick = true,
            "--out" => o.out = Some(value()?),
            "--no-save" => o.save = false,
            "--load" => o.load = true,
            "--kernels" => o.kernels = value()?.split(',').map(|s| s.trim().to_string()).collect(),
            "--check" => o.check = true,
            "--max-log2" => o.max_log2 = value()?.parse()?,
            "--reps" => o.reps = Some(value()?.parse()?),
            "-h" | "--help" => {
                println!(
                    "usage: calibrate [--quick] [--out PATH] [--no-save] [--load] \
                     [--kernels a,b] [--check] [--max-log2 N] [--reps K]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?} (try --help)").into()),
        }
    }
    Ok(o)
}

fn main() -> BoxResult<()> {
    let o = parse()?;
    let mut builder = Engine::builder();
    if let Some(p) = &o.out {
        builder = builder.profile_path(p);
    }
    let engine = builder.build()?;
    println!("{}", engine.info());
    println!("profile key: {}", engine.profile_key());
    match engine.profile_path() {
        Some(p) => println!("profile file: {}", p.display()),
        None => println!("profile file: none (no $TANDEM_PROFILE, $XDG_CACHE_HOME or $HOME)"),
    }

    if !o.load {
        let mut opts = if o.quick {
            CalibrateOptions::quick()
        } else {
            CalibrateOptions::default()
        };
        opts.save = o.save;
        opts.kernels = o.kernels.clone();
        let tty = std::io::stderr().is_terminal();
        let profile = engine.calibrate_with(&opts, |p| draw(&p, tty))?;
        if tty {
            eprintln!();
        }
        println!(
            "calibrated in {:.1} s{}",
            profile.calibration_s,
            match engine.profile_path().filter(|_| o.save) {
                Some(p) => format!(", saved to {}", p.display()),
                None => ", not saved".into(),
            }
        );
        summarize(&engine, &profile);
    } else {
        println!("cost model: {}", engine.cost_model().source);
    }

    if o.check {
        check(&engine, &o)?;
    }
    Ok(())
}

/// One progress line (rewritten in place on a terminal).
fn draw(p: &Progress, tty: bool) {
    let width = 30;
    let filled = (p.done * width).checked_div(p.total).unwrap_or(width);
    let bar: String = (0..width)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let line = format!(
        "[{bar}] {:>3}/{} {:>5.1} s  {}",
        p.done,
        p.total,
        p.elapsed.as_secs_f64(),
        p.step
    );
    if tty {
        eprint!("\r{line:<90}");
        let _ = std::io::stderr().flush();
    } else {
        eprintln!("{line}");
    }
}

/// The fitted model: the link, then per kernel the launch cost and
/// throughput on each backend and the crossovers where the GPU starts to win.
fn summarize(engine: &Engine, profile: &Profile) {
    if let Some(t) = &profile.transfer {
        println!(
            "link: upload {} + {:.2} GB/s, download {} + {:.2} GB/s, round trip {}",
            secs(t.upload.latency_s),
            t.upload.bytes_per_s / 1e9,
            secs(t.download.latency_s),
            t.download.bytes_per_s / 1e9,
            secs(t.round_trip_s)
        );
    }
    println!(
        "{:<15} {:>5} {:>10} {:>12} {:>10} {:>12} {:>14} {:>14}",
        "kernel",
        "axis",
        "cpu launch",
        "cpu M/s",
        "gpu launch",
        "gpu M/s",
        "gpu wins host",
        "gpu wins res"
    );
    let model = engine.cost_model();
    println!(
        "(M/s: millions of the axis unit per second; crossovers in elements of a call \
         shaped like the probe's)"
    );
    println!(
        "calls of light kernels below {} elements on host data go to the cpu without a model evaluation",
        size_label(model.cpu_floor().min(1 << 62) as usize)
    );
    for (name, k) in &profile.kernels {
        let (host, res) = match probe(name) {
            Some(p) => (
                model.crossover(name, |n| p.work_at(n), true),
                model.crossover(name, |n| p.work_at(n), false),
            ),
            None => (None, None),
        };
        let opt = |v: f64, f: &dyn Fn(f64) -> String| {
            if v.is_finite() { f(v) } else { "-".into() }
        };
        println!(
            "{:<15} {:>5} {:>10} {:>12} {:>10} {:>12} {:>14} {:>14}",
            name,
            k.axis.unit(),
            secs(k.cpu.latency_s()),
            format!("{:.0}", k.cpu.elements_per_s() / 1e6),
            opt(k.gpu.latency_s(), &secs),
            opt(k.gpu.elements_per_s(), &|v| format!("{:.0}", v / 1e6)),
            crossover_label(host),
            crossover_label(res),
        );
    }
}

fn crossover_label(n: Option<u64>) -> String {
    match n {
        Some(n) => format!("n >= {}", size_label(n as usize)),
        None => "never <= 2^30".into(),
    }
}

/// The registered probe of `kernel`.
fn probe(kernel: &str) -> Option<Probe> {
    FAMILIES
        .iter()
        .flat_map(|f| f.probes)
        .find(|p| p.kernel == kernel)
        .copied()
}

/// Medians of the one or two timings each call of `f` returns, after one
/// warm-up call: `reps` calls, or by default as many as fit in about 40 ms
/// (9 to 41).
fn median(
    reps: Option<usize>,
    mut f: impl FnMut() -> tandem::Result<(Duration, Option<Duration>)>,
) -> tandem::Result<(f64, Option<f64>)> {
    f()?;
    let start = Instant::now();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    loop {
        let (x, y) = f()?;
        a.push(x.as_secs_f64());
        b.extend(y.map(|y| y.as_secs_f64()));
        let enough = match reps {
            Some(r) => a.len() >= r,
            None => a.len() >= 41 || (a.len() >= 9 && start.elapsed() > Duration::from_millis(40)),
        };
        if enough {
            break;
        }
    }
    let mid = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        let m = t.len();
        if m % 2 == 1 {
            t[m / 2]
        } else {
            0.5 * (t[m / 2 - 1] + t[m / 2])
        }
    };
    Ok((mid(a), (!b.is_empty()).then(|| mid(b))))
}

fn check(engine: &Engine, o: &Options) -> BoxResult<()> {
    let sizes: Vec<usize> = (10..=o.max_log2).step_by(2).map(|k| 1usize << k).collect();
    let (cpu, gpu) = (engine.on(Backend::Cpu), engine.on(Backend::Gpu));
    let has_gpu = engine.has_gpu();
    println!("\ncheck: medians, inputs on the host, buffer results read on the host");
    println!(
        "{:<15} {:>6} {:>10} {:>10} {:>10} {:>5} {:>7} {:>7}",
        "kernel", "n", "cpu", "gpu", "auto", "auto→", "regret", "choice"
    );
    let mut worst: Vec<(&str, f64, usize, f64)> = Vec::new();
    for probe in FAMILIES.iter().flat_map(|f| f.probes) {
        let name = probe.kernel;
        if !o.kernels.is_empty() && !o.kernels.iter().any(|k| k == name) {
            continue;
        }
        let mut kernel_worst = (0.0f64, 0usize);
        let mut worst_choice = 0.0f64;
        // Gemm and conv2d stop at their probe's largest size.
        for n in probe.sizes(&sizes) {
            let host = probe.call(n);
            // The GPU first, on its own: on a software driver it is far slower
            // and a few calls say so.
            let t_gpu = if has_gpu {
                let mut call = host.fresh();
                median(Some(o.reps.map_or(3, |r| r.min(5))), || {
                    if !call.on_host_only() {
                        call = host.fresh();
                    }
                    let t = Instant::now();
                    to_host(&gpu, &*call)?;
                    Ok((t.elapsed(), None))
                })?
                .0
            } else {
                f64::INFINITY
            };
            // cpu and auto interleaved call by call, so that both see the same
            // load from whatever else runs on the machine.
            let mut call = host.fresh();
            let mut picked_gpu = false;
            let (t_cpu, t_auto) = median(o.reps, || {
                let t = Instant::now();
                to_host(&cpu, &*host)?;
                let t_cpu = t.elapsed();
                if !call.on_host_only() {
                    call = host.fresh();
                }
                let before = engine.stats().gpu_runs;
                let t = Instant::now();
                to_host(engine, &*call)?;
                let el = t.elapsed();
                picked_gpu |= engine.stats().gpu_runs > before;
                Ok((t_cpu, Some(el)))
            })
            .map(|(a, b)| (a, b.unwrap_or(f64::NAN)))?;
            let best = t_cpu.min(t_gpu);
            let regret = t_auto / best;
            let choice = if picked_gpu { t_gpu } else { t_cpu } / best;
            if regret > kernel_worst.0 {
                kernel_worst = (regret, n);
            }
            worst_choice = worst_choice.max(choice);
            println!(
                "{:<15} {:>6} {:>10} {:>10} {:>10} {:>5} {:>6.2}× {:>6.2}×",
                name,
                size_label(n),
                secs(t_cpu),
                if has_gpu { secs(t_gpu) } else { "-".into() },
                secs(t_auto),
                if picked_gpu { "gpu" } else { "cpu" },
                regret,
                choice
            );
        }
        worst.push((name, kernel_worst.0, kernel_worst.1, worst_choice));
    }
    println!(
        "\nworst auto regret per kernel (auto / min(cpu, gpu)); choice: the forced time \
         of the backend auto chose / min (1.00 = always the faster backend):"
    );
    for (name, r, n, c) in &worst {
        println!(
            "  {name:<15} {r:>5.2}× at n = {:<5} choice {c:.2}×",
            size_label(*n)
        );
    }
    if let Some((name, r, n, _)) = worst.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        println!("overall worst: {r:.2}× ({name}, n = {})", size_label(*n));
    }
    Ok(())
}

/// One call of a catalogue entry through `engine`, its buffer result read
/// on the host (what a user who reads the result pays).
fn to_host(engine: &Engine, call: &dyn Call) -> tandem::Result<()> {
    let input = CallInput {
        call,
        to_host: true,
    };
    engine.run(&CallKernel(call.name()), input)
}

fn size_label(n: usize) -> String {
    if n.is_power_of_two() {
        format!("2^{}", n.trailing_zeros())
    } else {
        n.to_string()
    }
}

fn secs(s: f64) -> String {
    tandem::dispatch::seconds(s)
}
