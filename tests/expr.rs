//! Expression kernels (`tandem::expr`, `Map`, `MapReduce`): every operation
//! on every backend against a plain scalar oracle at the edge sizes and past
//! one binding; fused reductions; the GPU's one-dispatch, one-upload,
//! no-recompile promises; clear errors for bad text, types and arguments;
//! and random expression trees checked against a tree-walking oracle.

mod common;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tandem::expr::{Expr, Vars};
use tandem::kernels::{Args, Map, MapReduce, Outputs, Scalar};
use tandem::{Backend, Buffer, Element, Engine, Error};

/// Empty, one, odd, workgroup ± 1, and past the small engine's binding.
const SIZES: [usize; 7] = [0, 1, 7, 255, 256, 257, 20_011];

/// CPU, GPU, and a GPU engine with 64 KiB bindings.
fn engines() -> &'static [(&'static str, Engine)] {
    common::named_engines()
}

/// `map` of `args` on `engine`, its one output read back through `into`
/// (`Outputs::into_f32`, ...); `what` names the case in a failure.
fn eval<T: Element>(
    engine: &Engine,
    map: &Map,
    args: &Args,
    into: fn(Outputs) -> tandem::Result<Buffer<T>>,
    what: &str,
) -> Vec<T> {
    let out = engine
        .run(map, args)
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    into(out).unwrap().to_vec().unwrap()
}

/// f32 inputs: special values, then a spread of ordinary ones in [-4, 4].
fn floats(n: usize, seed: u64) -> Vec<f32> {
    const SPECIAL: [f32; 12] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e-40,
        -2.5,
        0.5,
        3.0,
        f32::MAX,
    ];
    let mut r = common::Rng::new(seed);
    (0..n)
        .map(|i| {
            if i % 5 == 0 {
                SPECIAL[(i / 5) % SPECIAL.len()]
            } else {
                r.f32(-4.0, 4.0)
            }
        })
        .collect()
}

/// i32 inputs with the edges (MIN, MAX, 0, -1) among small and large values.
fn ints(n: usize, seed: u64) -> Vec<i32> {
    const SPECIAL: [i32; 6] = [0, -1, 1, i32::MIN, i32::MAX, 7];
    let mut r = common::Rng::new(seed);
    (0..n)
        .map(|i| {
            if i % 4 == 0 {
                SPECIAL[(i / 4) % SPECIAL.len()]
            } else if i % 4 == 1 {
                (r.next_u32() % 41) as i32 - 20
            } else {
                r.next_u32() as i32
            }
        })
        .collect()
}

/// How close a float result must be to the oracle's.
#[derive(Clone, Copy, Debug)]
struct Tol {
    rel: f32,
    abs: f32,
}

const EXACT: Tol = tol(0.0, 0.0);

const fn tol(rel: f32, abs: f32) -> Tol {
    Tol { rel, abs }
}

fn close(got: f32, want: f32, tol: Tol, gpu: bool) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got.to_bits() == want.to_bits() || (tol.rel > 0.0 && got == want) {
        return true;
    }
    // A GPU may flush results below MIN_POSITIVE to zero (and read
    // subnormal inputs as zero).
    if gpu
        && (want.abs() < f32::MIN_POSITIVE || got.abs() < f32::MIN_POSITIVE)
        && (got - want).abs() < 1e-30
    {
        return true;
    }
    if want.is_infinite() || got.is_infinite() {
        return false;
    }
    (got - want).abs() <= tol.rel * want.abs() + tol.abs
}

/// One f32 operation over arrays `x`, `y`, `z` (and scalar `s = 0.75`),
/// every backend and size, against `oracle` within `tol`.
fn check_f32(name: &str, e: Expr, tol: Tol, oracle: impl Fn(f32, f32, f32) -> f32) {
    let map = Map::new(e).unwrap_or_else(|err| panic!("{name}: {err}"));
    for (engine_name, engine) in engines() {
        let gpu = engine_name.starts_with("gpu");
        for n in SIZES {
            let (x, y, z) = (floats(n, 1), floats(n, 2), floats(n, 3));
            let (bx, by, bz) = (
                Buffer::from(x.clone()),
                Buffer::from(y.clone()),
                Buffer::from(z.clone()),
            );
            let mut args = Args::new();
            if map.scalars().contains(&"s") {
                args = args.scalar("s", 0.75f32);
            }
            for (nm, b) in [("x", &bx), ("y", &by), ("z", &bz)] {
                if map.arrays().contains(&nm) {
                    args = args.array(nm, b);
                }
            }
            let what = format!("{name} n={n} on {engine_name}");
            let got = eval(engine, &map, &args, Outputs::into_f32, &what);
            assert_eq!(got.len(), n, "{name} n={n}");
            for i in 0..n {
                let want = oracle(x[i], y[i], z[i]);
                assert!(
                    close(got[i], want, tol, gpu),
                    "{name} on {engine_name}, n={n}, i={i}: f({}, {}, {}) = {} ({:#x}), want {} ({:#x})",
                    x[i],
                    y[i],
                    z[i],
                    got[i],
                    got[i].to_bits(),
                    want,
                    want.to_bits()
                );
            }
        }
    }
}

fn x() -> Expr {
    Expr::input::<f32>("x")
}
fn y() -> Expr {
    Expr::input::<f32>("y")
}
fn z() -> Expr {
    Expr::input::<f32>("z")
}

