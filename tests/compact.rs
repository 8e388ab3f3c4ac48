//! Conformance of `Compact` and `CompactIf` on every backend against scalar
//! oracles (exact, bitwise for floats), plus errors and IEEE NaN handling.

mod common;

use common::{Rng, SIZES, backends};
use proptest::prelude::*;
use tandem::kernels::{Compact, CompactIf, Compare};
use tandem::{Backend, Buffer, Element, Engine, Error};

const CMPS: [Compare; 6] = Compare::ALL;

fn oracle_cmp<T: Copy + PartialOrd>(x: &[T], cmp: Compare, t: T) -> Vec<T> {
    let mut out = Vec::new();
    for &v in x {
        let keep = match cmp {
            Compare::Lt => v < t,
            Compare::Le => v <= t,
            Compare::Gt => v > t,
            Compare::Ge => v >= t,
            Compare::Eq => v == t,
            Compare::Ne => v != t,
        };
        if keep {
            out.push(v);
        }
    }
    out
}

fn oracle_mask<T: Copy>(x: &[T], m: &[u32]) -> Vec<T> {
    x.iter()
        .zip(m)
        .filter(|(_, m)| **m != 0)
        .map(|(v, _)| *v)
        .collect()
}

fn compact<T: Element>(e: &Engine, x: &[T], m: &[u32]) -> Vec<T> {
    e.run(
        &Compact,
        (&Buffer::from(x.to_vec()), &Buffer::from(m.to_vec())),
    )
    .expect("compact")
    .to_vec()
    .expect("to host")
}

