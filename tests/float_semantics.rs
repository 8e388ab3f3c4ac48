//! The float semantics README.md documents, checked on every backend:
//! NaN, ±Inf, -0.0 and subnormals through every kernel family.
//!
//! WGSL assumes finite math (on lavapipe `x != x` is false for a NaN), so
//! the shaders test NaN by bits; these tests hold both backends to the same
//! answers.

mod common;

use common::*;
use tandem::Buffer;
use tandem::kernels::{ArgMax, ArgMin, Axpy, Binary, Dot, Max, Min, Sum, Unary};

const NAN: f32 = f32::NAN;
const INF: f32 = f32::INFINITY;
/// The smallest positive subnormal, and a larger one.
const SUB: f32 = f32::from_bits(1);
const SUB2: f32 = f32::from_bits(0x0040_0000);

fn v(b: &Buffer<f32>) -> Vec<f32> {
    b.to_vec().unwrap()
}

#[test]
fn sums_and_dots_propagate_nan_and_infinities() {
    for (b, e) in backends() {
        let sum = |x: Vec<f32>| e.run(&Sum, &Buffer::from(x)).unwrap();
        assert!(sum(vec![1.0, NAN, 2.0]).is_nan(), "{b}");
        assert_eq!(sum(vec![INF, 1.0, 5.0]), INF, "{b}");
        assert_eq!(sum(vec![-INF, 1.0]), -INF, "{b}");
        assert!(sum(vec![INF, -INF, 1.0]).is_nan(), "{b}");
        // In a longer input, across workgroup and chunk boundaries.
        let mut long = vec![1.0f32; 70_000];
        long[65_000] = NAN;
        assert!(sum(long).is_nan(), "{b}");
        let dot =
            |x: Vec<f32>, y: Vec<f32>| e.run(&Dot, (&Buffer::from(x), &Buffer::from(y))).unwrap();
        assert!(dot(vec![1.0, NAN], vec![1.0, 1.0]).is_nan(), "{b}");
        assert!(dot(vec![INF, 1.0], vec![0.0, 1.0]).is_nan(), "{b}: inf * 0");
        assert_eq!(dot(vec![INF, 1.0], vec![2.0, 1.0]), INF, "{b}");
    }
}

#[test]
fn extremes_ignore_nan_order_signed_zeros_and_keep_infinities_and_subnormals() {
    for (b, e) in backends() {
        let x = Buffer::from(vec![NAN, 0.0, INF, -0.0, -INF, SUB, -SUB, NAN]);
        assert_eq!(
            e.run(&Min, &x).unwrap().map(f32::to_bits),
            Some((-INF).to_bits()),
            "{b}"
        );
        assert_eq!(
            e.run(&Max, &x).unwrap().map(f32::to_bits),
            Some(INF.to_bits()),
            "{b}"
        );
        assert_eq!(e.run(&ArgMin, &x).unwrap(), Some((4, -INF)), "{b}");
        assert_eq!(e.run(&ArgMax, &x).unwrap(), Some((2, INF)), "{b}");
        // -0.0 < +0.0, and subnormals are ordered exactly (never flushed).
        let z = Buffer::from(vec![0.0, SUB2, -0.0, SUB, 0.0]);
        assert_eq!(
            e.run(&Min, &z).unwrap().map(f32::to_bits),
            Some((-0.0f32).to_bits()),
            "{b}"
        );
        assert_eq!(
            e.run(&ArgMin, &z).unwrap().map(|(i, v)| (i, v.to_bits())),
            Some((2, (-0.0f32).to_bits())),
            "{b}"
        );
        assert_eq!(
            e.run(&Max, &z).unwrap().map(f32::to_bits),
            Some(SUB2.to_bits()),
            "{b}"
        );
        let pos = Buffer::from(vec![SUB2, SUB, SUB2]);
        assert_eq!(
            e.run(&ArgMin, &pos).unwrap().map(|(i, v)| (i, v.to_bits())),
            Some((1, SUB.to_bits())),
            "{b}"
        );
        // Elementwise min/max follow the same rules.
        let a = Buffer::from(vec![NAN, 1.0, -0.0, 0.0, NAN, SUB]);
        let c = Buffer::from(vec![2.0, NAN, 0.0, -0.0, NAN, -SUB]);
        let mn = v(&e.run(&Binary::Min, (&a, &c)).unwrap());
        let mx = v(&e.run(&Binary::Max, (&a, &c)).unwrap());
        assert_bits(&format!("{b} minimum"), &mn[..4], &[2.0, 1.0, -0.0, -0.0]);
        assert_bits(&format!("{b} maximum"), &mx[..4], &[2.0, 1.0, 0.0, 0.0]);
        assert!(mn[4].is_nan() && mx[4].is_nan(), "{b}: both NaN gives NaN");
        assert_eq!(
            (mn[5].to_bits(), mx[5].to_bits()),
            ((-SUB).to_bits(), SUB.to_bits()),
            "{b}"
        );
    }
}

