//! Property tests: for arbitrary lengths and arbitrary bit patterns (every
//! NaN payload, infinities, subnormals, ±0), each backend agrees with the
//! scalar rule, and the backends agree with each other bit for bit wherever
//! the semantics fix the answer (everything but float sums).

mod common;

use common::*;
use proptest::prelude::*;
use tandem::kernels::{ArgMax, ArgMin, Binary, Max, Min, Sum, Unary};
use tandem::{Backend, Buffer};

fn any_f32s(max_len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(any::<u32>().prop_map(f32::from_bits), 0..max_len)
}

/// Key order: -0.0 < +0.0, NaN excluded by the caller.
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

fn oracle_extreme(x: &[f32], max: bool) -> Option<(usize, u32)> {
    if x.is_empty() {
        return None;
    }
    let mut best: Option<(usize, u32)> = None;
    for (i, &v) in x.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let k = key(v);
        if best.is_none_or(|(_, bk)| if max { k > bk } else { k < bk }) {
            best = Some((i, k));
        }
    }
    Some(best.unwrap_or((0, u32::MAX)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn min_max_and_args_follow_key_order_on_every_backend(x in any_f32s(3000)) {
        let xb = Buffer::from(x.clone());
        for max in [false, true] {
            let want = oracle_extreme(&x, max);
            for (b, e) in backends() {
                let arg = if max { e.run(&ArgMax, &xb).unwrap() } else { e.run(&ArgMin, &xb).unwrap() };
                let val = if max { e.run(&Max, &xb).unwrap() } else { e.run(&Min, &xb).unwrap() };
                match want {
                    None => { prop_assert!(arg.is_none() && val.is_none()); }
                    Some((_, u32::MAX)) => {
                        // All NaN.
                        let (i, v) = arg.unwrap();
                        prop_assert!(i == 0 && v.is_nan() && val.unwrap().is_nan(), "{b}");
                    }
                    Some((i, k)) => {
                        let (gi, gv) = arg.unwrap();
                        prop_assert_eq!((gi, key(gv)), (i, k), "{} max={}", b, max);
                        prop_assert_eq!(key(val.unwrap()), k);
                    }
                }
            }
        }
    }

    #[test]
    fn binary_float_ops_agree_bit_for_bit(x in any_f32s(2000), seed in any::<u64>()) {
        let mut rng = common::Rng::new(seed);
        let y: Vec<f32> = (0..x.len()).map(|_| f32::from_bits(rng.next_u32())).collect();
        let (xb, yb) = (Buffer::from(x.clone()), Buffer::from(y.clone()));
        let Some(cpu) = on(Backend::Cpu) else { unreachable!() };
        for op in [Binary::Min, Binary::Max, Binary::Add, Binary::Sub, Binary::Mul] {
            let c = cpu.run(&op, (&xb, &yb)).unwrap().to_vec().unwrap();
            if matches!(op, Binary::Min | Binary::Max) {
                for i in 0..x.len() {
                    let (a, b) = (x[i], y[i]);
                    let b_wins = !b.is_nan()
                        && (a.is_nan() || (key(a) != key(b) && (key(b) > key(a)) == (op == Binary::Max)));
                    let want = if b_wins { b } else { a };
                    prop_assert_eq!(c[i].to_bits(), want.to_bits(), "{:?} {} {}", op, a, b);
                }
            }
            if let Some(gpu) = on(Backend::Gpu) {
                let g = gpu.run(&op, (&xb, &yb)).unwrap().to_vec().unwrap();
                for i in 0..x.len() {
                    // Subnormal results may be flushed on a GPU; NaN payloads may differ.
                    let tiny = c[i].abs() < f32::MIN_POSITIVE && g[i].abs() < f32::MIN_POSITIVE;
                    let nans = c[i].is_nan() && g[i].is_nan();
                    let subnormal_in = x[i].abs() < f32::MIN_POSITIVE || y[i].abs() < f32::MIN_POSITIVE;
                    prop_assert!(
                        c[i].to_bits() == g[i].to_bits() || tiny || nans || subnormal_in,
                        "{:?}({:e}, {:e}): cpu {:e} gpu {:e}", op, x[i], y[i], c[i], g[i]
                    );
                }
            }
        }
    }

    #[test]
    fn integer_sums_and_negation_agree_exactly(x in prop::collection::vec(any::<i32>(), 0..5000)) {
        let xb = Buffer::from(x.clone());
        let want = x.iter().fold(0i32, |a, &v| a.wrapping_add(v));
        let neg: Vec<i32> = x.iter().map(|v| v.wrapping_neg()).collect();
        for (b, e) in backends() {
            prop_assert_eq!(e.run(&Sum, &xb).unwrap(), want, "{}", b);
            prop_assert_eq!(e.run(&Unary::Neg, &xb).unwrap().to_vec().unwrap(), neg.clone());
        }
    }
}
