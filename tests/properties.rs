//! Property tests: for arbitrary lengths and values, every kernel on every
//! backend agrees with a plain scalar oracle within the bounds stated in
//! `tests/conformance.rs` (so the backends agree with each other), bit for
//! bit wherever the semantics fix the answer.
//!
//! Engines: the CPU, the GPU when there is one, and then also a second GPU
//! engine whose bindings are cut at 64 KiB (16,384 elements), so that long
//! inputs cross binding-chunk boundaries. Lengths ([`len`]) are mostly
//! 0..3000 (every SIMD tail, workgroup and reduction-tile remainder),
//! sometimes up to 70k (many tiles and a second reduction pass, several
//! binding chunks, parallel CPU `exp`/`ln`/integer division) and rarely just
//! past 2^18 (parallel CPU maps and reductions).
//!
//! Most properties draw their data from a seed through [`Gen`], whose value
//! classes over-represent the special values (±0, ±inf, NaNs of both signs
//! and any payload, subnormals, `MIN_POSITIVE`, `MAX`, integer extremes), so
//! that a failing case shrinks quickly to its shortest failing length; the
//! failure message names the element.
//!
//! GPU allowance, as documented in `src/kernels/map.rs`: a float result
//! whose magnitude is below `f32::MIN_POSITIVE` may come back as a zero.

mod common;

use std::sync::OnceLock;

use common::oracle::*;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tandem::kernels::{Axpy, Binary, Dot, Sum, Unary};
use tandem::{Backend, Buffer, Element, Engine, Error};

// ---------- engines and lengths ----------

/// Binding size of the extra GPU engine: 16,384 f32 a chunk.
const SMALL_CHUNK_BYTES: u64 = 64 * 1024;

/// One engine a property checks.
struct On {
    name: &'static str,
    engine: Engine,
    /// Whether it is a GPU (which may flush results below `MIN_POSITIVE`).
    gpu: bool,
}

/// The CPU, the GPU when present, and a GPU engine with 64 KiB bindings.
fn engines() -> Vec<On> {
    let mut all = Vec::new();
    for (b, engine) in backends() {
        let gpu = b == Backend::Gpu;
        all.push(On {
            name: if gpu { "gpu" } else { "cpu" },
            engine,
            gpu,
        });
        if gpu {
            static SMALL: OnceLock<Engine> = OnceLock::new();
            let small = SMALL.get_or_init(|| {
                let e = Engine::builder()
                    .gpu_chunk_bytes(SMALL_CHUNK_BYTES)
                    .build()
                    .expect("engine");
                let chunk = e.gpu().expect("a second GPU engine").info().chunk_bytes;
                assert_eq!(chunk, SMALL_CHUNK_BYTES, "binding chunk");
                e
            });
            all.push(On {
                name: "gpu (64 KiB bindings)",
                engine: small.on(Backend::Gpu),
                gpu: true,
            });
        }
    }
    all
}

/// Input lengths: see the module docs. The first two ranges start at 0 so
/// that a failing length shrinks to the shortest one that fails.
fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        24 => 0..3000usize,
        3 => 0..70_000usize,
        1 => (1usize << 18)..(1 << 18) + 5000,
    ]
}

/// The seed of a case's data (see [`Gen`]). Not shrunk: a failing case
/// shrinks its length instead, which keeps the failing prefix.
fn seed() -> impl Strategy<Value = u64> {
    any::<u64>().no_shrink()
}

fn get<T: Element>(b: &Buffer<T>) -> Vec<T> {
    b.to_vec().expect("read back")
}

// ---------- data ----------

/// Special f32 bit patterns: ±0, ±inf, NaNs (quiet, negative, signalling,
/// with payloads), subnormal extremes, ±MIN_POSITIVE, ±MAX, ±1, EPSILON.
const SPECIAL_F32: &[u32] = &[
    0x0000_0000,
    0x8000_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0000,
    0x7f80_0001,
    0xffbf_ffff,
    0x0000_0001,
    0x8000_0001,
    0x007f_ffff,
    0x807f_ffff,
    0x0080_0000,
    0x8080_0000,
    0x7f7f_ffff,
    0xff7f_ffff,
    0x3f80_0000,
    0xbf80_0000,
    0x3400_0000,
];