#[test]
fn sign_bit_ops_are_exact_for_every_value() {
    for (b, e) in backends() {
        let x = vec![NAN, -NAN, INF, -INF, 0.0, -0.0, SUB, -SUB2, 1.5];
        let xb = Buffer::from(x.clone());
        let neg = v(&e.run(&Unary::Neg, &xb).unwrap());
        let abs = v(&e.run(&Unary::Abs, &xb).unwrap());
        for i in 0..x.len() {
            assert_eq!(
                neg[i].to_bits(),
                x[i].to_bits() ^ 0x8000_0000,
                "{b} neg {:e}",
                x[i]
            );
            assert_eq!(
                abs[i].to_bits(),
                x[i].to_bits() & 0x7fff_ffff,
                "{b} abs {:e}",
                x[i]
            );
        }
    }
}

#[test]
fn arithmetic_follows_ieee_for_infinities_and_nan() {
    for (b, e) in backends() {
        let a = Buffer::from(vec![INF, INF, 1.0, NAN, -INF, 0.0]);
        let c = Buffer::from(vec![-INF, INF, INF, 1.0, 2.0, INF]);
        let add = v(&e.run(&Binary::Add, (&a, &c)).unwrap());
        assert!(add[0].is_nan() && add[3].is_nan(), "{b}: {add:?}");
        assert_eq!(
            (add[1], add[2], add[4], add[5]),
            (INF, INF, -INF, INF),
            "{b}"
        );
        let mul = v(&e.run(&Binary::Mul, (&a, &c)).unwrap());
        assert!(mul[5].is_nan(), "{b}: 0 * inf");
        assert_eq!((mul[0], mul[4]), (-INF, -INF), "{b}");
        let axpy = v(&e.run(&Axpy { a: 2.0 }, (&a, &c)).unwrap());
        assert!(axpy[0].is_nan() && axpy[3].is_nan(), "{b}: {axpy:?}");
        assert_eq!(axpy[1], INF, "{b}");
    }
}

#[test]
fn subnormal_arithmetic_is_exact_on_cpu_and_at_worst_flushed_on_gpu() {
    // Documented: GPUs may flush subnormal inputs and results to zero.
    for (b, e) in backends() {
        let x = Buffer::from(vec![SUB, SUB2, -SUB]);
        let s = e.run(&Sum, &x).unwrap();
        let doubled = v(&e.run(&Binary::Add, (&x, &x)).unwrap());
        if b == tandem::Backend::Cpu {
            assert_eq!(s, SUB2, "{b}");
            assert_eq!(
                doubled,
                vec![
                    f32::from_bits(2),
                    f32::from_bits(0x0080_0000),
                    f32::from_bits(0x8000_0002)
                ]
            );
        } else {
            assert!(s == SUB2 || s == 0.0, "{b}: {s:e}");
            assert!(
                doubled.iter().all(|d| d.abs() < 1.5 * f32::MIN_POSITIVE),
                "{b}: {doubled:?}"
            );
        }
    }
}