fn ref_pow(x: f32, y: f32) -> f32 {
    if y.is_nan() {
        return y;
    }
    if y == 0.0 {
        return 1.0;
    }
    if x == 0.0 {
        return if y > 0.0 { 0.0 } else { f32::INFINITY };
    }
    if x < 0.0 || x.is_nan() {
        return f32::NAN;
    }
    (f64::from(y) * f64::from(x).ln()).exp() as f32
}

fn ref_tanh(x: f32) -> f32 {
    if x.abs() > 9.0 {
        1f32.copysign(x)
    } else {
        x.tanh()
    }
}

#[test]
fn f32_arithmetic_matches_the_oracle() {
    check_f32("add", x() + y(), EXACT, |a, b, _| a + b);
    check_f32("sub", x() - y(), EXACT, |a, b, _| a - b);
    check_f32("mul", x() * y(), EXACT, |a, b, _| a * b);
    check_f32("div", x() / y(), tol(3e-7, 0.0), |a, b, _| a / b);
    check_f32("neg", -x(), EXACT, |a, _, _| -a);
    check_f32("abs", x().abs(), EXACT, |a, _, _| a.abs());
    check_f32("min", x().min(y()), EXACT, |a, b, _| {
        common::oracle::oracle_pick_f32(a, b, false)
    });
    check_f32("max", x().max(y()), EXACT, |a, b, _| {
        common::oracle::oracle_pick_f32(a, b, true)
    });
    check_f32("floor", x().floor(), EXACT, |a, _, _| a.floor());
    check_f32("ceil", x().ceil(), EXACT, |a, _, _| a.ceil());
    check_f32("round", x().round(), EXACT, |a, _, _| a.round_ties_even());
    // A device may or may not fuse: within a rounding of |a·b| + |c|.
    let fma = |a: f32, b: f32, c: f32| a.mul_add(b, c);
    for (name, e) in [("fma", x().fma(y(), z())), ("a*b+c", x() * y() + z())] {
        let map = Map::new(e).unwrap();
        for (engine_name, engine) in engines() {
            let (a, b, c) = (floats(999, 4), floats(999, 5), floats(999, 6));
            let (ba, bb, bc) = (
                Buffer::from(a.clone()),
                Buffer::from(b.clone()),
                Buffer::from(c.clone()),
            );
            let args = Args::new().array("x", &ba).array("y", &bb).array("z", &bc);
            let got = eval(engine, &map, &args, Outputs::into_f32, name);
            for i in 0..a.len() {
                let want = if name == "fma" {
                    fma(a[i], b[i], c[i])
                } else {
                    a[i] * b[i] + c[i]
                };
                let scale = (a[i] * b[i]).abs() + c[i].abs();
                let tol = tol(0.0, 2.4e-7 * scale);
                assert!(
                    close(got[i], want, tol, engine_name.starts_with("gpu")),
                    "{name} on {engine_name}: {} {} {} -> {} want {want}",
                    a[i],
                    b[i],
                    c[i],
                    got[i]
                );
            }
        }
    }
}

#[test]
fn f32_transcendentals_match_the_oracle_within_stated_bounds() {
    check_f32("sqrt", x().sqrt(), tol(3e-7, 0.0), |a, _, _| a.sqrt());
    check_f32("exp", x().exp(), tol(4e-6, 0.0), |a, _, _| {
        if a > 88.72283 {
            f32::INFINITY
        } else {
            f64::from(a).exp() as f32
        }
    });
    // WGSL bounds `log` by an absolute 2^-21 on [0.5, 2].
    check_f32("ln", x().ln(), tol(2e-6, 5e-7), |a, _, _| {
        f64::from(a).ln() as f32
    });
    check_f32("pow", x().abs().pow(y()), tol(2e-5, 0.0), |a, b, _| {
        ref_pow(a.abs(), b)
    });
    check_f32(
        "pow of a negative",
        x().pow(2.0f32),
        tol(2e-5, 0.0),
        |a, _, _| ref_pow(a, 2.0),
    );
    // GPUs bound sin/cos by an absolute 2^-11 on [-π, π]; inputs reach ±4.
    // Beyond a few periods, argument reduction is the backend's: clamp.
    let clamp = || x().min(4.0f32).max(-4.0f32);
    let clamped = |a: f32| {
        common::oracle::oracle_pick_f32(common::oracle::oracle_pick_f32(a, 4.0, false), -4.0, true)
    };
    check_f32("sin", clamp().sin(), tol(0.0, 1e-3), |a, _, _| {
        clamped(a).sin()
    });
    check_f32("cos", clamp().cos(), tol(0.0, 1e-3), |a, _, _| {
        clamped(a).cos()
    });
    check_f32("tanh", x().tanh(), tol(1e-5, 1e-6), |a, _, _| ref_tanh(a));
    // x - y·trunc(x / y), with the oracle's division exact: a device's
    // division may land trunc one step over, so the tolerance is loose
    // where x / y is within a few ULP of an integer (none in this data).
    check_f32("rem", x() % y(), tol(1e-5, 1e-5), |a, b, _| {
        let q = (f64::from(a) / f64::from(b)) as f32;
        a - b * q.trunc()
    });
}

