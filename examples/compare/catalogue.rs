//! The kernels under test: one function per case, each with its serial loop
//! and, where one exists, its Rust peer.

use rayon::prelude::*;
use tandem::kernels::catalogue::FAMILIES;
use tandem::kernels::{
    ArgMax, ArgMin, Argsort, Axpy, Binary, Border, Compact, CompactIf, Compare, Conv2d, Dot,
    Histogram, HistogramRange, Max, Min, Scan, Sort, SortPairs, Sum, Transpose, Unary,
};
use tandem::{Buffer, Kernel};

use crate::cases::{
    Case, ELEMENTS, Output, SEED_X, SEED_Y, SQUARE, bench, random_f32, random_keys, random_u32,
};

/// A map over one f32 vector; the serial loop writes into one output vector
/// reused across calls (its best case: no allocation or page faults timed),
/// as a user's loop over a preallocated `out` would.
pub(crate) fn unary(op: Unary, f: fn(f32) -> f32) -> Case {
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
pub(crate) fn binary<K>(kernel: K, f: fn(f32, f32) -> f32) -> Case
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
pub(crate) fn reduce1<K, O, R>(kernel: K, serial: fn(&[f32]) -> R, rayon: fn(&[f32]) -> R) -> Case
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
pub(crate) fn arg_rayon(x: &[f32], better: fn(f32, f32) -> bool) -> Option<(usize, f32)> {
    x.par_iter()
        .copied()
        .enumerate()
        .reduce_with(|a, b| if better(b.1, a.1) { b } else { a })
}

/// Index and value of the first element `better` prefers, as a user's loop
/// would find it.
pub(crate) fn arg_loop(x: &[f32], better: impl Fn(f32, f32) -> bool) -> Option<(usize, f32)> {
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
/// [`crate::double::gemm_of`] for a 2-D case with a capped serial loop).
pub(crate) fn catalogue() -> Vec<Case> {
    const S: f32 = 1.5;
    const A: f32 = 2.5;
    let mut cases = vec![
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
        sort_u32()
            .software_gpu_max(1 << 16)
            .max_elements(1 << 22)
            .note(
                "B/element: the four passes of an LSD sort (the GPU's); the CPU sorts keys alone \
                 by MSD passes (with AVX-512, at every size; without, from 2^23 keys) that count \
                 to 20 B/element",
            ),
        sort_pairs().software_gpu_max(1 << 16).max_elements(1 << 22),
        argsort_f32()
            .software_gpu_max(1 << 16)
            .max_elements(1 << 22),
        histogram(),
        histogram_range(),
        transpose(),
        crate::double::gemm_of::<f32>("gemm").max_elements(1024 * 1024),
        conv2d(),
        crate::double::sum_f64().software_gpu_max(1 << 24),
        crate::double::sort_f64().max_elements(1 << 22).note(
            "B/element: the eight passes of an LSD sort (the GPU's); the CPU sorts keys alone \
             by MSD passes that count to 40 B/element, so its GB/s and %roof read 3.4x its traffic",
        ),
        crate::double::gemm_of::<f64>("gemm_f64").max_elements(2048 * 2048),
        crate::fused::fused_sum(),
        crate::fused::chain(),
        crate::fused::map_axpy(),
        crate::fused::black_scholes_case(),
    ];
    // Every library catalogue entry without a case above gets the generic
    // one, so a new kernel shows up here the day it is added.
    for family in FAMILIES {
        for probe in family.probes {
            if !cases.iter().any(|c| c.name == probe.kernel) {
                cases.push(Case::entry(family.name, probe));
            }
        }
    }
    cases
}

/// Sort of random u32 keys against `sort_unstable` (the fastest standard
/// sort) into a reused vector.
pub(crate) fn sort_u32() -> Case {
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
pub(crate) fn sort_pairs() -> Case {
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
pub(crate) fn argsort_f32() -> Case {
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
pub(crate) fn inclusive_scan() -> Case {
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
pub(crate) fn exclusive_scan() -> Case {
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
pub(crate) fn compact() -> Case {
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
pub(crate) fn compact_if() -> Case {
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
pub(crate) fn histogram() -> Case {
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
pub(crate) fn histogram_range() -> Case {
    const BINS: u32 = 256;
    const LO: f32 = 0.5;
    const HI: f32 = 2.0;
    let kernel = HistogramRange {
        lo: f64::from(LO),
        hi: f64::from(HI),
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
pub(crate) fn transpose() -> Case {
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

/// Side of the square filter of the conv2d case.
pub(crate) const FILTER: usize = 5;

/// An `n×n` f32 image correlated with a 5×5 filter, zero border, against the
/// direct loop (each output pixel sums the taps that fall inside the image).
pub(crate) fn conv2d() -> Case {
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