const SPECIAL_I32: &[i32] = &[i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
const SPECIAL_U32: &[u32] = &[0, 1, 2, 0x7fff_ffff, 0x8000_0000, u32::MAX - 1, u32::MAX];

/// A deterministic stream of values drawn from classes (see the module docs).
struct Gen(common::Rng);

impl Gen {
    fn new(seed: u64) -> Self {
        Gen(common::Rng::new(seed))
    }
    /// `K` independent streams from one seed, one for each input array, so
    /// that element `i` of each does not depend on the length (and a
    /// failing case shrinks to its shortest length).
    fn streams<const K: usize>(seed: u64) -> [Gen; K] {
        std::array::from_fn(|k| Gen::new(seed ^ (k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)))
    }
    fn u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.u32()) * u64::from(n)) >> 32) as u32
    }
    fn one_in(&mut self, n: u32) -> bool {
        self.below(n) == 0
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u32) as usize]
    }
    fn vec<T>(&mut self, n: usize, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        (0..n).map(|_| f(self)).collect()
    }
    /// `±2^e · 1.m`, `e` uniform in `lo..=hi` (a normal float), random sign.
    fn normal(&mut self, lo: i32, hi: i32) -> f32 {
        let e = lo + self.below((hi - lo + 1) as u32) as i32;
        let bits = (((e + 127) as u32) << 23) | (self.u32() >> 9);
        let v = f32::from_bits(bits);
        if self.one_in(2) { -v } else { v }
    }
    /// Any f32 bit pattern: specials, uniform bits, and ordinary magnitudes.
    fn any_f32(&mut self) -> f32 {
        match self.below(8) {
            0 => f32::from_bits(self.pick(SPECIAL_F32)),
            1..=3 => f32::from_bits(self.u32()),
            _ => self.normal(-30, 30),
        }
    }
    /// Any finite f32 (specials, uniform bits and ordinary magnitudes).
    fn finite_f32(&mut self) -> f32 {
        let v = self.any_f32();
        if v.is_finite() {
            v
        } else {
            self.normal(-30, 30)
        }
    }
    /// Any positive finite f32, subnormals included.
    fn positive_f32(&mut self) -> f32 {
        match self.below(4) {
            0 => f32::from_bits(1 + self.below(0x7f7f_ffff)),
            1 => f32::from_bits(1 + self.below(0x007f_ffff)),
            2 => self.0.f32(0.25, 4.0),
            _ => self.normal(-126, 127).abs(),
        }
    }
    fn any_i32(&mut self) -> i32 {
        match self.below(8) {
            0 => self.pick(SPECIAL_I32),
            1 | 2 => self.below(33) as i32 - 16,
            _ => self.u32() as i32,
        }
    }
    fn any_u32(&mut self) -> u32 {
        match self.below(8) {
            0 => self.pick(SPECIAL_U32),
            1 | 2 => self.below(33),
            _ => self.u32(),
        }
    }
}

// ---------- comparisons ----------

/// Whether `got` stands for `want` by the flush rule: a zero on a GPU where
/// `|want| < MIN_POSITIVE`.
fn flushed(got: f32, want: f32, gpu: bool) -> bool {
    gpu && got == 0.0 && want.abs() < f32::MIN_POSITIVE
}

/// Bit for bit, two NaNs of any payload agreeing, or flushed.
fn same_f32(got: f32, want: f32, gpu: bool) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()) || flushed(got, want, gpu)
}

/// Within `tol` ULP (two NaNs agree, ±0 are equal), or flushed.
fn near_f32(got: f32, want: f32, tol: u32, gpu: bool) -> bool {
    ulps(got, want) <= tol || flushed(got, want, gpu)
}

fn show(v: f32) -> String {
    format!("{v:e} ({:#010x})", v.to_bits())
}

