//! Every kernel on every backend against a plain scalar oracle, at the sizes
//! in `common::SIZES` (0, 1, odd, workgroup ± 1, a prime near 10^5, and one
//! past a single dispatch's workgroup limit).
//!
//! The cases are written once in `conformance_suite!` and expanded for each
//! backend (`cpu::...`, `gpu::...`), so no backend is tested less. GPU cases
//! skip with a notice when there is no adapter, and fail instead under
//! `TANDEM_REQUIRE_GPU=1`.
//!
//! Tolerances: integer results exactly; float `neg`, `abs`, `scale`, `add`,
//! `sub`, `mul`, `minimum`, `maximum`, `min`, `max`, `argmin`, `argmax`
//! bit for bit; `sqrt`, `div` within 3 ULP; `exp` within 3 + 2|x| ULP and
//! `ln` within 3 ULP (absolute 2^-21 on [0.5, 2]), the Vulkan precision
//! rules; `axpy` within 2ε(|a·x| + |y|); `sum` and `dot` within
//! 2ε·log2(n)·Σ|terms| of the exact (f64) result.

mod common;

use common::oracle::*;
use common::*;
use tandem::kernels::{ArgMax, ArgMin, Axpy, Binary, Dot, Max, Min, Sum, Unary};
use tandem::{Backend, Buffer, Element, Engine};

// ---------- scalar oracles: the obviously correct versions ----------

fn oracle_unary_f32(op: Unary, x: f32) -> f32 {
    match op {
        Unary::Neg => -x,
        Unary::Abs => x.abs(),
        Unary::Sqrt => ((x as f64).sqrt()) as f32,
        Unary::Exp => ((x as f64).exp()) as f32,
        Unary::Ln => ((x as f64).ln()) as f32,
        Unary::Scale(k) => x * k,
        _ => unreachable!(),
    }
}

fn oracle_binary_f32(op: Binary, a: f32, b: f32) -> f32 {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Min => oracle_pick_f32(a, b, false),
        Binary::Max => oracle_pick_f32(a, b, true),
        _ => unreachable!(),
    }
}

/// Integer `min`, `max`, `argmin`, `argmax` of `x` on `e`, exactly.
fn check_int_extremes<T: Element + Ord + std::fmt::Debug>(e: &Engine, x: &[T], n: usize) {
    let xb = Buffer::from(x.to_vec());
    for max in [false, true] {
        let want = oracle_arg_int(x, max);
        let (v, arg) = extremes(e, &xb, max);
        assert_eq!(v, want.map(|w| w.1), "{} max={max} n={n}", T::TYPE);
        assert_eq!(arg, want, "{} arg max={max} n={n}", T::TYPE);
    }
}

// ---------- data ----------

/// f32 data for elementwise ops, with zeros of both signs, NaNs and
/// infinities sprinkled in.
fn floats_with_specials(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut v = rng.f32s(n, lo, hi);
    for (i, x) in v.iter_mut().enumerate() {
        match i % 97 {
            3 => *x = 0.0,
            11 => *x = -0.0,
            29 => *x = f32::NAN,
            53 => *x = f32::INFINITY,
            71 => *x = f32::NEG_INFINITY,
            _ => {}
        }
    }
    v
}

fn log2n(n: usize) -> f64 {
    (n.max(2) as f64).log2()
}

fn check_sum_bound(what: &str, got: f32, terms: impl Iterator<Item = f64>, n: usize) {
    let (mut exact, mut abs) = (0.0f64, 0.0f64);
    for t in terms {
        exact += t;
        abs += t.abs();
    }
    let bound = 2.0 * f32::EPSILON as f64 * log2n(n) * abs + f64::from(f32::MIN_POSITIVE);
    let err = (got as f64 - exact).abs();
    assert!(
        err <= bound,
        "{what}: n = {n}: got {got}, exact {exact}, error {err:e} > bound {bound:e}"
    );
}

fn get<T: Element>(b: &Buffer<T>) -> Vec<T> {
    b.to_vec().expect("read back")
}

// ---------- the suite, once; expanded per backend below ----------