#[test]
fn comparisons_selects_scalars_and_casts_match_the_oracle() {
    let sel = |c: Expr| c.select(x(), y());
    check_f32("select <", sel(x().lt(y())), EXACT, |a, b, _| {
        if a < b { a } else { b }
    });
    check_f32("select <=", sel(x().le(y())), EXACT, |a, b, _| {
        if a <= b { a } else { b }
    });
    check_f32("select >", sel(x().gt(y())), EXACT, |a, b, _| {
        if a > b { a } else { b }
    });
    check_f32("select >=", sel(x().ge(y())), EXACT, |a, b, _| {
        if a >= b { a } else { b }
    });
    check_f32("select ==", sel(x().equal(y())), EXACT, |a, b, _| {
        if a == b { a } else { b }
    });
    check_f32("select !=", sel(x().not_equal(x())), EXACT, |a, b, _| {
        if a != a { a } else { b }
    });
    check_f32(
        "&& ||",
        (x().lt(0.0f32).and(y().gt(0.0f32)))
            .or(!z().ge(1.0f32))
            .select(1.0f32, 0.0f32),
        EXACT,
        |a, b, c| {
            if (a < 0.0 && b > 0.0)
                || !matches!(
                    c.partial_cmp(&1.0),
                    Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                )
            {
                1.0
            } else {
                0.0
            }
        },
    );
    let s = Expr::scalar::<f32>("s");
    check_f32("scalar", &s * x() + 2, EXACT, |a, _, _| 0.75 * a + 2.0);
    check_f32(
        "bool to f32",
        x().lt(y()).cast::<f32>(),
        EXACT,
        |a, b, _| if a < b { 1.0 } else { 0.0 },
    );
    check_f32(
        "f32 to i32 to f32",
        x().cast::<i32>().cast::<f32>(),
        EXACT,
        |a, _, _| (a as i32) as f32,
    );
    check_f32(
        "f32 to u32 to f32",
        x().cast::<u32>().cast::<f32>(),
        EXACT,
        |a, _, _| (a as u32) as f32,
    );
}

/// One i32 operation over arrays `p`, `q` on every backend, exactly.
fn check_i32(name: &str, e: Expr, oracle: impl Fn(i32, i32) -> i32) {
    let map = Map::new(e).unwrap_or_else(|err| panic!("{name}: {err}"));
    for (engine_name, engine) in engines() {
        for n in SIZES {
            let (p, q) = (ints(n, 7), ints(n, 8));
            let (bp, bq) = (Buffer::from(p.clone()), Buffer::from(q.clone()));
            let mut args = Args::new().array("p", &bp);
            if map.arrays().contains(&"q") {
                args = args.array("q", &bq);
            }
            let what = format!("{name} n={n} on {engine_name}");
            let got = eval(engine, &map, &args, Outputs::into_i32, &what);
            for i in 0..n {
                assert_eq!(
                    got[i],
                    oracle(p[i], q[i]),
                    "{name} on {engine_name}: ({}, {})",
                    p[i],
                    q[i]
                );
            }
        }
    }
}

#[test]
fn integer_operations_wrap_and_follow_the_division_rules_exactly() {
    let (p, q) = (Expr::input::<i32>("p"), Expr::input::<i32>("q"));
    check_i32("add", &p + &q, i32::wrapping_add);
    check_i32("sub", &p - &q, i32::wrapping_sub);
    check_i32("mul", &p * &q, i32::wrapping_mul);
    check_i32(
        "div",
        &p / &q,
        |a, b| if b == 0 { a } else { a.wrapping_div(b) },
    );
    check_i32(
        "rem",
        &p % &q,
        |a, b| if b == 0 { a } else { a.wrapping_rem(b) },
    );
    check_i32("min", p.min(&q), i32::min);
    check_i32("max", p.max(&q), i32::max);
    check_i32("neg", -&p, |a, _| a.wrapping_neg());
    check_i32("abs", p.abs(), |a, _| a.wrapping_abs());
    check_i32("fma", p.fma(&q, 3), |a, b| {
        a.wrapping_mul(b).wrapping_add(3)
    });
    check_i32(
        "select",
        p.lt(&q).select(&p, &q),
        |a, b| if a < b { a } else { b },
    );
    check_i32(
        "u32 round trip",
        (p.cast::<u32>() / q.cast::<u32>()).cast::<i32>(),
        |a, b| {
            let (a, b) = (a as u32, b as u32);
            a.checked_div(b).unwrap_or(a) as i32
        },
    );
    check_i32("to f32 and back", p.cast::<f32>().cast::<i32>(), |a, _| {
        a as f32 as i32
    });
}

