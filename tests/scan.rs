//! Conformance of `Scan` (inclusive and exclusive) on every backend against
//! scalar oracles: integers exactly (wrapping), floats within the documented
//! bound `d(n)·ε·Σ_{j≤i}|x_j|` of an f64 oracle.

mod common;

use common::{Rng, SIZES, backends};
use proptest::prelude::*;
use tandem::kernels::Scan;
use tandem::kernels::scan::float_error_depth;
use tandem::{Backend, Buffer, Engine};

fn int_oracle<T: Copy>(x: &[T], zero: T, add: impl Fn(T, T) -> T, exclusive: bool) -> Vec<T> {
    let mut acc = zero;
    x.iter()
        .map(|&v| {
            let before = acc;
            acc = add(acc, v);
            if exclusive { before } else { acc }
        })
        .collect()
}

/// Exact-ish f64 prefix sums and prefix sums of |x|.
fn f64_oracle(x: &[f32], exclusive: bool) -> (Vec<f64>, Vec<f64>) {
    let (mut s, mut a) = (0.0f64, 0.0f64);
    x.iter()
        .map(|&v| {
            let before = (s, a);
            s += f64::from(v);
            a += f64::from(v).abs();
            if exclusive { before } else { (s, a) }
        })
        .unzip()
}

fn check_f32(what: &str, x: &[f32], got: &[f32], exclusive: bool) {
    assert_eq!(got.len(), x.len(), "{what}: length");
    let (want, abs) = f64_oracle(x, exclusive);
    let depth = float_error_depth(x.len());
    for i in 0..x.len() {
        let bound = depth * f64::from(f32::EPSILON) / 2.0 * abs[i] + 1e-30;
        let err = (f64::from(got[i]) - want[i]).abs();
        assert!(
            err <= bound,
            "{what}: element {i}: got {}, want {}, error {err:e} > bound {bound:e}",
            got[i],
            want[i]
        );
    }
}

fn run<T: tandem::Element>(e: &Engine, scan: Scan, x: &[T]) -> Vec<T> {
    e.run(&scan, &Buffer::from(x.to_vec()))
        .expect("scan")
        .to_vec()
        .expect("to host")
}

#[test]
fn integer_scans_match_a_wrapping_oracle_exactly_at_every_size() {
    for (b, e) in backends() {
        for &n in SIZES {
            let mut rng = Rng::new(n as u64 + 1);
            let xi = rng.i32s(n);
            let xu = rng.u32s(n);
            for exclusive in [false, true] {
                let s = Scan { exclusive };
                let want = int_oracle(&xi, 0i32, i32::wrapping_add, exclusive);
                assert!(
                    run(&e, s, &xi) == want,
                    "{b:?} i32 n={n} exclusive={exclusive}"
                );
                let want = int_oracle(&xu, 0u32, u32::wrapping_add, exclusive);
                assert!(
                    run(&e, s, &xu) == want,
                    "{b:?} u32 n={n} exclusive={exclusive}"
                );
            }
        }
    }
}

#[test]
fn float_scans_stay_within_the_stated_error_bound_at_every_size() {
    for (b, e) in backends() {
        for &n in SIZES {
            let mut rng = Rng::new(n as u64 + 7);
            let x = rng.f32s(n, -1.0, 2.0);
            // The exclusive pass shares every line of the inclusive one but
            // the final write: skip it at the largest size to bound lavapipe time.
            let modes: &[bool] = if n > 1_000_000 {
                &[false]
            } else {
                &[false, true]
            };
            for &exclusive in modes {
                let got = run(&e, Scan { exclusive }, &x);
                check_f32(
                    &format!("{b:?} f32 n={n} exclusive={exclusive}"),
                    &x,
                    &got,
                    exclusive,
                );
            }
        }
    }
}

#[test]
fn small_integer_scans_are_exact_in_f32_on_both_backends() {
    // Sums of small integers are exact in f32 whatever the order.
    let x: Vec<f32> = (0..100_003).map(|i| (i % 7) as f32 - 3.0).collect();
    let want = int_oracle(&x, 0.0f32, |a, b| a + b, false);
    for (b, e) in backends() {
        assert_eq!(run(&e, Scan::inclusive(), &x), want, "{b:?}");
    }
}