macro_rules! conformance_suite {
    ($backend:expr) => {
        use super::*;

        fn engine() -> Option<Engine> {
            on($backend)
        }

        #[test]
        fn unary_f32_exact_ops() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let x = floats_with_specials(&mut Rng::new(n as u64), n, -1e3, 1e3);
                let xb = Buffer::from(x.clone());
                for op in [Unary::Neg, Unary::Abs, Unary::Scale(-2.5)] {
                    let got = get(&e.run(&op, &xb).unwrap());
                    let want: Vec<f32> = x.iter().map(|&v| oracle_unary_f32(op, v)).collect();
                    assert_bits(&format!("{op:?} n={n}"), &got, &want);
                }
            }
        }

        #[test]
        fn unary_f32_transcendental() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 1);
                let pos = rng.f32s(n, 1e-3, 1e4);
                let pb = Buffer::from(pos.clone());
                let got = get(&e.run(&Unary::Sqrt, &pb).unwrap());
                let want: Vec<f32> = pos
                    .iter()
                    .map(|&v| oracle_unary_f32(Unary::Sqrt, v))
                    .collect();
                assert_ulps(&format!("sqrt n={n}"), &got, &want, |_| 3);

                let got = get(&e.run(&Unary::Ln, &pb).unwrap());
                for (i, &v) in pos.iter().enumerate() {
                    let want = oracle_unary_f32(Unary::Ln, v);
                    let ok = if (0.5..=2.0).contains(&v) {
                        (got[i] as f64 - want as f64).abs() <= 2f64.powi(-21)
                    } else {
                        ulps(got[i], want) <= 3
                    };
                    assert!(ok, "ln({v}) n={n} i={i}: got {}, want {want}", got[i]);
                }

                let xs = rng.f32s(n, -20.0, 20.0);
                let got = get(&e.run(&Unary::Exp, &Buffer::from(xs.clone())).unwrap());
                let want: Vec<f32> = xs
                    .iter()
                    .map(|&v| oracle_unary_f32(Unary::Exp, v))
                    .collect();
                assert_ulps(&format!("exp n={n}"), &got, &want, |i| {
                    3 + (2.0 * xs[i].abs()) as u32
                });
            }
        }

        #[test]
        fn unary_f32_special_values() {
            let Some(e) = engine() else { return };
            let x = vec![
                0.0,
                -0.0,
                -1.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                1.0,
                100.0,
                -200.0,
            ];
            let xb = Buffer::from(x.clone());
            let sqrt = get(&e.run(&Unary::Sqrt, &xb).unwrap());
            assert_bits(
                "sqrt specials",
                &sqrt[..5],
                &[0.0, -0.0, f32::NAN, f32::INFINITY, f32::NAN],
            );
            assert!(sqrt[5].is_nan());
            let ln = get(&e.run(&Unary::Ln, &xb).unwrap());
            assert_bits(
                "ln specials",
                &ln[..7],
                &[
                    f32::NEG_INFINITY,
                    f32::NEG_INFINITY,
                    f32::NAN,
                    f32::INFINITY,
                    f32::NAN,
                    f32::NAN,
                    0.0,
                ],
            );
            let exp = get(&e.run(&Unary::Exp, &xb).unwrap());
            let special = [0, 1, 3, 4, 5, 7, 8].map(|i| exp[i]);
            assert_bits(
                "exp specials",
                &special,
                &[1.0, 1.0, f32::INFINITY, 0.0, f32::NAN, f32::INFINITY, 0.0],
            );
        }

        #[test]
        fn unary_int_ops_wrap() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut x = Rng::new(n as u64 + 2).i32s(n);
                if n > 2 {
                    x[0] = i32::MIN;
                    x[1] = i32::MAX;
                    x[2] = 0;
                }
                let xb = Buffer::from(x.clone());
                let neg = get(&e.run(&Unary::Neg, &xb).unwrap());
                assert_eq!(
                    neg,
                    x.iter().map(|v| v.wrapping_neg()).collect::<Vec<_>>(),
                    "neg i32 n={n}"
                );
                let abs = get(&e.run(&Unary::Abs, &xb).unwrap());
                assert_eq!(
                    abs,
                    x.iter().map(|v| v.wrapping_abs()).collect::<Vec<_>>(),
                    "abs i32 n={n}"
                );
                let u: Vec<u32> = x.iter().map(|&v| v as u32).collect();
                let ub = Buffer::from(u.clone());
                assert_eq!(get(&e.run(&Unary::Abs, &ub).unwrap()), u, "abs u32 n={n}");
            }
        }

        #[test]
        fn binary_f32() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 3);
                let a = floats_with_specials(&mut rng, n, -100.0, 100.0);
                let mut b = rng.f32s(n, -100.0, 100.0);
                // Ties (including ±0 against each other) and NaN in the second operand too.
                for i in (0..n).step_by(13) {
                    b[i] = a[i];
                }
                for i in (5..n).step_by(41) {
                    b[i] = f32::NAN;
                }
                for i in (3..n).step_by(97) {
                    b[i] = -0.0;
                }
                let (ab, bb) = (Buffer::from(a.clone()), Buffer::from(b.clone()));
                for op in EXACT_BINARY {
                    let got = get(&e.run(&op, (&ab, &bb)).unwrap());
                    let want: Vec<f32> = a
                        .iter()
                        .zip(&b)
                        .map(|(&x, &y)| oracle_binary_f32(op, x, y))
                        .collect();
                    assert_bits(&format!("{op:?} n={n}"), &got, &want);
                }
                // Division: divisors away from zero; the GPU is allowed 2.5 ULP.
                let d: Vec<f32> = rng.f32s(n, 0.5, 100.0);
                let got = get(&e
                    .run(&Binary::Div, (&ab, &Buffer::from(d.clone())))
                    .unwrap());
                let want: Vec<f32> = a.iter().zip(&d).map(|(&x, &y)| x / y).collect();
                assert_ulps(&format!("div n={n}"), &got, &want, |_| 3);
            }
        }

        #[test]
        fn binary_int() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 4);
                let mut a = rng.i32s(n);
                let mut b = rng.small_i32s(n, 64);
                if n > 3 {
                    a[0] = i32::MIN;
                    b[0] = -1;
                    b[1] = 0;
                    a[2] = i32::MAX;
                    b[2] = 2;
                }
                let (ab, bb) = (Buffer::from(a.clone()), Buffer::from(b.clone()));
                let ua: Vec<u32> = a.iter().map(|&v| v as u32).collect();
                let ub: Vec<u32> = b.iter().map(|&v| v as u32).collect();
                let (uab, ubb) = (Buffer::from(ua.clone()), Buffer::from(ub.clone()));
                for op in Binary::ALL {
                    let got = get(&e.run(&op, (&ab, &bb)).unwrap());
                    let want: Vec<i32> = a
                        .iter()
                        .zip(&b)
                        .map(|(&x, &y)| oracle_binary_int(op, x, y))
                        .collect();
                    assert_eq!(got, want, "{op:?} i32 n={n}");
                    let got = get(&e.run(&op, (&uab, &ubb)).unwrap());
                    let want: Vec<u32> = ua
                        .iter()
                        .zip(&ub)
                        .map(|(&x, &y)| oracle_binary_int(op, x, y))
                        .collect();
                    assert_eq!(got, want, "{op:?} u32 n={n}");
                }
            }
        }

        #[test]
        fn axpy() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 5);
                let (x, y) = (rng.f32s(n, -10.0, 10.0), rng.f32s(n, -10.0, 10.0));
                let a = 1.75f32;
                let got = get(&e
                    .run(
                        &Axpy { a },
                        (&Buffer::from(x.clone()), &Buffer::from(y.clone())),
                    )
                    .unwrap());
                assert_eq!(got.len(), n);
                for i in 0..n {
                    let exact = a as f64 * x[i] as f64 + y[i] as f64;
                    let bound =
                        2.0 * f32::EPSILON as f64 * ((a * x[i]).abs() as f64 + y[i].abs() as f64);
                    assert!(
                        (got[i] as f64 - exact).abs() <= bound,
                        "axpy n={n} i={i}: {} vs {exact}",
                        got[i]
                    );
                }
            }
        }

        #[test]
        fn sum_and_dot_f32_error_grows_like_log_n() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 6);
                let (x, y) = (rng.f32s(n, -1.0, 1.0), rng.f32s(n, -1.0, 1.0));
                let (xb, yb) = (Buffer::from(x.clone()), Buffer::from(y.clone()));
                let s: f32 = e.run(&Sum, &xb).unwrap();
                check_sum_bound("sum", s, x.iter().map(|&v| v as f64), n);
                let d: f32 = e.run(&Dot, (&xb, &yb)).unwrap();
                check_sum_bound(
                    "dot",
                    d,
                    x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64),
                    n,
                );
                // Same-sign data: the bound is tight against naive summation's n·ε.
                let ones = vec![1.0f32 + f32::EPSILON; n];
                let s: f32 = e.run(&Sum, &Buffer::from(ones.clone())).unwrap();
                check_sum_bound("sum of ones", s, ones.iter().map(|&v| v as f64), n);
            }
        }

        #[test]
        fn sum_and_dot_int_wrap_exactly() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 7);
                let (a, b) = (rng.i32s(n), rng.i32s(n));
                let (ab, bb) = (Buffer::from(a.clone()), Buffer::from(b.clone()));
                let want = a.iter().fold(0i32, |s, &v| s.wrapping_add(v));
                assert_eq!(e.run(&Sum, &ab).unwrap(), want, "sum i32 n={n}");
                let want = a
                    .iter()
                    .zip(&b)
                    .fold(0i32, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y)));
                assert_eq!(e.run(&Dot, (&ab, &bb)).unwrap(), want, "dot i32 n={n}");
                let ua: Vec<u32> = a.iter().map(|&v| v as u32).collect();
                let ub: Vec<u32> = b.iter().map(|&v| v as u32).collect();
                let (uab, ubb) = (Buffer::from(ua.clone()), Buffer::from(ub.clone()));
                let want = ua.iter().fold(0u32, |s, &v| s.wrapping_add(v));
                assert_eq!(e.run(&Sum, &uab).unwrap(), want, "sum u32 n={n}");
                let want = ua
                    .iter()
                    .zip(&ub)
                    .fold(0u32, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y)));
                assert_eq!(e.run(&Dot, (&uab, &ubb)).unwrap(), want, "dot u32 n={n}");
            }
        }

        #[test]
        fn min_max_arg_f32() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 8);
                // Values on a coarse grid so ties are common, with ±0, NaN, ±inf.
                let x: Vec<f32> = floats_with_specials(&mut rng, n, -50.0, 50.0)
                    .into_iter()
                    .map(|v| {
                        if v.is_finite() && v != 0.0 {
                            (v * 2.0).round() / 2.0
                        } else {
                            v
                        }
                    })
                    .collect();
                let xb = Buffer::from(x.clone());
                let min = oracle_arg_f32(&x, false);
                let max = oracle_arg_f32(&x, true);
                let got_min: Option<f32> = e.run(&Min, &xb).unwrap();
                let got_max: Option<f32> = e.run(&Max, &xb).unwrap();
                assert_eq!(
                    got_min.map(f32::to_bits),
                    min.map(|m| m.1.to_bits()),
                    "min n={n}"
                );
                assert_eq!(
                    got_max.map(f32::to_bits),
                    max.map(|m| m.1.to_bits()),
                    "max n={n}"
                );
                let am = e.run(&ArgMin, &xb).unwrap();
                let ax = e.run(&ArgMax, &xb).unwrap();
                assert_eq!(
                    am.map(|(i, v)| (i, v.to_bits())),
                    min.map(|(i, v)| (i, v.to_bits())),
                    "argmin n={n}"
                );
                assert_eq!(
                    ax.map(|(i, v)| (i, v.to_bits())),
                    max.map(|(i, v)| (i, v.to_bits())),
                    "argmax n={n}"
                );
            }
        }

        #[test]
        fn min_max_arg_int() {
            let Some(e) = engine() else { return };
            for &n in SIZES {
                let mut rng = Rng::new(n as u64 + 9);
                let x = rng.small_i32s(n, 1000);
                check_int_extremes(&e, &x, n);
                let u: Vec<u32> = rng.u32s(n).into_iter().map(|v| v % 5000).collect();
                check_int_extremes(&e, &u, n);
            }
        }

        #[test]
        fn extremes_at_the_ends_and_all_nan() {
            let Some(e) = engine() else { return };
            for n in [2usize, 9, 2049, 70_000] {
                let mut x = vec![1.0f32; n];
                x[n - 1] = -3.0;
                x[0] = 7.0;
                let xb = Buffer::from(x);
                assert_eq!(e.run(&ArgMin, &xb).unwrap(), Some((n - 1, -3.0)), "n={n}");
                assert_eq!(e.run(&ArgMax, &xb).unwrap(), Some((0, 7.0)), "n={n}");
                let nan = Buffer::from(vec![f32::NAN; n]);
                assert!(e.run(&Min, &nan).unwrap().is_some_and(f32::is_nan));
                let (i, v) = e.run(&ArgMax, &nan).unwrap().unwrap();
                assert!(i == 0 && v.is_nan());
                let ints = Buffer::from(vec![i32::MAX; n]);
                assert_eq!(e.run(&ArgMin, &ints).unwrap(), Some((0, i32::MAX)));
                let zeros = Buffer::from(vec![0u32; n]);
                assert_eq!(e.run(&ArgMax, &zeros).unwrap(), Some((0, 0)));
            }
        }
    };
}