#[test]
fn fused_reductions_match_the_oracle_on_every_backend() {
    let e = 3.0f32 * x() + y();
    let sum = MapReduce::sum(e.clone()).unwrap();
    let (min, max) = (
        MapReduce::min(e.clone()).unwrap(),
        MapReduce::max(e.clone()).unwrap(),
    );
    let (argmin, argmax) = (
        MapReduce::argmin(e.clone()).unwrap(),
        MapReduce::argmax(e).unwrap(),
    );
    for (engine_name, engine) in engines() {
        for n in SIZES {
            let mut r = common::Rng::new(n as u64);
            let (xs, ys) = (r.f32s(n, -1.0, 1.0), r.f32s(n, -1.0, 1.0));
            let (bx, by) = (Buffer::from(xs.clone()), Buffer::from(ys.clone()));
            let args = Args::new().array("x", &bx).array("y", &by);
            let v: Vec<f32> = xs.iter().zip(&ys).map(|(a, b)| 3.0 * a + b).collect();
            let at = format!("n={n} on {engine_name}");
            let got = engine.run(&sum, &args).unwrap().unwrap();
            let want: f64 = v.iter().map(|&a| f64::from(a)).sum();
            let mag: f64 = v.iter().map(|&a| f64::from(a).abs()).sum();
            assert!(
                (got.value.as_f64() - want).abs() <= 1e-5 * mag + 1e-6,
                "sum {at}: {got:?} vs {want}"
            );
            let first = |better: fn(f32, f32) -> bool| {
                let mut best: Option<(usize, f32)> = None;
                for (i, &a) in v.iter().enumerate() {
                    if best.is_none_or(|(_, b)| better(a, b)) {
                        best = Some((i, a));
                    }
                }
                best
            };
            for (k, name, better) in [
                (&min, "min", (|a, b| a < b) as fn(f32, f32) -> bool),
                (&max, "max", |a, b| a > b),
            ] {
                let got = engine.run(k, &args).unwrap();
                assert_eq!(
                    got.map(|r| r.value),
                    first(better).map(|b| Scalar::F32(b.1)),
                    "{name} {at}"
                );
            }
            for (k, name, better) in [
                (&argmin, "argmin", (|a, b| a < b) as fn(f32, f32) -> bool),
                (&argmax, "argmax", |a, b| a > b),
            ] {
                let got = engine.run(k, &args).unwrap();
                let want = first(better);
                assert_eq!(got.and_then(|r| r.index), want.map(|b| b.0), "{name} {at}");
            }
        }
    }
}

#[test]
fn integer_sums_wrap_and_extremes_of_nan_only_data_are_none() {
    let p = Expr::input::<i32>("p");
    let sum = MapReduce::sum(&p * 2).unwrap();
    let data = vec![i32::MAX, i32::MAX, 5, i32::MIN];
    let want = data
        .iter()
        .fold(0i32, |a, &b| a.wrapping_add(b.wrapping_mul(2)));
    let nan = MapReduce::min(x()).unwrap();
    let nans = Buffer::from(vec![f32::NAN; 3000]);
    for (name, engine) in engines() {
        let b = Buffer::from(data.clone());
        let got = engine
            .run(&sum, &Args::new().array("p", &b))
            .unwrap()
            .unwrap();
        assert_eq!(got.value, Scalar::I32(want), "{name}");
        assert_eq!(
            engine.run(&nan, &Args::new().array("x", &nans)).unwrap(),
            None,
            "{name}"
        );
        let empty = Buffer::from(Vec::<f32>::new());
        assert_eq!(
            engine.run(&nan, &Args::new().array("x", &empty)).unwrap(),
            None,
            "{name}"
        );
        let all_max = MapReduce::argmax(p.clone()).unwrap();
        let maxes = Buffer::from(vec![i32::MAX; 5]);
        let r = engine
            .run(&all_max, &Args::new().array("p", &maxes))
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.value, r.index),
            (Scalar::I32(i32::MAX), Some(0)),
            "{name}: i32::MAX's key is the min identity"
        );
    }
}

#[test]
fn a_five_op_expression_of_three_inputs_is_one_dispatch_one_upload_each_and_one_readback() {
    let Some(engine) = common::own_gpu_engine() else {
        return;
    };
    let a = Expr::scalar::<f32>("a");
    let e = &a * x() + y() * z() - x().sqrt();
    let map = Map::new(e).unwrap();
    assert_eq!(map.operations(), 9, "3 loads, 1 scalar, 5 operations");
    let n = 100_000;
    let (bx, by, bz) = (
        Buffer::from(floats(n, 1)),
        Buffer::from(floats(n, 2)),
        Buffer::from(floats(n, 3)),
    );
    // x, y, z bound to `b` in order, and the scalar a = `s`.
    fn args<'a>(b: [&'a Buffer<f32>; 3], s: f32) -> Args<'a> {
        let args = Args::new().array("x", b[0]).array("y", b[1]);
        args.array("z", b[2]).scalar("a", s)
    }
    let before = engine.stats();
    let out = engine.run(&map, &args([&bx, &by, &bz], 2.0)).unwrap();
    out.into_f32().unwrap().to_vec().unwrap();
    let after = engine.stats();
    assert_eq!(
        after.gpu_dispatches - before.gpu_dispatches,
        1,
        "one dispatch"
    );
    assert_eq!(after.uploads - before.uploads, 3, "each input up once");
    assert_eq!(after.downloads - before.downloads, 1, "one output back");
    let compiled = after.pipelines_compiled;
    // New scalar values and new data: nothing compiles.
    for s in [3.0f32, -1.0, 0.5] {
        engine.run(&map, &args([&by, &bz, &bx], s)).unwrap();
    }
    // The same structure built again is the same pipeline.
    let again = Map::new(&a * x() + y() * z() - x().sqrt()).unwrap();
    engine.run(&again, &args([&bx, &by, &bz], 9.0)).unwrap();
    assert_eq!(
        engine.stats().pipelines_compiled,
        compiled,
        "no pipeline compiled for new scalars"
    );
}

