//! `cargo fuzz run catalogue`: the kernel catalogue beyond map and reduce
//! (scan, compaction, histograms, sorts, transpose, SGEMM, conv2d) driven
//! with arbitrary shapes and parameters: zero and huge dimensions, products
//! that overflow, even and zero filter sizes, zero bins, `hi <= lo`, NaN
//! bounds, mismatched lengths, special float bit patterns. Checks that
//! nothing panics, that bad parameters come back as `InvalidArgument` /
//! `LengthMismatch` / `TooLarge`, and that results match a scalar oracle
//! (exactly where the kernel is exact). See fuzz/README.md.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tandem::kernels::catalogue::{FAMILIES, ReadInput, ReadKernel};
use tandem::kernels::{
    Argsort, Border, Compact, CompactIf, Compare, Conv2d, Gemm, Histogram, HistogramRange, Scan,
    Sort, SortPairs, Transpose,
};
use tandem::{Backend, Buffer, Engine, Error};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let gpu = std::env::var("TANDEM_FUZZ_GPU").is_ok_and(|v| v.trim() == "1");
        Engine::builder()
            .gpu(gpu)
            .build()
            .expect("Engine::build must not fail")
    })
}

/// Interesting bit patterns: ±0, ±1, ±inf, NaNs of both signs, subnormals.
const SPECIALS: &[u32] = &[
    0,
    0x8000_0000,
    0x3f80_0000,
    0xbf80_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0000,
    0x7f80_0001,
    0x0000_0001,
    0x8000_0001,
    0x7f7f_ffff,
    0xffff_ffff,
    2,
];

#[derive(Arbitrary, Debug)]
enum Case {
    /// Any entry of the library's kernel catalogue (`FAMILIES`), at any
    /// size and seed, against its own oracle: a new kernel is fuzzed the
    /// day its entry is added.
    Entry {
        index: u16,
    },
    Scan {
        exclusive: bool,
    },
    Compact,
    CompactIf {
        cmp: u8,
        threshold: u32,
    },
    Histogram {
        bins: u32,
    },
    HistogramRange {
        lo: u32,
        hi: u32,
        bins: u32,
    },
    Sort,
    SortPairs,
    Argsort,
    Transpose {
        rows: u32,
        cols: u32,
    },
    Gemm {
        m: u32,
        n: u32,
        k: u32,
        ta: bool,
        tb: bool,
        alpha: i8,
        beta: i8,
        with_c: bool,
    },
    Conv {
        h: u32,
        w: u32,
        fh: u8,
        fw: u8,
        clamp: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    case: Case,
    /// Length of the data (reduced to at most ~5,000; shapes ignore it).
    len: u16,
    /// Length of the second input, when it differs.
    len2: Option<u16>,
    seed: u64,
    specials: bool,
    gpu: bool,
}

fn data(n: usize, seed: u64, specials: bool) -> Vec<u32> {
    let mut s = seed | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            if specials && s % 5 == 0 {
                SPECIALS[(s >> 8) as usize % SPECIALS.len()]
            } else if i % 3 == 0 {
                (s >> 40) as u32 % 64 // duplicates and small values
            } else {
                (s >> 32) as u32
            }
        })
        .collect()
}

fn floats(bits: &[u32]) -> Vec<f32> {
    bits.iter().map(|&b| f32::from_bits(b)).collect()
}

/// The sort key of f32 bits in tandem's documented order: numbers
/// (-0 before +0), then positive NaNs by rising payload, then negative NaNs
/// by falling payload.
/// A float result's bits.
fn bits_of(b: Buffer<f32>) -> Vec<u32> {
    b.to_vec().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn f32_key(b: u32) -> u64 {
    let nan = (b & 0x7fff_ffff) > 0x7f80_0000;
    match (nan, b >> 31) {
        (false, 1) => u64::from(!b),
        (false, _) => u64::from(b | 0x8000_0000),
        (true, 0) => (1 << 32) + u64::from(b),
        (true, _) => (2 << 32) + u64::from(!b),
    }
}

fn check_invalid<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(
            Error::InvalidArgument { .. } | Error::LengthMismatch { .. } | Error::TooLarge { .. },
        ) => {}
        other => panic!("{what}: expected a parameter error, got {other:?}"),
    }
}