/// Runs `op` on `x` on every engine and checks each element with
/// `ok(x, got, want(x), on_gpu)`.
fn check_unary_f32(
    op: Unary,
    x: &[f32],
    want: impl Fn(f32) -> f32,
    ok: impl Fn(f32, f32, f32, bool) -> bool,
) -> Result<(), TestCaseError> {
    let n = x.len();
    for on in engines() {
        let got = get(&on.engine.run(&op, &Buffer::from(x.to_vec())).unwrap());
        prop_assert_eq!(got.len(), n, "{:?} on {}: length", op, on.name);
        for (i, (&x, &g)) in x.iter().zip(&got).enumerate() {
            let w = want(x);
            prop_assert!(
                ok(x, g, w, on.gpu),
                "{:?} on {}: element {} of {}: x = {}: got {}, want {}",
                op,
                on.name,
                i,
                n,
                show(x),
                show(g),
                show(w)
            );
        }
    }
    Ok(())
}

/// Runs `op` on `(x, y)` on every engine and checks each element with
/// `ok(got, want(x, y), on_gpu)`.
fn check_binary<T: Element + std::fmt::Debug>(
    op: Binary,
    x: &[T],
    y: &[T],
    want: impl Fn(T, T) -> T,
    ok: impl Fn(T, T, bool) -> bool,
    show: fn(T) -> String,
) -> Result<(), TestCaseError> {
    let n = x.len();
    for on in engines() {
        let (xb, yb) = (Buffer::from(x.to_vec()), Buffer::from(y.to_vec()));
        let got = get(&on.engine.run(&op, (&xb, &yb)).unwrap());
        prop_assert_eq!(got.len(), n, "{:?} on {}: length", op, on.name);
        for i in 0..n {
            let w = want(x[i], y[i]);
            prop_assert!(
                ok(got[i], w, on.gpu),
                "{:?} {} on {}: element {} of {}: x = {}, y = {}: got {}, want {}",
                op,
                T::TYPE,
                on.name,
                i,
                n,
                show(x[i]),
                show(y[i]),
                show(got[i]),
                show(w)
            );
        }
    }
    Ok(())
}

/// [`check_binary`] for f32, each element within `ok`.
fn check_binary_f32(
    op: Binary,
    x: &[f32],
    y: &[f32],
    want: impl Fn(f32, f32) -> f32,
    ok: impl Fn(f32, f32, bool) -> bool,
) -> Result<(), TestCaseError> {
    check_binary(op, x, y, want, ok, show)
}

/// [`check_binary`] for integers, each element exactly.
fn check_binary_int<T: Element + std::fmt::Debug + PartialEq>(
    op: Binary,
    x: &[T],
    y: &[T],
    want: impl Fn(T, T) -> T,
) -> Result<(), TestCaseError> {
    check_binary(op, x, y, want, |g, w, _| g == w, |v| format!("{v:?}"))
}

// ---------- scalar oracles ----------

fn oracle_sqrt(x: f32) -> f32 {
    if x == 0.0 || x.is_nan() {
        x
    } else if x < 0.0 {
        f32::NAN
    } else {
        f64::from(x).sqrt() as f32
    }
}

/// `exp(x)` is +inf above this (and finite at it).
const EXP_OVERFLOW: f32 = 88.722_83;
/// `exp(x)` is 0 below this.
const EXP_UNDERFLOW: f32 = -103.972_08;

fn oracle_exp(x: f32) -> f32 {
    if x.is_nan() {
        x
    } else if x > EXP_OVERFLOW {
        f32::INFINITY
    } else if x < EXP_UNDERFLOW {
        0.0
    } else {
        f64::from(x).exp() as f32
    }
}

fn oracle_ln(x: f32) -> f32 {
    if x.is_nan() {
        x
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x < 0.0 {
        f32::NAN
    } else {
        f64::from(x).ln() as f32
    }
}

/// The `ln` bound: 3 ULP for positive finite x (absolute 2^-21 on
/// [0.5, 2]), the exact rule for the rest.
fn ln_ok(x: f32, got: f32, want: f32, gpu: bool) -> bool {
    if !(x.is_finite() && x > 0.0) {
        same_f32(got, want, false)
    } else if (0.5..=2.0).contains(&x) {
        (f64::from(got) - f64::from(x).ln()).abs() <= 2f64.powi(-21)
    } else {
        near_f32(got, want, 3, gpu)
    }
}

/// `Σ terms` exactly enough (Neumaier-compensated f64) and `Σ |terms|`.
fn exact_sum(terms: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut s, mut c, mut abs) = (0.0f64, 0.0f64, 0.0f64);
    for t in terms {
        let u = s + t;
        c += if s.abs() >= t.abs() {
            (s - u) + t
        } else {
            (t - u) + s
        };
        s = u;
        abs += t.abs();
    }
    (s + c, abs)
}