#[test]
fn text_parses_to_the_same_kernel_as_the_builder() {
    let vars = Vars::new()
        .array::<f32>("x")
        .array::<f32>("y")
        .scalar::<f32>("a");
    let parsed = Expr::parse("a * x + sqrt(y) - -2 * min(x, 1.5) % 3", &vars).unwrap();
    let a = Expr::scalar::<f32>("a");
    let built = &a * x() + y().sqrt() - (-2.0f32) * x().min(1.5f32) % 3.0f32;
    let (bx, by) = (Buffer::from(floats(777, 1)), Buffer::from(floats(777, 2)));
    let args = Args::new()
        .array("x", &bx)
        .array("y", &by)
        .scalar("a", 1.25f32);
    let cpu = common::engine().on(Backend::Cpu);
    let p = eval(
        &cpu,
        &Map::new(parsed.clone()).unwrap(),
        &args,
        Outputs::into_f32,
        "parsed",
    );
    let b = eval(
        &cpu,
        &Map::new(built).unwrap(),
        &args,
        Outputs::into_f32,
        "built",
    );
    assert_eq!(
        p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // Display gives text that parses back to the same structure.
    let round = Expr::parse(&parsed.to_string(), &vars).unwrap();
    assert_eq!(round.to_string(), parsed.to_string());
}

fn message(r: tandem::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::InvalidArgument { message, .. }) => message,
        Err(Error::LengthMismatch { left, right, .. }) => format!("lengths {left} vs {right}"),
        other => panic!("expected an argument error, got {other:?}"),
    }
}

#[test]
fn bad_text_types_and_arguments_are_clear_errors() {
    let vars = Vars::new()
        .array::<f32>("x")
        .array::<i32>("n")
        .scalar::<f32>("a");
    let parse = |t: &str| message(Expr::parse(t, &vars));
    assert!(parse("x + ").contains("column 5"), "{}", parse("x + "));
    assert!(parse("x + * 2").contains("syntax error at column 5"));
    assert!(parse("x $ 2").contains("column 3"));
    assert!(parse("(x + 2").contains("expected `)`"));
    assert!(parse("x + zz").contains("unknown name `zz`"));
    assert!(parse("foo(x)").contains("unknown function `foo`"));
    assert!(parse("sqrt(x, x)").contains("takes 1 argument(s), got 2"));
    assert!(parse("99999999999999999999").contains("too large"));
    let deep = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&deep).contains("deeper than"));
    assert!(parse(&"-".repeat(100_000)).contains("deeper than"));
    let long_chain = vec!["x"; 5000].join(" + ");
    assert!(parse(&long_chain).contains("deeper than"));

    let map = |t: &str| message(Map::new(Expr::parse(t, &vars).unwrap()));
    assert!(
        map("x + n").contains("type mismatch: `+` of f32 and i32"),
        "{}",
        map("x + n")
    );
    assert!(map("x + n").contains("column 3"));
    assert!(map("n + 2.5").contains("float literal"));
    assert!(map("sqrt(n)").contains("type mismatch"));
    assert!(map("select(x, x, x)").contains("bool condition"));
    assert!(map("-u32(n)").contains("not defined on u32"));
    assert!(map("(x < a) < (x > a)").contains("does not order bools"));

    let k = Map::new(Expr::parse("a * x", &vars).unwrap()).unwrap();
    let cpu = common::engine().on(Backend::Cpu);
    let (x3, x4) = (Buffer::from(vec![1.0f32; 3]), Buffer::from(vec![1.0f32; 4]));
    let (n3, u3) = (Buffer::from(vec![1i32; 3]), Buffer::from(vec![1u32; 3]));
    assert!(
        message(cpu.run(&k, &Args::new().array("x", &x3)))
            .contains("scalar `a`, which was not given")
    );
    assert!(
        message(cpu.run(&k, &Args::new().scalar("a", 1.0f32)))
            .contains("array `x`, which was not given")
    );
    assert!(
        message(cpu.run(&k, &Args::new().array("x", &x3).scalar("a", 1i32)))
            .contains("scalar `a` is i32")
    );
    assert!(
        message(cpu.run(&k, &Args::new().array("x", &u3).scalar("a", 1.0f32)))
            .contains("array `x` is u32")
    );
    assert!(
        message(
            cpu.run(
                &k,
                &Args::new()
                    .array("x", &x3)
                    .array("n", &n3)
                    .scalar("a", 1.0f32)
            )
        )
        .contains("`n` is not read")
    );
    let two = Map::new(Expr::parse("x + f32(n)", &vars).unwrap()).unwrap();
    let n4 = Buffer::from(vec![1i32; 4]);
    assert!(
        message(cpu.run(&two, &Args::new().array("x", &x3).array("n", &n4))).starts_with("lengths")
    );
    let _ = x4;
}

// ---------- random trees against a tree-walking oracle ----------

/// One step of a random integer chain: (accumulator, q) -> accumulator.
type Step = Box<dyn Fn(i32, i32, i32) -> i32>;

/// A random f32 expression over x, y, z: continuous operations (so a
/// device's last-bit differences cannot flip a branch), with discontinuous
/// ones (floor, selects) only over the inputs themselves.
#[derive(Clone, Debug)]
enum T {
    In(usize),
    Lit(f32),
    Floor(usize),
    Sel(usize, usize),
    Un(u8, Box<T>),
    Bin(u8, Box<T>, Box<T>),
    Fma(Box<T>, Box<T>, Box<T>),
}