fn run(input: Input) {
    let e = engine();
    let backend = if input.gpu && e.has_gpu() {
        Backend::Gpu
    } else {
        Backend::Cpu
    };
    let on = e.on(backend);
    let n = input.len as usize % 5000;
    let n2 = input.len2.map_or(n, |l| l as usize % 5000);
    let bits = data(n, input.seed, input.specials);
    let bits2 = data(n2, input.seed ^ 0x5555, input.specials);
    match input.case {
        Case::Entry { index } => {
            let entries: Vec<_> = FAMILIES.iter().flat_map(|f| f.probes).collect();
            let probe = entries[index as usize % entries.len()];
            let call = (probe.make)(n, input.seed);
            match on.run(&ReadKernel(call.name()), ReadInput(&*call)) {
                Ok(got) => {
                    if let Err(e) = call.tolerance().check(&got, &call.oracle()) {
                        panic!("{} n={n} seed={}: {e}", probe.kernel, input.seed);
                    }
                }
                Err(Error::TooLarge { .. }) if backend == Backend::Gpu => {}
                Err(e) => panic!("{} n={n}: {e}", probe.kernel),
            }
        }
        Case::Scan { exclusive } => {
            let k = if exclusive {
                Scan::exclusive()
            } else {
                Scan::inclusive()
            };
            let out = on
                .run(&k, &Buffer::from(bits.clone()))
                .unwrap()
                .to_vec()
                .unwrap();
            let mut acc = 0u32;
            for (i, (&x, &o)) in bits.iter().zip(&out).enumerate() {
                let next = acc.wrapping_add(x);
                assert_eq!(o, if exclusive { acc } else { next }, "scan at {i}");
                acc = next;
            }
            assert_eq!(out.len(), n);
        }
        Case::Compact => {
            let mask: Vec<u32> = bits2.iter().map(|b| b & 1).collect();
            let r = on.run(
                &Compact,
                (&Buffer::from(floats(&bits)), &Buffer::from(mask.clone())),
            );
            if n != n2 {
                return check_invalid(r.map(|b| b.len()), "compact lengths");
            }
            let got = bits_of(r.unwrap());
            let want: Vec<u32> = bits
                .iter()
                .zip(&mask)
                .filter(|(_, m)| **m != 0)
                .map(|(b, _)| *b)
                .collect();
            assert_eq!(got, want);
        }
        Case::CompactIf { cmp, threshold } => {
            let cmp = Compare::ALL[cmp as usize % 6];
            let t = f32::from_bits(threshold);
            let k = CompactIf { cmp, threshold: t };
            let got = bits_of(on.run(&k, &Buffer::from(floats(&bits))).unwrap());
            let want: Vec<u32> = bits
                .iter()
                .copied()
                .filter(|&b| cmp.holds(f32::from_bits(b), t))
                .collect();
            if backend == Backend::Cpu {
                assert_eq!(got, want);
            }
        }
        Case::Histogram { bins } => {
            let bins = bins % 100_000;
            let r = on.run(&Histogram { bins }, &Buffer::from(bits.clone()));
            if bins == 0 {
                return check_invalid(r, "histogram bins 0");
            }
            let h = r.unwrap();
            let mut want = vec![0u32; bins as usize];
            let mut above = 0;
            for &v in &bits {
                if v < bins {
                    want[v as usize] += 1
                } else {
                    above += 1
                }
            }
            assert_eq!(h.counts, want);
            assert_eq!(h.above, above);
        }
        Case::HistogramRange { lo, hi, bins } => {
            let (lo, hi) = (f32::from_bits(lo), f32::from_bits(hi));
            let k = HistogramRange {
                lo: f64::from(lo),
                hi: f64::from(hi),
                bins: bins % 100_000,
            };
            match on.run(&k, &Buffer::from(floats(&bits))) {
                Ok(h) => {
                    assert!(lo.is_finite() && hi.is_finite() && hi > lo && k.bins > 0);
                    let total: u64 = h.counts.iter().map(|&c| u64::from(c)).sum::<u64>()
                        + u64::from(h.below)
                        + u64::from(h.above)
                        + u64::from(h.nan);
                    assert_eq!(total, n as u64, "every value counted once");
                    let nan = bits
                        .iter()
                        .filter(|b| (*b & 0x7fff_ffff) > 0x7f80_0000)
                        .count();
                    assert_eq!(h.nan as usize, nan);
                }
                Err(err) => check_invalid::<()>(Err(err), "histogram_range parameters"),
            }
        }
        Case::Sort | Case::SortPairs | Case::Argsort => {
            let keys = floats(&bits);
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by_key(|&i| f32_key(bits[i as usize])); // stable
            let want_keys: Vec<u32> = order.iter().map(|&i| bits[i as usize]).collect();
            let kb = Buffer::from(keys);
            match input.case {
                Case::Sort => {
                    let got: Vec<u32> = on
                        .run(&Sort, &kb)
                        .unwrap()
                        .to_vec()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect();
                    assert_eq!(got, want_keys);
                }
                Case::Argsort => {
                    assert_eq!(on.run(&Argsort, &kb).unwrap().to_vec().unwrap(), order);
                }
                _ => {
                    let vals: Vec<u32> = (0..n2 as u32).collect();
                    let r = on.run(&SortPairs, (&kb, &Buffer::from(vals)));
                    if n != n2 {
                        return check_invalid(r.map(|p| p.0.len()), "sort_pairs lengths");
                    }
                    let (k, v) = r.unwrap();
                    let got = bits_of(k);
                    assert_eq!(got, want_keys);
                    assert_eq!(v.to_vec().unwrap(), order);
                }
            }
        }
        Case::Transpose { rows, cols } => {
            let (rows, cols) = (rows as usize, cols as usize);
            let r = on.run(&Transpose { rows, cols }, &Buffer::from(bits.clone()));
            if rows.checked_mul(cols) != Some(n) {
                return check_invalid(r.map(|b| b.len()), "transpose shape");
            }
            let out = r.unwrap().to_vec().unwrap();
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(out[j * rows + i], bits[i * cols + j]);
                }
            }
        }
        Case::Gemm {
            m,
            n: nn,
            k,
            ta,
            tb,
            alpha,
            beta,
            with_c,
        } => {
            // Shapes mostly small; sometimes huge (overflow must be an error).
            let dim = |d: u32| {
                if d & 0x8000_0000 != 0 {
                    d as usize
                } else {
                    d as usize % 24
                }
            };
            let (m, nn, k) = (dim(m), dim(nn), dim(k));
            let a: Vec<f32> = bits
                .iter()
                .take(m.saturating_mul(k).min(5000))
                .map(|&b| (b % 7) as f32 - 3.0)
                .collect();
            let b: Vec<f32> = bits2
                .iter()
                .take(k.saturating_mul(nn).min(5000))
                .map(|&b| (b % 5) as f32 - 2.0)
                .collect();
            let c: Vec<f32> = (0..m.saturating_mul(nn).min(5000))
                .map(|i| (i % 3) as f32)
                .collect();
            let g = Gemm::new(m, nn, k).alpha(f64::from(alpha)).beta(if with_c {
                f64::from(beta)
            } else {
                0.0
            });
            let g = g.transpose_a(ta).transpose_b(tb);
            let fits = m.checked_mul(k) == Some(a.len())
                && k.checked_mul(nn) == Some(b.len())
                && (!with_c || m.checked_mul(nn) == Some(c.len()))
                && m.checked_mul(nn).and_then(|x| x.checked_mul(k)).is_some();
            if fits && m * nn > 1 << 20 {
                return; // valid, but an output too large to check (k = 0)
            }
            let (ab, bb, cb) = (
                Buffer::from(a.clone()),
                Buffer::from(b.clone()),
                Buffer::from(c.clone()),
            );
            let r = if with_c {
                on.run(&g, (&ab, &bb, &cb))
            } else {
                on.run(&g, (&ab, &bb))
            };
            if !fits {
                return check_invalid(r.map(|b| b.len()), "gemm shape");
            }
            let out = r.unwrap().to_vec().unwrap();
            // Small integers: every product and sum is exact in f32.
            for i in 0..m {
                for j in 0..nn {
                    let mut s = 0.0f64;
                    for p in 0..k {
                        let av = if ta { a[p * m + i] } else { a[i * k + p] };
                        let bv = if tb { b[j * k + p] } else { b[p * nn + j] };
                        s += f64::from(av) * f64::from(bv);
                    }
                    let mut want = f64::from(alpha) * s;
                    if with_c && beta != 0 {
                        want += f64::from(beta) * f64::from(c[i * nn + j]);
                    }
                    assert_eq!(f64::from(out[i * nn + j]), want, "gemm ({i}, {j})");
                }
            }
        }
        Case::Conv {
            h,
            w,
            fh,
            fw,
            clamp,
        } => {
            let (h, w) = (h as usize % 40, w as usize % 40);
            let (fh, fw) = (fh as usize % 12, fw as usize % 12);
            let img: Vec<f32> = (0..h * w)
                .map(|i| (bits.get(i).copied().unwrap_or(1) % 9) as f32)
                .collect();
            let filt: Vec<f32> = (0..fh * fw).map(|i| (i % 3) as f32 - 1.0).collect();
            let border = if clamp { Border::Clamp } else { Border::Zero };
            let conv = Conv2d {
                height: h,
                width: w,
                filter_height: fh,
                filter_width: fw,
                border,
            };
            let r = on.run(
                &conv,
                (&Buffer::from(img.clone()), &Buffer::from(filt.clone())),
            );
            if fh % 2 == 0 || fw % 2 == 0 {
                return check_invalid(r.map(|b| b.len()), "conv2d filter");
            }
            let out = r.unwrap().to_vec().unwrap();
            let (rh, rw) = ((fh / 2) as isize, (fw / 2) as isize);
            for y in 0..h as isize {
                for x in 0..w as isize {
                    let mut s = 0.0f64;
                    for dy in -rh..=rh {
                        for dx in -rw..=rw {
                            let (sy, sx) = (y + dy, x + dx);
                            let v = if sy >= 0 && sx >= 0 && sy < h as isize && sx < w as isize {
                                img[(sy as usize) * w + sx as usize]
                            } else if clamp {
                                let cy = sy.clamp(0, h as isize - 1) as usize;
                                let cx = sx.clamp(0, w as isize - 1) as usize;
                                img[cy * w + cx]
                            } else {
                                0.0
                            };
                            let f = filt[((dy + rh) as usize) * fw + (dx + rw) as usize];
                            s += f64::from(v) * f64::from(f);
                        }
                    }
                    assert_eq!(
                        f64::from(out[y as usize * w + x as usize]),
                        s,
                        "conv ({y}, {x})"
                    );
                }
            }
        }
    }
}

fuzz_target!(|input: Input| run(input));
