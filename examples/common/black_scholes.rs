//! Black–Scholes European option prices as expressions, shared by
//! `examples/expressions.rs` and `compare`: arrays `s` (spot), `k`
//! (strike), `t` (years to expiry); scalars `r` (rate) and `v` (volatility).

#![allow(
    dead_code,
    reason = "each example including this file uses a part of it"
)]

use tandem::Element;
use tandem::expr::{Expr, normal_cdf};

/// The call and put price expressions (one map computes both, sharing
/// `d1`, `d2` and the discount factor), in f32.
pub(crate) fn prices() -> (Expr, Expr) {
    prices_of::<f32>()
}

/// The same in float type `T` (f32 or f64): arrays, scalars and the
/// literals all take `T`.
pub(crate) fn prices_of<T: Element>() -> (Expr, Expr) {
    let (s, k, t) = (
        Expr::input::<T>("s"),
        Expr::input::<T>("k"),
        Expr::input::<T>("t"),
    );
    let (r, v) = (Expr::scalar::<T>("r"), Expr::scalar::<T>("v"));
    let vt = &v * t.sqrt();
    let d1 = ((&s / &k).ln() + (&r + Expr::literal(0.5) * &v * &v) * &t) / &vt;
    let d2 = &d1 - &vt;
    let disc = &k * (-&r * &t).exp();
    let call = &s * normal_cdf(&d1) - &disc * normal_cdf(&d2);
    let put = &disc * normal_cdf(&-&d2) - &s * normal_cdf(&-&d1);
    (call, put)
}

/// `n` options in the ranges of the classic GPU benchmark: spot 5–30,
/// strike 1–100, 0.25–10 years.
pub(crate) fn options(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut state = seed | 1;
    let mut next = move |lo: f32, hi: f32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lo + (hi - lo) * ((state >> 40) as f32 / (1u64 << 24) as f32)
    };
    let mut s = Vec::with_capacity(n);
    let mut k = Vec::with_capacity(n);
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        s.push(next(5.0, 30.0));
        k.push(next(1.0, 100.0));
        t.push(next(0.25, 10.0));
    }
    (s, k, t)
}

/// Φ in f64 by the same polynomial (error below 7.5e-8).
fn cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.231_641_9 * x.abs());
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let tail = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt() * poly;
    if x >= 0.0 { 1.0 - tail } else { tail }
}

/// The scalar f64 oracle: (call, put) of one option.
pub(crate) fn reference(s: f32, k: f32, t: f32, r: f32, v: f32) -> (f64, f64) {
    let (s, k, t, r, v) = (
        f64::from(s),
        f64::from(k),
        f64::from(t),
        f64::from(r),
        f64::from(v),
    );
    let vt = v * t.sqrt();
    let d1 = ((s / k).ln() + (r + 0.5 * v * v) * t) / vt;
    let d2 = d1 - vt;
    let disc = k * (-r * t).exp();
    (s * cdf(d1) - disc * cdf(d2), disc * cdf(-d2) - s * cdf(-d1))
}

/// One option's prices in plain f32 (what a user's loop computes).
pub(crate) fn price_f32(s: f32, k: f32, t: f32, r: f32, v: f32) -> (f32, f32) {
    let cdf = |x: f32| {
        let u = 1.0 / (1.0 + 0.231_641_9 * x.abs());
        let poly = u
            * (0.319_381_53
                + u * (-0.356_563_78 + u * (1.781_477_9 + u * (-1.821_256 + u * 1.330_274_5))));
        let tail = 0.398_942_3 * (-0.5 * x * x).exp() * poly;
        if x >= 0.0 { 1.0 - tail } else { tail }
    };
    let vt = v * t.sqrt();
    let d1 = ((s / k).ln() + (r + 0.5 * v * v) * t) / vt;
    let d2 = d1 - vt;
    let disc = k * (-r * t).exp();
    (s * cdf(d1) - disc * cdf(d2), disc * cdf(-d2) - s * cdf(-d1))
}
