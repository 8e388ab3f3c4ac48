//! Conformance of `Histogram` (u32) and `HistogramRange` (f32) on every
//! backend against scalar oracles: counts exact and identical, edge values,
//! outliers (below, above, NaN, ±Inf), both GPU paths (workgroup memory and
//! global atomics), and every bad parameter.

mod common;

use common::{Rng, SIZES, backends};
use proptest::prelude::*;
use tandem::kernels::{Histogram, HistogramCounts, HistogramRange};
use tandem::{Backend, Buffer, Engine, Error};

fn oracle_u32(x: &[u32], bins: u32) -> HistogramCounts {
    let mut h = HistogramCounts {
        counts: vec![0; bins as usize],
        ..Default::default()
    };
    for &v in x {
        if v < bins {
            h.counts[v as usize] += 1;
        } else {
            h.above += 1;
        }
    }
    h
}

/// The documented formula, written out plainly.
fn oracle_f32(x: &[f32], lo: f32, hi: f32, bins: u32) -> HistogramCounts {
    let mut h = HistogramCounts {
        counts: vec![0; bins as usize],
        ..Default::default()
    };
    let scale = bins as f32 / (hi - lo);
    for &v in x {
        if v.is_nan() {
            h.nan += 1;
        } else if v < lo {
            h.below += 1;
        } else if v >= hi {
            h.above += 1;
        } else {
            let t = ((v - lo) * scale).floor();
            let b = if t > (bins - 1) as f32 {
                bins - 1
            } else {
                t as u32
            };
            h.counts[b as usize] += 1;
        }
    }
    h
}

fn hist(e: &Engine, x: &[u32], bins: u32) -> HistogramCounts {
    e.run(&Histogram { bins }, &Buffer::from(x.to_vec()))
        .expect("histogram")
}

fn hist_range(e: &Engine, x: &[f32], lo: f32, hi: f32, bins: u32) -> HistogramCounts {
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    e.run(&HistogramRange { lo, hi, bins }, &Buffer::from(x.to_vec()))
        .expect("histogram_range")
}

#[test]
fn u32_histogram_matches_the_oracle_at_every_size() {
    for (b, e) in backends() {
        for &n in SIZES {
            let mut rng = Rng::new(n as u64 + 21);
            // Some values out of range.
            let x: Vec<u32> = (0..n).map(|_| rng.next_u32() % 300).collect();
            assert_eq!(hist(&e, &x, 256), oracle_u32(&x, 256), "{b:?} n={n}");
        }
    }
}

#[test]
fn f32_histogram_matches_the_oracle_at_every_size() {
    for (b, e) in backends() {
        for &n in SIZES {
            let mut rng = Rng::new(n as u64 + 22);
            let x = rng.f32s(n, -1.5, 11.5);
            assert_eq!(
                hist_range(&e, &x, 0.0, 10.0, 100),
                oracle_f32(&x, 0.0, 10.0, 100),
                "{b:?} n={n}"
            );
        }
    }
}

#[test]
fn f32_slots_past_the_floats_exact_integers_follow_the_formula() {
    // The CPU computes f32 slots in vector lanes as floats while the
    // largest slot (bins + 2) is an exact f32 integer, and by the scalar
    // formula from 2^24 - 2 bins up: both sides of that line, with values
    // in every slot kind, on inputs with and without a whole vector.
    let mut rng = Rng::new(24);
    for bins in [(1 << 24) - 3, (1 << 24) - 2, 1 << 24] {
        for n in [5usize, 64, 1001] {
            let mut x = rng.f32s(n, -0.25, 1.25);
            x[0] = f32::NAN;
            x[n - 1] = 1.0f32.next_down();
            x[n / 2] = f32::INFINITY;
            x[n / 3] = f32::NEG_INFINITY;
            for (b, e) in backends() {
                assert_eq!(
                    hist_range(&e, &x, 0.0, 1.0, bins),
                    oracle_f32(&x, 0.0, 1.0, bins),
                    "{b:?} bins={bins} n={n}"
                );
            }
        }
    }
}

#[test]
fn many_bins_use_global_atomics_on_the_gpu_and_per_task_or_atomic_counts_on_the_cpu() {
    // 5,000 bins: too many for workgroup memory; 100,000: above the CPU's
    // private-histogram limit.
    for (b, e) in backends() {
        let mut rng = Rng::new(4);
        for bins in [4093u32, 4094, 5000, 100_000] {
            let x: Vec<u32> = (0..300_007).map(|_| rng.next_u32() % (bins + 50)).collect();
            assert_eq!(
                hist(&e, &x, bins),
                oracle_u32(&x, bins),
                "{b:?} bins={bins}"
            );
            let xf = rng.f32s(300_007, -0.5, 1.5);
            assert_eq!(
                hist_range(&e, &xf, 0.0, 1.0, bins),
                oracle_f32(&xf, 0.0, 1.0, bins),
                "{b:?} bins={bins}"
            );
        }
    }
}

#[test]
fn outliers_are_counted_not_dropped_and_edges_follow_the_formula() {
    let (lo, hi) = (-1.0f32, 2.0f32);
    let x = vec![
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        lo,
        hi,
        f32::from_bits(hi.to_bits() - 1), // largest value below hi: last bucket
        f32::from_bits(lo.to_bits() + 1), // just below lo (lo is negative)
        0.0,
        -0.0,
        1.0,
        f32::MAX,
        f32::MIN,
    ];
    let want = oracle_f32(&x, lo, hi, 3);
    assert_eq!((want.below, want.above, want.nan), (3, 3, 2));
    for (b, e) in backends() {
        let got = hist_range(&e, &x, lo, hi, 3);
        assert_eq!(got, want, "{b:?}");
        let total: u32 = got.counts.iter().sum::<u32>() + got.below + got.above + got.nan;
        assert_eq!(total as usize, x.len(), "{b:?}");
    }
}