/// The float-sum bound: `2ε·log2(max(n, 2))·Σ|terms| + MIN_POSITIVE`.
fn sum_bound(n: usize, abs: f64) -> f64 {
    2.0 * f64::from(f32::EPSILON) * (n.max(2) as f64).log2() * abs + f64::from(f32::MIN_POSITIVE)
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

fn any_f32s(max_len: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(any::<u32>().prop_map(f32::from_bits), 0..max_len)
}

/// [`oracle_arg_f32`] with the value as its key (`u32::MAX` for all-NaN).
fn oracle_extreme(x: &[f32], max: bool) -> Option<(usize, u32)> {
    oracle_arg_f32(x, max).map(|(i, v)| (i, if v.is_nan() { u32::MAX } else { key(v) }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn min_max_and_args_follow_key_order_on_every_backend(x in any_f32s(3000)) {
        let xb = Buffer::from(x.clone());
        for max in [false, true] {
            let want = oracle_extreme(&x, max);
            for (b, e) in backends() {
                let (val, arg) = extremes(&e, &xb, max);
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    // ---------- unary ----------

    /// `neg`, `abs` and `scale(k)` on any f32 bit patterns (and any `k`) are
    /// the scalar IEEE result bit for bit, NaN payloads aside (and a `scale`
    /// result below `MIN_POSITIVE` may be a zero on a GPU).
    #[test]
    fn unary_f32_neg_abs_scale_are_bit_exact(n in len(), seed in seed()) {
        let mut g = Gen::new(seed);
        let k = g.any_f32();
        let x = g.vec(n, Gen::any_f32);
        // Sign-bit operations: never flushed, even on a GPU.
        check_unary_f32(Unary::Neg, &x, |x| -x, |_, g, w, _| same_f32(g, w, false))?;
        check_unary_f32(Unary::Abs, &x, f32::abs, |_, g, w, _| same_f32(g, w, false))?;
        check_unary_f32(Unary::Scale(k), &x, |x| x * k, |_, g, w, gpu| same_f32(g, w, gpu))?;
    }

    /// `sqrt` is within 3 ULP on positive finite floats (subnormals
    /// included), and any other bit pattern follows the rules:
    /// `sqrt(±0) = ±0`, `sqrt(+inf) = +inf`, negatives and NaN give NaN.
    #[test]
    fn sqrt_within_3_ulp_and_specials_follow_the_rules(n in len(), seed in seed()) {
        let mut g = Gen::new(seed);
        let x = g.vec(n, |g| if g.one_in(2) { g.positive_f32() } else { g.any_f32() });
        check_unary_f32(Unary::Sqrt, &x, oracle_sqrt, |x, g, w, gpu| {
            if x.is_finite() && x > 0.0 { near_f32(g, w, 3, gpu) } else { same_f32(g, w, false) }
        })?;
    }

    /// `exp` is within 3 + 2|x| ULP on [-80, 80] (subnormal x included) and
    /// on to the overflow and underflow thresholds, and any other bit pattern
    /// follows the rules: NaN gives NaN, x > 88.72283 (+inf included) gives
    /// +inf, x < -103.97208 (-inf included) gives 0.
    #[test]
    fn exp_within_3_plus_2x_ulp_and_specials_follow_the_rules(n in len(), seed in seed()) {
        let mut g = Gen::new(seed);
        let x = g.vec(n, |g| match g.below(5) {
            0 => g.any_f32(),
            1 => g.0.f32(-110.0, 90.0),
            2 => g.normal(-126, 6).clamp(-80.0, 80.0),
            _ => g.0.f32(-80.0, 80.0),
        });
        check_unary_f32(Unary::Exp, &x, oracle_exp, |x, g, w, gpu| {
            if (EXP_UNDERFLOW..=EXP_OVERFLOW).contains(&x) {
                near_f32(g, w, 3 + (2.0 * x.abs()) as u32, gpu)
            } else {
                same_f32(g, w, false)
            }
        })?;
    }

    /// `ln` is within 3 ULP on positive normal floats (absolute 2^-21 on
    /// [0.5, 2]), and any other bit pattern but a positive subnormal follows
    /// the rules: `ln(±0) = -inf`, `ln(+inf) = +inf`, negatives and NaN give
    /// NaN.
    #[test]
    fn ln_within_3_ulp_and_specials_follow_the_rules(n in len(), seed in seed()) {
        let mut g = Gen::new(seed);
        let x = g.vec(n, |g| {
            let v = if g.one_in(3) { g.any_f32() } else { g.positive_f32() };
            if v > 0.0 && v < f32::MIN_POSITIVE { g.normal(-126, 127).abs() } else { v }
        });
        check_unary_f32(Unary::Ln, &x, oracle_ln, ln_ok)?;
    }

    /// `ln` of a positive subnormal is within 3 ULP too: it is a positive
    /// finite input, and its result (-87.3 to -103.3) is not tiny.
    #[test]
    fn ln_of_positive_subnormals_is_within_3_ulp(n in 1usize..3000, seed in seed()) {
        let mut g = Gen::new(seed);
        let x = g.vec(n, |g| {
            if g.one_in(4) {
                g.normal(-126, -100).abs()
            } else {
                f32::from_bits(1 + g.below(0x007f_ffff))
            }
        });
        check_unary_f32(Unary::Ln, &x, oracle_ln, ln_ok)?;
    }

    /// `neg` and `abs` on i32 wrap (`MIN` maps to itself), `abs` on u32 is
    /// the identity, and the ops a type lacks are `Unsupported` errors.
    #[test]
    fn unary_int_neg_abs_wrap_exactly_and_undefined_ops_are_errors(
        n in len(),
        seed in seed(),
    ) {
        let [mut g, mut h] = Gen::streams(seed);
        let x = g.vec(n, Gen::any_i32);
        let u = h.vec(n, Gen::any_u32);
        let neg: Vec<i32> = x.iter().map(|v| v.wrapping_neg()).collect();
        let abs: Vec<i32> = x.iter().map(|v| v.wrapping_abs()).collect();
        for on in engines() {
            let (e, name) = (&on.engine, on.name);
            let (xb, ub) = (Buffer::from(x.clone()), Buffer::from(u.clone()));
            prop_assert_eq!(&get(&e.run(&Unary::Neg, &xb).unwrap()), &neg, "neg i32 on {}", name);
            prop_assert_eq!(&get(&e.run(&Unary::Abs, &xb).unwrap()), &abs, "abs i32 on {}", name);
            prop_assert_eq!(&get(&e.run(&Unary::Abs, &ub).unwrap()), &u, "abs u32 on {}", name);
            let r = e.run(&Unary::Neg, &ub).map(drop);
            let unsupported = |r: &tandem::Result<()>| matches!(r, Err(Error::Unsupported { .. }));
            prop_assert!(unsupported(&r), "neg u32 on {}: {:?}", name, r);
            for op in [Unary::Sqrt, Unary::Exp, Unary::Ln, Unary::Scale(2.0)] {
                let r = e.run(&op, &xb).map(drop);
                prop_assert!(unsupported(&r), "{:?} i32 on {}: {:?}", op, name, r);
                let r = e.run(&op, &ub).map(drop);
                prop_assert!(unsupported(&r), "{:?} u32 on {}: {:?}", op, name, r);
            }
        }
    }

    // ---------- binary and axpy ----------

    /// All six binary ops on i32 and on u32 are exact: add/sub/mul wrap, and
    /// division truncates, a zero divisor or `i32::MIN / -1` giving the
    /// dividend.
    #[test]
    fn binary_int_ops_are_exact_with_wgsl_division(n in len(), seed in seed()) {
        let [mut g, mut h, mut gu, mut hu] = Gen::streams(seed);
        let a = g.vec(n, Gen::any_i32);
        // Divisors: zero, -1 (against MIN), equal to the dividend, small, any.
        let b: Vec<i32> = a.iter().map(|&a| match h.below(8) {
            0 => 0,
            1 => -1,
            2 => a,
            3 => h.below(17) as i32 - 8,
            _ => h.any_i32(),
        }).collect();
        let ua = gu.vec(n, Gen::any_u32);
        let ub: Vec<u32> = ua.iter().map(|&a| match hu.below(8) {
            0 => 0,
            1 => a,
            2 => 1 + hu.below(8),
            _ => hu.any_u32(),
        }).collect();
        for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Min, Binary::Max] {
            check_binary_int(op, &a, &b, |a, b| oracle_binary_int(op, a, b))?;
            check_binary_int(op, &ua, &ub, |a, b| oracle_binary_int(op, a, b))?;
        }
    }

    /// f32 `add`, `sub`, `mul`, `minimum`, `maximum` on any bit patterns are
    /// the scalar IEEE result bit for bit (NaN payloads aside; an arithmetic
    /// result below `MIN_POSITIVE` may be a zero on a GPU), and `div` of
    /// finite x by `|y| ∈ [2^-100, 2^100]` is within 3 ULP.
    #[test]
    fn binary_f32_ops_match_ieee_and_div_is_within_3_ulp(n in len(), seed in seed()) {
        let [mut g, mut h, mut gd, mut hd] = Gen::streams(seed);
        let x = g.vec(n, Gen::any_f32);
        // Ties and opposite signs (±0 against ∓0, x - x) are common.
        let y: Vec<f32> = x.iter().map(|&a| match h.below(8) {
            0 => a,
            1 => -a,
            _ => h.any_f32(),
        }).collect();
        check_binary_f32(Binary::Add, &x, &y, |a, b| a + b, same_f32)?;
        check_binary_f32(Binary::Sub, &x, &y, |a, b| a - b, same_f32)?;
        check_binary_f32(Binary::Mul, &x, &y, |a, b| a * b, same_f32)?;
        // Minimum and maximum pick an operand: never flushed.
        let exact = |g, w, _| same_f32(g, w, false);
        check_binary_f32(Binary::Min, &x, &y, |a, b| oracle_pick_f32(a, b, false), exact)?;
        check_binary_f32(Binary::Max, &x, &y, |a, b| oracle_pick_f32(a, b, true), exact)?;
        let xf = gd.vec(n, Gen::finite_f32);
        let d = hd.vec(n, |g| g.normal(-100, 99));
        check_binary_f32(Binary::Div, &xf, &d, |a, b| a / b, |g, w, gpu| near_f32(g, w, 3, gpu))?;
    }

    /// `axpy` is within 2ε(|a·x| + |y|) of the exact `a·x + y` for finite
    /// inputs of moderate magnitude (2^-20..2^21, and zeros; `y = -a·x`
    /// often, so the result cancels).
    #[test]
    fn axpy_is_within_2eps_of_exact(n in len(), seed in seed()) {
        let [mut g, mut h] = Gen::streams(seed);
        let a = if g.one_in(8) { g.pick(&[0.0, -0.0, 1.0, -1.0]) } else { g.normal(-20, 20) };
        let moderate = |g: &mut Gen| if g.one_in(16) { 0.0 } else { g.normal(-20, 20) };
        let x = g.vec(n, moderate);
        let y: Vec<f32> = x.iter()
            .map(|&x| if h.one_in(8) { -(a * x) } else { moderate(&mut h) })
            .collect();
        for on in engines() {
            let (xb, yb) = (Buffer::from(x.clone()), Buffer::from(y.clone()));
            let got = get(&on.engine.run(&Axpy { a }, (&xb, &yb)).unwrap());
            prop_assert_eq!(got.len(), n);
            for i in 0..n {
                let ax = f64::from(a) * f64::from(x[i]);
                let exact = ax + f64::from(y[i]);
                let bound = 2.0 * f64::from(f32::EPSILON) * (ax.abs() + f64::from(y[i]).abs());
                prop_assert!(
                    (f64::from(got[i]) - exact).abs() <= bound,
                    "axpy on {}: element {} of {}: {:e}·{:e} + {:e}: got {:e}, exact {:e}, \
                     bound {:e}",
                    on.name, i, n, a, x[i], y[i], got[i], exact, bound
                );
            }
        }
    }

    // ---------- reductions ----------

    /// f32 `sum` and `dot` are within 2ε·log2(max(n, 2))·Σ|terms| +
    /// MIN_POSITIVE of the exact result, for finite inputs that cannot
    /// overflow: magnitudes 2^lo..2^(lo + spread) within 2^-60..2^50, some
    /// zeros, one sign (no cancellation) or mixed.
    #[test]
    fn f32_sum_and_dot_are_within_2eps_log2n_of_exact(
        n in len(),
        seed in seed(),
        lo in -60i32..20,
        spread in 0i32..=30,
        one_sign in any::<bool>(),
    ) {
        let [mut g, mut h] = Gen::streams(seed);
        let mut value = |g: &mut Gen| {
            if g.one_in(32) {
                return if g.one_in(2) { 0.0 } else { -0.0 };
            }
            let v = g.normal(lo, lo + spread);
            if one_sign { v.abs() } else { v }
        };
        let x = g.vec(n, &mut value);
        let y = h.vec(n, &mut value);
        let (s, s_abs) = exact_sum(x.iter().map(|&v| f64::from(v)));
        let (d, d_abs) = exact_sum(x.iter().zip(&y).map(|(&a, &b)| f64::from(a) * f64::from(b)));
        for on in engines() {
            let (xb, yb) = (Buffer::from(x.clone()), Buffer::from(y.clone()));
            for (what, got, exact, abs) in [
                ("sum", on.engine.run(&Sum, &xb).unwrap(), s, s_abs),
                ("dot", on.engine.run(&Dot, (&xb, &yb)).unwrap(), d, d_abs),
            ] {
                let (err, bound) = ((f64::from(got) - exact).abs(), sum_bound(n, abs));
                prop_assert!(
                    err <= bound,
                    "{} on {}: n = {}: got {:e}, exact {:e}, error {:e} > bound {:e}",
                    what, on.name, n, got, exact, err, bound
                );
            }
        }
    }

    /// i32 and u32 `sum` and `dot` wrap and are exact.
    #[test]
    fn int_sum_and_dot_wrap_exactly(n in len(), seed in seed()) {
        let [mut g, mut h, mut gu, mut hu] = Gen::streams(seed);
        let (a, b) = (g.vec(n, Gen::any_i32), h.vec(n, Gen::any_i32));
        let (ua, ub) = (gu.vec(n, Gen::any_u32), hu.vec(n, Gen::any_u32));
        let sum = a.iter().fold(0i32, |s, &v| s.wrapping_add(v));
        let dot = a.iter().zip(&b).fold(0i32, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y)));
        let usum = ua.iter().fold(0u32, |s, &v| s.wrapping_add(v));
        let udot = ua.iter().zip(&ub).fold(0u32, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y)));
        for on in engines() {
            let (e, name) = (&on.engine, on.name);
            let (ab, bb) = (Buffer::from(a.clone()), Buffer::from(b.clone()));
            let (uab, ubb) = (Buffer::from(ua.clone()), Buffer::from(ub.clone()));
            let got = [e.run(&Sum, &ab).unwrap(), e.run(&Dot, (&ab, &bb)).unwrap()];
            prop_assert_eq!(got, [sum, dot], "i32 [sum, dot] on {}: n = {}", name, n);
            let got = [e.run(&Sum, &uab).unwrap(), e.run(&Dot, (&uab, &ubb)).unwrap()];
            prop_assert_eq!(got, [usum, udot], "u32 [sum, dot] on {}: n = {}", name, n);
        }
    }

    /// i32 and u32 `min`, `max`, `argmin`, `argmax` are exact, the arg forms
    /// giving the first index of the extreme. Values (by `mode`): full-range,
    /// a narrow band (many ties), crowded at the type's top or bottom (ties
    /// with the GPU's identity keys), all `MAX`, or all `MIN`.
    #[test]
    fn int_min_max_and_first_arg_extremes_are_exact(
        n in len(),
        seed in seed(),
        mode in 0u32..6,
    ) {
        let [mut g, mut h] = Gen::streams(seed);
        let band = |g: &mut Gen| g.below(9);
        let x: Vec<i32> = g.vec(n, |g| match mode {
            0 => g.any_i32(),
            1 => band(g) as i32 - 4,
            2 => i32::MAX - band(g) as i32,
            3 => i32::MIN + band(g) as i32,
            4 => i32::MAX,
            _ => i32::MIN,
        });
        let u: Vec<u32> = h.vec(n, |g| match mode {
            0 => g.any_u32(),
            1 => 1000 + band(g),
            2 => u32::MAX - band(g),
            3 => band(g),
            4 => u32::MAX,
            _ => 0,
        });
        for on in engines() {
            let (e, name) = (&on.engine, on.name);
            let (xb, ub) = (Buffer::from(x.clone()), Buffer::from(u.clone()));
            for max in [false, true] {
                let (w, uw) = (oracle_arg_int(&x, max), oracle_arg_int(&u, max));
                let (got, arg) = extremes(e, &xb, max);
                prop_assert_eq!(got, w.map(|w| w.1), "i32 max={} on {}: n = {}", max, name, n);
                prop_assert_eq!(arg, w, "i32 arg, max={} on {}: n = {}", max, name, n);
                let (got, arg) = extremes(e, &ub, max);
                prop_assert_eq!(got, uw.map(|w| w.1), "u32 max={} on {}: n = {}", max, name, n);
                prop_assert_eq!(arg, uw, "u32 arg, max={} on {}: n = {}", max, name, n);
            }
        }
    }

    /// f32 `min`, `max`, `argmin`, `argmax` follow the key order (NaNs
    /// ignored, -0.0 < +0.0), the arg forms giving the first index, on data
    /// full of ties: each case draws from a palette of one to six values
    /// (specials such as ±0, ±inf, NaNs, subnormals, ±MAX, and ordinary
    /// values), so all-NaN inputs (NaN at index 0) come up too.
    #[test]
    fn f32_min_max_and_first_arg_extremes_with_ties_zeros_and_nans(
        n in len(),
        seed in seed(),
    ) {
        let mut g = Gen::new(seed);
        let size = 1 + g.below(6) as usize;
        let palette = g.vec(size, |g| {
            if g.one_in(2) { f32::from_bits(g.pick(SPECIAL_F32)) } else { g.normal(-2, 2) }
        });
        let x = g.vec(n, |g| g.pick(&palette));
        for on in engines() {
            let (e, name) = (&on.engine, on.name);
            let xb = Buffer::from(x.clone());
            for max in [false, true] {
                let (val, arg) = extremes(e, &xb, max);
                let got = match (val, arg) {
                    (None, None) => None,
                    (Some(v), Some((i, w))) => {
                        prop_assert!(
                            same_f32(v, w, false),
                            "max={} on {}: value {:e}, arg value {:e}", max, name, v, w
                        );
                        // All NaN: compare as the oracle's sentinel.
                        Some((i, if v.is_nan() { u32::MAX } else { key(v) }))
                    }
                    other => {
                        let why = format!("max={max} on {name}: n = {n}: {other:?}");
                        return Err(TestCaseError::fail(why));
                    }
                };
                prop_assert_eq!(
                    got,
                    oracle_extreme(&x, max),
                    "(index, key), max={} on {}: n = {}, palette {:?}",
                    max,
                    name,
                    n,
                    palette
                );
            }
        }
    }

    /// Two-input kernels given inputs of different lengths return
    /// `LengthMismatch` on every backend instead of panicking or reading
    /// out of bounds.
    #[test]
    fn mismatched_lengths_are_errors(n in 0usize..3000, m in 0usize..3000) {
        prop_assume!(n != m);
        let (x, y) = (Buffer::from(vec![1.0f32; n]), Buffer::from(vec![2.0f32; m]));
        let (i, j) = (Buffer::from(vec![1i32; n]), Buffer::from(vec![2i32; m]));
        for on in engines() {
            let e = &on.engine;
            let results = [
                e.run(&Binary::Add, (&x, &y)).map(drop),
                e.run(&Binary::Div, (&i, &j)).map(drop),
                e.run(&Axpy { a: 2.0 }, (&x, &y)).map(drop),
                e.run(&Dot, (&x, &y)).map(drop),
                e.run(&Dot, (&i, &j)).map(drop),
            ];
            for r in results {
                prop_assert!(
                    matches!(r, Err(Error::LengthMismatch { .. })),
                    "on {}: {:?}",
                    on.name,
                    r
                );
            }
        }
    }
}