fn compact_if<T: Element + PartialOrd>(e: &Engine, x: &[T], cmp: Compare, t: T) -> Vec<T> {
    e.run(&CompactIf { cmp, threshold: t }, &Buffer::from(x.to_vec()))
        .expect("compact_if")
        .to_vec()
        .expect("to host")
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn mask_compaction_keeps_nonzero_mask_elements_in_order_at_every_size() {
    for (b, e) in backends() {
        for &n in SIZES {
            let mut rng = Rng::new(n as u64 + 11);
            let x = rng.u32s(n);
            // Mask values beyond 0/1 count as "keep".
            let m: Vec<u32> = (0..n).map(|_| rng.next_u32() % 3).collect();
            assert!(
                compact(&e, &x, &m) == oracle_mask(&x, &m),
                "{b:?} u32 n={n}"
            );
            let xf = rng.f32s(n, -5.0, 5.0);
            assert_eq!(
                bits(&compact(&e, &xf, &m)),
                bits(&oracle_mask(&xf, &m)),
                "{b:?} f32 n={n}"
            );
        }
    }
}

#[test]
fn comparison_compaction_matches_the_oracle_for_every_operator_and_type() {
    for (b, e) in backends() {
        for &n in SIZES {
            let mut rng = Rng::new(n as u64 + 5);
            let xi = rng.small_i32s(n, 20);
            let xu: Vec<u32> = (0..n).map(|_| rng.next_u32() % 10).collect();
            let xf: Vec<f32> = xi.iter().map(|&v| v as f32 * 0.5).collect();
            // Full sweeps only below the large size, to bound lavapipe time.
            let cmps: &[Compare] = if n > 1_000_000 { &CMPS[2..3] } else { &CMPS };
            for &cmp in cmps {
                assert!(
                    compact_if(&e, &xi, cmp, 3) == oracle_cmp(&xi, cmp, 3),
                    "{b:?} i32 {cmp:?} n={n}"
                );
                assert!(
                    compact_if(&e, &xu, cmp, 4) == oracle_cmp(&xu, cmp, 4),
                    "{b:?} u32 {cmp:?} n={n}"
                );
                assert_eq!(
                    bits(&compact_if(&e, &xf, cmp, 1.5)),
                    bits(&oracle_cmp(&xf, cmp, 1.5)),
                    "{b:?} f32 {cmp:?} n={n}"
                );
            }
        }
    }
}

#[test]
fn nan_compares_false_so_only_not_equal_keeps_it() {
    let x = [
        1.0f32,
        f32::NAN,
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -f32::NAN,
    ];
    for (b, e) in backends() {
        for cmp in CMPS {
            for t in [0.0f32, f32::NAN, f32::INFINITY] {
                let got = compact_if(&e, &x, cmp, t);
                assert_eq!(
                    bits(&got),
                    bits(&oracle_cmp(&x, cmp, t)),
                    "{b:?} {cmp:?} {t}"
                );
            }
        }
    }
}

#[test]
fn nothing_kept_and_everything_kept() {
    for (b, e) in backends() {
        let x: Vec<i32> = (0..10_000).collect();
        assert!(compact_if(&e, &x, Compare::Lt, -1).is_empty(), "{b:?}");
        assert_eq!(compact_if(&e, &x, Compare::Ge, 0), x, "{b:?}");
        assert!(compact(&e, &x, &vec![0; x.len()]).is_empty(), "{b:?}");
        assert!(compact(&e, &[] as &[i32], &[]).is_empty(), "{b:?}");
    }
}

#[test]
fn mask_of_another_length_is_a_length_mismatch_naming_the_kernel() {
    for (b, e) in backends() {
        let x = Buffer::from(vec![1.0f32; 10]);
        let m = Buffer::from(vec![1u32; 9]);
        let err = e.run(&Compact, (&x, &m)).unwrap_err();
        assert_eq!(
            err,
            Error::LengthMismatch {
                kernel: "compact",
                left: 10,
                right: 9
            },
            "{b:?}"
        );
    }
}

#[test]
fn inputs_larger_than_one_binding_are_compacted_chunk_by_chunk() {
    // 64 KiB bindings: the compaction uses 8,192-element chunks.
    let Some(e) = common::small_binding_engine() else {
        return;
    };
    let e = e.on(Backend::Gpu);
    let mut rng = Rng::new(9);
    let x = rng.u32s(150_001);
    let m: Vec<u32> = (0..x.len())
        .map(|_| u32::from(!rng.next_u32().is_multiple_of(4)))
        .collect();
    assert!(compact(&e, &x, &m) == oracle_mask(&x, &m));
    assert!(compact_if(&e, &x, Compare::Lt, 1 << 30) == oracle_cmp(&x, Compare::Lt, 1 << 30));
}

#[test]
fn gpu_result_stays_resident_and_empty_input_dispatches_nothing() {
    let Some(e) = common::own_gpu_engine() else {
        return;
    };
    let x = Buffer::from((0..5000u32).collect::<Vec<_>>());
    let out = e
        .run(
            &CompactIf {
                cmp: Compare::Lt,
                threshold: 100,
            },
            &x,
        )
        .unwrap();
    assert_eq!(out.residency(), tandem::Residency::Device);
    assert_eq!(out.len(), 100);
    let before = e.stats();
    let empty = Buffer::<u32>::from(Vec::new());
    assert!(e.run(&Compact, (&empty, &empty)).unwrap().is_empty());
    assert_eq!(e.stats().since(&before).gpu_dispatches, 0);
}

#[test]
fn work_counts_the_count_readback() {
    let x = Buffer::from(vec![0.0f32; 100]);
    let w = tandem::Kernel::<&Buffer<f32>>::work(
        &CompactIf {
            cmp: Compare::Lt,
            threshold: 0.0,
        },
        &&x,
    );
    assert_eq!(w.host_result_bytes, 4);
    assert!(w.bytes_read >= 400);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn gpu_equals_cpu_equals_oracle(
        x in proptest::collection::vec(-100i32..100, 0..5000),
        t in -100i32..100,
        c in 0usize..6,
    ) {
        let want = oracle_cmp(&x, CMPS[c], t);
        let m: Vec<u32> = x.iter().map(|v| (v & 1) as u32).collect();
        let want_m = oracle_mask(&x, &m);
        for (b, e) in backends() {
            prop_assert_eq!(&compact_if(&e, &x, CMPS[c], t), &want, "{:?}", b);
            prop_assert_eq!(&compact(&e, &x, &m), &want_m, "{:?}", b);
        }
    }
}