#[test]
fn exclusive_scan_starts_at_zero_and_inclusive_at_the_first_element() {
    for (b, e) in backends() {
        assert_eq!(run(&e, Scan::exclusive(), &[5u32]), [0], "{b:?}");
        assert_eq!(run(&e, Scan::inclusive(), &[5u32]), [5], "{b:?}");
        assert_eq!(run(&e, Scan::exclusive(), &[-2i32, 3]), [0, -2], "{b:?}");
        assert!(
            run(&e, Scan::inclusive(), &[] as &[f32]).is_empty(),
            "{b:?}"
        );
    }
}

#[test]
fn nan_and_infinity_propagate_through_float_scans() {
    let x = [1.0f32, f32::INFINITY, 2.0, f32::NEG_INFINITY, 3.0];
    let y = [1.0f32, f32::NAN, 2.0];
    for (b, e) in backends() {
        let got = run(&e, Scan::inclusive(), &x);
        assert_eq!(got[..3], [1.0, f32::INFINITY, f32::INFINITY], "{b:?}");
        assert!(got[3].is_nan() && got[4].is_nan(), "{b:?}: {got:?}");
        let got = run(&e, Scan::inclusive(), &y);
        assert!(
            got[0] == 1.0 && got[1].is_nan() && got[2].is_nan(),
            "{b:?}: {got:?}"
        );
    }
}

#[test]
fn empty_input_dispatches_nothing_on_the_gpu() {
    let Some(e) = common::own_gpu_engine() else {
        return;
    };
    let before = e.stats();
    let out = e
        .run(&Scan::inclusive(), &Buffer::<u32>::from(Vec::new()))
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(e.stats().since(&before).gpu_dispatches, 0);
}

#[test]
fn gpu_scan_output_stays_resident() {
    let Some(e) = common::own_gpu_engine() else {
        return;
    };
    let x = Buffer::from(vec![1u32; 5000]);
    let out = e.run(&Scan::inclusive(), &x).unwrap();
    assert_eq!(out.residency(), tandem::Residency::Device);
    assert_eq!(out.to_vec().unwrap()[4999], 5000);
}

#[test]
fn inputs_larger_than_one_binding_are_chunked_with_carries_across_chunks() {
    // 64 KiB bindings: 16,384 elements a chunk, so 200,003 spans 13 chunks.
    let Some(e) = common::small_binding_engine() else {
        return;
    };
    let e = e.on(Backend::Gpu);
    let mut rng = Rng::new(3);
    let x = rng.u32s(200_003);
    for exclusive in [false, true] {
        let want = int_oracle(&x, 0u32, u32::wrapping_add, exclusive);
        assert!(
            run(&e, Scan { exclusive }, &x) == want,
            "exclusive={exclusive}"
        );
    }
}

#[test]
fn work_counts_two_reads_and_one_write() {
    let x = Buffer::from(vec![0.0f32; 1000]);
    let w = tandem::Kernel::<&Buffer<f32>>::work(&Scan::inclusive(), &&x);
    assert_eq!(
        (w.bytes_read, w.bytes_written, w.elements),
        (8000, 4000, 1000)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn gpu_equals_cpu_equals_oracle(x in proptest::collection::vec(any::<i32>(), 0..6000), exclusive: bool) {
        let want = int_oracle(&x, 0i32, i32::wrapping_add, exclusive);
        for (b, e) in backends() {
            prop_assert_eq!(&run(&e, Scan { exclusive }, &x), &want, "{:?}", b);
        }
    }

    #[test]
    fn float_gpu_and_cpu_within_bound(x in proptest::collection::vec(-1e3f32..1e3, 0..6000), exclusive: bool) {
        for (b, e) in backends() {
            check_f32(&format!("{b:?}"), &x, &run(&e, Scan { exclusive }, &x), exclusive);
        }
    }
}