fn tree() -> impl Strategy<Value = T> {
    let leaf = prop_oneof![
        (0usize..3).prop_map(T::In),
        (-3.0f32..3.0).prop_map(T::Lit),
        (0usize..3).prop_map(T::Floor),
        (0usize..3, 0usize..3).prop_map(|(a, b)| T::Sel(a, b)),
    ];
    leaf.prop_recursive(6, 64, 3, |inner| {
        prop_oneof![
            (0u8..3, inner.clone()).prop_map(|(o, a)| T::Un(o, Box::new(a))),
            (0u8..5, inner.clone(), inner.clone()).prop_map(|(o, a, b)| T::Bin(
                o,
                Box::new(a),
                Box::new(b)
            )),
            (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| T::Fma(
                Box::new(a),
                Box::new(b),
                Box::new(c)
            )),
        ]
    })
}

fn input(k: usize) -> Expr {
    [x(), y(), z()][k].clone()
}

/// Input `k` as f64.
fn input64(k: usize) -> Expr {
    Expr::input::<f64>(["x", "y", "z"][k])
}

/// What a tree's oracle computes with: f32 or f64, as the kernel does.
trait Real: Copy + PartialOrd + std::fmt::Debug {
    fn lit(v: f32) -> Self;
    fn abs(self) -> Self;
    fn sqrt(self) -> Self;
    fn floor(self) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn neg(self) -> Self;
    fn fma(self, b: Self, c: Self) -> Self;
    fn pick(self, o: Self, max: bool) -> Self;
    fn bigger(self, o: Self) -> Self;
}

