//! f64 expressions (`Map`, `MapReduce` over f64 values) on every backend
//! against plain f64 oracles: each operation at the edge sizes and past one
//! binding, with its bound stated in f64 ε; casts between f64 and the
//! 32-bit types in one kernel (arrays of both widths bound together);
//! scalars and literals kept in f64 (not rounded through f32); fused sums
//! against a compensated oracle; extremes with NaNs and signed zeros; and
//! the GPU declining f64 with the feature masked, `Auto` then running on
//! the CPU.

mod common;

use tandem::expr::{Expr, Vars};
use tandem::gpu::GpuFeatures;
use tandem::kernels::{Args, Array, Map, MapReduce, Scalar};
use tandem::{Backend, Buffer, Engine, Error};

/// Empty, one, odd, workgroup ± 1, and past the small engine's binding
/// (8,192 f64 in 64 KiB).
const SIZES: [usize; 7] = [0, 1, 7, 255, 256, 257, 20_011];

const EPS: f64 = f64::EPSILON;

/// CPU, GPU, and a GPU engine with 64 KiB bindings.
fn engines() -> &'static [(&'static str, Engine)] {
    common::named_engines()
}

/// f64 inputs: special values, then ordinary ones in [-4, 4] with every
/// significand bit drawn.
fn doubles(n: usize, seed: u64) -> Vec<f64> {
    const SPECIAL: [f64; 13] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-310,
        -2.5,
        0.5,
        3.0,
        f64::MAX,
        0.1,
    ];
    let mut r = common::Rng::new(seed);
    (0..n)
        .map(|i| {
            if i % 5 == 0 {
                SPECIAL[(i / 5) % SPECIAL.len()]
            } else {
                let bits = u64::from(r.next_u32()) << 21 ^ u64::from(r.next_u32());
                -4.0 + 8.0 * ((bits & ((1 << 53) - 1)) as f64 / (1u64 << 53) as f64)
            }
        })
        .collect()
}

use common::oracle::oracle_pick_f64 as pick;

fn ref_pow(x: f64, y: f64) -> f64 {
    if y.is_nan() {
        return y;
    }
    if y == 0.0 {
        return 1.0;
    }
    if x == 0.0 {
        return if y > 0.0 { 0.0 } else { f64::INFINITY };
    }
    if x < 0.0 {
        return f64::NAN;
    }
    x.powf(y)
}

fn ref_tanh(x: f64) -> f64 {
    if x.abs() > 19.0 {
        1f64.copysign(x)
    } else {
        x.tanh()
    }
}

/// How far a result may be from the oracle's, given the operands: an
/// absolute bound (0 for exact: same bits, or both NaN).
type Bound = fn(f64, f64, f64, f64) -> f64;

fn exact(_: f64, _: f64, _: f64, _: f64) -> f64 {
    0.0
}

/// A [`Bound`] for the results of sin and cos whose arguments are past
/// where the backends' argument reductions agree: a value in [-1, 1], or
/// NaN (the GPU's, past 2^52).
const ANY_SINE: f64 = f64::NAN;

/// Whether `got` is within `bound` of `want`; a GPU may also flush
/// subnormal results (below f64::MIN_POSITIVE) to zero.
fn close(got: f64, want: f64, bound: f64, gpu: bool) -> bool {
    if bound.is_nan() {
        return got.is_nan() || got.abs() <= 1.0;
    }
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got.to_bits() == want.to_bits() || (bound > 0.0 && got == want) {
        return true;
    }
    if gpu && want.abs() < f64::MIN_POSITIVE && got.abs() < f64::MIN_POSITIVE {
        return true;
    }
    if want.is_infinite() || got.is_infinite() {
        return false;
    }
    (got - want).abs() <= bound
}