mod cpu {
    conformance_suite!(tandem::Backend::Cpu);
}

mod gpu {
    conformance_suite!(tandem::Backend::Gpu);
}

/// Inputs larger than one storage binding are split into chunks. An engine
/// whose chunk limit is lowered to 64 KiB (16,384 f32) checks every kernel
/// family on a ~7-chunk input cheaply, against the CPU.
#[test]
fn gpu_inputs_larger_than_one_binding_are_chunked() {
    let Some(small) = common::small_binding_engine() else {
        return;
    };
    let gpu = small.on(Backend::Gpu);
    let cpu = small.on(Backend::Cpu);
    assert_eq!(small.gpu().unwrap().info().chunk_bytes, 64 * 1024);
    let n = 100_003;
    let mut rng = Rng::new(42);
    let (x, y) = (rng.f32s(n, -4.0, 4.0), rng.f32s(n, 0.5, 4.0));
    let (xb, yb) = (Buffer::from(x.clone()), Buffer::from(y.clone()));
    let ints = Buffer::from(rng.small_i32s(n, 100_000));
    assert_bits(
        "neg chunked",
        &get(&gpu.run(&Unary::Neg, &xb).unwrap()),
        &get(&cpu.run(&Unary::Neg, &xb).unwrap()),
    );
    assert_bits(
        "add chunked",
        &get(&gpu.run(&Binary::Add, (&xb, &yb)).unwrap()),
        &get(&cpu.run(&Binary::Add, (&xb, &yb)).unwrap()),
    );
    let g = get(&gpu.run(&Axpy { a: 0.5 }, (&xb, &yb)).unwrap());
    let c = get(&cpu.run(&Axpy { a: 0.5 }, (&xb, &yb)).unwrap());
    assert_ulps("axpy chunked", &g, &c, |_| 1);
    check_sum_bound(
        "sum chunked",
        gpu.run(&Sum, &xb).unwrap(),
        x.iter().map(|&v| v as f64),
        n,
    );
    check_sum_bound(
        "dot chunked",
        gpu.run(&Dot, (&xb, &yb)).unwrap(),
        x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64),
        n,
    );
    assert_eq!(gpu.run(&Sum, &ints).unwrap(), cpu.run(&Sum, &ints).unwrap());
    assert_eq!(gpu.run(&Min, &xb).unwrap(), cpu.run(&Min, &xb).unwrap());
    assert_eq!(
        gpu.run(&ArgMax, &ints).unwrap(),
        cpu.run(&ArgMax, &ints).unwrap()
    );
    assert_eq!(
        gpu.run(&ArgMin, &xb).unwrap(),
        cpu.run(&ArgMin, &xb).unwrap()
    );
}