macro_rules! real {
    ($t:ty, $pick:expr, $lit:expr) => {
        impl Real for $t {
            fn lit(v: f32) -> Self {
                $lit(v)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn neg(self) -> Self {
                -self
            }
            fn fma(self, b: Self, c: Self) -> Self {
                self.mul_add(b, c)
            }
            fn pick(self, o: Self, max: bool) -> Self {
                $pick(self, o, max)
            }
            fn bigger(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
        }
    };
}
real!(f32, common::oracle::oracle_pick_f32, |v| v);
real!(f64, common::oracle::oracle_pick_f64, f64::from);

impl T {
    fn expr(&self) -> Expr {
        self.expr_as(false)
    }

    /// The tree as an expression over f32 inputs (or, with `wide`, f64
    /// inputs and constants).
    fn expr_as(&self, wide: bool) -> Expr {
        let input = |k: usize| if wide { input64(k) } else { input(k) };
        match self {
            T::In(k) => input(*k),
            T::Lit(v) if wide => Expr::constant(f64::from(*v)),
            T::Lit(v) => Expr::constant(*v),
            T::Floor(k) => input(*k).floor(),
            T::Sel(a, b) => input(*a).lt(input(*b)).select(input(*a), input(*b)),
            T::Un(o, a) => {
                let a = a.expr_as(wide);
                match o {
                    0 => -a,
                    1 => a.abs(),
                    _ => a.abs().sqrt(),
                }
            }
            T::Bin(o, a, b) => {
                let (a, b) = (a.expr_as(wide), b.expr_as(wide));
                match o {
                    0 => a + b,
                    1 => a - b,
                    2 => a * b,
                    3 => a.min(b),
                    _ => a.max(b),
                }
            }
            T::Fma(a, b, c) => a.expr_as(wide).fma(b.expr_as(wide), c.expr_as(wide)),
        }
    }

    /// The value (of the kernel's type) and a bound on the magnitudes it
    /// was computed from (for the tolerance).
    fn eval<R: Real>(&self, v: [R; 3]) -> (R, R) {
        match self {
            T::In(k) => (v[*k], v[*k].abs()),
            T::Lit(c) => (R::lit(*c), R::lit(*c).abs()),
            T::Floor(k) => (v[*k].floor(), v[*k].floor().abs()),
            T::Sel(a, b) => {
                let r = if v[*a] < v[*b] { v[*a] } else { v[*b] };
                (r, r.abs())
            }
            T::Un(o, a) => {
                let (x, m) = a.eval(v);
                match o {
                    0 => (x.neg(), m),
                    1 => (x.abs(), m),
                    _ => (x.abs().sqrt(), m.sqrt()),
                }
            }
            T::Bin(o, a, b) => {
                let ((x, mx), (y, my)) = (a.eval(v), b.eval(v));
                match o {
                    0 => (x.add(y), mx.add(my)),
                    1 => (x.sub(y), mx.add(my)),
                    2 => (x.mul(y), mx.mul(my)),
                    3 => (x.pick(y, false), mx.bigger(my)),
                    _ => (x.pick(y, true), mx.bigger(my)),
                }
            }
            T::Fma(a, b, c) => {
                let ((x, mx), (y, my), (z, mz)) = (a.eval(v), b.eval(v), c.eval(v));
                (x.fma(y, z), mx.mul(my).add(mz))
            }
        }
    }
}

/// The arrays `x`, `y`, `z` a random tree's map reads, from `bufs`.
fn tree_args<'a, E: Element>(map: &Map, bufs: &'a [Buffer<E>]) -> Args<'a> {
    let mut args = Args::new();
    for (k, name) in ["x", "y", "z"].into_iter().enumerate() {
        if map.arrays().contains(&name) {
            args = args.array(name, &bufs[k]);
        }
    }
    args
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Any text: parsing never panics; what parses prints as text that
    /// parses back to the same text, and either makes a kernel or is an
    /// argument error.
    #[test]
    fn any_text_parses_or_is_an_argument_error(text in prop_oneof![
        any::<String>(),
        "[xyan0-9.+*/%()<>=!&|, -]{0,40}",
        "(sqrt|exp|ln|pow|min|max|fma|select|abs|f32|i32|u32|floor|x|y|a|n|[(),+*<-]){0,24}",
    ]) {
        let vars = Vars::new().array::<f32>("x").array::<f32>("y").array::<i32>("n").scalar::<f32>("a");
        match Expr::parse(&text, &vars) {
            Ok(e) => {
                let shown = e.to_string();
                let again = Expr::parse(&shown, &vars).map_err(|err| TestCaseError::fail(format!("{shown}: {err}")))?;
                prop_assert_eq!(again.to_string(), shown);
                match Map::new(e) {
                    Ok(_) | Err(Error::InvalidArgument { .. }) => {}
                    Err(other) => return Err(TestCaseError::fail(format!("{text:?}: {other:?}"))),
                }
            }
            Err(Error::InvalidArgument { .. }) => {}
            Err(other) => return Err(TestCaseError::fail(format!("{text:?}: {other:?}"))),
        }
    }

    /// CPU and GPU agree with the tree-walking oracle: within a few
    /// roundings of the magnitudes each result was computed from (a device
    /// may fuse `a·b + c`, and `sqrt` is not correctly rounded on GPUs).
    #[test]
    fn random_trees_agree_with_the_oracle_on_every_backend(t in tree(), n in 1usize..700, seed in any::<u64>()) {
        let map = Map::new(t.expr()).unwrap();
        let mut r = common::Rng::new(seed);
        let data: Vec<Vec<f32>> = (0..3).map(|_| r.f32s(n, -3.0, 3.0)).collect();
        let bufs: Vec<Buffer<f32>> = data.iter().map(|d| Buffer::from(d.clone())).collect();
        let args = tree_args(&map, &bufs);
        if args.is_empty() {
            // Constants only: no array to size the result.
            return Ok(());
        }
        for (engine_name, engine) in engines() {
            let got = engine.run(&map, &args).map_err(|e| TestCaseError::fail(format!("{engine_name}: {e}")))?;
            let got = got.into_f32().unwrap().to_vec().unwrap();
            for i in 0..n {
                let (want, mag) = t.eval([data[0][i], data[1][i], data[2][i]]);
                let tol = Tol { rel: 0.0, abs: 1e-5 * mag.max(1e-3) * 8.0 };
                prop_assert!(
                    close(got[i], want, tol, engine_name.starts_with("gpu")),
                    "{t:?} on {engine_name} at {i}: {} vs {want} (magnitude {mag})", got[i]
                );
            }
        }
    }

    /// The same trees over f64 inputs and constants: within a few
    /// roundings, in f64 ε, of the magnitudes each result was computed from.
    #[test]
    fn random_f64_trees_agree_with_the_oracle_on_every_backend(t in tree(), n in 1usize..700, seed in any::<u64>()) {
        let map = Map::new(t.expr_as(true)).unwrap();
        let mut r = common::Rng::new(seed);
        // Every significand bit drawn, in [-3, 3).
        let data: Vec<Vec<f64>> = (0..3)
            .map(|_| (0..n).map(|_| {
                let bits = u64::from(r.next_u32()) << 21 ^ u64::from(r.next_u32());
                -3.0 + 6.0 * ((bits & ((1 << 53) - 1)) as f64 / (1u64 << 53) as f64)
            }).collect())
            .collect();
        let bufs: Vec<Buffer<f64>> = data.iter().map(|d| Buffer::from(d.clone())).collect();
        let args = tree_args(&map, &bufs);
        if args.is_empty() {
            return Ok(());
        }
        for (engine_name, engine) in engines() {
            let got = engine.run(&map, &args).map_err(|e| TestCaseError::fail(format!("{engine_name}: {e}")))?;
            let got = got.into_f64().unwrap().to_vec().unwrap();
            for i in 0..n {
                let (want, mag) = t.eval([data[0][i], data[1][i], data[2][i]]);
                let bound = 64.0 * f64::EPSILON * mag.max(1e-3);
                prop_assert!(
                    got[i] == want || (got[i] - want).abs() <= bound || got[i].is_nan() && want.is_nan(),
                    "{t:?} on {engine_name} at {i}: {} vs {want} (magnitude {mag})", got[i]
                );
            }
        }
    }

    /// Integer trees are exact on every backend.
    #[test]
    fn random_integer_trees_are_exact_on_every_backend(ops in proptest::collection::vec((0u8..8, 0usize..2, -5i32..5), 1..12), n in 1usize..600, seed in any::<u64>()) {
        let (p, q) = (Expr::input::<i32>("p"), Expr::input::<i32>("q"));
        let mut e = p.clone();
        let mut f: Vec<Step> = Vec::new();
        for &(op, side, c) in &ops {
            let other = if side == 0 { q.clone() } else { Expr::constant(c) };
            e = match op {
                0 => e + other,
                1 => e - other,
                2 => e * other,
                3 => e / other,
                4 => e % other,
                5 => e.min(other),
                6 => e.max(other),
                _ => e.lt(other.clone()).select(-e.clone(), other),
            };
            f.push(Box::new(move |acc: i32, qv: i32, _| {
                let o = if side == 0 { qv } else { c };
                match op {
                    0 => acc.wrapping_add(o),
                    1 => acc.wrapping_sub(o),
                    2 => acc.wrapping_mul(o),
                    3 => if o == 0 { acc } else { acc.wrapping_div(o) },
                    4 => if o == 0 { acc } else { acc.wrapping_rem(o) },
                    5 => acc.min(o),
                    6 => acc.max(o),
                    _ => if acc < o { acc.wrapping_neg() } else { o },
                }
            }));
        }
        let map = Map::new(e).unwrap();
        let (pv, qv) = (ints(n, seed), ints(n, seed ^ 1));
        let (bp, bq) = (Buffer::from(pv.clone()), Buffer::from(qv.clone()));
        for (engine_name, engine) in engines() {
            let mut args = Args::new().array("p", &bp);
            if map.arrays().contains(&"q") {
                args = args.array("q", &bq);
            }
            let got = engine.run(&map, &args).unwrap().into_i32().unwrap().to_vec().unwrap();
            for i in 0..n {
                let want = f.iter().fold(pv[i], |acc, g| g(acc, qv[i], 0));
                prop_assert_eq!(got[i], want, "{} on {} at {}", ops.len(), engine_name, i);
            }
        }
    }
}

