//! The command line.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Parser, ValueEnum};

use crate::BoxResult;
use crate::catalogue::catalogue;
use crate::timing::{MAX_REPS, QUICK_MAX_ELEMENTS, QUICK_MAX_REPS};

/// Times every kernel on every backend over a range of sizes, next to the
/// serial loop, numpy and the best Rust crate, against the machine's roofline.
#[derive(Parser, Debug)]
#[command(
    name = "compare",
    override_usage = "cargo run --release --example compare -- [OPTIONS]",
    after_help = "Environment: TANDEM_NO_GPU=1 (CPU only), TANDEM_THREADS, TANDEM_ADAPTER, \
                  TANDEM_PYTHON (the Python with numpy for --vs numpy)."
)]
struct Cli {
    /// Sizes 2^10, 2^12, ... up to 2^N data elements [default: 24; without
    /// this or --max, gemm stops at 1024², transpose and conv2d at 2048²]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=32))]
    max_log2: Option<u32>,
    /// The same cap as a count (1000000, 2^20 or 1<<20)
    #[arg(long, value_name = "N", value_parser = parse_size, conflicts_with = "max_log2")]
    max: Option<usize>,
    /// Cap every case at 2^20 elements and 10 timed calls a cell
    #[arg(long)]
    quick: bool,
    /// Explicit sizes in each case's axis: elements for vectors, the side
    /// for n×n cases (1000, 2^20 or 1<<20); sizes over the --max cap in data
    /// elements are skipped
    #[arg(long, value_name = "A,B,C", value_delimiter = ',', value_parser = parse_size)]
    sizes: Option<Vec<usize>>,
    /// Run every column at every size; without it the serial gemm loop
    /// (O(n³)) stops at 512², and on a software GPU driver the GPU columns
    /// stop at 2^20 elements or lower (each table says where)
    #[arg(long)]
    no_caps: bool,
    /// Kernels or families to run [default: all]
    #[arg(long, value_name = "K1,K2", value_delimiter = ',', value_parser = names())]
    kernels: Option<Vec<String>>,
    /// Timed calls per cell [default: about 20 ms worth, 3 to 50]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    reps: Option<u64>,
    /// Also write every row as CSV
    #[arg(long, value_name = "PATH")]
    csv: Option<String>,
    /// Write compare.txt, compare.csv, compare.json and one <kernel>.svg
    /// chart per kernel into DIR
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Time each case through numpy too, in the same run (`python3` with
    /// numpy, or $TANDEM_PYTHON; benches/numpy_peer.py)
    #[arg(long, value_enum, default_value_t = Vs::Numpy)]
    vs: Vs,
}

/// The peer run beside the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Vs {
    Numpy,
    None,
}

/// Every kernel and family name of the [`catalogue`], for `--kernels`.
fn names() -> PossibleValuesParser {
    let mut known: Vec<&'static str> = Vec::new();
    for c in catalogue() {
        for name in [c.name, c.family] {
            if !known.contains(&name) {
                known.push(name);
            }
        }
    }
    PossibleValuesParser::new(known)
}

/// What one sweep runs, resolved from the command line.
pub(crate) struct Options {
    /// `--sizes`, overriding every case's sweep.
    pub(crate) sizes: Option<Vec<usize>>,
    /// The cap on data elements per case.
    pub(crate) max_elements: usize,
    /// `--max`, `--max-log2` or `--quick` was given: it overrides a case's
    /// own default cap.
    pub(crate) max_given: bool,
    /// `--no-caps`: run every column at every size of the sweep (no serial
    /// or software-GPU column caps; `--max` lifts the per-case caps).
    pub(crate) no_caps: bool,
    pub(crate) kernels: Option<Vec<String>>,
    pub(crate) reps: Option<usize>,
    pub(crate) max_reps: usize,
    pub(crate) csv: Option<String>,
    pub(crate) out: Option<PathBuf>,
    /// `--vs numpy` (the default) or `--vs none`.
    pub(crate) vs_numpy: bool,
}

impl Options {
    /// The options of `args` (the program name first). `--help` prints the
    /// help and exits; a bad argument prints clap's message and exits with 2.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> BoxResult<Options> {
        let cli = Cli::parse_from(args);
        let mut max_elements = match (cli.max_log2, cli.max) {
            (Some(k), _) => 1usize << k,
            (None, Some(n)) => n,
            (None, None) => 1 << 24,
        };
        let mut max_reps = MAX_REPS;
        if cli.quick {
            max_elements = max_elements.min(QUICK_MAX_ELEMENTS);
            max_reps = QUICK_MAX_REPS;
        }
        let sizes = cli.sizes.map(|mut s| {
            s.sort_unstable();
            s.dedup();
            s
        });
        if sizes.as_ref().is_some_and(Vec::is_empty) {
            return Err("no sizes to run".into());
        }
        Ok(Options {
            sizes,
            max_elements,
            max_given: cli.max_log2.is_some() || cli.max.is_some() || cli.quick,
            no_caps: cli.no_caps,
            kernels: cli.kernels,
            reps: cli.reps.map(|r| r as usize),
            max_reps,
            csv: cli.csv,
            out: cli.out,
            vs_numpy: cli.vs == Vs::Numpy,
        })
    }

    /// Whether `--kernels` picks the case (by its name or its family).
    pub(crate) fn picks(&self, name: &str, family: &str) -> bool {
        self.kernels
            .as_ref()
            .is_none_or(|k| k.iter().any(|k| k == name || k == family))
    }
}

/// 2^10, 2^12, ... up to 2^max (2^max itself always included).
pub(crate) fn pow2_sizes(max: u32) -> Vec<usize> {
    let mut v: Vec<usize> = (10..=max).step_by(2).map(|k| 1usize << k).collect();
    if v.last() != Some(&(1usize << max)) {
        v.push(1 << max);
    }
    v
}

/// `1000`, `2^20` or `1<<20`.
fn parse_size(s: &str) -> Result<usize, String> {
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
        return Err(format!("size {s:?} is empty; sizes must be at least 1"));
    }
    Ok(n)
}