/// One f64 expression of `x`, `y`, `z` (and the f64 scalar `s = 0.1`) from
/// text, on every backend and size, against `oracle` within `bound`.
fn check(text: &str, bound: Bound, oracle: impl Fn(f64, f64, f64) -> f64) {
    let vars = Vars::new()
        .array::<f64>("x")
        .array::<f64>("y")
        .array::<f64>("z")
        .scalar::<f64>("s");
    let map = Map::new(Expr::parse(text, &vars).unwrap()).unwrap_or_else(|e| panic!("{text}: {e}"));
    for (engine_name, engine) in engines() {
        let gpu = engine_name.starts_with("gpu");
        for n in SIZES {
            let (x, y, z) = (doubles(n, 1), doubles(n, 2), doubles(n, 3));
            let bufs = [&x, &y, &z].map(|v| Buffer::from(v.clone()));
            let mut args = Args::new();
            if map.scalars().contains(&"s") {
                args = args.scalar("s", 0.1f64);
            }
            for (name, b) in ["x", "y", "z"].into_iter().zip(&bufs) {
                if map.arrays().contains(&name) {
                    args = args.array(name, b);
                }
            }
            let got = engine
                .run(&map, &args)
                .unwrap_or_else(|e| panic!("{text} n={n} on {engine_name}: {e}"))
                .into_f64()
                .unwrap()
                .to_vec()
                .unwrap();
            assert_eq!(got.len(), n, "{text} n={n}");
            for i in 0..n {
                let want = oracle(x[i], y[i], z[i]);
                let b = bound(x[i], y[i], z[i], want);
                assert!(
                    close(got[i], want, b, gpu),
                    "{text} on {engine_name}, n={n}, i={i}: f({:e}, {:e}, {:e}) = {:e} ({:#x}), want {:e} ({:#x}), bound {b:e}",
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

#[test]
fn f64_arithmetic_is_exact_on_every_backend() {
    check("x + y", exact, |x, y, _| x + y);
    check("x - y", exact, |x, y, _| x - y);
    check("x * y", exact, |x, y, _| x * y);
    check("x / y", exact, |x, y, _| x / y);
    check("-x", exact, |x, _, _| -x);
    check("abs(x)", exact, |x, _, _| x.abs());
    check("min(x, y)", exact, |x, y, _| pick(x, y, false));
    check("max(x, y)", exact, |x, y, _| pick(x, y, true));
    check("floor(x)", exact, |x, _, _| x.floor());
    check("ceil(x)", exact, |x, _, _| x.ceil());
    check("round(x)", exact, |x, _, _| x.round_ties_even());
    // A remainder of the rounded quotient: a GPU may fuse its product.
    check(
        "x % y",
        |x, _, _, _| 2.0 * EPS * x.abs(),
        |x, y, _| x - y * (x / y).trunc(),
    );
    // Fused on the CPU; fused or not on a GPU: a rounding of the product,
    // then of the sum.
    check(
        "fma(x, y, z)",
        |x, y, _, w| EPS * ((x * y).abs() + w.abs()),
        |x, y, z| x.mul_add(y, z),
    );
}

#[test]
fn f64_scalars_and_literals_are_not_rounded_through_f32() {
    // 0.1 as f32 is 0.100000001490116...: any detour through f32 is a
    // relative error of 1.5e-8, far outside "exact".
    check("x * s", exact, |x, _, _| x * 0.1);
    check("x * 0.1", exact, |x, _, _| x * 0.1);
    check("x + 1e-300 * y", exact, |x, y, _| x + 1e-300 * y);
    check("x * 3", exact, |x, _, _| x * 3.0);
}

#[test]
fn f64_comparisons_and_selects_are_exact_on_every_backend() {
    check(
        "select(x < y, x, z)",
        exact,
        |x, y, z| if x < y { x } else { z },
    );
    check(
        "select(x <= y, x, z)",
        exact,
        |x, y, z| if x <= y { x } else { z },
    );
    check(
        "select(x > y, x, z)",
        exact,
        |x, y, z| if x > y { x } else { z },
    );
    check(
        "select(x >= y, x, z)",
        exact,
        |x, y, z| if x >= y { x } else { z },
    );
    check(
        "select(x == y, x, z)",
        exact,
        |x, y, z| if x == y { x } else { z },
    );
    check(
        "select(x != y, x, z)",
        exact,
        |x, y, z| if x != y { x } else { z },
    );
    check("select(x < y && !(y > z), x, z)", exact, |x, y, z| {
        if x < y && y <= z { x } else { z }
    });
}

#[test]
fn f64_transcendentals_match_the_oracle_within_stated_bounds() {
    // sqrt is correctly rounded on both backends.
    check(
        "sqrt(x)",
        exact,
        |x, _, _| {
            if x < 0.0 { f64::NAN } else { x.sqrt() }
        },
    );
    // exp, ln: the CPU's and the GPU's polynomials, each within 4 ε of
    // the correctly rounded value (std's, within 1 ulp of it).
    check(
        "exp(x)",
        |_, _, _, w| 4.0 * EPS * w.abs(),
        |x, _, _| x.exp(),
    );
    check(
        "ln(x)",
        |_, _, _, w| 4.0 * EPS * w.abs() + 1e-300,
        |x, _, _| if x < 0.0 { f64::NAN } else { x.ln() },
    );
    // pow = exp(y ln x): ln's error is scaled by |y ln x|.
    check(
        "pow(abs(x), y)",
        |x, y, _, w| 8.0 * EPS * w.abs() * (1.0 + (y * x.abs().ln()).abs()),
        |x, y, _| ref_pow(x.abs(), y),
    );
    check("tanh(x)", |_, _, _, _| 4.0 * EPS, |x, _, _| ref_tanh(x));
    // sin, cos: within 4 ε absolute where the argument reduction is exact
    // on both (|x| < 2^20 π/2); past it, results differ by backend (the
    // GPU's is NaN past 2^52).
    for (text, f) in [("sin(x)", f64::sin as fn(f64) -> f64), ("cos(x)", f64::cos)] {
        check(
            text,
            |x, _, _, _| if x.abs() < 1.6e6 { 4.0 * EPS } else { ANY_SINE },
            move |x, _, _| f(x),
        );
    }
}

#[test]
fn casts_between_f64_and_32_bit_types_in_one_kernel_are_exact() {
    let (x, n, u, q) = (
        Expr::input::<f64>("x"),
        Expr::input::<i32>("n"),
        Expr::input::<u32>("u"),
        Expr::input::<f32>("q"),
    );
    let map = Map::with_outputs(vec![
        x.cast::<f32>(),
        x.cast::<i32>(),
        x.cast::<u32>(),
        n.cast::<f64>() + x.clone(),
        u.cast::<f64>(),
        q.cast::<f64>() * 0.1,
        x.lt(q.cast::<f64>()).cast::<f64>(),
    ])
    .unwrap();
    for (engine_name, engine) in engines() {
        for len in SIZES {
            let xs = doubles(len, 5);
            let mut r = common::Rng::new(len as u64);
            let ns = r.i32s(len);
            let us = r.u32s(len);
            let qs = r.f32s(len, -4.0, 4.0);
            let (bx, bn, bu, bq) = (
                Buffer::from(xs.clone()),
                Buffer::from(ns.clone()),
                Buffer::from(us.clone()),
                Buffer::from(qs.clone()),
            );
            let args = Args::new()
                .array("x", &bx)
                .array("n", &bn)
                .array("u", &bu)
                .array("q", &bq);
            let outs = engine
                .run(&map, &args)
                .unwrap_or_else(|e| panic!("casts n={len} on {engine_name}: {e}"))
                .0;
            let what = format!("casts n={len} on {engine_name}");
            let f32s = |a: &Array| a.clone().into_f32().unwrap().to_vec().unwrap();
            let f64s = |a: &Array| a.clone().into_f64().unwrap().to_vec().unwrap();
            let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
            let want_f32: Vec<u32> = xs.iter().map(|&v| (v as f32).to_bits()).collect();
            let got_f32: Vec<u32> = f32s(&outs[0]).into_iter().map(f32::to_bits).collect();
            // NaN payloads aside: compare NaN as NaN.
            for i in 0..len {
                let (g, w) = (f32::from_bits(got_f32[i]), f32::from_bits(want_f32[i]));
                assert!(
                    g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan(),
                    "{what}: f32({:e}) = {g:e}, want {w:e}",
                    xs[i]
                );
            }
            let want_i: Vec<i32> = xs.iter().map(|&v| v as i32).collect();
            assert_eq!(
                outs[1].clone().into_i32().unwrap().to_vec().unwrap(),
                want_i,
                "{what}: i32"
            );
            let want_u: Vec<u32> = xs.iter().map(|&v| v as u32).collect();
            assert_eq!(
                outs[2].clone().into_u32().unwrap().to_vec().unwrap(),
                want_u,
                "{what}: u32"
            );
            let want: Vec<f64> = ns
                .iter()
                .zip(&xs)
                .map(|(&n, &x)| f64::from(n) + x)
                .collect();
            let got = f64s(&outs[3]);
            for i in 0..len {
                assert!(
                    got[i].to_bits() == want[i].to_bits() || got[i].is_nan() && want[i].is_nan(),
                    "{what}: f64(n) + x at {i}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
            let want: Vec<f64> = us.iter().map(|&u| f64::from(u)).collect();
            assert_eq!(bits(f64s(&outs[4])), bits(want), "{what}: f64(u)");
            let want: Vec<f64> = qs.iter().map(|&q| f64::from(q) * 0.1).collect();
            assert_eq!(bits(f64s(&outs[5])), bits(want), "{what}: f64(q) * 0.1");
            let want: Vec<f64> = xs
                .iter()
                .zip(&qs)
                .map(|(&x, &q)| if x < f64::from(q) { 1.0 } else { 0.0 })
                .collect();
            assert_eq!(bits(f64s(&outs[6])), bits(want), "{what}: f64(x < q)");
        }
    }
}

/// Neumaier's compensated sum: the oracle of f64 sums.
fn compensated(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for x in v {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

#[test]
fn fused_f64_reductions_match_the_oracle_on_every_backend() {
    let (x, y) = (Expr::input::<f64>("x"), Expr::input::<f64>("y"));
    let e = &x * &y - Expr::scalar::<f64>("s");
    for (engine_name, engine) in engines() {
        for n in SIZES.into_iter().chain([300_001]) {
            let mut r = common::Rng::new(n as u64 + 9);
            // Finite values for the sum; NaNs and signed zeros among them
            // for the extremes.
            let xs: Vec<f64> = (0..n).map(|_| f64::from(r.f32(-4.0, 4.0)) / 3.0).collect();
            let ys: Vec<f64> = (0..n).map(|_| f64::from(r.f32(-4.0, 4.0)) / 7.0).collect();
            let (bx, by) = (Buffer::from(xs.clone()), Buffer::from(ys.clone()));
            let args = Args::new()
                .array("x", &bx)
                .array("y", &by)
                .scalar("s", 0.1f64);
            let what = format!("n={n} on {engine_name}");
            let values: Vec<f64> = xs.iter().zip(&ys).map(|(a, b)| a * b - 0.1).collect();

            // The sum: blocked and pairwise, within 64 ε of Σ|v|.
            let got = engine
                .run(&MapReduce::sum(e.clone()).unwrap(), &args)
                .unwrap();
            let got = got.expect("a sum has a value");
            assert_eq!(got.index, None);
            let Scalar::F64(got) = got.value else {
                panic!("{what}: sum is {:?}, not f64", got.value)
            };
            let want = compensated(values.iter().copied());
            let mag: f64 = values.iter().map(|v| v.abs()).sum();
            assert!(
                (got - want).abs() <= 64.0 * EPS * mag,
                "{what}: sum {got} vs {want} (Σ|v| = {mag})"
            );

            // Extremes: exact values, first index.
            for (k, max) in [
                (MapReduce::argmin(e.clone()).unwrap(), false),
                (MapReduce::argmax(e.clone()).unwrap(), true),
            ] {
                let got = engine.run(&k, &args).unwrap();
                let best =
                    values
                        .iter()
                        .enumerate()
                        .fold(None::<(usize, f64)>, |b, (i, &v)| match b {
                            Some((_, bv)) if pick(bv, v, max).to_bits() == bv.to_bits() => b,
                            _ => Some((i, v)),
                        });
                match (got, best) {
                    (None, None) => {}
                    (Some(g), Some((i, v))) => {
                        assert_eq!(g.index, Some(i), "{what}: arg (max={max})");
                        assert_eq!(g.value, Scalar::F64(v), "{what}: value (max={max})");
                    }
                    (g, w) => panic!("{what}: {g:?} vs {w:?}"),
                }
            }
        }
    }
}

#[test]
fn f64_extremes_ignore_nan_order_signed_zeros_and_keep_the_first_index() {
    let x = Expr::input::<f64>("x");
    let data = vec![
        f64::NAN,
        0.0,
        -0.0,
        3.5,
        f64::NAN,
        -0.0,
        3.5,
        f64::MIN_POSITIVE / 4.0,
    ];
    let all_nan = vec![f64::NAN; 300];
    let empty: Vec<f64> = Vec::new();
    for (engine_name, engine) in engines() {
        let b = Buffer::from(data.clone());
        let args = Args::new().array("x", &b);
        let run = |k: MapReduce, args: &Args| engine.run(&k, args).unwrap();
        let min = run(MapReduce::argmin(x.clone()).unwrap(), &args).unwrap();
        assert_eq!(min.value, Scalar::F64(-0.0), "{engine_name}");
        assert_eq!(min.index, Some(2), "{engine_name}: the first -0.0");
        let max = run(MapReduce::argmax(x.clone()).unwrap(), &args).unwrap();
        assert_eq!(max.value, Scalar::F64(3.5), "{engine_name}");
        assert_eq!(max.index, Some(3), "{engine_name}");
        // Keys that differ only in their low 32 bits: 1 + 2ε is the
        // largest of these, 1 - (1 + 2ε) = -2ε the smallest difference.
        let near = Buffer::from(vec![1.0 + EPS, 1.0 + 2.0 * EPS, 1.0, 1.0 + 2.0 * EPS]);
        let args = Args::new().array("x", &near);
        let high = run(MapReduce::argmax(x.clone()).unwrap(), &args).unwrap();
        assert_eq!(high.value, Scalar::F64(1.0 + 2.0 * EPS), "{engine_name}");
        assert_eq!(high.index, Some(1), "{engine_name}");
        let low = run(
            MapReduce::argmin(Expr::constant(1.0f64) - x.clone()).unwrap(),
            &args,
        )
        .unwrap();
        assert_eq!(low.value, Scalar::F64(-2.0 * EPS), "{engine_name}");
        assert_eq!(low.index, Some(1), "{engine_name}");
        let nans = Buffer::from(all_nan.clone());
        let args = Args::new().array("x", &nans);
        assert_eq!(
            run(MapReduce::min(x.clone()).unwrap(), &args),
            None,
            "{engine_name}"
        );
        let none = Buffer::from(empty.clone());
        let args = Args::new().array("x", &none);
        assert_eq!(
            run(MapReduce::argmax(x.clone()).unwrap(), &args),
            None,
            "{engine_name}"
        );
        let zero = run(MapReduce::sum(x.clone()).unwrap(), &args).unwrap();
        assert_eq!(
            zero.value,
            Scalar::F64(0.0),
            "{engine_name}: the sum of nothing"
        );
    }
}

#[test]
fn with_f64_masked_the_gpu_declines_f64_expressions_and_auto_runs_them_on_the_cpu() {
    let has_f64 = common::on(Backend::Gpu).is_some_and(|e| e.gpu().unwrap().info().features.f64);
    if !has_f64 {
        eprintln!("no GPU with f64: nothing to mask");
        return;
    }
    let auto = Engine::builder()
        .gpu_features(GpuFeatures::ALL.with_f64(false))
        .build()
        .unwrap();
    assert!(!auto.gpu().unwrap().info().features.f64);
    let x = Expr::input::<f64>("x");
    let map = Map::new(x.clone() * 2.0 + 1.0).unwrap();
    let xs: Vec<f64> = (0..5000).map(|i| f64::from(i) * 0.1).collect();
    let b = Buffer::from(xs.clone());
    let args = Args::new().array("x", &b);
    match auto.on(Backend::Gpu).run(&map, &args) {
        Err(Error::Unsupported { kernel, reason, .. }) => {
            assert_eq!(kernel, "map_expr_f64");
            assert!(reason.contains("SHADER_F64"), "{reason}");
        }
        other => panic!("forced GPU with f64 masked: {other:?}"),
    }
    let why = auto.explain(&map, &args);
    assert_eq!(why.chosen, Backend::Cpu, "{why}");
    assert!(
        why.gpu_declined
            .as_deref()
            .unwrap_or_default()
            .contains("f64"),
        "{why}"
    );
    let before = auto.stats().cpu_runs;
    let got = auto
        .run(&map, &args)
        .unwrap()
        .into_f64()
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(auto.stats().cpu_runs > before, "not on the CPU");
    let want: Vec<f64> = xs.iter().map(|v| v * 2.0 + 1.0).collect();
    assert_eq!(got, want);
    // f64 values from f32 inputs only: declined by its name
    // (`map_expr_f64`), so Auto runs it on the CPU.
    let widened = Map::new(Expr::input::<f32>("q").cast::<f64>() * 0.1).unwrap();
    let q = Buffer::from(vec![1.5f32; 5000]);
    let why = auto.explain(&widened, &Args::new().array("q", &q));
    assert_eq!(why.chosen, Backend::Cpu, "{why}");
    assert!(why.gpu_declined.is_some(), "{why}");
    let before = auto.stats();
    let got = auto
        .run(&widened, &Args::new().array("q", &q))
        .unwrap()
        .into_f64()
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(got, vec![1.5 * 0.1; 5000]);
    let after = auto.stats();
    assert!(after.cpu_runs > before.cpu_runs, "not on the CPU");
    // An f32 expression still runs on that GPU.
    let f = Map::new(Expr::input::<f32>("x") * 2.0f32).unwrap();
    let bf = Buffer::from(vec![1.5f32; 300]);
    let out = auto
        .on(Backend::Gpu)
        .run(&f, &Args::new().array("x", &bf))
        .unwrap();
    assert_eq!(out.into_f32().unwrap().to_vec().unwrap(), vec![3.0f32; 300]);
}

#[test]
fn f64_text_types_check_like_f32() {
    let vars = Vars::new()
        .array::<f64>("x")
        .array::<f32>("q")
        .scalar::<f64>("s");
    let parse = |t: &str| Expr::parse(t, &vars).and_then(Map::new);
    // Float literals take f64 beside an f64 operand; f64(..) casts.
    assert!(parse("x * 2.5 + s").is_ok());
    assert!(parse("f64(q) * x").is_ok());
    assert!(parse("f32(x) * q").is_ok());
    // No implicit conversions between f32 and f64.
    let err = parse("x * q").unwrap_err().to_string();
    assert!(err.contains("f64") && err.contains("f32"), "{err}");
    // Printed text parses back to the same expression.
    let e = Expr::parse("x * 0.1 + f64(q)", &vars).unwrap();
    let again = Expr::parse(&e.to_string(), &vars).unwrap();
    assert_eq!(again.to_string(), e.to_string());
    let c = Expr::constant(0.1f64) * Expr::input::<f64>("x");
    let shown = c.to_string();
    assert!(shown.contains("0.1"), "{shown}");
    assert_eq!(Expr::parse(&shown, &vars).unwrap().to_string(), shown);
}

#[test]
fn fused_f64_sums_of_each_tail_operation_match_the_oracle() {
    // As the f32 test: the last operation of an f64 sum, or a product and
    // the sum or difference taken with it, folded into the accumulator on
    // the CPU; with an f32 array beside the f64 ones (an operand of another
    // width in the program).
    let (x, y, z) = (
        Expr::input::<f64>("x"),
        Expr::input::<f64>("y"),
        Expr::input::<f64>("z"),
    );
    let q = Expr::input::<f32>("q").cast::<f64>();
    type Oracle = fn(f64, f64, f64, f64) -> f64;
    let cases: [(&str, Expr, Oracle); 9] = [
        ("x + y", &x + &y, |a, b, _, _| a + b),
        ("x - y", &x - &y, |a, b, _, _| a - b),
        ("x * y", &x * &y, |a, b, _, _| a * b),
        ("fma", x.fma(&y, &z), |a, b, c, _| a.mul_add(b, c)),
        ("x * y + z", &x * &y + &z, |a, b, c, _| a * b + c),
        ("z - x * y", &z - &x * &y, |a, b, c, _| c - a * b),
        ("x * y - z", &x * &y - &z, |a, b, c, _| a * b - c),
        ("f64(q) + x", q.clone() + &x, |a, _, _, q| q + a),
        ("x * f64(q) + y", &x * q + &y, |a, b, _, q| a * q + b),
    ];
    for (name, e, f) in cases {
        let k = MapReduce::sum(e).unwrap();
        for (engine_name, engine) in engines() {
            for n in [0, 1, 17, 1023, 1025, 70_001] {
                let mut r = common::Rng::new(n as u64 + 5);
                let d: Vec<Vec<f64>> = (0..3)
                    .map(|_| (0..n).map(|_| f64::from(r.f32(-1.0, 1.0)) / 3.0).collect())
                    .collect();
                let qs = r.f32s(n, -1.0, 1.0);
                let b: Vec<Buffer<f64>> = d.iter().map(|v| Buffer::from(v.clone())).collect();
                let bq = Buffer::from(qs.clone());
                let mut args = Args::new();
                for (name, buf) in ["x", "y", "z"].into_iter().zip(&b) {
                    if k.arrays().contains(&name) {
                        args = args.array(name, buf);
                    }
                }
                if k.arrays().contains(&"q") {
                    args = args.array("q", &bq);
                }
                let got = engine.run(&k, &args).unwrap().unwrap();
                let Scalar::F64(got) = got.value else {
                    panic!("{name}: not f64: {got:?}")
                };
                let vals: Vec<f64> = (0..n)
                    .map(|i| f(d[0][i], d[1][i], d[2][i], f64::from(qs[i])))
                    .collect();
                let (want, mag) = (
                    compensated(vals.iter().copied()),
                    vals.iter().map(|v| v.abs()).sum::<f64>(),
                );
                assert!(
                    (got - want).abs() <= 64.0 * EPS * mag,
                    "{name} n={n} on {engine_name}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn normal_cdf_takes_its_argument_s_float_type() {
    // Abramowitz–Stegun 26.2.17 is within 7.5e-8 of Φ; in f64 only that
    // error remains, in f32 the f32 roundings too. Φ(x) = erfc(-x/√2)/2,
    // checked at points where it is known to double precision.
    let known = [
        (0.0, 0.5),
        (1.0, 0.841_344_746_068_542_9),
        (-1.0, 0.158_655_253_931_457_05),
        (2.5, 0.993_790_334_674_223_7),
        (-3.0, 0.001_349_898_031_630_094_6),
    ];
    let xs: Vec<f64> = known.iter().map(|k| k.0).collect();
    let b64 = Buffer::from(xs.clone());
    let b32 = Buffer::from(xs.iter().map(|&v| v as f32).collect::<Vec<f32>>());
    let m64 = Map::new(tandem::expr::normal_cdf(&Expr::input::<f64>("x"))).unwrap();
    let m32 = Map::new(tandem::expr::normal_cdf(&Expr::input::<f32>("x"))).unwrap();
    for (engine_name, engine) in engines() {
        let got64 = engine.run(&m64, &Args::new().array("x", &b64)).unwrap();
        let got32 = engine.run(&m32, &Args::new().array("x", &b32)).unwrap();
        let got64 = got64.into_f64().unwrap().to_vec().unwrap();
        let got32 = got32.into_f32().unwrap().to_vec().unwrap();
        for (i, &(x, want)) in known.iter().enumerate() {
            assert!(
                (got64[i] - want).abs() <= 7.5e-8,
                "{engine_name}: f64 Φ({x}) = {} vs {want}",
                got64[i]
            );
            assert!(
                (f64::from(got32[i]) - want).abs() <= 7.5e-8 + 4.0 * f64::from(f32::EPSILON),
                "{engine_name}: f32 Φ({x}) = {} vs {want}",
                got32[i]
            );
        }
    }
}

#[test]
fn f64_sin_and_cos_hold_their_bound_to_the_end_of_the_exact_reduction() {
    // The documented range, |x| < 2^20·π/2: arguments spread over it.
    let mut r = common::Rng::new(11);
    let xs: Vec<f64> = (0..20_000)
        .map(|i| {
            let u = f64::from(r.next_u32()) / f64::from(u32::MAX);
            let m = [1.0, 1e2, 1e4, 1.6e6][i % 4];
            (2.0 * u - 1.0) * m
        })
        .collect();
    let b = Buffer::from(xs.clone());
    let x = Expr::input::<f64>("x");
    for (name, e, f) in [
        ("sin", x.sin(), f64::sin as fn(f64) -> f64),
        ("cos", x.cos(), f64::cos),
    ] {
        let map = Map::new(e).unwrap();
        for (engine_name, engine) in engines() {
            let got = engine.run(&map, &Args::new().array("x", &b)).unwrap();
            let got = got.into_f64().unwrap().to_vec().unwrap();
            for (i, &v) in xs.iter().enumerate() {
                assert!(
                    (got[i] - f(v)).abs() <= 4.0 * EPS,
                    "{name}({v:e}) on {engine_name}: {} vs {}",
                    got[i],
                    f(v)
                );
            }
        }
    }
}