#[test]
fn auto_routes_expressions_and_explain_names_the_kernel_and_both_estimates() {
    let e = Expr::parse(
        "a * x + y",
        &Vars::new()
            .scalar::<f32>("a")
            .array::<f32>("x")
            .array::<f32>("y"),
    )
    .unwrap();
    let (map, sum) = (Map::new(e.clone()).unwrap(), MapReduce::sum(e).unwrap());
    let n = 100_000;
    let (bx, by) = (Buffer::from(floats(n, 1)), Buffer::from(floats(n, 2)));
    let args = Args::new()
        .array("x", &bx)
        .array("y", &by)
        .scalar("a", 2.0f32);
    let engine = common::engine();
    let text = engine.explain(&map, &args).to_string();
    assert!(text.starts_with("map_expr: 100000 elements"), "{text}");
    assert!(text.contains("cpu:"), "{text}");
    if engine.has_gpu() {
        assert!(text.contains("gpu:"), "{text}");
    }
    let auto = eval(engine, &map, &args, Outputs::into_f32, "auto");
    let cpu = eval(
        &engine.on(Backend::Cpu),
        &map,
        &args,
        Outputs::into_f32,
        "cpu",
    );
    let same = auto
        .iter()
        .zip(&cpu)
        .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
    assert!(
        same || engine.has_gpu(),
        "auto on a CPU-only engine is the CPU"
    );
    assert!(
        engine
            .explain(&sum, &args)
            .to_string()
            .starts_with("reduce_expr")
    );
}

#[test]
fn fused_sums_of_each_tail_operation_match_the_oracle() {
    // The last operation of a sum (+, -, ·, fma), or a product and the
    // sum or difference taken with it, is folded into the accumulator on
    // the CPU; every shape of it, on every backend and at partial blocks.
    type Oracle = fn(f64, f64, f64) -> f64;
    let cases: [(&str, Expr, Oracle); 10] = [
        ("x + y", x() + y(), |a, b, _| a + b),
        ("x - y", x() - y(), |a, b, _| a - b),
        ("x * y", x() * y(), |a, b, _| a * b),
        ("fma", x().fma(y(), z()), |a, b, c| a * b + c),
        ("x * y + z", x() * y() + z(), |a, b, c| a * b + c),
        ("z + x * y", z() + x() * y(), |a, b, c| c + a * b),
        ("x * y - z", x() * y() - z(), |a, b, c| a * b - c),
        ("z - x * y", z() - x() * y(), |a, b, c| c - a * b),
        // The product used twice (one value after CSE): not a product form.
        ("x * y + x * y", x() * y() + x() * y(), |a, b, _| {
            2.0 * a * b
        }),
        // A product that is not the step just before the sum.
        (
            "x * y + sqrt(z)",
            x() * y() + (z() * z()).sqrt(),
            |a, b, c| a * b + c.abs(),
        ),
    ];
    for (name, e, f) in cases {
        let k = MapReduce::sum(e).unwrap();
        for (engine_name, engine) in engines() {
            for n in [0, 1, 17, 1023, 1025, 70_001] {
                let mut r = common::Rng::new(n as u64 + 5);
                let d: Vec<Vec<f32>> = (0..3).map(|_| r.f32s(n, -1.0, 1.0)).collect();
                let b: Vec<Buffer<f32>> = d.iter().map(|v| Buffer::from(v.clone())).collect();
                let mut args = Args::new();
                for (name, buf) in ["x", "y", "z"].into_iter().zip(&b) {
                    if k.arrays().contains(&name) {
                        args = args.array(name, buf);
                    }
                }
                let got = engine.run(&k, &args).unwrap().unwrap().value.as_f64();
                let vals: Vec<f64> = (0..n)
                    .map(|i| f(f64::from(d[0][i]), f64::from(d[1][i]), f64::from(d[2][i])))
                    .collect();
                let (want, mag): (f64, f64) =
                    (vals.iter().sum(), vals.iter().map(|v| v.abs()).sum());
                assert!(
                    (got - want).abs() <= 1e-5 * mag + 1e-6,
                    "{name} n={n} on {engine_name}: {got} vs {want}"
                );
            }
        }
    }
}