#[test]
fn bucket_edges_agree_between_backends_on_a_fine_grid() {
    // Values on and next to every bucket edge of an awkward range.
    let (lo, hi, bins) = (0.1f32, 0.7f32, 37u32);
    let mut x = Vec::new();
    for k in 0..=bins {
        let edge = lo + (hi - lo) * k as f32 / bins as f32;
        for d in -2i32..=2 {
            x.push(f32::from_bits((edge.to_bits() as i32 + d) as u32));
        }
    }
    let want = oracle_f32(&x, lo, hi, bins);
    for (b, e) in backends() {
        assert_eq!(hist_range(&e, &x, lo, hi, bins), want, "{b:?}");
    }
}

#[test]
fn empty_input_gives_zero_counts_and_dispatches_nothing() {
    for (b, e) in backends() {
        let h = hist(&e, &[], 4);
        assert_eq!(
            h,
            HistogramCounts {
                counts: vec![0; 4],
                ..Default::default()
            },
            "{b:?}"
        );
        assert_eq!(hist_range(&e, &[], 0.0, 1.0, 2).counts, [0, 0], "{b:?}");
    }
    let Some(e) = common::own_gpu_engine() else {
        return;
    };
    let before = e.stats();
    hist(&e, &[], 4);
    assert_eq!(e.stats().since(&before).gpu_dispatches, 0);
}

#[test]
fn bad_parameters_are_invalid_arguments_naming_the_kernel_and_values() {
    let x = Buffer::from(vec![1.0f32; 4]);
    let xu = Buffer::from(vec![1u32; 4]);
    for (b, e) in backends() {
        let err = e.run(&Histogram { bins: 0 }, &xu).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { kernel: "histogram", message } if message.contains("got 0")),
            "{b:?}: {err}"
        );
        let cases = [
            (0.0f32, 1.0f32, 0u32, "got 0"),
            (1.0, 1.0, 4, "lo = 1, hi = 1"),
            (2.0, 1.0, 4, "lo = 2, hi = 1"),
            (f32::NAN, 1.0, 4, "lo = NaN"),
            (0.0, f32::INFINITY, 4, "hi = inf"),
            (f32::NEG_INFINITY, 0.0, 4, "lo = -inf"),
            (-3e38, 3e38, 4, "hi - lo = inf"),
            (0.0, 1.0, (1 << 24) + 1, "got 16777217"),
            (0.0, 1e-40, 4, "must be finite normal"),
        ];
        for (lo, hi, bins, says) in cases {
            let (lo, hi) = (f64::from(lo), f64::from(hi));
            let err = e.run(&HistogramRange { lo, hi, bins }, &x).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { kernel: "histogram_range", message } if message.contains(says)),
                "{b:?} lo={lo} hi={hi} bins={bins}: {err}"
            );
        }
    }
}

#[test]
fn inputs_larger_than_one_binding_are_counted_chunk_by_chunk() {
    let Some(e) = common::small_binding_engine() else {
        return;
    };
    let e = e.on(Backend::Gpu);
    let mut rng = Rng::new(8);
    let x: Vec<u32> = (0..100_003).map(|_| rng.next_u32() % 70).collect();
    assert_eq!(hist(&e, &x, 64), oracle_u32(&x, 64));
    let xf = rng.f32s(100_003, -1.0, 1.0);
    assert_eq!(
        hist_range(&e, &xf, -0.5, 0.5, 10),
        oracle_f32(&xf, -0.5, 0.5, 10)
    );
}

#[test]
fn work_counts_the_bins_brought_to_the_host() {
    let x = Buffer::from(vec![0u32; 100]);
    let w = tandem::Kernel::<&Buffer<u32>>::work(&Histogram { bins: 10 }, &&x);
    assert_eq!((w.bytes_read, w.host_result_bytes), (400, 52));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn gpu_equals_cpu_equals_oracle(
        x in proptest::collection::vec(prop_oneof![-2.0f32..3.0, Just(f32::NAN), Just(f32::INFINITY)], 0..5000),
        bins in 1u32..64,
        lo in -1.0f32..0.5,
        width in 0.01f32..2.0,
    ) {
        let hi = lo + width;
        let want = oracle_f32(&x, lo, hi, bins);
        let xu: Vec<u32> = x.iter().map(|v| v.to_bits() % 80).collect();
        let want_u = oracle_u32(&xu, bins);
        for (b, e) in backends() {
            prop_assert_eq!(&hist_range(&e, &x, lo, hi, bins), &want, "{:?}", b);
            prop_assert_eq!(&hist(&e, &xu, bins), &want_u, "{:?}", b);
        }
    }
}

#[test]
fn bins_beyond_65535_workgroups_are_cleared_with_a_folded_dispatch() {
    // 65,535 × 256 + 1 slots need 65,536 workgroups of `clear`: a 2-D
    // dispatch. The second call reuses the first call's pooled (dirty)
    // counts buffer, so a slot the clear missed would show.
    let bins = 65_535 * 256 - 2;
    let mut rng = Rng::new(12);
    for (b, e) in backends() {
        for round in 0..2 {
            let x: Vec<u32> = (0..5000).map(|_| rng.next_u32() % (bins + 10)).collect();
            assert!(
                hist(&e, &x, bins) == oracle_u32(&x, bins),
                "{b:?} round {round}"
            );
        }
    }
}
